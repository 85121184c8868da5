"""Arrays into pictures and files: image grids, text labels, PNGs and GIFs.

A picture is a grid of images (float [rows, cols, H, W, C] in [0, 1]) made
into one uint8 [H', W', 3] array (`grid_image`, or `labelled_grid` with a
title and row/column labels); small images are enlarged (nearest neighbour)
to be readable. `save_png` writes one picture, `labelled_cells` lays out
single labelled cells as one GIF frame and `write_gif` writes frames as a
looping GIF. No model here: `vae_jax.pictures` makes the grids, and
`vae_jax.plots` draws the matplotlib figures.
"""

import functools
import math
import os
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vae_jax.run import files

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
  """Writes uint8 [H, W, 3] `picture` to `<directory>/<kind>_<step>.png`; returns its path."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, f'{kind}_{step}.png')
  with files.atomic(path) as tmp:
    Image.fromarray(picture).save(tmp, format='PNG')
  return path


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


# --- GIF frames ----------------------------------------------------------------

TILE_GAP = 4  # white pixels between the labelled cells of a GIF frame
MARGIN_VALUE = 255  # the white of labelled_grid's margins, in every channel


def _fit_width(tile: np.ndarray, width: int) -> np.ndarray:
  """Centres a uint8 [H, w, 3] tile on a white [H, width, 3] strip."""
  left = (width - tile.shape[1]) // 2
  out = np.full((tile.shape[0], width, 3), MARGIN_VALUE, np.uint8)
  out[:, left:left + tile.shape[1]] = tile
  return out


def labelled_cells(cells: np.ndarray, labels: Sequence[str], cols: int) -> np.ndarray:
  """Cells [R, H, W, C] → uint8 picture: a grid of `cols` labelled tiles a row.

  Each tile is `labelled_grid` of one cell titled by its label (so a label
  wider than the cell widens its tile); tiles are centred in columns of the
  widest tile's width, TILE_GAP white pixels apart, row-major, white where
  the last row is short.
  """
  if len(labels) != cells.shape[0]:
    raise ValueError(f'{len(labels)} labels for {cells.shape[0]} cells')
  tiles = [labelled_grid(cell[None, None], title=label) for cell, label in zip(cells, labels)]
  tile_h, tile_w = tiles[0].shape[0], max(t.shape[1] for t in tiles)
  cols = min(cols, len(tiles))
  rows = -(-len(tiles) // cols)
  canvas = np.full((rows * tile_h + (rows - 1) * TILE_GAP,
                    cols * tile_w + (cols - 1) * TILE_GAP, 3), MARGIN_VALUE, np.uint8)
  for i, tile in enumerate(tiles):
    top, left = (i // cols) * (tile_h + TILE_GAP), (i % cols) * (tile_w + TILE_GAP)
    canvas[top:top + tile_h, left:left + tile_w] = _fit_width(tile, tile_w)
  return canvas


def captioned(pictures: Sequence[np.ndarray], captions: Sequence[str]) -> list[np.ndarray]:
  """Each uint8 [H, W, 3] picture below a strip with its caption, all of one size
  (the widest picture or caption; pictures centred): the frames of an animation."""
  if len(captions) != len(pictures):
    raise ValueError(f'{len(captions)} captions for {len(pictures)} pictures')
  height = max(p.shape[0] for p in pictures)
  width = max([p.shape[1] for p in pictures] +
              [text_width(c) + 2 * TEXT_PAD for c in captions])
  frames = []
  for picture, caption in zip(pictures, captions):
    canvas = Image.new('RGB', (width, LINE_HEIGHT + height), MARGIN_COLOUR)
    canvas.paste(Image.fromarray(picture), ((width - picture.shape[1]) // 2, LINE_HEIGHT))
    _draw_centred(ImageDraw.Draw(canvas), caption, (0, 0, width, LINE_HEIGHT))
    frames.append(np.asarray(canvas, np.uint8))
  return frames


def palette_frames(pictures: Sequence[np.ndarray]) -> list[Image.Image]:
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


def write_gif(path: str, pictures: Sequence[np.ndarray], frame_ms: int = 80) -> str:
  """Writes uint8 [H, W, 3] `pictures` as a looping GIF, frame_ms a frame; returns path.

  Pillow merges consecutive identical frames (equal pictures give a one-frame GIF).
  """
  frames = palette_frames(pictures)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with files.atomic(path) as tmp:
    frames[0].save(tmp, format='GIF', save_all=True, append_images=frames[1:],
                   duration=frame_ms, loop=0)
  return path
