"""Loading a whole small image dataset (MNIST-like) into host numpy arrays.

Sources, in lookup order: a user-given directory of MNIST-format IDX files, a
Debian/Ubuntu dataset package, a TFDS dataset already prepared on disk. Nothing
is ever downloaded.
"""

import dataclasses
import os

import numpy as np

from vae_jax.data import idx
from vae_jax.data import tfds_io
from vae_jax.errors import DataError

# Debian/Ubuntu packages that install MNIST-format IDX files. Their gzip bytes
# differ from upstream, so TFDS checksums reject them: read them directly.
DEBIAN_DIRS = {'fashion_mnist': '/usr/share/datasets/fashion-mnist'}
_DEBIAN_PACKAGES = {'fashion_mnist': 'dataset-fashion-mnist'}

# TFDS datasets whose images are 0/1 values; they are mapped to 0/255.
_BINARY_TFDS_DATASETS = frozenset({'binarized_mnist'})


@dataclasses.dataclass(frozen=True)
class ImageArrays:
  """A whole image dataset in host memory; images are uint8 in [0, 255]."""
  train_images: np.ndarray  # uint8 [N, H, W, C]
  train_labels: np.ndarray  # int32 [N]  (zeros if the dataset has no labels)
  test_images: np.ndarray   # uint8 [M, H, W, C]
  test_labels: np.ndarray   # int32 [M]
  num_classes: int          # 0 when there are no labels
  source: str               # where the data came from (path or tfds:<name> in <dir>)


def load_image_arrays(name: str, local_dir: str = '',
                      tfds_data_dir: str = '') -> ImageArrays:
  """Loads dataset `name` from local_dir, a Debian package dir, or TFDS."""
  if local_dir:
    return _load_local_dir(local_dir)
  debian_dir = DEBIAN_DIRS.get(name)
  if debian_dir and _has_idx_files(debian_dir):
    return load_idx_dir(debian_dir)
  return _load_tfds(name, tfds_data_dir)


# ----------------------------------------------------------------- IDX files


def _has_idx_files(directory: str) -> bool:
  """Whether `directory` holds the train and test IDX files."""
  try:
    for split in ('train', 'test'):
      idx.find_idx_split(directory, split)
  except DataError:
    return False
  return True


def _load_local_dir(local_dir: str) -> ImageArrays:
  """Loads the user-given IDX directory, or raises DataError naming it."""
  if not os.path.isdir(local_dir):
    raise DataError(
        f'--config.data.local_dir={local_dir} is not a directory; point it at '
        f'a directory holding MNIST-format IDX files {idx.expected_file_names()}.')
  try:
    return load_idx_dir(local_dir)
  except DataError as e:
    raise DataError(f'--config.data.local_dir={local_dir} is unusable: {e}') from e


def read_idx_split(directory: str, split: str, labels_required: bool = True):
  """Reads and checks the (images uint8 [N,H,W,C], labels int32 [N]) of a split;
  labels None when they are not required and the directory has none."""
  images_path, labels_path = idx.find_idx_split(directory, split,
                                                labels_required=labels_required)
  images = idx.read_idx(images_path)
  if images.dtype != np.uint8 or images.ndim not in (3, 4):
    raise DataError(
        f'{images_path} must hold uint8 images [N, H, W] or [N, H, W, C], got '
        f'{images.dtype} {images.shape}.')
  if labels_path is None:
    return _with_channel_axis(images), None
  labels = idx.read_idx(labels_path)
  if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
    raise DataError(
        f'{labels_path} must hold one label per image of {images_path} '
        f'({images.shape[0]}), got shape {labels.shape}.')
  if labels.size and labels.min() < 0:
    raise DataError(f'{labels_path} holds negative labels.')
  return _with_channel_axis(images), labels.astype(np.int32)


def load_idx_dir(directory: str) -> ImageArrays:
  """Loads the MNIST-format train and test IDX files of `directory`."""
  train_images, train_labels = read_idx_split(directory, 'train')
  test_images, test_labels = read_idx_split(directory, 'test')
  _check_same_image_shape(train_images, test_images, directory)
  labels = np.concatenate([train_labels, test_labels])
  num_classes = int(labels.max()) + 1 if labels.size else 0
  return ImageArrays(train_images, train_labels, test_images, test_labels,
                     num_classes=num_classes, source=directory)


def _with_channel_axis(images: np.ndarray) -> np.ndarray:
  """Adds a trailing channel axis to [N, H, W] images."""
  return images[..., np.newaxis] if images.ndim == 3 else images


def _check_same_image_shape(train: np.ndarray, test: np.ndarray,
                            source: str) -> None:
  """Raises DataError if train and test images differ in [H, W, C]."""
  if train.shape[1:] != test.shape[1:]:
    raise DataError(
        f'Train and test images of {source} differ in shape: '
        f'{train.shape[1:]} vs {test.shape[1:]}.')


# ---------------------------------------------------------------------- TFDS


