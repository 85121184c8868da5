"""Tests for vae_jax.animate: the traversal GIF and the dSprites ground-truth grid."""

import jax

jax.config.update('jax_numpy_rank_promotion', 'raise')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np
from PIL import Image, ImageSequence
import pytest

from vae_jax import animate, configs, models, visualize
from vae_jax.data import dsprites

LATENT = 3
IMAGE_SHAPE = (28, 28, 1)
LIKELIHOOD = 'bernoulli'
FRAMES = 8
SPAN = 2.0


@pytest.fixture(scope='module')
def vae():
  """(model, params) of an untrained 784-16-3 MLP VAE."""
  config = configs.get_config()
  config.model.hidden_dims = (16,)
  config.model.latent_dim = LATENT
  model = models.build(config.model, IMAGE_SHAPE, 10)
  return model, model.init(jax.random.key(0), jnp.zeros(IMAGE_SHAPE), jnp.int32(0))


@pytest.fixture(scope='module')
def image():
  return jax.random.uniform(jax.random.key(1), IMAGE_SHAPE), jnp.int32(4)


def _read_gif(path: str) -> tuple[Image.Image, list[np.ndarray]]:
  """The opened GIF and its frames as uint8 [H, W, 3] arrays."""
  gif = Image.open(path)
  frames = [np.asarray(f.convert('RGB')) for f in ImageSequence.Iterator(gif)]
  return gif, frames


def _tile_size(labels: list[str]) -> tuple[int, int]:
  """(height, width) of the widest single-cell labelled tile."""
  cell = np.zeros((1, 1, *IMAGE_SHAPE))
  tiles = [visualize.labelled_grid(cell, title=label) for label in labels]
  return tiles[0].shape[0], max(t.shape[1] for t in tiles)


# --- gif_offsets -------------------------------------------------------------

def test_gif_offsets_ping_pong():
  s = animate.gif_offsets(8, 3.0)
  np.testing.assert_allclose(s, [-3, -1.5, 0, 1.5, 3, 1.5, 0, -1.5], atol=1e-6)
  s = animate.gif_offsets(24, 2.0)
  assert s[0] == -2.0 and s[12] == 2.0
  np.testing.assert_allclose(s[1:], s[1:][::-1], atol=1e-6)  # s_t = s_{N-t}
  steps = np.abs(np.diff(np.append(s, s[0])))  # including the loop back
  np.testing.assert_allclose(steps, 4 * 2.0 / 24, atol=1e-5)
  with pytest.raises(ValueError):
    animate.gif_offsets(1)


# --- traversal_gif -----------------------------------------------------------

