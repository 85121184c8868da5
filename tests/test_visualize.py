"""Tests for vae_jax.visualize: picture sizes, drawn text, traversals, interpolations."""

import jax

jax.config.update('jax_numpy_rank_promotion', 'raise')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np
import pytest

from vae_jax import configs, models, visualize

LATENT = 3
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
CELL = 56  # 28-pixel images are enlarged 2× to reach MIN_CELL_PIXELS
PAD = 2
LIKELIHOOD = 'bernoulli'


def _tiny(conditional: bool):
  """(model, params) of an untrained 784-16-3 MLP VAE (a CVAE if conditional)."""
  config = configs.get_config()
  config.model.hidden_dims = (16,)
  config.model.latent_dim = LATENT
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


def _posterior_decoded(model, params, x, y, decode_y=None) -> np.ndarray:
  """E[x|z = mu(x)] for inputs x [N, ...] (decoded with decode_y, default y)."""
  encode = lambda x_, y_: model.apply(params, x_, y_, method=models.VAE.encode)[0]
  mu = jax.vmap(encode)(x, y)
  return np.asarray(visualize.decode_means(model, params, LIKELIHOOD, mu,
                                           y if decode_y is None else decode_y))


def _grid_size(rows: int, cols: int) -> tuple:
  return (rows * (CELL + PAD) + PAD, cols * (CELL + PAD) + PAD, 3)


def _images(rows: int = 2, cols: int = 3) -> np.ndarray:
  return np.random.default_rng(0).uniform(size=(rows, cols, *IMAGE_SHAPE))


# --- grid_image and labelled_grid --------------------------------------------

def test_grid_image_size_and_cells():
  images = _images()
  picture = visualize.grid_image(images)
  assert picture.shape == _grid_size(2, 3) == (118, 176, 3)
  assert picture.dtype == np.uint8
  cell = picture[PAD:PAD + CELL, PAD + CELL + PAD:PAD + 2 * CELL + PAD, 0]  # row 0, col 1
  expected = (images[0, 1, ..., 0].repeat(2, 0).repeat(2, 1) * 255 + 0.5).astype(np.uint8)
  np.testing.assert_array_equal(cell, expected)


def test_labelled_grid_without_text_is_grid_image():
  images = _images()
  np.testing.assert_array_equal(visualize.labelled_grid(images),
                                visualize.grid_image(images))


def test_labelled_grid_margins_and_text():
  images = _images()
  rows, cols = ['z0 (KL 2.1)', 'z1 (KL 0.0)'], ['-3', '0', '+3']
  picture = visualize.labelled_grid(images, rows, cols, title='traversals')
  grid = visualize.grid_image(images)
  left = max(visualize.text_width(r) for r in rows) + 2 * visualize.TEXT_PAD
  top = 2 * visualize.LINE_HEIGHT
  assert picture.dtype == np.uint8
  assert picture.shape == (grid.shape[0] + top, grid.shape[1] + left, 3)
  np.testing.assert_array_equal(picture[top:, left:], grid)
  dark = picture.min(axis=-1) < 100
  assert dark[:visualize.LINE_HEIGHT].any()  # title
  for c in range(3):  # each column's label sits above that column
    x0 = left + PAD + c * (CELL + PAD)
    assert dark[visualize.LINE_HEIGHT:top, x0:x0 + CELL].any()
  for r in range(2):  # each row's label sits left of that row
    y0 = top + PAD + r * (CELL + PAD)
    assert dark[y0:y0 + CELL, :left].any()
  assert not dark[top:top + PAD, :left].any()  # above the first row's label


def test_labelled_grid_margins_are_blank_without_text():
  images = _images()
  picture = visualize.labelled_grid(images, ['', ''], ['', '', ''])
  top, left = visualize.LINE_HEIGHT, 2 * visualize.TEXT_PAD
  assert picture.shape == (118 + top, 176 + left, 3)
  assert (picture[:top] == 255).all()
  assert (picture[:, :left] == 255).all()
  with_text = visualize.labelled_grid(images, ['a', 'b'], ['c', 'd', 'e'])
  assert (with_text[:top] < 255).any()