def _local_ways(name: str) -> list[str]:
  """The ways to provide dataset `name` that need no TensorFlow."""
  ways = [f'--config.data.local_dir=DIR with MNIST-format IDX files '
          f'{idx.expected_file_names()}']
  if name in DEBIAN_DIRS:
    ways.append(f'apt-get install {_DEBIAN_PACKAGES[name]} (installs '
                f'{DEBIAN_DIRS[name]})')
  return ways


def _ways_to_provide(name: str, tfds_dir: str) -> str:
  """One line listing every way to make dataset `name` available."""
  ways = _local_ways(name)
  ways.append(f'prepare the TFDS dataset in the TFDS data dir {tfds_dir} '
              f'(`tfds build {name}` on a machine with internet, then copy its '
              f'~/tensorflow_datasets to {tfds_dir} here, or point '
              f'--config.data.tfds_data_dir at the copy)')
  return 'Provide it in one of these ways: ' + '; or '.join(
      f'({i}) {way}' for i, way in enumerate(ways, start=1)) + '.'


def _load_tfds(name: str, tfds_data_dir: str) -> ImageArrays:
  """Loads a prepared TFDS dataset (no download), or raises DataError."""
  tfds = tfds_io.import_tfds(name, 'use ' + ' or '.join(_local_ways(name)))
  tfds_dir = tfds_data_dir or tfds.core.constants.DATA_DIR
  try:
    builder = tfds.builder(name, data_dir=tfds_data_dir or None)
  except (ValueError, AssertionError) as e:  # incl. DatasetNotFoundError
    raise DataError(
        f'{name!r} is not a known dataset ({tfds_io.first_line(e)}): check '
        f'--config.data.name, or give MNIST-format IDX files with '
        f'--config.data.local_dir=DIR ({idx.expected_file_names()}).') from e
  try:
    return _read_tfds(tfds, builder, name)
  except AssertionError as e:  # tfds: "Dataset X: could not find data in DIR."
    raise DataError(
        f'Dataset {name!r} is not available: no local IDX files and TFDS has no '
        f'prepared copy in {tfds_dir} (downloads are disabled). '
        f'{_ways_to_provide(name, tfds_dir)}') from e
  except tfds_io.read_error_types() as e:
    raise DataError(
        f'TFDS dataset {name!r} in {tfds_dir} could not be read '
        f'({tfds_io.first_line(e)}); prepare it again (`tfds build {name}`) '
        'or use --config.data.local_dir=DIR with MNIST-format IDX files.') from e


def _eval_split(splits, name: str) -> str:
  """'test' if the builder has it (or splits are unknown), else 'validation'."""
  names = set(splits)
  if not names or 'test' in names:
    return 'test'
  if 'validation' in names:
    return 'validation'
  raise DataError(f'TFDS dataset {name!r} has no test or validation split '
                  f'(it has {sorted(names)}).')


def _read_tfds(tfds, builder, name: str) -> ImageArrays:
  """Reads train and test/validation arrays of a prepared TFDS builder."""
  features = builder.info.features
  if 'image' not in features:
    raise DataError(f'TFDS dataset {name!r} has no \'image\' feature; it is '
                    'not an image dataset.')
  has_labels = 'label' in features
  splits = ['train', _eval_split(builder.info.splits, name)]
  arrays = [_tfds_split_arrays(tfds, builder, name, s, has_labels)
            for s in splits]
  (train_images, train_labels), (test_images, test_labels) = arrays
  _check_same_image_shape(train_images, test_images, f'tfds:{name}')
  if builder.name in _BINARY_TFDS_DATASETS:
    train_images = _binary_to_255(train_images)
    test_images = _binary_to_255(test_images)
  num_classes = _num_classes(features, train_labels) if has_labels else 0
  return ImageArrays(train_images, train_labels, test_images, test_labels,
                     num_classes=num_classes,
                     source=f'tfds:{name} in {builder.data_dir_root}')


def _tfds_split_arrays(tfds, builder, name: str, split: str,
                       has_labels: bool) -> tuple[np.ndarray, np.ndarray]:
  """Reads one TFDS split into (images uint8 [N,H,W,C], labels int32 [N])."""
  images, labels = [], []
  for batch in tfds_io.numpy_batches(tfds, builder, name, split):
    images.append(batch['image'])
    labels.append(batch['label'] if has_labels
                  else np.zeros(len(batch['image']), np.int32))
  if not images:
    raise DataError(f'TFDS dataset {name!r} split {split!r} is empty.')
  images = _with_channel_axis(np.concatenate(images))
  if images.dtype != np.uint8 or images.ndim != 4:
    raise DataError(f'TFDS dataset {name!r} images must be uint8 [H, W, C], '
                    f'got {images.dtype} {images.shape[1:]}.')
  return images, np.concatenate(labels).astype(np.int32)


def _binary_to_255(images: np.ndarray) -> np.ndarray:
  """Maps 0/1 images to the common uint8 0/255 convention."""
  return np.where(images > 0, 255, 0).astype(np.uint8)


def _num_classes(features, labels: np.ndarray) -> int:
  """Number of classes from the ClassLabel feature, else max label + 1."""
  num_classes = getattr(features['label'], 'num_classes', None)
  if num_classes:
    return int(num_classes)
  return int(labels.max()) + 1 if labels.size else 0
