"""A trained model from its run directory: `vae_jax.load(workdir)`.

    import vae_jax
    model = vae_jax.load('runs/vae-20261202-101500')     # newest checkpoint; no dataset
    mu, sigma = model.encode(images)                      # [N, D] each
    samples = model.sample(16, seed=0)                    # [16, H, W, C] in [0, 1]
    scores = model.nll_iw(images, k=5000)                 # [N] nats

Images are numpy or jax arrays, uint8 0–255 or float 0–1, [N, H, W, C] (or
[N, H, W] for one channel); labels (a CVAE's `y`) int [N]. Every method takes
any batch size and runs in fixed-size jitted batches (one compilation per
method). `encode`, `decode`, `reconstruct`, `interpolate`, `traverse` use the
images as given. `elbo` and `nll_iw` score them exactly as the run's
evaluation does: with dynamic binarization each pixel is drawn Bernoulli(x),
and every draw of example i is keyed by `indices[i]` (default i) from the
run's evaluation key, so the run's own test images in order give the
evaluation's per-example numbers.
"""

import json
import os
import warnings
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import models, objectives
from vae_jax import train_state
from vae_jax.run import checkpoints
from vae_jax.evaluation import loop as eval_loop
from vae_jax import data as data_lib
from vae_jax.run import saved_config
from vae_jax.errors import WorkdirError

BATCH = 256  # examples per jitted call of encode/decode

# Image shape and classes of runs made before run.json recorded them.
_KNOWN_DATA = {'dsprites': ((64, 64, 1), 3), 'fashion_mnist': ((28, 28, 1), 10),
               'mnist': ((28, 28, 1), 10), 'binarized_mnist': ((28, 28, 1), 0)}


def load(workdir: str, step: Optional[int] = None, config=None) -> 'Model':
  """The model of the run in `workdir` at its newest readable (or the given) checkpoint.

  An unreadable newest checkpoint is passed over with a warning (and left
  where it is); an unreadable `step` is a WorkdirError listing the others.

  `config`: the run's config with other evaluation settings (eval.*), checked
  against the saved one; default the saved config.json.
  """
  if config is None:
    config = saved_config.load(workdir)
  else:
    saved_config.check_config_matches(workdir, config)
  data_spec = _data_spec(workdir, config)
  spec = train_state.make_spec(config, data_spec)
  ckpt = checkpoints.Checkpointer(workdir, read_only=True) if os.path.isdir(
      os.path.join(workdir, 'checkpoints')) else None
  saved = ckpt.all_steps() if ckpt else []
  if not saved:
    raise WorkdirError(f'no checkpoint in {workdir}; train the run first')
  template = train_state.init_state(spec, config.seed)
  try:
    if step is not None:
      state = ckpt.restore(step, template)
    else:  # the newest readable one, as a resumed run finds it (nothing is moved)
      state = ckpt.restore_latest(template, move_unreadable=False)
      if state is None:
        raise WorkdirError(f'none of the checkpoints in {workdir} (steps {saved}) can be '
                           'read; train the run again')
      if int(state.step) != saved[-1]:
        warnings.warn(f'the newest checkpoint of {workdir} (step {saved[-1]}) cannot be '
                      f'read; loaded step {int(state.step)}', stacklevel=2)
  finally:
    ckpt.close()
  return Model(config, spec, state.params, int(state.step), workdir)


def _data_spec(workdir: str, config) -> data_lib.DataSpec:
  """The DataSpec the run trained on, from run.json (no data is loaded)."""
  info = {}
  path = os.path.join(workdir, 'run.json')
  if os.path.isfile(path):
    with open(path) as f:
      info = json.load(f).get('data') or {}
  if info:
    shape, classes = tuple(info['image_shape']), int(info['num_classes'])
    binarize = info['binarize']
  elif config.data.name in _KNOWN_DATA:
    shape, classes = _KNOWN_DATA[config.data.name]
    binarize = 'none' if config.data.name == 'dsprites' else config.data.binarize
  else:
    raise WorkdirError(f'{path} does not record the image shape of {config.data.name!r} '
                       '(a run made by an older vae_jax); resume it once to record it')
  # Static binarization was applied to the stored data: new images come as they are.
  binarize = 'dynamic' if binarize == 'dynamic' else 'none'
  return data_lib.DataSpec(name=config.data.name, procedural=False, image_shape=shape,
                           num_classes=classes, binarize=binarize)