def test_labelled_grid_widens_for_a_long_title():
  images = _images(1, 1)
  title = 'a title much wider than one 56-pixel cell'
  picture = visualize.labelled_grid(images, title=title)
  assert picture.shape == (visualize.LINE_HEIGHT + 60, visualize.text_width(title) + 8, 3)


def test_labelled_grid_checks_label_counts():
  with pytest.raises(ValueError, match='3 row labels for 2 rows'):
    visualize.labelled_grid(_images(), row_labels=['a', 'b', 'c'])


# --- traversals ----------------------------------------------------------------

def test_traversals_shape_and_centre_column(vae, inputs):
  model, params = vae
  x, y = inputs
  grid, labels = visualize.traversals(model, params, LIKELIHOOD, x[0], y[0], LATENT,
                                      num_steps=5, span=2.0)
  assert grid.shape == (LATENT, 5, *IMAGE_SHAPE)
  assert labels == ['z0', 'z1', 'z2']
  centre = _posterior_decoded(model, params, x[:1], y[:1])[0]
  for d in range(LATENT):
    np.testing.assert_allclose(grid[d, 2], centre, atol=1e-6)
    assert np.abs(grid[d, 0] - grid[d, -1]).max() > 1e-3  # the sweep changes the image
  for a in range(LATENT):
    for b in range(a + 1, LATENT):
      assert np.abs(grid[a] - grid[b]).max() > 1e-3
  picture = visualize.labelled_grid(grid, labels)
  assert picture.shape[0] == LATENT * (CELL + PAD) + PAD


def test_traversals_offsets_are_prior_units(vae, inputs):
  model, params = vae
  x, y = inputs
  grid, _ = visualize.traversals(model, params, LIKELIHOOD, x[0], y[0], LATENT,
                                 num_steps=3, span=3.0)
  encode = lambda x_, y_: model.apply(params, x_, y_, method=models.VAE.encode)[0]
  mu = encode(x[0], y[0])
  z = jnp.stack([mu.at[1].add(-3.0), mu.at[1].add(3.0)])
  expected = visualize.decode_means(model, params, LIKELIHOOD, z, y[:2])
  np.testing.assert_allclose(grid[1, 0::2], np.asarray(expected), atol=1e-6)


def test_traversals_flat_where_decoder_ignores_dim(vae, inputs):
  model, params = vae
  x, y = inputs
  kernel = params['params']['decoder']['Dense_0']['kernel']
  ignored = jax.tree.map(lambda a: a, params)
  ignored['params']['decoder']['Dense_0']['kernel'] = kernel.at[1].set(0.0)
  grid, _ = visualize.traversals(model, ignored, LIKELIHOOD, x[0], y[0], LATENT)
  np.testing.assert_allclose(grid[1], np.broadcast_to(grid[1, 5], grid[1].shape), atol=1e-6)
  assert np.abs(grid[0, 0] - grid[0, -1]).max() > 1e-3
  assert np.abs(grid[2, 0] - grid[2, -1]).max() > 1e-3


def test_traversals_order_and_kl_labels(vae, inputs):
  model, params = vae
  x, y = inputs
  kwargs = dict(num_steps=3, kl_per_dim=np.array([0.04, 2.13, 0.5]))
  grid, labels = visualize.traversals(model, params, LIKELIHOOD, x[0], y[0], LATENT,
                                      **kwargs)
  ordered, ordered_labels = visualize.traversals(model, params, LIKELIHOOD, x[0], y[0],
                                                 LATENT, order=[1, 2, 0], **kwargs)
  np.testing.assert_allclose(ordered, grid[[1, 2, 0]], atol=1e-6)
  assert ordered_labels == ['z1 (KL 2.1)', 'z2 (KL 0.5)', 'z0 (KL 0.0)']
  top, _ = visualize.traversals(model, params, LIKELIHOOD, x[0], y[0], LATENT, order=[1],
                                **kwargs)
  assert top.shape == (1, 3, *IMAGE_SHAPE)
  with pytest.raises(ValueError, match='order'):
    visualize.traversals(model, params, LIKELIHOOD, x[0], y[0], LATENT, order=[3])


