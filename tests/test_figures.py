"""Tests for vae_jax.figures and vae_jax.plots: picture sizes, drawn text, GIF frames, figures."""

import numpy as np
from PIL import Image, ImageSequence
import pytest

from vae_jax.pictures import figures
from vae_jax.pictures import plots

IMAGE_SHAPE = (28, 28, 1)
CELL = 56  # 28-pixel images are enlarged 2× to reach MIN_CELL_PIXELS
PAD = 2


def _grid_size(rows: int, cols: int) -> tuple:
  return (rows * (CELL + PAD) + PAD, cols * (CELL + PAD) + PAD, 3)


def _images(rows: int = 2, cols: int = 3) -> np.ndarray:
  return np.random.default_rng(0).uniform(size=(rows, cols, *IMAGE_SHAPE))


def _tile_size(labels: list[str]) -> tuple[int, int]:
  """(height, width) of the widest single-cell labelled tile."""
  cell = np.zeros((1, 1, *IMAGE_SHAPE))
  tiles = [figures.labelled_grid(cell, title=label) for label in labels]
  return tiles[0].shape[0], max(t.shape[1] for t in tiles)


def _read_gif(path: str) -> tuple[Image.Image, list[np.ndarray]]:
  """The opened GIF and its frames as uint8 [H, W, 3] arrays."""
  gif = Image.open(path)
  return gif, [np.asarray(f.convert('RGB')) for f in ImageSequence.Iterator(gif)]


# --- grid_image, save_png and labelled_grid ----------------------------------

def test_grid_image_size_and_cells():
  images = _images()
  picture = figures.grid_image(images)
  assert picture.shape == _grid_size(2, 3) == (118, 176, 3)
  assert picture.dtype == np.uint8
  cell = picture[PAD:PAD + CELL, PAD + CELL + PAD:PAD + 2 * CELL + PAD, 0]  # row 0, col 1
  expected = (images[0, 1, ..., 0].repeat(2, 0).repeat(2, 1) * 255 + 0.5).astype(np.uint8)
  np.testing.assert_array_equal(cell, expected)


def test_save_png(tmp_path):
  picture = figures.grid_image(_images())
  path = figures.save_png(str(tmp_path / 'images'), 'samples', 7, picture)
  assert path == str(tmp_path / 'images' / 'samples_7.png')
  np.testing.assert_array_equal(np.asarray(Image.open(path)), picture)


def test_labelled_grid_without_text_is_grid_image():
  images = _images()
  np.testing.assert_array_equal(figures.labelled_grid(images), figures.grid_image(images))


def test_labelled_grid_margins_and_text():
  images = _images()
  rows, cols = ['z0 (KL 2.1)', 'z1 (KL 0.0)'], ['-3', '0', '+3']
  picture = figures.labelled_grid(images, rows, cols, title='traversals')
  grid = figures.grid_image(images)
  left = max(figures.text_width(r) for r in rows) + 2 * figures.TEXT_PAD
  top = 2 * figures.LINE_HEIGHT
  assert picture.dtype == np.uint8
  assert picture.shape == (grid.shape[0] + top, grid.shape[1] + left, 3)
  np.testing.assert_array_equal(picture[top:, left:], grid)
  dark = picture.min(axis=-1) < 100
  assert dark[:figures.LINE_HEIGHT].any()  # title
  for c in range(3):  # each column's label sits above that column
    x0 = left + PAD + c * (CELL + PAD)
    assert dark[figures.LINE_HEIGHT:top, x0:x0 + CELL].any()
  for r in range(2):  # each row's label sits left of that row
    y0 = top + PAD + r * (CELL + PAD)
    assert dark[y0:y0 + CELL, :left].any()
  assert not dark[top:top + PAD, :left].any()  # above the first row's label


def test_labelled_grid_margins_are_blank_without_text():
  images = _images()
  picture = figures.labelled_grid(images, ['', ''], ['', '', ''])
  top, left = figures.LINE_HEIGHT, 2 * figures.TEXT_PAD
  assert picture.shape == (118 + top, 176 + left, 3)
  assert (picture[:top] == 255).all()
  assert (picture[:, :left] == 255).all()
  with_text = figures.labelled_grid(images, ['a', 'b'], ['c', 'd', 'e'])
  assert (with_text[:top] < 255).any()


def test_labelled_grid_widens_for_a_long_title():
  images = _images(1, 1)
  title = 'a title much wider than one 56-pixel cell'
  picture = figures.labelled_grid(images, title=title)
  assert picture.shape == (figures.LINE_HEIGHT + 60, figures.text_width(title) + 8, 3)


def test_labelled_grid_checks_label_counts():
  with pytest.raises(ValueError, match='3 row labels for 2 rows'):
    figures.labelled_grid(_images(), row_labels=['a', 'b', 'c'])


# --- GIF frames --------------------------------------------------------------

