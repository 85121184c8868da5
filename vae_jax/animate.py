"""Animated latent traversals (GIF) and the dSprites ground-truth factor grid.

`traversal_gif` writes an animated GIF in which every latent dimension of one
input sweeps around its posterior mean at the same time, one labelled cell per
dimension ("z3 (KL 2.1)"), so the dims a model uses (and what each one does)
can be seen at a glance. `factor_traversal_grid` is the matching picture of
the truth for procedural dSprites: one row per generative factor, varying that
factor alone. Both are pure apart from the GIF file itself.
"""

import math
import os
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from vae_jax import models, visualize
from vae_jax.data import dsprites

TILE_GAP = 4  # white pixels between the labelled cells of a GIF frame
MARGIN_VALUE = 255  # the white of labelled_grid's margins, in every channel


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
  return [f'z{d} (KL {kl[d]:.1f})' for d in dims]


def gif_cells(model: models.VAE, params, likelihood: str, x: jax.Array, y: jax.Array,
              latent_dim: int, dims: Sequence[int], offsets: np.ndarray) -> np.ndarray:
  """Decoded cells [T, R, H, W, C]: frame t, dim dims[r] at mu + offsets[t].

  mu is the posterior mean of the one input x [H, W, C] (label y); the other
  dims stay at mu. Same decoding as `visualize.traversals`.
  """
  y = jnp.asarray(y, jnp.int32)
  mu = visualize.encode_means(model, params, x[None], y[None])[0]  # [D]
  one_hot = jax.nn.one_hot(jnp.asarray(dims), latent_dim, dtype=mu.dtype)  # [R, D]
  s = jnp.asarray(offsets, mu.dtype)  # [T]
  z = mu[None, None, :] + s[:, None, None] * one_hot[None, :, :]  # [T, R, D]
  frames, rows = z.shape[:2]
  labels = jnp.full((frames * rows,), y, jnp.int32)
  decoded = visualize.decode_means(model, params, likelihood, z.reshape(-1, latent_dim),
                                   labels)
  return np.asarray(decoded).reshape(frames, rows, *decoded.shape[1:])


def _fit_width(tile: np.ndarray, width: int) -> np.ndarray:
  """Centres a uint8 [H, w, 3] tile on a white [H, width, 3] strip."""
  left = (width - tile.shape[1]) // 2
  out = np.full((tile.shape[0], width, 3), MARGIN_VALUE, np.uint8)
  out[:, left:left + tile.shape[1]] = tile
  return out


