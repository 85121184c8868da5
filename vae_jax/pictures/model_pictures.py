"""Pictures of a model: the grids, GIF and ground truth a run writes.

Grids are float [rows, cols, H, W, C] in [0, 1] (made into uint8 pictures by
`vae_jax.figures`) of a `models.VAE` and its params: prior samples,
reconstructions, the class-conditional grid, latent traversals and
interpolations; `traversal_gif` animates the traversals; a procedural
dataset's ground-truth factor grid shows what the latents should find. The
model is called only through `models.encode` / `models.decode_mean`; its
likelihood, latent size and labels come from the model itself.

Which of them a run writes at each evaluation: `vae_jax.eval_pictures`.
"""

import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import models
from vae_jax.pictures import figures
from vae_jax.data import procedural



def prior_samples(model: models.VAE, params, key: jax.Array, rows: int,
                  cols: int) -> np.ndarray:
  """Decoder means of z ~ N(0, I): [rows, cols, H, W, C]."""
  z = jax.random.normal(key, (rows * cols, model.latent_dim))
  y = jnp.zeros((rows * cols,), jnp.int32)
  x = models.decode_mean(model, params, z, y)
  return np.asarray(x).reshape(rows, cols, *x.shape[1:])


def reconstructions(model: models.VAE, params, key: jax.Array, x: jax.Array, y: jax.Array,
                    num_samples: int, stochastic: bool) -> np.ndarray:
  """Row 0: the inputs x [N, H, W, C]; row 1: decoded posterior means; further rows: z ~ q(z|x).

  Several posterior samples per input show the "multiple plausible outputs"
  of a VAE; a deterministic autoencoder has only the one reconstruction.
  Returns [2 + num_samples (2 if not stochastic), N, H, W, C].
  """
  mu, logvar = models.encode(model, params, x, y)
  rows = [np.asarray(x), np.asarray(models.decode_mean(model, params, mu, y))]
  if stochastic:
    for key_i in jax.random.split(key, num_samples):
      z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key_i, mu.shape)
      rows.append(np.asarray(models.decode_mean(model, params, z, y)))
  return np.stack(rows)


def conditional_grid(model: models.VAE, params, key: jax.Array, cols: int) -> np.ndarray:
  """CVAE: row k decodes the same `cols` prior draws with label k; [K, cols, H, W, C]."""
  num_classes = model.num_classes
  z = jax.random.normal(key, (cols, model.latent_dim))
  z_all = jnp.tile(z, (num_classes, 1))
  y_all = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), cols)
  x = models.decode_mean(model, params, z_all, y_all)
  return np.asarray(x).reshape(num_classes, cols, *x.shape[1:])


# --- Latent traversals and interpolations ------------------------------------

def traversal_offsets(num_steps: int = 11, span: float = 3.0) -> np.ndarray:
  """The [num_steps] offsets s ∈ linspace(−span, span) in prior standard deviations."""
  return np.linspace(-span, span, num_steps, dtype=np.float32)


def _dims(order: Optional[Sequence[int]], latent_dim: int) -> np.ndarray:
  """The latent dims to show, int [R]; `order` checked against latent_dim."""
  dims = np.arange(latent_dim) if order is None else np.asarray(order, np.int32)
  if dims.ndim != 1 or dims.size == 0 or np.any(dims < 0) or np.any(dims >= latent_dim):
    raise ValueError(f'order must list dims in [0, {latent_dim}), got {order!r}')
  return dims


def dim_labels(dims: Sequence[int], kl_per_dim: Optional[np.ndarray] = None) -> list[str]:
  """Labels "z3", or "z3 (KL 2.1)" given kl_per_dim [latent_dim] in nats."""
  if kl_per_dim is None:
    return [f'z{d}' for d in dims]
  kl = np.asarray(kl_per_dim, np.float64)
  return [f'z{d} (KL {kl_text(kl[d])})' for d in dims]


def kl_text(nats: float) -> str:
  """A KL in nats for a label: one decimal, or one significant digit below 0.1 (a
  latent that carries little never reads 0.0 unless it carries none)."""
  return f'{nats:.1f}' if nats >= 0.095 or nats <= 0.0 else f'{nats:.1g}'



def _swept(model: models.VAE, params, x: jax.Array, y: jax.Array, dims: Sequence[int],
           offsets: np.ndarray) -> np.ndarray:
  """Decoded [R, S, H, W, C]: dim dims[r] of mu(x) moved by offsets[s], the rest at mu."""
  latent_dim = model.latent_dim
  y = jnp.asarray(y, jnp.int32)
  mu = models.encode(model, params, x[None], y[None])[0][0]  # [D]
  one_hot = jax.nn.one_hot(jnp.asarray(dims), latent_dim, dtype=mu.dtype)  # [R, D]
  s = jnp.asarray(offsets, mu.dtype)  # [S]
  z = mu[None, None, :] + one_hot[:, None, :] * s[None, :, None]  # [R, S, D]
  rows, cols = z.shape[:2]
  labels = jnp.full((rows * cols,), y, jnp.int32)
  decoded = models.decode_mean(model, params, z.reshape(-1, latent_dim), labels)
  return np.asarray(decoded).reshape(rows, cols, *decoded.shape[1:])


