"""Tests for vae_jax.pictures: traversals, interpolations, the traversal GIF, dSprites factors."""

import jax

jax.config.update('jax_numpy_rank_promotion', 'raise')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np
from PIL import Image, ImageSequence
import pytest

from vae_jax import configs, models
from vae_jax.pictures import eval_pictures
from vae_jax.pictures import figures
from vae_jax.pictures import model_pictures
from vae_jax import data as data_lib
from vae_jax.data import dsprites

LATENT = 3
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
CELL = 56  # 28-pixel images are enlarged 2× to reach MIN_CELL_PIXELS
PAD = 2
FRAMES = 8
SPAN = 2.0


def _tiny(conditional: bool):
  """(model, params) of an untrained 784-16-3 MLP VAE (a CVAE if conditional)."""
  config = configs.make_tiny(configs.get_config())  # latent_dim == LATENT
  config.model.conditional = conditional
  model = models.build(config.model, IMAGE_SHAPE, NUM_CLASSES)
  x = jnp.zeros(IMAGE_SHAPE, jnp.float32)
  return model, model.init(jax.random.key(0), x, jnp.int32(0))


@pytest.fixture(scope='module')
def vae():
  return _tiny(conditional=False)


@pytest.fixture(scope='module')
def cvae():
  return _tiny(conditional=True)


@pytest.fixture(scope='module')
def inputs():
  """Four random images [4, 28, 28, 1] and labels [4]."""
  x = jax.random.uniform(jax.random.key(1), (4, *IMAGE_SHAPE))
  return x, jnp.array([3, 7, 1, 5], jnp.int32)


@pytest.fixture(scope='module')
def image():
  return jax.random.uniform(jax.random.key(1), IMAGE_SHAPE), jnp.int32(4)


def _posterior_decoded(model, params, x, y, decode_y=None) -> np.ndarray:
  """E[x|z = mu(x)] for inputs x [N, ...] (decoded with decode_y, default y)."""
  mu, _ = models.encode(model, params, x, y)
  return np.asarray(models.decode_mean(model, params, mu, y if decode_y is None else decode_y))


def _grid_size(rows: int, cols: int) -> tuple:
  return (rows * (CELL + PAD) + PAD, cols * (CELL + PAD) + PAD, 3)


def _read_gif(path: str) -> tuple[Image.Image, list[np.ndarray]]:
  """The opened GIF and its frames as uint8 [H, W, 3] arrays."""
  gif = Image.open(path)
  return gif, [np.asarray(f.convert('RGB')) for f in ImageSequence.Iterator(gif)]


def _tile_size(labels: list[str]) -> tuple[int, int]:
  """(height, width) of the widest single-cell labelled tile."""
  cell = np.zeros((1, 1, *IMAGE_SHAPE))
  tiles = [figures.labelled_grid(cell, title=label) for label in labels]
  return tiles[0].shape[0], max(t.shape[1] for t in tiles)


# --- traversals ----------------------------------------------------------------

def test_traversals_shape_and_centre_column(vae, inputs):
  model, params = vae
  x, y = inputs
  grid, labels = model_pictures.traversals(model, params, x[0], y[0], num_steps=5, span=2.0)
  assert grid.shape == (LATENT, 5, *IMAGE_SHAPE)
  assert labels == ['z0', 'z1', 'z2']
  centre = _posterior_decoded(model, params, x[:1], y[:1])[0]
  for d in range(LATENT):
    np.testing.assert_allclose(grid[d, 2], centre, atol=1e-6)
    assert np.abs(grid[d, 0] - grid[d, -1]).max() > 1e-3  # the sweep changes the image
  for a in range(LATENT):
    for b in range(a + 1, LATENT):
      assert np.abs(grid[a] - grid[b]).max() > 1e-3
  picture = figures.labelled_grid(grid, labels)
  assert picture.shape[0] == LATENT * (CELL + PAD) + PAD


def test_traversals_offsets_are_prior_units(vae, inputs):
  model, params = vae
  x, y = inputs
  grid, _ = model_pictures.traversals(model, params, x[0], y[0], num_steps=3, span=3.0)
  mu = models.encode(model, params, x[:1], y[:1])[0][0]
  z = jnp.stack([mu.at[1].add(-3.0), mu.at[1].add(3.0)])
  expected = models.decode_mean(model, params, z, y[:2])
  np.testing.assert_allclose(grid[1, 0::2], np.asarray(expected), atol=1e-6)


