"""Pictures of a model: prior samples, reconstructions, class-conditional grids,
latent traversals and interpolations, latent scatters and rate–distortion plots.

Each picture is a grid of images (float [rows, cols, H, W, C] in [0, 1]) made
into one uint8 HWC array (`grid_image`, or `labelled_grid` with a title and
row/column labels), written as `images/<kind>_<step>.png` and sent to
TensorBoard. Small images are enlarged (nearest neighbour) to be readable.
Figures (`latent_scatter`, `rate_distortion_plot`) are drawn with matplotlib's
Agg canvas, off-screen, into uint8 [500, 500, 3] arrays. Every function is
pure: inputs in, array out; the caller saves it.
"""

import functools
import math
import os
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vae_jax import likelihoods, models

MIN_CELL_PIXELS = 56  # small images are enlarged to at least this many pixels a side


def cell_scale(height: int, width: int) -> int:
  """The integer enlargement that makes an H×W image at least MIN_CELL_PIXELS a side."""
  return max(1, -(-MIN_CELL_PIXELS // max(height, width)))


def grid_image(images: np.ndarray, pad: int = 2) -> np.ndarray:
  """[rows, cols, H, W, C] floats in [0, 1] → one uint8 [H', W', 3] picture."""
  rows, cols, height, width, channels = images.shape
  scale = cell_scale(height, width)
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


@functools.partial(jax.jit, static_argnames=('model', 'likelihood'))
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
  mu, logvar = encode_moments(model, params, x, y)
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


# --- Labelled pictures -------------------------------------------------------

FONT_SIZE = 14  # pixels; PIL's bundled font (FreeType when available)
TEXT_PAD = 4  # pixels around a line of text in a margin
LINE_HEIGHT = FONT_SIZE + 2 * TEXT_PAD  # height of the title and column-label strips
MARGIN_COLOUR = (255, 255, 255)
TEXT_COLOUR = (0, 0, 0)


@functools.cache
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
  """PIL's bundled font at FONT_SIZE, or its bitmap font without FreeType."""
  try:
    return ImageFont.load_default(size=FONT_SIZE)
  except (ImportError, OSError):
    return ImageFont.load_default()


def text_width(text: str) -> int:
  """Pixel width of `text` in the label font."""
  return int(math.ceil(_font().getlength(text)))


def _draw_centred(draw: ImageDraw.ImageDraw, text: str, box: tuple) -> None:
  """Draws `text` centred in box = (left, top, right, bottom)."""
  left, top, right, bottom = draw.textbbox((0, 0), text, font=_font())
  x = (box[0] + box[2] - (right - left)) // 2 - left
  y = (box[1] + box[3] - (bottom - top)) // 2 - top
  draw.text((x, y), text, fill=TEXT_COLOUR, font=_font())


def _check_labels(labels: Optional[Sequence[str]], count: int, what: str) -> None:
  if labels is not None and len(labels) != count:
    raise ValueError(f'{len(labels)} {what} labels for {count} {what}s')


def labelled_grid(images: np.ndarray, row_labels: Optional[Sequence[str]] = None,
                  col_labels: Optional[Sequence[str]] = None,
                  title: Optional[str] = None, pad: int = 2) -> np.ndarray:
  """[rows, cols, H, W, C] floats in [0, 1] → uint8 [H', W', 3] with text margins.

  The `grid_image` picture below a title strip (if `title`) and a strip of
  column labels (if `col_labels`), right of a column of row labels (if
  `row_labels`); black text on white. Without any text it equals `grid_image`.
  The canvas widens (grid centred) when the title is wider than the grid.
  """
  rows, cols, height, width = images.shape[:4]
  _check_labels(row_labels, rows, 'row')
  _check_labels(col_labels, cols, 'column')
  body = grid_image(images, pad)
  title_h = LINE_HEIGHT if title else 0
  col_h = LINE_HEIGHT if col_labels is not None else 0
  left = 0
  if row_labels is not None:
    left = max(text_width(label) for label in row_labels) + 2 * TEXT_PAD
  total_w = max(left + body.shape[1], text_width(title) + 2 * TEXT_PAD if title else 0)
  shift = left + (total_w - left - body.shape[1]) // 2  # x of the grid's left edge
  top = title_h + col_h
  canvas = Image.new('RGB', (total_w, top + body.shape[0]), MARGIN_COLOUR)
  canvas.paste(Image.fromarray(body), (shift, top))
  draw = ImageDraw.Draw(canvas)
  if title:
    _draw_centred(draw, title, (0, 0, total_w, title_h))
  scale = cell_scale(height, width)
  cell_h, cell_w = height * scale + pad, width * scale + pad
  for c, label in enumerate(col_labels or ()):
    x = shift + pad + c * cell_w
    _draw_centred(draw, label, (x, title_h, x + cell_w - pad, top))
  for r, label in enumerate(row_labels or ()):
    y = top + pad + r * cell_h
    box = draw.textbbox((0, 0), label, font=_font())
    y_text = y + (cell_h - pad - (box[3] - box[1])) // 2 - box[1]
    draw.text((left - TEXT_PAD - text_width(label), y_text), label, fill=TEXT_COLOUR,
              font=_font())
  return np.asarray(canvas, np.uint8)


# --- Latent traversals and interpolations ------------------------------------

@functools.partial(jax.jit, static_argnames='model')
def encode_moments(model: models.VAE, params, x: jax.Array, y: jax.Array):
  """(mu, logvar), each [N, D], of inputs x [N, H, W, C] with labels y [N]."""
  encode = lambda x_, y_: model.apply(params, x_, y_, method=models.VAE.encode)
  return jax.vmap(encode)(x, y)


def encode_means(model: models.VAE, params, x: jax.Array, y: jax.Array) -> jax.Array:
  """Posterior means mu [N, D] of inputs x [N, H, W, C] with labels y [N]."""
  return encode_moments(model, params, x, y)[0]


def traversal_offsets(num_steps: int = 11, span: float = 3.0) -> np.ndarray:
  """The [num_steps] offsets s ∈ linspace(−span, span) in prior standard deviations."""
  return np.linspace(-span, span, num_steps, dtype=np.float32)


def traversals(model: models.VAE, params, likelihood: str, x: jax.Array, y: jax.Array,
               latent_dim: int, *, num_steps: int = 11, span: float = 3.0,
               order: Optional[Sequence[int]] = None,
               kl_per_dim: Optional[np.ndarray] = None) -> tuple[np.ndarray, list[str]]:
  """Latent traversals of ONE input x [H, W, C] (label y: int scalar).

  Row i sweeps dimension d = order[i] (default: 0..latent_dim−1; a subset
  such as the top dims by KL is fine): z = mu with z_d = mu_d + s·σ_prior
  (σ_prior = 1) for s in `traversal_offsets(num_steps, span)`, decoded to
  E[x|z]. Returns (grid [len(order), num_steps, H, W, C], row labels "z3"
  or, given kl_per_dim [latent_dim] in nats, "z3 (KL 2.1)").
  """
  dims = np.arange(latent_dim) if order is None else np.asarray(order, np.int32)
  if dims.ndim != 1 or np.any(dims < 0) or np.any(dims >= latent_dim):
    raise ValueError(f'order must list dims in [0, {latent_dim}), got {order!r}')
  y = jnp.asarray(y, jnp.int32)
  mu = encode_means(model, params, x[None], y[None])[0]  # [D]
  offsets = jnp.asarray(traversal_offsets(num_steps, span))  # [S]
  one_hot = jax.nn.one_hot(jnp.asarray(dims), latent_dim, dtype=mu.dtype)  # [R, D]
  z = mu[None, None, :] + one_hot[:, None, :] * offsets[None, :, None]  # [R, S, D]
  rows = len(dims)
  labels = jnp.full((rows * num_steps,), y, jnp.int32)
  decoded = decode_means(model, params, likelihood, z.reshape(-1, latent_dim), labels)
  grid = np.asarray(decoded).reshape(rows, num_steps, *decoded.shape[1:])
  if kl_per_dim is None:
    row_labels = [f'z{d}' for d in dims]
  else:
    kl = np.asarray(kl_per_dim, np.float64)
    row_labels = [f'z{d} (KL {kl[d]:.1f})' for d in dims]
  return grid, row_labels


def interpolations(model: models.VAE, params, likelihood: str, x_pairs: jax.Array,
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
  mu = encode_means(model, params, x_pairs.reshape(-1, *x_pairs.shape[2:]),
                     y_pairs.reshape(-1)).reshape(num_pairs, 2, -1)  # [P, 2, D]
  t = jnp.linspace(0.0, 1.0, num_steps, dtype=mu.dtype)[None, :, None]  # [1, T, 1]
  z = (1.0 - t) * mu[:, 0:1, :] + t * mu[:, 1:2, :]  # [P, T, D]
  labels = jnp.repeat(y_pairs[:, 0], num_steps)
  decoded = decode_means(model, params, likelihood, z.reshape(num_pairs * num_steps, -1),
                         labels)
  return np.asarray(decoded).reshape(num_pairs, num_steps, *decoded.shape[1:])


# --- Matplotlib figures (rendered off-screen with Agg) -----------------------

FIGURE_INCHES = 5.0
FIGURE_DPI = 100  # figures are FIGURE_INCHES·FIGURE_DPI = 500 pixels a side
MAX_LEGEND_CLASSES = 20  # more distinct (or non-integer) labels get a colorbar


def _new_figure() -> tuple[Figure, Axes]:
  """A 5×5 in, 100 dpi figure on its own Agg canvas (no pyplot state)."""
  fig = Figure(figsize=(FIGURE_INCHES, FIGURE_INCHES), dpi=FIGURE_DPI, layout='constrained')
  FigureCanvasAgg(fig)
  return fig, fig.add_subplot()


def _render(fig: Figure) -> np.ndarray:
  """The figure's pixels, uint8 [H, W, 3]."""
  fig.canvas.draw()
  picture = np.array(np.asarray(fig.canvas.buffer_rgba())[..., :3], np.uint8)
  fig.clear()
  return picture


def latent_scatter(mu: np.ndarray, labels: np.ndarray,
                   class_names: Optional[Sequence[str]] = None, title: str = '',
                   dims: tuple[int, int] = (0, 1)) -> np.ndarray:
  """Scatter of posterior means mu [N, D] (dims `dims`, default z0/z1) by label [N].

  Few integer labels (≤ MAX_LEGEND_CLASSES) get one colour each and a legend
  (named by class_names[label] when given); other labels (e.g. a continuous
  factor) get a colormap and colorbar. Returns uint8 [500, 500, 3].
  """
  mu, labels = np.asarray(mu), np.asarray(labels)
  if mu.ndim != 2 or max(dims) >= mu.shape[1]:
    raise ValueError(f'mu must be [N, D] with D > {max(dims)}, got shape {mu.shape}')
  if labels.shape != mu.shape[:1]:
    raise ValueError(f'labels must be [{mu.shape[0]}], got shape {labels.shape}')
  fig, ax = _new_figure()
  a, b = mu[:, dims[0]], mu[:, dims[1]]
  classes = np.unique(labels)
  if np.issubdtype(labels.dtype, np.integer) and len(classes) <= MAX_LEGEND_CLASSES:
    cmap = matplotlib.colormaps['tab10' if len(classes) <= 10 else 'tab20']
    for i, k in enumerate(classes):
      name = class_names[k] if class_names is not None else str(k)
      keep = labels == k
      ax.scatter(a[keep], b[keep], s=6, alpha=0.7, color=cmap(i), label=name,
                 linewidths=0)
    ax.legend(fontsize='small', markerscale=2.5, loc='best', framealpha=0.8)
  else:
    points = ax.scatter(a, b, c=labels, s=6, alpha=0.7, cmap='viridis', linewidths=0)
    fig.colorbar(points, ax=ax, shrink=0.8)
  ax.set_xlabel(f'z{dims[0]}')
  ax.set_ylabel(f'z{dims[1]}')
  ax.set_title(title)
  ax.grid(True, alpha=0.3)
  return _render(fig)


def rate_distortion_plot(points: list[dict], title: str = '') -> np.ndarray:
  """Rate (KL, x) vs distortion (−E log p(x|z), y), both in nats; uint8 [500, 500, 3].

  Each point is a dict with 'kl', 'recon' and 'label' (annotated next to it);
  points sharing an optional 'group' are joined by a line, coloured alike and
  named in a legend. The dashed diagonal is the best −ELBO = kl + recon.
  """
  if not points:
    raise ValueError('rate_distortion_plot needs at least one point')
  fig, ax = _new_figure()
  groups = {}
  for point in points:
    groups.setdefault(point.get('group'), []).append(point)
  cmap = matplotlib.colormaps['tab10']
  for i, (group, members) in enumerate(groups.items()):
    members = sorted(members, key=lambda p: float(p['kl']))
    kl = [float(p['kl']) for p in members]
    recon = [float(p['recon']) for p in members]
    style = '-o' if group is not None and len(members) > 1 else 'o'
    ax.plot(kl, recon, style, color=cmap(i % 10), markersize=6,
            label=None if group is None else str(group))
    for p, x, y in zip(members, kl, recon):
      ax.annotate(str(p['label']), (x, y), textcoords='offset points', xytext=(5, 5),
                  fontsize='small')
  best = min(points, key=lambda p: float(p['kl']) + float(p['recon']))
  best_nelbo = float(best['kl']) + float(best['recon'])
  ax.axline((float(best['kl']), float(best['recon'])), slope=-1.0, color='grey',
            linestyle='--', linewidth=1, label=f'-ELBO = {best_nelbo:.1f}')
  ax.margins(0.15)
  ax.legend(fontsize='small', loc='best')
  ax.set_xlabel('rate: KL(q(z|x) || p(z)) [nats]')
  ax.set_ylabel('distortion: -E log p(x|z) [nats]')
  ax.set_title(title)
  ax.grid(True, alpha=0.3)
  return _render(fig)