def traversals(model: models.VAE, params, x: jax.Array, y: jax.Array, *,
               num_steps: int = 11, span: float = 3.0,
               order: Optional[Sequence[int]] = None,
               kl_per_dim: Optional[np.ndarray] = None) -> tuple[np.ndarray, list[str]]:
  """Latent traversals of ONE input x [H, W, C] (label y: int scalar).

  Row i sweeps dimension d = order[i] (default: every latent dim; a subset
  such as the top dims by KL is fine): z = mu with z_d = mu_d + s·σ_prior
  (σ_prior = 1) for s in `traversal_offsets(num_steps, span)`, decoded to
  E[x|z]. Returns (grid [len(order), num_steps, H, W, C], row labels "z3"
  or, given kl_per_dim [latent_dim] in nats, "z3 (KL 2.1)").
  """
  dims = _dims(order, model.latent_dim)
  grid = _swept(model, params, x, y, dims, traversal_offsets(num_steps, span))
  return grid, dim_labels(dims, kl_per_dim)


def interpolations(model: models.VAE, params, x_pairs: jax.Array,
                   y_pairs: Optional[jax.Array] = None, num_steps: int = 10) -> np.ndarray:
  """Decoded straight lines between posterior means of input pairs.

  x_pairs [P, 2, H, W, C], y_pairs [P, 2] int (None: label 0). Row p decodes
  (1 − t)·mu_a + t·mu_b for t in linspace(0, 1, num_steps), so the first and
  last columns are the decoded posterior means of the endpoints. A CVAE
  encodes each input with its own label and decodes the whole row with the
  first input's label. Returns [P, num_steps, H, W, C].
  """
  num_pairs = x_pairs.shape[0]
  if y_pairs is None:
    y_pairs = jnp.zeros((num_pairs, 2), jnp.int32)
  y_pairs = jnp.asarray(y_pairs, jnp.int32)
  mu, _ = models.encode(model, params, x_pairs.reshape(-1, *x_pairs.shape[2:]),
                        y_pairs.reshape(-1))
  mu = mu.reshape(num_pairs, 2, -1)  # [P, 2, D]
  t = jnp.linspace(0.0, 1.0, num_steps, dtype=mu.dtype)[None, :, None]  # [1, T, 1]
  z = (1.0 - t) * mu[:, 0:1, :] + t * mu[:, 1:2, :]  # [P, T, D]
  labels = jnp.repeat(y_pairs[:, 0], num_steps)
  decoded = models.decode_mean(model, params, z.reshape(num_pairs * num_steps, -1), labels)
  return np.asarray(decoded).reshape(num_pairs, num_steps, *decoded.shape[1:])


def interpolation_grid(model: models.VAE, params, x_pairs: jax.Array,
                       y_pairs: Optional[jax.Array] = None,
                       num_steps: int = 10) -> tuple[np.ndarray, list[str]]:
  """The real inputs around their decoded interpolation.

  Row p: the input x_a = x_pairs[p, 0], the `interpolations` row (decoded
  (1 − t)·mu_a + t·mu_b for t in linspace(0, 1, num_steps)), the input
  x_b = x_pairs[p, 1]. Returns (grid [P, num_steps + 2, H, W, C], column
  labels 'x_a', t, ..., 'x_b').
  """
  path = interpolations(model, params, x_pairs, y_pairs, num_steps)
  x_pairs = np.asarray(x_pairs, path.dtype)
  grid = np.concatenate([x_pairs[:, :1], path, x_pairs[:, 1:]], axis=1)
  t = np.linspace(0.0, 1.0, num_steps)
  return grid, ['x_a'] + [f'{v:.2g}' for v in t] + ['x_b']


# --- Animated traversals -----------------------------------------------------

def gif_offsets(num_frames: int = 24, span: float = 3.0) -> np.ndarray:
  """Ping-pong offsets [num_frames]: −span → +span → back, at constant speed.

  Frame t has s_t = span·(1 − 4·|t/num_frames − 1/2|), so s_0 = −span, the
  middle frame (even num_frames) is +span, s_t = s_{num_frames−t}, and the
  step from the last frame back to the first equals every other step.
  """
  if num_frames < 2:
    raise ValueError(f'num_frames must be at least 2, got {num_frames}')
  phase = np.arange(num_frames, dtype=np.float64) / num_frames
  return (span * (1.0 - 4.0 * np.abs(phase - 0.5))).astype(np.float32)


def gif_cells(model: models.VAE, params, x: jax.Array, y: jax.Array, dims: Sequence[int],
              offsets: np.ndarray) -> np.ndarray:
  """Decoded cells [T, R, H, W, C]: frame t, dim dims[r] at mu + offsets[t].

  mu is the posterior mean of the one input x [H, W, C] (label y); the other
  dims stay at mu. Same decoding as `traversals`.
  """
  return _swept(model, params, x, y, dims, offsets).swapaxes(0, 1)