def test_traversals_flat_where_decoder_ignores_dim(vae, inputs):
  model, params = vae
  x, y = inputs
  kernel = params['params']['decoder']['Dense_0']['kernel']
  ignored = jax.tree.map(lambda a: a, params)
  ignored['params']['decoder']['Dense_0']['kernel'] = kernel.at[1].set(0.0)
  grid, _ = model_pictures.traversals(model, ignored, x[0], y[0])
  np.testing.assert_allclose(grid[1], np.broadcast_to(grid[1, 5], grid[1].shape), atol=1e-6)
  assert np.abs(grid[0, 0] - grid[0, -1]).max() > 1e-3
  assert np.abs(grid[2, 0] - grid[2, -1]).max() > 1e-3


def test_traversals_order_and_kl_labels(vae, inputs):
  model, params = vae
  x, y = inputs
  kwargs = dict(num_steps=3, kl_per_dim=np.array([0.04, 2.13, 0.5]))
  grid, labels = model_pictures.traversals(model, params, x[0], y[0], **kwargs)
  ordered, ordered_labels = model_pictures.traversals(model, params, x[0], y[0], order=[1, 2, 0],
                                                **kwargs)
  np.testing.assert_allclose(ordered, grid[[1, 2, 0]], atol=1e-6)
  # A latent with little KL keeps a significant digit: it never reads 0.0 unless it has none.
  assert ordered_labels == ['z1 (KL 2.1)', 'z2 (KL 0.5)', 'z0 (KL 0.04)']
  assert model_pictures.kl_text(0.0) == '0.0' and model_pictures.kl_text(0.0049) == '0.005'
  top, _ = model_pictures.traversals(model, params, x[0], y[0], order=[1], **kwargs)
  assert top.shape == (1, 3, *IMAGE_SHAPE)
  with pytest.raises(ValueError, match='order'):
    model_pictures.traversals(model, params, x[0], y[0], order=[3])


def test_traversals_cvae_uses_the_label(cvae, inputs):
  model, params = cvae
  x, y = inputs
  grid, _ = model_pictures.traversals(model, params, x[0], y[0], num_steps=3)
  centre = _posterior_decoded(model, params, x[:1], y[:1])[0]
  np.testing.assert_allclose(grid[0, 1], centre, atol=1e-6)


def test_traversal_order_by_kl_or_variance_active_latents_only():
  # Activities Var(mu) = [0, 1, 25, 4]: latent 0 has collapsed.
  mu = np.array([[0.0, 1.0, 5.0, 2.0], [0.0, -1.0, -5.0, -2.0]])
  metrics = {'kl_per_dim': np.array([3.0, 1.0, 2.0, 0.5])}
  order, kl, active = eval_pictures.traversal_order(metrics, mu, stochastic=True)
  np.testing.assert_array_equal(order, [2, 1, 3])  # by KL; latent 0 (KL 3, inactive) left out
  np.testing.assert_array_equal(kl, metrics['kl_per_dim'])
  assert active == 3
  order, kl, active = eval_pictures.traversal_order(metrics, mu, stochastic=False)
  np.testing.assert_array_equal(order, [2, 3, 1])  # by activity
  assert kl is None and active == 3
  # No active latent: the top-ranked one, so the picture exists.
  order, _, active = eval_pictures.traversal_order(metrics, np.zeros((5, 4)), stochastic=True)
  np.testing.assert_array_equal(order, [0])
  assert active == 0
  # At most MAX_TRAVERSAL_ROWS of many active latents, those with most KL.
  wide = np.random.default_rng(0).normal(size=(100, 15))
  kl_wide = {'kl_per_dim': np.arange(15.0)}
  order, _, active = eval_pictures.traversal_order(kl_wide, wide, stochastic=True)
  assert active == 15
  np.testing.assert_array_equal(order, np.arange(14, 14 - eval_pictures.MAX_TRAVERSAL_ROWS,
                                                 -1))


def test_traversal_note():
  assert eval_pictures.traversal_note(3, 3, 20) == (
      '3 of 20 latents active; 17 inactive ones not shown')
  assert eval_pictures.traversal_note(10, 12, 12) == (
      '12 of 12 latents active; the 10 with most KL shown')
  assert eval_pictures.traversal_note(1, 0, 5) == 'no latent active (of 5); the top one shown'


# --- interpolations ------------------------------------------------------------