def test_traversal_gif_frames_match_traversals(vae, image, tmp_path):
  model, params = vae
  x, y = image
  path = animate.traversal_gif(model, params, LIKELIHOOD, x, y, LATENT,
                               str(tmp_path / 'sub' / 'z.gif'), num_frames=FRAMES,
                               span=SPAN, frame_ms=50)
  assert path == str(tmp_path / 'sub' / 'z.gif')
  gif, frames = _read_gif(path)
  assert gif.format == 'GIF' and gif.n_frames == FRAMES
  assert gif.info['loop'] == 0 and gif.info['duration'] == 50
  # 3 dims → a 2×2 grid of tiles (the last one blank).
  tile_h, tile_w = _tile_size(['z0', 'z1', 'z2'])
  gap = animate.TILE_GAP
  assert frames[0].shape == (2 * tile_h + gap, 2 * tile_w + gap, 3)
  # Frame t sweeps s_t = −2, −1, 0, 1, 2, 1, 0, −1: traversals' columns at those offsets.
  grid, labels = visualize.traversals(model, params, LIKELIHOOD, x, y, LATENT, num_steps=5,
                                      span=SPAN)
  for t, column in enumerate([0, 1, 2, 3, 4, 3, 2, 1]):
    expected = animate.labelled_cells(grid[:, column], labels, cols=2)
    np.testing.assert_allclose(frames[t], expected, atol=1)  # grey frames are lossless
  assert not np.array_equal(frames[0], frames[FRAMES // 2])  # the animation moves
  assert np.abs(frames[0].astype(int) - frames[FRAMES // 2]).max() > 10


def test_traversal_gif_order_kl_labels_and_single_row(vae, image, tmp_path):
  model, params = vae
  x, y = image
  kl = np.array([0.04, 2.13, 0.51])
  path = animate.traversal_gif(model, params, LIKELIHOOD, x, y, LATENT,
                               str(tmp_path / 'row.gif'), order=[1, 2], kl_per_dim=kl,
                               num_frames=4, span=SPAN, cols=2)
  gif, frames = _read_gif(path)
  assert gif.n_frames == 4
  labels = ['z1 (KL 2.1)', 'z2 (KL 0.5)']
  assert animate.dim_labels([1, 2], kl) == labels
  tile_h, tile_w = _tile_size(labels)
  assert frames[0].shape == (tile_h, 2 * tile_w + animate.TILE_GAP, 3)
  grid, _ = visualize.traversals(model, params, LIKELIHOOD, x, y, LATENT, num_steps=3,
                                 span=SPAN, order=[1, 2])
  np.testing.assert_allclose(frames[0], animate.labelled_cells(grid[:, 0], labels, 2),
                             atol=1)
  np.testing.assert_allclose(frames[2], animate.labelled_cells(grid[:, 2], labels, 2),
                             atol=1)
  with pytest.raises(ValueError):
    animate.traversal_gif(model, params, LIKELIHOOD, x, y, LATENT,
                          str(tmp_path / 'bad.gif'), order=[3])


def test_labelled_cells_layout():
  cells = np.random.default_rng(0).uniform(size=(5, *IMAGE_SHAPE))
  labels = [f'z{i}' for i in range(5)]
  picture = animate.labelled_cells(cells, labels, cols=3)
  tile_h, tile_w = _tile_size(labels)
  gap = animate.TILE_GAP
  assert picture.shape == (2 * tile_h + gap, 3 * tile_w + 2 * gap, 3)
  first = visualize.labelled_grid(cells[0][None, None], title='z0')
  left = (tile_w - first.shape[1]) // 2
  np.testing.assert_array_equal(picture[:tile_h, left:left + first.shape[1]], first)
  assert np.all(picture[tile_h + gap:, 2 * (tile_w + gap):] == 255)  # the blank 6th tile


def test_colour_frames_share_one_exact_palette(tmp_path):
  colours = np.random.default_rng(0).integers(0, 256, (50, 3), dtype=np.uint8)
  pictures = [colours[np.random.default_rng(t).integers(0, 50, (12, 20))] for t in range(3)]
  frames = animate._palette_frames(pictures)  # pylint: disable=protected-access
  assert all(f.mode == 'P' for f in frames)
  path = str(tmp_path / 'colour.gif')
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=80, loop=0)
  _, read = _read_gif(path)
  for got, want in zip(read, pictures):
    np.testing.assert_array_equal(got, want)  # ≤ 256 colours: no loss


# --- dSprites ground truth ---------------------------------------------------

def test_factor_traversal_grid_renders_expected_factors():
  base = (0, 1, 3, 5, 10, 20)  # an ellipse, scale 0.8, orientation class 5
  grid, labels = animate.factor_traversal_grid(num_steps=4, base_factors=base)
  assert grid.shape == (5, 4, 64, 64, 1) and grid.dtype == np.float32
  assert labels == ['shape', 'scale', 'orientation', 'pos_x', 'pos_y']
  classes = {'shape': [0, 1, 1, 2], 'scale': [0, 2, 3, 5], 'orientation': [0, 13, 26, 39],
             'pos_x': [0, 10, 21, 31], 'pos_y': [0, 10, 21, 31]}
  for row, name in enumerate(labels):
    factors = np.tile(np.asarray(base), (4, 1))
    factors[:, dsprites.FACTOR_NAMES.index(name)] = classes[name]
    expected = dsprites.render_indices(dsprites.factors_to_index(jnp.asarray(factors)))
    np.testing.assert_array_equal(grid[row], np.asarray(expected))


def test_factor_traversal_grid_default_rows_vary():
  grid, _ = animate.factor_traversal_grid()
  assert grid.shape == (5, 10, 64, 64, 1)
  assert set(np.unique(grid)) == {0.0, 1.0}
  np.testing.assert_array_equal(grid[0, 9], grid[1, 9])  # both: the heart at full scale
  for row, name in enumerate(animate.TRAVERSED_FACTORS):
    classes = animate.factor_classes(name, 10)
    for c in range(9):  # adjacent columns differ exactly when the class changes
      changed = not np.array_equal(grid[row, c], grid[row, c + 1])
      assert changed == (classes[c] != classes[c + 1]), (name, c)
    assert len({grid[row, c].tobytes() for c in range(10)}) >= 3
  with pytest.raises(ValueError):
    animate.factor_traversal_grid(base_factors=(0, 3, 0, 0, 0, 0))


def test_factor_traversal_picture():
  picture = animate.factor_traversal_picture(num_steps=3)
  grid, labels = animate.factor_traversal_grid(num_steps=3)
  expected = visualize.labelled_grid(grid, row_labels=labels,
                                     title='dSprites ground-truth factors')
  assert picture.dtype == np.uint8
  np.testing.assert_array_equal(picture, expected)