def test_labelled_cells_layout():
  cells = np.random.default_rng(0).uniform(size=(5, *IMAGE_SHAPE))
  labels = [f'z{i}' for i in range(5)]
  picture = figures.labelled_cells(cells, labels, cols=3)
  tile_h, tile_w = _tile_size(labels)
  gap = figures.TILE_GAP
  assert picture.shape == (2 * tile_h + gap, 3 * tile_w + 2 * gap, 3)
  first = figures.labelled_grid(cells[0][None, None], title='z0')
  left = (tile_w - first.shape[1]) // 2
  np.testing.assert_array_equal(picture[:tile_h, left:left + first.shape[1]], first)
  assert np.all(picture[tile_h + gap:, 2 * (tile_w + gap):] == 255)  # the blank 6th tile


def test_colour_frames_share_one_exact_palette(tmp_path):
  colours = np.random.default_rng(0).integers(0, 256, (50, 3), dtype=np.uint8)
  pictures = [colours[np.random.default_rng(t).integers(0, 50, (12, 20))] for t in range(3)]
  frames = figures.palette_frames(pictures)
  assert all(f.mode == 'P' for f in frames)
  path = str(tmp_path / 'colour.gif')
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=80, loop=0)
  _, read = _read_gif(path)
  for got, want in zip(read, pictures):
    np.testing.assert_array_equal(got, want)  # ≤ 256 colours: no loss


def test_write_gif_loops_and_keeps_grey_frames_exact(tmp_path):
  pictures = [np.full((6, 8, 3), v, np.uint8) for v in (0, 100, 200)]
  path = figures.write_gif(str(tmp_path / 'sub' / 'grey.gif'), pictures, frame_ms=50)
  assert path == str(tmp_path / 'sub' / 'grey.gif')
  gif, read = _read_gif(path)
  assert gif.n_frames == 3 and gif.info['loop'] == 0 and gif.info['duration'] == 50
  for got, want in zip(read, pictures):
    np.testing.assert_array_equal(got, want)


# --- matplotlib figures ------------------------------------------------------

def _not_blank(picture: np.ndarray) -> bool:
  return len(np.unique(picture.reshape(-1, 3), axis=0)) > 1


def test_figure_size_and_render():
  fig = plots.figure(2.0, 1.5, layout='tight')
  fig.subplots().plot([0, 1], [1, 0])
  picture = plots.render(fig)
  assert picture.shape == (150, 200, 3) and picture.dtype == np.uint8
  assert _not_blank(picture)


def test_latent_scatter_legend_and_colorbar():
  rng = np.random.default_rng(0)
  mu = rng.normal(size=(200, 2))
  labels = np.arange(200) % 10
  picture = plots.latent_scatter(mu, labels, [f'class {k}' for k in range(10)], 'q(z|x)')
  assert picture.shape == (500, 500, 3) and picture.dtype == np.uint8
  assert _not_blank(picture)
  continuous = plots.latent_scatter(mu, rng.uniform(size=200), title='x position')
  assert continuous.shape == (500, 500, 3) and _not_blank(continuous)
  assert (picture != plots.latent_scatter(mu, labels)).any()  # names are drawn
  with pytest.raises(ValueError, match='D > 1'):
    plots.latent_scatter(mu[:, :1], labels)


def test_rate_distortion_plot():
  points = [{'kl': 25.0, 'recon': 80.0, 'label': 'β=1', 'group': 'mlp'},
            {'kl': 12.0, 'recon': 95.0, 'label': 'β=4', 'group': 'mlp'},
            {'kl': 30.0, 'recon': 70.0, 'label': 'conv'}]
  picture = plots.rate_distortion_plot(points, title='Fashion-MNIST')
  assert picture.shape == (500, 500, 3) and picture.dtype == np.uint8
  assert _not_blank(picture)
  single = plots.rate_distortion_plot(points[:1])
  assert single.shape == (500, 500, 3) and (single != picture).any()
  with pytest.raises(ValueError, match='at least one point'):
    plots.rate_distortion_plot([])


def test_rate_distortion_line_joins_a_group_in_the_given_order(monkeypatch):
  """A run's trajectory (KL rising, then falling) is drawn step after step, not
  re-sorted by KL."""
  import matplotlib.axes  # pylint: disable=g-import-not-at-top
  drawn = []
  plot = matplotlib.axes.Axes.plot
  monkeypatch.setattr(matplotlib.axes.Axes, 'plot',
                      lambda self, x, y, *a, **k: drawn.append((list(x), list(y)))
                      or plot(self, x, y, *a, **k))
  steps = [(2.0, 300.0), (20.0, 260.0), (15.0, 250.0)]  # (kl, recon) at steps 0, 1, 2
  plots.rate_distortion_plot([{'kl': kl, 'recon': recon, 'label': str(i), 'group': 'run'}
                              for i, (kl, recon) in enumerate(steps)])
  assert drawn == [([2.0, 20.0, 15.0], [300.0, 260.0, 250.0])]