def test_interpolations_endpoints(vae, inputs):
  model, params = vae
  x, y = inputs
  pairs, labels = x.reshape(2, 2, *IMAGE_SHAPE), y.reshape(2, 2)
  grid = model_pictures.interpolations(model, params, pairs, labels, num_steps=5)
  assert grid.shape == (2, 5, *IMAGE_SHAPE)
  ends = _posterior_decoded(model, params, x, y).reshape(2, 2, *IMAGE_SHAPE)
  np.testing.assert_allclose(grid[:, 0], ends[:, 0], atol=1e-6)
  np.testing.assert_allclose(grid[:, -1], ends[:, 1], atol=1e-6)
  picture = figures.grid_image(grid)
  assert picture.shape == _grid_size(2, 5)


def test_interpolations_midpoint_and_cvae_label(cvae, inputs):
  model, params = cvae
  x, y = inputs
  pairs, labels = x[None, :2], y[None, :2]
  grid = model_pictures.interpolations(model, params, pairs, labels, num_steps=3)
  mu, _ = models.encode(model, params, x[:2], y[:2])  # each input encoded with its own label
  z = jnp.stack([mu[0], 0.5 * (mu[0] + mu[1]), mu[1]])
  expected = models.decode_mean(model, params, z, jnp.full((3,), y[0]))
  np.testing.assert_allclose(grid[0], np.asarray(expected), atol=1e-6)


def test_interpolation_grid_ends_are_the_inputs(vae, inputs):
  model, params = vae
  x, y = inputs
  pairs, labels = x.reshape(2, 2, *IMAGE_SHAPE), y.reshape(2, 2)
  grid, col_labels = model_pictures.interpolation_grid(model, params, pairs, labels, num_steps=5)
  assert grid.shape == (2, 7, *IMAGE_SHAPE)
  np.testing.assert_array_equal(grid[:, 0], np.asarray(pairs[:, 0]))  # x_a, as it is
  np.testing.assert_array_equal(grid[:, -1], np.asarray(pairs[:, 1]))  # x_b
  path = model_pictures.interpolations(model, params, pairs, labels, num_steps=5)
  np.testing.assert_array_equal(grid[:, 1:-1], path)
  assert col_labels == ['x_a', '0', '0.25', '0.5', '0.75', '1', 'x_b']


# --- gif_offsets and traversal_gif -------------------------------------------

def test_gif_offsets_ping_pong():
  s = model_pictures.gif_offsets(8, 3.0)
  np.testing.assert_allclose(s, [-3, -1.5, 0, 1.5, 3, 1.5, 0, -1.5], atol=1e-6)
  s = model_pictures.gif_offsets(24, 2.0)
  assert s[0] == -2.0 and s[12] == 2.0
  np.testing.assert_allclose(s[1:], s[1:][::-1], atol=1e-6)  # s_t = s_{N-t}
  steps = np.abs(np.diff(np.append(s, s[0])))  # including the loop back
  np.testing.assert_allclose(steps, 4 * 2.0 / 24, atol=1e-5)
  with pytest.raises(ValueError):
    model_pictures.gif_offsets(1)


