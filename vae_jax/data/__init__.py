"""Datasets that live on the device; batches are gathered inside the jitted step.

A `Dataset` holds every image as device arrays (or, for a procedural dataset
such as dSprites, nothing: its images are rendered from factor indices by
the entry of vae_jax.data.procedural's registry). The host only decides WHICH examples form
a batch: `train_indices(seed, step)` is a pure function of (seed, step) — a
fresh permutation per epoch — so a resumed run needs no iterator state. The
jitted step then calls `get_batch(spec, arrays, indices, key)` to gather,
render and (dynamically) binarize on the device.

Pixel convention everywhere: float32 [B, H, W, C] in [0, 1]; labels int32 [B].
"""

import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax.data import procedural
from vae_jax.errors import ConfigError, DataError

STATIC_BINARIZATION_SEED = 20151028  # one fixed Bernoulli sample of the data set

CLASS_NAMES = {  # (procedural datasets name theirs in their registry entry)
    'fashion_mnist': ('T-shirt', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                      'Shirt', 'Sneaker', 'Bag', 'Boot'),
}


def class_names(spec: 'DataSpec') -> tuple:
  """Readable names of the labels 0..num_classes−1 (the numbers if unknown)."""
  names = CLASS_NAMES.get(spec.name)
  if names is None and spec.name in procedural.REGISTRY:
    names = procedural.get(spec.name).class_names
  if names and len(names) == spec.num_classes:
    return names
  return tuple(str(i) for i in range(spec.num_classes))


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """The static (hashable) description of a dataset that the jitted step needs."""
  name: str
  procedural: bool  # True: rendered by procedural.get(name) from flat factor indices
  image_shape: tuple
  num_classes: int  # 0 = no labels
  binarize: str  # 'dynamic' | 'static' | 'none' (static is applied at load time)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """Device-resident train and evaluation data, addressed by integer index."""
  spec: DataSpec
  # device arrays: 'train_x', 'train_y', 'eval_x', 'eval_y'; a procedural
  # dataset's: 'train_ids' (its train_ids, for `sample_train_indices`)
  arrays: dict
  train_ids: Optional[np.ndarray]  # procedural: flat factor index of each train position
  eval_ids: np.ndarray  # index of each evaluation example (into eval arrays, or flat)
  num_train: int
  source: str  # where the data came from, for run.json and logs
  # The index each evaluation example's random draws are keyed by (None: its
  # eval_ids entry); set when scoring images that stand for other examples.
  eval_key_ids: Optional[np.ndarray] = None

  @property
  def num_eval(self) -> int:
    return len(self.eval_ids)

  def train_indices(self, seed: int, step: int, batch_size: int) -> np.ndarray:
    """Indices of the train batch at `step`: epoch-wise permutations of (seed, epoch)."""
    steps_per_epoch = self.num_train // batch_size
    epoch, position = divmod(step, steps_per_epoch)
    order = _epoch_permutation(seed, epoch, self.num_train)
    batch = order[position * batch_size:(position + 1) * batch_size]
    ids = batch if self.train_ids is None else self.train_ids[batch]
    return ids.astype(np.int32)


@functools.lru_cache(maxsize=16)  # a sweep's members draw from a few seeds at once
def _epoch_permutation(seed: int, epoch: int, num: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(num)


def sample_train_indices(spec: DataSpec, arrays: dict, key: jax.Array,
                         num: int) -> jax.Array:
  """`num` training examples drawn uniformly with replacement from `key`, as
  `Dataset.train_indices` names them (flat factor indices for a procedural
  dataset); jittable. A batch drawn independently of the step's own."""
  if spec.procedural:
    ids = arrays['train_ids']
    return ids[jax.random.randint(key, (num,), 0, ids.shape[0])]
  return jax.random.randint(key, (num,), 0, arrays['train_x'].shape[0])


def gather(spec: DataSpec, arrays: dict, split: str, indices: jax.Array,
           noise_key: Optional[jax.Array] = None):
  """(x [B, H, W, C] float32 in [0, 1], y [B] int32) for `indices`, not binarized.

  Stored images are uint8 0–255 (divided by 255) or already floats in [0, 1].
  A procedural dataset's noise (if any) comes from `noise_key`, or with None
  from the fixed key of each example (procedural.eval_noise_keys).
  """
  if spec.procedural:
    x, y = procedural.gather(procedural.get(spec.name), indices, noise_key)
  else:
    x = arrays[f'{split}_x'][indices]
    x = x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)
    y = arrays[f'{split}_y'][indices]
  return x, y