def traversal_gif(model: models.VAE, params, x: jax.Array, y: jax.Array, path: str, *,
                  order: Optional[Sequence[int]] = None,
                  kl_per_dim: Optional[np.ndarray] = None, num_frames: int = 24,
                  span: float = 3.0, frame_ms: int = 80,
                  cols: Optional[int] = None) -> str:
  """Writes an animated, looping GIF of latent traversals of ONE input; returns path.

  One cell per dim d in `order` (default every latent dim; e.g. dims sorted
  by decreasing KL), labelled "z3" or "z3 (KL 2.1)" given kl_per_dim; each
  frame is captioned with its offset in prior σ ("offset +1.5σ"). Frame t
  decodes z = mu with z_d = mu_d + s_t for s_t = `gif_offsets(num_frames,
  span)` (−span → +span → −span), so every cell moves at once. Cells are laid
  out `cols` to a row (default: a near-square grid, ceil(sqrt(#dims));
  cols=len(order) gives a single row); frames are `figures.labelled_cells`
  pictures.
  """
  dims = _dims(order, model.latent_dim)
  cols = math.ceil(math.sqrt(len(dims))) if cols is None else cols
  if cols < 1:
    raise ValueError(f'cols must be positive, got {cols}')
  offsets = gif_offsets(num_frames, span)
  cells = gif_cells(model, params, x, y, dims, offsets)
  labels = dim_labels(dims, kl_per_dim)
  frames = figures.captioned([figures.labelled_cells(c, labels, cols) for c in cells],
                             [f'offset {s:+.1f}σ' for s in offsets])
  return figures.write_gif(path, frames, frame_ms)


# --- Ground truth of a procedural dataset (vae_jax.data.procedural) -----------

_DSPRITES = procedural.get('dsprites')
TRAVERSED_FACTORS: tuple[str, ...] = tuple(_DSPRITES.factor_names[i]
                                           for i in _DSPRITES.varying)  # dSprites'
# A heart (the only shape without rotational symmetry, so every orientation
# class looks different), scale 1.0, orientation 0, at the centre.
DEFAULT_BASE_FACTORS: tuple[int, ...] = _DSPRITES.traversal_base


def factor_classes(name: str, num_steps: int, dataset: str = 'dsprites') -> np.ndarray:
  """num_steps evenly spaced classes int [num_steps] over factor `name`'s range."""
  p = procedural.get(dataset)
  size = p.factor_sizes[p.factor_names.index(name)]
  return np.linspace(0, size - 1, num_steps).round().astype(np.int32)


def factor_traversal_factors(num_steps: int = 10,
                             base_factors: Optional[Sequence[int]] = None,
                             dataset: str = 'dsprites') -> np.ndarray:
  """Factor classes int [V, num_steps, F]: row i varies the i-th factor with more
  than one class alone (dSprites: TRAVERSED_FACTORS)."""
  p = procedural.get(dataset)
  base = np.asarray(p.traversal_base if base_factors is None else base_factors, np.int32)
  sizes = np.asarray(p.factor_sizes)
  if base.shape != sizes.shape or np.any(base < 0) or np.any(base >= sizes):
    raise ValueError(f'base_factors must be {len(sizes)} classes below {tuple(sizes)}, '
                     f'got {base_factors!r}')
  if num_steps < 1:
    raise ValueError(f'num_steps must be positive, got {num_steps}')
  factors = np.tile(base, (len(p.varying), num_steps, 1))
  for row, index in enumerate(p.varying):
    factors[row, :, index] = factor_classes(p.factor_names[index], num_steps, dataset)
  return factors


def factor_traversal_grid(num_steps: int = 10, base_factors: Optional[Sequence[int]] = None,
                          dataset: str = 'dsprites') -> tuple[np.ndarray, list[str]]:
  """Ground-truth traversals: (grid [V, num_steps, H, W, C], row labels).

  Row i renders the example of `base_factors` (classes in the dataset's
  factor order; default its `traversal_base`) with its i-th factor of more
  than one class set to `factor_classes(name, num_steps)` (dSprites' shape
  has 3 classes, so it repeats). Pixels are in [0, 1] (dSprites: {0, 1};
  noise as at evaluation); row labels are the factor names.
  """
  p = procedural.get(dataset)
  factors = factor_traversal_factors(num_steps, base_factors, dataset)
  images = procedural.factor_images(p, jnp.asarray(factors.reshape(-1, factors.shape[-1])))
  grid = np.asarray(images, np.float32).reshape(*factors.shape[:2], *images.shape[1:])
  return grid, [p.factor_names[i] for i in p.varying]


def factor_traversal_picture(num_steps: int = 10, dataset: str = 'dsprites') -> np.ndarray:
  """`factor_traversal_grid` as a labelled uint8 [H, W, 3] picture."""
  grid, labels = factor_traversal_grid(num_steps, dataset=dataset)
  return figures.labelled_grid(grid, row_labels=labels,
                               title=f'{procedural.get(dataset).title} ground-truth factors')