def test_traversal_gif_frames_match_traversals(vae, image, tmp_path):
  model, params = vae
  x, y = image
  path = model_pictures.traversal_gif(model, params, x, y, str(tmp_path / 'sub' / 'z.gif'),
                                num_frames=FRAMES, span=SPAN, frame_ms=50)
  assert path == str(tmp_path / 'sub' / 'z.gif')
  gif, frames = _read_gif(path)
  assert gif.format == 'GIF' and gif.n_frames == FRAMES
  assert gif.info['loop'] == 0 and gif.info['duration'] == 50
  # 3 dims → a 2×2 grid of tiles (the last one blank).
  tile_h, tile_w = _tile_size(['z0', 'z1', 'z2'])
  gap = figures.TILE_GAP
  # Below a caption strip with the frame's offset.
  assert frames[0].shape == (figures.LINE_HEIGHT + 2 * tile_h + gap, 2 * tile_w + gap, 3)
  # Frame t sweeps s_t = −2, −1, 0, 1, 2, 1, 0, −1: traversals' columns at those offsets.
  grid, labels = model_pictures.traversals(model, params, x, y, num_steps=5, span=SPAN)
  columns = [0, 1, 2, 3, 4, 3, 2, 1]
  expected = figures.captioned(
      [figures.labelled_cells(grid[:, c], labels, cols=2) for c in columns],
      [f'offset {s:+.1f}σ' for s in model_pictures.gif_offsets(FRAMES, SPAN)])
  for t in range(FRAMES):
    np.testing.assert_allclose(frames[t], expected[t], atol=1)  # grey frames are lossless
  body = slice(figures.LINE_HEIGHT, None)  # the cells alone: traversals' columns
  np.testing.assert_allclose(frames[2][body],
                             figures.labelled_cells(grid[:, 2], labels, cols=2), atol=1)
  assert not np.array_equal(frames[1][:figures.LINE_HEIGHT],
                            frames[3][:figures.LINE_HEIGHT])  # the captions differ
  assert not np.array_equal(frames[0], frames[FRAMES // 2])  # the animation moves
  assert np.abs(frames[0].astype(int) - frames[FRAMES // 2]).max() > 10


def test_traversal_gif_order_kl_labels_and_single_row(vae, image, tmp_path):
  model, params = vae
  x, y = image
  kl = np.array([0.04, 2.13, 0.51])
  path = model_pictures.traversal_gif(model, params, x, y, str(tmp_path / 'row.gif'),
                                order=[1, 2], kl_per_dim=kl, num_frames=4, span=SPAN,
                                cols=2)
  gif, frames = _read_gif(path)
  assert gif.n_frames == 4
  labels = ['z1 (KL 2.1)', 'z2 (KL 0.5)']
  assert model_pictures.dim_labels([1, 2], kl) == labels
  tile_h, tile_w = _tile_size(labels)
  body = slice(figures.LINE_HEIGHT, None)
  assert frames[0][body].shape == (tile_h, 2 * tile_w + figures.TILE_GAP, 3)
  grid, _ = model_pictures.traversals(model, params, x, y, num_steps=3, span=SPAN, order=[1, 2])
  np.testing.assert_allclose(frames[0][body], figures.labelled_cells(grid[:, 0], labels, 2),
                             atol=1)
  np.testing.assert_allclose(frames[2][body], figures.labelled_cells(grid[:, 2], labels, 2),
                             atol=1)
  with pytest.raises(ValueError):
    model_pictures.traversal_gif(model, params, x, y, str(tmp_path / 'bad.gif'), order=[3])


def test_gif_cells_are_traversal_columns(vae, image):
  model, params = vae
  x, y = image
  offsets = model_pictures.traversal_offsets(5, SPAN)
  cells = model_pictures.gif_cells(model, params, x, y, [2, 0], offsets)
  grid, _ = model_pictures.traversals(model, params, x, y, num_steps=5, span=SPAN, order=[2, 0])
  assert cells.shape == (5, 2, *IMAGE_SHAPE)
  np.testing.assert_array_equal(cells, grid.swapaxes(0, 1))


# --- make_pictures and write_final_animations --------------------------------

def _dataset(num: int = 20) -> data_lib.Dataset:
  """`num` random labelled 28×28 evaluation images."""
  rng = np.random.default_rng(0)
  spec = data_lib.DataSpec(name='fashion_mnist', procedural=False, image_shape=IMAGE_SHAPE,
                           num_classes=NUM_CLASSES, binarize='none')
  arrays = {'eval_x': jnp.asarray(rng.integers(0, 256, (num, *IMAGE_SHAPE), np.uint8)),
            'eval_y': jnp.asarray(rng.integers(0, NUM_CLASSES, num, np.int32))}
  return data_lib.Dataset(spec=spec, arrays=arrays, train_ids=None,
                          eval_ids=np.arange(num, dtype=np.int32), num_train=0, source='test')


def test_make_pictures_kinds_and_final_animations(cvae, tmp_path):
  model, params = cvae
  dataset = _dataset()
  mu = np.random.default_rng(1).normal(size=(20, LATENT)).astype(np.float32)
  moments = (mu, np.zeros_like(mu), np.arange(20) % NUM_CLASSES)
  metrics = {'kl': 5.0, 'recon': 60.0, 'kl_per_dim': np.array([0.5, 2.0, 1.0])}
  kwargs = dict(seed=0, step=3, metrics=metrics, moments=moments)
  made = eval_pictures.make_pictures(model, params, dataset, num_images=16, stochastic=True,
                                history=[{'step': 1, 'kl': 3.0, 'recon': 70.0}], **kwargs)
  assert set(made) == {'samples', 'reconstructions', 'conditional', 'traversals',
                       'interpolations', 'scatter', 'rate_distortion'}
  assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in made.values())
  ae = eval_pictures.make_pictures(model, params, dataset, num_images=16, stochastic=False,
                              history=[], **kwargs)
  assert 'samples' not in ae and 'rate_distortion' not in ae
  paths = eval_pictures.write_final_animations(model, params, dataset, stochastic=True,
                                          images_dir=str(tmp_path), **kwargs)
  assert paths == [str(tmp_path / 'traversals_3.gif')]
  _, frames = _read_gif(paths[0])
  assert len(frames) > 1  # the latents sweep


def test_make_pictures_leave_out_collapsed_latents_and_frame_interpolations(cvae):
  model, params = cvae
  dataset = _dataset()
  mu = np.random.default_rng(1).normal(size=(20, LATENT)).astype(np.float32)
  metrics = {'kl': 5.0, 'recon': 60.0, 'kl_per_dim': np.array([0.5, 2.0, 1.0])}
  heights = {}
  for collapsed in (False, True):
    moments = (mu * [0.0, 1.0, 1.0] if collapsed else mu, np.zeros_like(mu),
               np.arange(20) % NUM_CLASSES)
    made = eval_pictures.make_pictures(model, params, dataset, seed=0, num_images=16,
                                       stochastic=True, step=3, metrics=metrics,
                                       moments=moments, history=[])
    heights[collapsed] = made['traversals'].shape[0]
  text = 2 * figures.LINE_HEIGHT  # the title and the offsets
  assert heights[False] == text + _grid_size(LATENT, 11)[0]
  assert heights[True] == text + _grid_size(LATENT - 1, 11)[0]  # z0 (activity 0) left out
  # 16 images: 4 inputs, 2 pairs; each row x_a, 10 decoded steps, x_b, with labels.
  assert made['interpolations'].shape[0] == text + _grid_size(2, 12)[0]
  assert made['interpolations'].shape[1] >= _grid_size(2, 12)[1]


# --- dSprites ground truth ---------------------------------------------------

def test_factor_traversal_grid_renders_expected_factors():
  base = (0, 1, 3, 5, 10, 20)  # an ellipse, scale 0.8, orientation class 5
  grid, labels = model_pictures.factor_traversal_grid(num_steps=4, base_factors=base)
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
  grid, _ = model_pictures.factor_traversal_grid()
  assert grid.shape == (5, 10, 64, 64, 1)
  assert set(np.unique(grid)) == {0.0, 1.0}
  np.testing.assert_array_equal(grid[0, 9], grid[1, 9])  # both: the heart at full scale
  for row, name in enumerate(model_pictures.TRAVERSED_FACTORS):
    classes = model_pictures.factor_classes(name, 10)
    for c in range(9):  # adjacent columns differ exactly when the class changes
      changed = not np.array_equal(grid[row, c], grid[row, c + 1])
      assert changed == (classes[c] != classes[c + 1]), (name, c)
    assert len({grid[row, c].tobytes() for c in range(10)}) >= 3
  with pytest.raises(ValueError):
    model_pictures.factor_traversal_grid(base_factors=(0, 3, 0, 0, 0, 0))


def test_factor_traversal_picture():
  picture = model_pictures.factor_traversal_picture(num_steps=3)
  grid, labels = model_pictures.factor_traversal_grid(num_steps=3)
  expected = figures.labelled_grid(grid, row_labels=labels,
                                   title='dSprites ground-truth factors')
  assert picture.dtype == np.uint8
  np.testing.assert_array_equal(picture, expected)


def test_the_scatter_shows_the_traversal_s_first_two_latents():
  # The active latents with most KL, never an inactive one when two are active.
  assert eval_pictures.scatter_dims(np.array([3, 1, 4]), 5) == (3, 1)
  assert eval_pictures.scatter_dims(np.array([2]), 4) == (2, 0)  # one active: the lowest other
  assert eval_pictures.scatter_dims(np.array([0]), 3) == (0, 1)
  mu = np.zeros((50, 4))
  mu[:, 2] = np.linspace(-2, 2, 50)  # z2 alone varies
  mu[:, 3] = np.linspace(1, -1, 50) ** 2
  order, _, active = eval_pictures.traversal_order({}, mu, stochastic=False)
  assert active == 2 and eval_pictures.scatter_dims(order, 4) == (2, 3)