def get_batch(spec: DataSpec, arrays: dict, split: str, indices: jax.Array,
              key: jax.Array):
  """`gather`, then (with binarize='dynamic') x ~ Bernoulli(x) from `key`; jittable.

  A procedural dataset's noise comes from `key` for the 'train' split (the
  step's data key) and is fixed per example for 'eval'.
  """
  x, y = gather(spec, arrays, split, indices, key if split == 'train' else None)
  if spec.binarize == 'dynamic':
    x = jax.random.bernoulli(key, x).astype(jnp.float32)
  return x, y


def load(data_config) -> Dataset:
  """Loads `config.data` onto the device; DataError if it cannot be found."""
  if data_config.name in procedural.REGISTRY:
    if data_config.exclude_classes:
      raise DataError(f'config.data.exclude_classes is not supported for '
                      f'{data_config.name}; use a labelled image dataset such as '
                      'fashion_mnist')
    return _load_procedural(data_config, procedural.get(data_config.name))
  from vae_jax.data import image_arrays  # pylint: disable=g-import-not-at-top
  host = image_arrays.load_image_arrays(data_config.name, data_config.local_dir,
                                        data_config.tfds_data_dir)
  train_x, train_y = host.train_images, host.train_labels
  eval_x = host.test_images
  if data_config.exclude_classes:
    train_x, train_y = _exclude(train_x, train_y, data_config.exclude_classes,
                                host.num_classes, data_config.name)
  if data_config.binarize == 'static':
    train_x, eval_x = _static_binarize(train_x), _static_binarize(eval_x)
  if len(train_x) < data_config.batch_size:
    raise DataError(f'{data_config.name} has {len(train_x)} training images, fewer than '
                    f'config.data.batch_size={data_config.batch_size}; lower the batch size')
  spec = DataSpec(name=data_config.name, procedural=False,
                  image_shape=tuple(train_x.shape[1:]), num_classes=host.num_classes,
                  binarize=data_config.binarize)
  arrays = {'train_x': jnp.asarray(train_x), 'train_y': jnp.asarray(train_y),
            'eval_x': jnp.asarray(eval_x), 'eval_y': jnp.asarray(host.test_labels)}
  return Dataset(spec=spec, arrays=arrays, train_ids=None,
                 eval_ids=np.arange(len(eval_x), dtype=np.int32),
                 num_train=len(train_x), source=host.source)


def _exclude(images: np.ndarray, labels: np.ndarray, classes, num_classes: int,
             name: str):
  """Drops the training examples whose label is in `classes`."""
  bad = [c for c in classes if c >= max(num_classes, 1)]
  if num_classes == 0 or bad:
    raise DataError(f'config.data.exclude_classes={tuple(classes)}: {name} has '
                    f'{num_classes} classes; give labels in 0..{max(num_classes - 1, 0)}')
  keep = ~np.isin(labels, np.asarray(classes))
  return images[keep], labels[keep]


def _static_binarize(images: np.ndarray) -> np.ndarray:
  """One fixed Bernoulli(intensity) sample per pixel, as uint8 0/255."""
  rng = np.random.default_rng(STATIC_BINARIZATION_SEED)
  return (rng.random(images.shape) < images / 255.0).astype(np.uint8) * 255


def _load_procedural(data_config, p: procedural.ProceduralFactors) -> Dataset:
  """A procedural dataset; a fixed random `eval_size` combinations are held out."""
  if data_config.eval_size >= p.num_images:
    raise DataError(f'config.data.eval_size={data_config.eval_size} leaves no {p.title} '
                    f'images to train on; use fewer than {p.num_images}')
  if not procedural.binarize_allowed(p.name, data_config.binarize):
    raise ConfigError(f"config.data.binarize must be 'none' for {p.name} (continuous "
                      f'pixels), got {data_config.binarize!r}')
  rng = np.random.default_rng(0)
  held_out = np.zeros(p.num_images, bool)
  held_out[rng.choice(p.num_images, data_config.eval_size, replace=False)] = True
  spec = DataSpec(name=p.name, procedural=True, image_shape=p.image_shape,
                  num_classes=p.num_classes, binarize='none')
  train_ids = np.flatnonzero(~held_out).astype(np.int32)
  return Dataset(spec=spec, arrays={'train_ids': jnp.asarray(train_ids)},
                 train_ids=train_ids,
                 eval_ids=np.flatnonzero(held_out).astype(np.int32),
                 num_train=int(p.num_images - data_config.eval_size), source=p.source)
