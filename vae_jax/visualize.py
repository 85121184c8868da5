"""Pictures of a model: prior samples, reconstructions, class-conditional grids.

Each picture is a grid of images (float [rows, cols, H, W, C] in [0, 1]) made
into one uint8 HWC array, written as `images/<kind>_<step>.png` and sent to
TensorBoard. Small images are enlarged (nearest neighbour) to be readable.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from vae_jax import likelihoods, models

MIN_CELL_PIXELS = 56  # small images are enlarged to at least this many pixels a side


def grid_image(images: np.ndarray, pad: int = 2) -> np.ndarray:
  """[rows, cols, H, W, C] floats in [0, 1] → one uint8 [H', W', 3] picture."""
  rows, cols, height, width, channels = images.shape
  scale = max(1, -(-MIN_CELL_PIXELS // max(height, width)))
  cells = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
  if channels == 1:
    cells = np.repeat(cells, 3, axis=-1)
  cells = cells.repeat(scale, axis=2).repeat(scale, axis=3)
  cell_h, cell_w = height * scale, width * scale
  canvas = np.full((rows * (cell_h + pad) + pad, cols * (cell_w + pad) + pad, 3), 0.5,
                   np.float32)
  for r in range(rows):
    for c in range(cols):
      top, left = pad + r * (cell_h + pad), pad + c * (cell_w + pad)
      canvas[top:top + cell_h, left:left + cell_w] = cells[r, c][..., :3]
  return (canvas * 255.0 + 0.5).astype(np.uint8)


def save_png(directory: str, kind: str, step: int, picture: np.ndarray) -> str:
  """Writes `<directory>/<kind>_<step>.png` and returns its path."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, f'{kind}_{step}.png')
  Image.fromarray(picture).save(path)
  return path


def decode_means(model: models.VAE, params, likelihood: str, z: jax.Array,
                 y: jax.Array) -> jax.Array:
  """E[x|z] for a batch of latents z [N, D] and labels y [N]."""
  decode = lambda z_, y_: model.apply(params, z_, y_, method=models.VAE.decode)
  return likelihoods.mean(likelihood, jax.vmap(decode)(z, y))


def prior_samples(model, params, likelihood: str, key: jax.Array, rows: int, cols: int,
                  latent_dim: int) -> np.ndarray:
  """Decoder means of z ~ N(0, I): [rows, cols, H, W, C]."""
  z = jax.random.normal(key, (rows * cols, latent_dim))
  y = jnp.zeros((rows * cols,), jnp.int32)
  x = decode_means(model, params, likelihood, z, y)
  return np.asarray(x).reshape(rows, cols, *x.shape[1:])


def reconstructions(model, params, likelihood: str, key: jax.Array, x: jax.Array,
                    y: jax.Array, num_samples: int, stochastic: bool) -> np.ndarray:
  """Row 0: the inputs; row 1: decoded posterior means; further rows: z ~ q(z|x).

  Several posterior samples per input show the "multiple plausible outputs"
  of a VAE; a deterministic autoencoder has only the one reconstruction.
  """
  encode = lambda x_, y_: model.apply(params, x_, y_, method=models.VAE.encode)
  mu, logvar = jax.vmap(encode)(x, y)
  rows = [np.asarray(x), np.asarray(decode_means(model, params, likelihood, mu, y))]
  if stochastic:
    for key_i in jax.random.split(key, num_samples):
      z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key_i, mu.shape)
      rows.append(np.asarray(decode_means(model, params, likelihood, z, y)))
  return np.stack(rows)


def conditional_grid(model, params, likelihood: str, key: jax.Array, num_classes: int,
                     cols: int, latent_dim: int) -> np.ndarray:
  """CVAE: row k decodes the same `cols` prior draws with label k."""
  z = jax.random.normal(key, (cols, latent_dim))
  z_all = jnp.tile(z, (num_classes, 1))
  y_all = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), cols)
  x = decode_means(model, params, likelihood, z_all, y_all)
  return np.asarray(x).reshape(num_classes, cols, *x.shape[1:])