def test_traversals_cvae_uses_the_label(cvae, inputs):
  model, params = cvae
  x, y = inputs
  grid, _ = visualize.traversals(model, params, LIKELIHOOD, x[0], y[0], LATENT, num_steps=3)
  centre = _posterior_decoded(model, params, x[:1], y[:1])[0]
  np.testing.assert_allclose(grid[0, 1], centre, atol=1e-6)


# --- interpolations ------------------------------------------------------------

def test_interpolations_endpoints(vae, inputs):
  model, params = vae
  x, y = inputs
  pairs, labels = x.reshape(2, 2, *IMAGE_SHAPE), y.reshape(2, 2)
  grid = visualize.interpolations(model, params, LIKELIHOOD, pairs, labels, num_steps=5)
  assert grid.shape == (2, 5, *IMAGE_SHAPE)
  ends = _posterior_decoded(model, params, x, y).reshape(2, 2, *IMAGE_SHAPE)
  np.testing.assert_allclose(grid[:, 0], ends[:, 0], atol=1e-6)
  np.testing.assert_allclose(grid[:, -1], ends[:, 1], atol=1e-6)
  picture = visualize.grid_image(grid)
  assert picture.shape == _grid_size(2, 5)


def test_interpolations_midpoint_and_cvae_label(cvae, inputs):
  model, params = cvae
  x, y = inputs
  pairs, labels = x[None, :2], y[None, :2]
  grid = visualize.interpolations(model, params, LIKELIHOOD, pairs, labels, num_steps=3)
  encode = lambda x_, y_: model.apply(params, x_, y_, method=models.VAE.encode)[0]
  mu = jax.vmap(encode)(x[:2], y[:2])  # each input encoded with its own label
  z = jnp.stack([mu[0], 0.5 * (mu[0] + mu[1]), mu[1]])
  expected = visualize.decode_means(model, params, LIKELIHOOD, z, jnp.full((3,), y[0]))
  np.testing.assert_allclose(grid[0], np.asarray(expected), atol=1e-6)


# --- matplotlib figures --------------------------------------------------------

def _not_blank(picture: np.ndarray) -> bool:
  return len(np.unique(picture.reshape(-1, 3), axis=0)) > 1


def test_latent_scatter_legend_and_colorbar():
  rng = np.random.default_rng(0)
  mu = rng.normal(size=(200, 2))
  labels = np.arange(200) % 10
  picture = visualize.latent_scatter(mu, labels, [f'class {k}' for k in range(10)], 'q(z|x)')
  assert picture.shape == (500, 500, 3) and picture.dtype == np.uint8
  assert _not_blank(picture)
  continuous = visualize.latent_scatter(mu, rng.uniform(size=200), title='x position')
  assert continuous.shape == (500, 500, 3) and _not_blank(continuous)
  assert (picture != visualize.latent_scatter(mu, labels)).any()  # names are drawn
  with pytest.raises(ValueError, match='D > 1'):
    visualize.latent_scatter(mu[:, :1], labels)


def test_rate_distortion_plot():
  points = [{'kl': 25.0, 'recon': 80.0, 'label': 'β=1', 'group': 'mlp'},
            {'kl': 12.0, 'recon': 95.0, 'label': 'β=4', 'group': 'mlp'},
            {'kl': 30.0, 'recon': 70.0, 'label': 'conv'}]
  picture = visualize.rate_distortion_plot(points, title='Fashion-MNIST')
  assert picture.shape == (500, 500, 3) and picture.dtype == np.uint8
  assert _not_blank(picture)
  single = visualize.rate_distortion_plot(points[:1])
  assert single.shape == (500, 500, 3) and (single != picture).any()
  with pytest.raises(ValueError, match='at least one point'):
    visualize.rate_distortion_plot([])