def labelled_cells(cells: np.ndarray, labels: Sequence[str], cols: int) -> np.ndarray:
  """Cells [R, H, W, C] → uint8 picture: a grid of `cols` labelled tiles a row.

  Each tile is `visualize.labelled_grid` of one cell titled by its label (so a
  label wider than the cell widens its tile); tiles are centred in columns of
  the widest tile's width, TILE_GAP white pixels apart, row-major, white where
  the last row is short.
  """
  if len(labels) != cells.shape[0]:
    raise ValueError(f'{len(labels)} labels for {cells.shape[0]} cells')
  tiles = [visualize.labelled_grid(cell[None, None], title=label)
           for cell, label in zip(cells, labels)]
  tile_h, tile_w = tiles[0].shape[0], max(t.shape[1] for t in tiles)
  cols = min(cols, len(tiles))
  rows = -(-len(tiles) // cols)
  canvas = np.full((rows * tile_h + (rows - 1) * TILE_GAP,
                    cols * tile_w + (cols - 1) * TILE_GAP, 3), MARGIN_VALUE, np.uint8)
  for i, tile in enumerate(tiles):
    top, left = (i // cols) * (tile_h + TILE_GAP), (i % cols) * (tile_w + TILE_GAP)
    canvas[top:top + tile_h, left:left + tile_w] = _fit_width(tile, tile_w)
  return canvas


def _palette_frames(pictures: Sequence[np.ndarray]) -> list[Image.Image]:
  """uint8 [H, W, 3] pictures → GIF-ready images sharing one palette.

  All-grey pictures (single-channel data on labelled_grid's margins) become
  'L' images, which a GIF stores exactly; colour ones are quantised together
  (one adaptive 256-colour palette for the whole animation, no dithering).
  """
  stack = np.stack(pictures)  # [T, H, W, 3]
  if np.array_equal(stack[..., 0], stack[..., 1]) and np.array_equal(stack[..., 0],
                                                                      stack[..., 2]):
    return [Image.fromarray(p[..., 0], mode='L') for p in stack]
  palette = Image.fromarray(stack.reshape(-1, *stack.shape[2:])).quantize(
      256, dither=Image.Dither.NONE)
  return [Image.fromarray(p).quantize(palette=palette, dither=Image.Dither.NONE)
          for p in stack]


def traversal_gif(model: models.VAE, params, likelihood: str, x: jax.Array, y: jax.Array,
                  latent_dim: int, path: str, *, order: Optional[Sequence[int]] = None,
                  kl_per_dim: Optional[np.ndarray] = None, num_frames: int = 24,
                  span: float = 3.0, frame_ms: int = 80,
                  cols: Optional[int] = None) -> str:
  """Writes an animated, looping GIF of latent traversals of ONE input; returns path.

  One cell per dim d in `order` (default 0..latent_dim−1; e.g. dims sorted by
  decreasing KL), labelled "z3" or "z3 (KL 2.1)" given kl_per_dim. Frame t
  decodes z = mu with z_d = mu_d + s_t for s_t = `gif_offsets(num_frames,
  span)` (−span → +span → −span), so every cell moves at once. Cells are laid
  out `cols` to a row (default: a near-square grid, ceil(sqrt(#dims));
  cols=len(order) gives a single row); frames are `labelled_cells` pictures.
  Pillow merges consecutive identical frames (a decoder that ignores every
  shown dim gives a one-frame GIF).
  """
  dims = _dims(order, latent_dim)
  cols = math.ceil(math.sqrt(len(dims))) if cols is None else cols
  if cols < 1:
    raise ValueError(f'cols must be positive, got {cols}')
  cells = gif_cells(model, params, likelihood, x, y, latent_dim, dims,
                    gif_offsets(num_frames, span))
  labels = dim_labels(dims, kl_per_dim)
  frames = _palette_frames([labelled_cells(c, labels, cols) for c in cells])
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  frames[0].save(path, format='GIF', save_all=True, append_images=frames[1:],
                 duration=frame_ms, loop=0)
  return path


# --- dSprites ground truth ---------------------------------------------------

TRAVERSED_FACTORS: tuple[str, ...] = ('shape', 'scale', 'orientation', 'pos_x', 'pos_y')
# A heart (the only shape without rotational symmetry, so every orientation
# class looks different), scale 1.0, orientation 0, at the centre.
DEFAULT_BASE_FACTORS: tuple[int, ...] = (0, 2, 5, 0, 16, 16)


_render_batch = jax.jit(jax.vmap(dsprites.render))  # factor classes [B, 6] → [B, 64, 64, 1]


def factor_classes(name: str, num_steps: int) -> np.ndarray:
  """num_steps evenly spaced classes int [num_steps] over factor `name`'s range."""
  size = dsprites.FACTOR_SIZES[dsprites.FACTOR_NAMES.index(name)]
  return np.linspace(0, size - 1, num_steps).round().astype(np.int32)


def factor_traversal_factors(num_steps: int = 10,
                             base_factors: Optional[Sequence[int]] = None) -> np.ndarray:
  """Factor classes int [5, num_steps, 6]: row i varies TRAVERSED_FACTORS[i] alone."""
  base = np.asarray(DEFAULT_BASE_FACTORS if base_factors is None else base_factors,
                    np.int32)
  sizes = np.asarray(dsprites.FACTOR_SIZES)
  if base.shape != sizes.shape or np.any(base < 0) or np.any(base >= sizes):
    raise ValueError(f'base_factors must be 6 classes below {tuple(sizes)}, '
                     f'got {base_factors!r}')
  if num_steps < 1:
    raise ValueError(f'num_steps must be positive, got {num_steps}')
  factors = np.tile(base, (len(TRAVERSED_FACTORS), num_steps, 1))
  for row, name in enumerate(TRAVERSED_FACTORS):
    factors[row, :, dsprites.FACTOR_NAMES.index(name)] = factor_classes(name, num_steps)
  return factors


def factor_traversal_grid(num_steps: int = 10, base_factors: Optional[Sequence[int]] = None
                          ) -> tuple[np.ndarray, list[str]]:
  """Ground-truth dSprites traversals: (grid [5, num_steps, 64, 64, 1], row labels).

  Row i renders the sprite of `base_factors` (6 classes in FACTOR_NAMES order;
  default DEFAULT_BASE_FACTORS) with factor TRAVERSED_FACTORS[i] set to
  `factor_classes(name, num_steps)` (shape has 3 classes, so it repeats).
  Pixels are floats in {0, 1}; row labels are the factor names.
  """
  factors = factor_traversal_factors(num_steps, base_factors)
  images = _render_batch(jnp.asarray(factors.reshape(-1, 6)))
  grid = np.asarray(images, np.float32).reshape(*factors.shape[:2], *images.shape[1:])
  return grid, list(TRAVERSED_FACTORS)


def factor_traversal_picture(num_steps: int = 10) -> np.ndarray:
  """`factor_traversal_grid` as a labelled uint8 [H, W, 3] picture."""
  grid, labels = factor_traversal_grid(num_steps)
  return visualize.labelled_grid(grid, row_labels=labels,
                                 title='dSprites ground-truth factors')