class Model:
  """A trained VAE (or autoencoder): batched encode, decode, sample and scores."""

  def __init__(self, config, spec: train_state.StepSpec, params, step: int, workdir: str):
    self.config, self.spec, self.params, self.step, self.workdir = (
        config, spec, params, step, workdir)
    self.image_shape = tuple(spec.data.image_shape)
    self.num_classes = spec.data.num_classes if config.model.conditional else 0
    self.latent_dim = config.model.latent_dim
    self.stochastic = objectives.get(spec.objective).stochastic

  def __repr__(self) -> str:
    return (f'Model({self.config.objective.name}, {self.config.data.name} '
            f'{self.image_shape}, latent_dim={self.latent_dim}, step={self.step}, '
            f'workdir={self.workdir!r})')

  # --- inputs ---------------------------------------------------------------

  def check_images(self, x, what: str = 'x') -> np.ndarray:
    """x as [N, H, W, C]: uint8 kept, floats as float32 in [0, 1]; ValueError naming
    the expected and the given shape, dtype or value range otherwise."""
    x = np.asarray(x)
    shape = self.image_shape
    if tuple(x.shape) == shape:
      raise ValueError(f'{what} is one image of shape {x.shape}; pass a batch [N, '
                       f'{", ".join(map(str, shape))}], e.g. {what}[None]')
    if x.ndim == len(shape) and shape[-1] == 1 and tuple(x.shape[1:]) == shape[:-1]:
      x = x[..., None]
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
      one = f' or [N, {shape[0]}, {shape[1]}]' if shape[-1] == 1 else ''
      raise ValueError(f'{what} must be images [N, {", ".join(map(str, shape))}]{one}, '
                       f'got shape {x.shape}')
    if x.dtype == np.uint8:
      return x
    if not np.issubdtype(x.dtype, np.floating):
      raise ValueError(f'{what} must be uint8 0–255 or float 0–1, got dtype {x.dtype}')
    if x.size and not (np.all(x >= 0.0) and np.all(x <= 1.0)):
      raise ValueError(f'{what} must be float pixels in [0, 1] (or uint8 0–255), got '
                       f'values in [{np.nanmin(x):g}, {np.nanmax(x):g}]')
    return x.astype(np.float32)

  def _labels(self, y, num: int) -> np.ndarray:
    """Labels int32 [num]: required by a CVAE, refused otherwise."""
    if not self.num_classes:
      if y is not None:
        raise ValueError('y given, but this model is not conditional; drop y')
      return np.zeros(num, np.int32)
    if y is None:
      raise ValueError(f'this model is a CVAE: pass labels y, int [{num}] in '
                       f'0..{self.num_classes - 1}')
    y = np.broadcast_to(np.asarray(y), (num,)) if np.ndim(y) == 0 else np.asarray(y)
    if y.shape != (num,) or not np.issubdtype(y.dtype, np.integer):
      raise ValueError(f'y must be integer labels [{num}], got {y.dtype} {y.shape}')
    if num and (y.min() < 0 or y.max() >= self.num_classes):
      raise ValueError(f'y must be in 0..{self.num_classes - 1}, got {y.min()}..{y.max()}')
    return y.astype(np.int32)

  def _latents(self, z) -> np.ndarray:
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or z.shape[1] != self.latent_dim:
      raise ValueError(f'z must be latents [N, {self.latent_dim}], got shape {z.shape}')
    return z

  def _needs_posterior(self, what: str) -> None:
    if not self.stochastic:
      raise ValueError(f'{what} needs a probabilistic encoder and prior; objective '
                       f'{self.spec.objective!r} trains a deterministic autoencoder')

  def _batched(self, fn, *arrays) -> list:
    """fn over BATCH-sized chunks (padded), results concatenated and trimmed."""
    num = len(arrays[0])
    outs = []
    for start in range(0, max(num, 1), BATCH):
      chunk = [a[start:start + BATCH] for a in arrays]
      valid = len(chunk[0])
      padded = [np.concatenate([c, np.zeros((BATCH - valid,) + c.shape[1:], c.dtype)])
                for c in chunk]
      outs.append([np.asarray(o)[:valid] for o in fn(*padded)])
    return [np.concatenate(parts) for parts in zip(*outs)]

  def _as_float(self, x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x

  # --- the model ------------------------------------------------------------

  def encode(self, x, y=None, *, return_logvar: bool = False):
    """(mu, sigma) of q(z|x), each float32 [N, D] ((mu, logvar) with return_logvar)."""
    x = self.check_images(x)
    y = self._labels(y, len(x))
    mu, logvar = self._batched(
        lambda x_, y_: models.encode(self.spec.model, self.params, x_, y_),
        self._as_float(x), y)
    return (mu, logvar) if return_logvar else (mu, np.exp(0.5 * logvar))

  def decode(self, z, y=None) -> np.ndarray:
    """E[x|z]: images float32 [N, H, W, C] in [0, 1] of latents z [N, D]."""
    z = self._latents(z)
    y = self._labels(y, len(z))
    return self._batched(
        lambda z_, y_: (models.decode_mean(self.spec.model, self.params, z_, y_),),
        z, y)[0]

  def sample(self, n: int, seed: int = 0, y=None) -> np.ndarray:
    """n images decoded from z ~ N(0, I) drawn from key(seed): [n, H, W, C]."""
    self._needs_posterior('sample')
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
      raise ValueError(f'n must be a positive number of images, got {n!r}')
    z = np.asarray(jax.random.normal(jax.random.key(seed), (n, self.latent_dim)))
    return self.decode(z, y)

  def reconstruct(self, x, y=None) -> np.ndarray:
    """E[x|z = mu(x)]: images decoded from the posterior means, [N, H, W, C]."""
    mu, _ = self.encode(x, y)
    return self.decode(mu, y)

  def interpolate(self, x_a, x_b, num_points: int = 8, *, y=None,
                  method: str = 'linear') -> np.ndarray:
    """[N, num_points, H, W, C]: decoded points from mu(x_a) to mu(x_b) (both ends included),
    on the straight line ('linear') or the great circle ('spherical', slerp)."""
    if method not in ('linear', 'spherical') or num_points < 2:
      raise ValueError(f"method must be 'linear' or 'spherical' and num_points ≥ 2, got "
                       f'{method!r}, {num_points}')
    mu_a, _ = self.encode(x_a, y)
    mu_b, _ = self.encode(x_b, y)
    if mu_a.shape != mu_b.shape:
      raise ValueError(f'x_a and x_b must hold as many images, got {len(mu_a)} and '
                       f'{len(mu_b)}')
    t = np.linspace(0.0, 1.0, num_points, dtype=np.float32)[None, :, None]
    if method == 'linear':
      z = (1.0 - t) * mu_a[:, None] + t * mu_b[:, None]
    else:
      z = _slerp(mu_a, mu_b, t)
    labels = None if y is None else np.repeat(self._labels(y, len(mu_a)), num_points)
    out = self.decode(z.reshape(-1, self.latent_dim), labels)
    return out.reshape(len(mu_a), num_points, *self.image_shape)

  def traverse(self, x, dim: int, offsets: Sequence[float], y=None) -> np.ndarray:
    """[N, len(offsets), H, W, C]: z = mu(x) with offsets[s] added to z[dim], decoded.

    As the traversal pictures of a run (offsets in prior standard deviations,
    there linspace(−3, 3)); for absolute values of z[dim], pass
    values − mu[:, dim] per image or decode a z of your own.
    """
    if not 0 <= dim < self.latent_dim:
      raise ValueError(f'dim must be in 0..{self.latent_dim - 1}, got {dim}')
    mu, _ = self.encode(x, y)
    offsets = np.asarray(offsets, np.float32).reshape(-1)
    z = np.repeat(mu[:, None], len(offsets), axis=1)
    z[:, :, dim] += offsets[None, :]
    labels = None if y is None else np.repeat(self._labels(y, len(mu)), len(offsets))
    out = self.decode(z.reshape(-1, self.latent_dim), labels)
    return out.reshape(len(mu), len(offsets), *self.image_shape)

  # --- scores, exactly as the evaluation ------------------------------------

  def _scoring_set(self, x, y, indices) -> data_lib.Dataset:
    x = self.check_images(x)
    y = self._labels(y, len(x))
    num = len(x)
    if indices is None:
      indices = np.arange(num, dtype=np.int32)
    indices = np.asarray(indices)
    if indices.shape != (num,) or not np.issubdtype(indices.dtype, np.integer):
      raise ValueError(f'indices must be integers [{num}], got {indices.dtype} '
                       f'{indices.shape}')
    arrays = {'eval_x': jnp.asarray(x), 'eval_y': jnp.asarray(y)}
    return data_lib.Dataset(spec=self.spec.data, arrays=arrays, train_ids=None,
                            eval_ids=np.arange(num, dtype=np.int32), num_train=0,
                            source='vae_jax.load', eval_key_ids=indices.astype(np.int32))

  def elbo(self, x, y=None, *, indices=None) -> dict:
    """Per-example ELBO terms in nats: {'recon', 'kl', 'nelbo'}, each float [N]."""
    self._needs_posterior('elbo')
    data = self._scoring_set(x, y, indices)
    terms = eval_loop.elbo_terms(self.params, self.spec, data, seed=self.config.seed,
                                 batch_size=self.config.eval.batch_size)
    return {k: terms[k] for k in ('recon', 'kl', 'nelbo')}

  def nll_iw(self, x, k: int = 5000, y=None, *, indices=None) -> np.ndarray:
    """Per-example importance-weighted bound on −log p(x) with k samples, float [N] nats.

    Memory is bounded by config.eval.iw_batch_size × iw_chunk_size decoder passes.
    """
    self._needs_posterior('nll_iw')
    if k < 1:
      raise ValueError(f'k must be a positive number of samples, got {k}')
    data = self._scoring_set(x, y, indices)
    ev = self.config.eval
    return eval_loop.importance_weighted_nll(self.params, self.spec, data, k,
                                             seed=self.config.seed,
                                             batch_size=ev.iw_batch_size,
                                             chunk_size=ev.iw_chunk_size)


def _slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
  """Spherical interpolation [N, T, D] between rows of a and b [N, D] at t [1, T, 1];
  the norm is interpolated linearly, the direction along the great circle."""
  norm_a = np.linalg.norm(a, axis=1, keepdims=True)
  norm_b = np.linalg.norm(b, axis=1, keepdims=True)
  unit_a, unit_b = a / np.maximum(norm_a, 1e-12), b / np.maximum(norm_b, 1e-12)
  cos = np.clip(np.sum(unit_a * unit_b, axis=1, keepdims=True), -1.0, 1.0)
  omega = np.arccos(cos)[:, None]  # [N, 1, 1]
  sin = np.sin(omega)
  small = sin < 1e-6
  w_a = np.where(small, 1.0 - t, np.sin((1.0 - t) * omega) / np.where(small, 1.0, sin))
  w_b = np.where(small, t, np.sin(t * omega) / np.where(small, 1.0, sin))
  direction = w_a * unit_a[:, None] + w_b * unit_b[:, None]
  norm = (1.0 - t) * norm_a[:, None] + t * norm_b[:, None]
  return (direction / np.maximum(np.linalg.norm(direction, axis=2, keepdims=True), 1e-12)
          * norm).astype(np.float32)
