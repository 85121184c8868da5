"""Tests for the procedural dSprites dataset (vae_jax.data.dsprites)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax.data import dsprites

jax.config.update('jax_numpy_rank_promotion', 'raise')

SQUARE, ELLIPSE, HEART = 0, 1, 2


def _render(*factors: int) -> np.ndarray:
  """Renders one image from factor classes as a [64, 64] numpy array."""
  return np.asarray(dsprites.render(jnp.array(factors, jnp.int32)))[..., 0]


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
  """Returns the (row, column) centre of mass of a [64, 64] image."""
  rows, cols = np.nonzero(image)
  return rows.mean(), cols.mean()


def test_factor_grid_size():
  assert dsprites.FACTOR_NAMES == (
      'color', 'shape', 'scale', 'orientation', 'pos_x', 'pos_y')
  assert dsprites.FACTOR_SIZES == (1, 3, 6, 40, 32, 32)
  assert math.prod(dsprites.FACTOR_SIZES) == dsprites.NUM_IMAGES == 737280
  assert dsprites.IMAGE_SHAPE == (64, 64, 1)


def test_index_factor_round_trip():
  key = jax.random.key(0)
  indices = jax.random.randint(key, (1000,), 0, dsprites.NUM_IMAGES)
  indices = jnp.concatenate(
      [indices, jnp.array([0, dsprites.NUM_IMAGES - 1])])
  factors = dsprites.index_to_factors(indices)
  assert factors.shape == (1002, 6)
  assert factors.dtype == jnp.int32
  assert np.all(np.asarray(factors) >= 0)
  assert np.all(np.asarray(factors) < np.array(dsprites.FACTOR_SIZES))
  back = dsprites.factors_to_index(factors)
  assert back.dtype == jnp.int32
  np.testing.assert_array_equal(back, indices)
  np.testing.assert_array_equal(factors[-2], [0, 0, 0, 0, 0, 0])
  np.testing.assert_array_equal(factors[-1], [0, 2, 5, 39, 31, 31])


def test_index_order_pos_y_fastest():
  indices = jnp.array([1, 32, 1024, 40960, 245760, 40960 * 5 + 1024 * 39])
  expected = [[0, 0, 0, 0, 0, 1],
              [0, 0, 0, 0, 1, 0],
              [0, 0, 0, 1, 0, 0],
              [0, 0, 1, 0, 0, 0],
              [0, 1, 0, 0, 0, 0],
              [0, 0, 5, 39, 0, 0]]
  np.testing.assert_array_equal(dsprites.index_to_factors(indices), expected)
  # Scalar index -> [6] factors.
  np.testing.assert_array_equal(
      dsprites.index_to_factors(jnp.int32(33)), [0, 0, 0, 0, 1, 1])


def test_factor_values_at_known_indices():
  factors = jnp.array([[0, 0, 0, 0, 0, 0],
                       [0, 2, 5, 39, 31, 31],
                       [0, 1, 2, 10, 16, 3]])
  values = dsprites.factor_values(factors)
  assert values.shape == (3, 6)
  assert values.dtype == jnp.float32
  np.testing.assert_allclose(values[0], [1., 1., 0.5, 0., 0., 0.], atol=1e-6)
  np.testing.assert_allclose(
      values[1], [1., 3., 1.0, 2 * math.pi, 1., 1.], atol=1e-6)
  np.testing.assert_allclose(
      values[2], [1., 2., 0.7, 2 * math.pi * 10 / 39, 16 / 31, 3 / 31],
      atol=1e-6)


def test_render_shape_dtype_binary():
  images = np.asarray(dsprites.render_indices(jnp.arange(0, 737280, 7919)))
  assert images.shape == (94, 64, 64, 1)
  assert images.dtype == np.float32
  assert set(np.unique(images)) <= {0.0, 1.0}
  assert np.all(images.sum(axis=(1, 2, 3)) > 0)


def test_each_factor_changes_image():
  base = (0, ELLIPSE, 3, 5, 12, 20)
  image = _render(*base)
  for i, other in ((1, HEART), (2, 5), (3, 12), (4, 13), (5, 21)):
    changed = list(base)
    changed[i] = other
    assert np.any(_render(*changed) != image), dsprites.FACTOR_NAMES[i]
  # The heart also changes with orientation; index 0 and 39 coincide.
  heart = _render(0, HEART, 5, 0, 16, 16)
  assert np.any(heart != _render(0, HEART, 5, 10, 16, 16))
  np.testing.assert_array_equal(heart, _render(0, HEART, 5, 39, 16, 16))


@pytest.mark.parametrize('shape', [SQUARE, ELLIPSE, HEART])
def test_position_moves_centre_of_mass(shape):
  row0, col0 = _centre_of_mass(_render(0, shape, 3, 0, 0, 16))
  row1, col1 = _centre_of_mass(_render(0, shape, 3, 0, 31, 16))
  assert col1 - col0 > 30 and abs(row1 - row0) < 0.5   # pos_x: columns
  row0, col0 = _centre_of_mass(_render(0, shape, 3, 0, 16, 0))
  row1, col1 = _centre_of_mass(_render(0, shape, 3, 0, 16, 31))
  assert row1 - row0 > 30 and abs(col1 - col0) < 0.5   # pos_y: rows


def test_larger_scale_more_white_pixels():
  for shape in (SQUARE, ELLIPSE, HEART):
    areas = [_render(0, shape, s, 7, 16, 16).sum() for s in range(6)]
    assert all(a < b for a, b in zip(areas[:-1], areas[1:])), areas


def test_shapes_have_similar_areas_and_heart_points_down():
  areas = [_render(0, s, 5, 0, 16, 16).sum() for s in range(3)]
  assert max(areas) / min(areas) < 1.1, areas
  heart = _render(0, HEART, 5, 0, 16, 16)
  rows = np.nonzero(heart.any(axis=1))[0]
  # Orientation 0: wide lobes on top, a narrow point at the bottom.
  assert heart[rows[2]].sum() > 3 * heart[rows[-2]].sum()


def test_object_inside_frame_at_extremes():
  factors = jnp.array([[0, shape, 5, o, px, py]
                       for shape in range(3)
                       for o in range(0, 40, 3)
                       for px in (0, 31) for py in (0, 31)])
  images = np.asarray(jax.vmap(dsprites.render)(factors))[..., 0]
  assert np.all(images.sum(axis=(1, 2)) > 0)
  border = (images[:, 0, :].sum() + images[:, -1, :].sum()
            + images[:, :, 0].sum() + images[:, :, -1].sum())
  assert border == 0


def test_sample_factors_uniform():
  factors = np.asarray(dsprites.sample_factors(jax.random.key(1), 6000))
  assert factors.shape == (6000, 6)
  assert factors.dtype == np.int32
  for i, size in enumerate(dsprites.FACTOR_SIZES):
    counts = np.bincount(factors[:, i], minlength=size)
    assert len(counts) == size
    assert counts.min() > 0.6 * 6000 / size, dsprites.FACTOR_NAMES[i]
  again = np.asarray(dsprites.sample_factors(jax.random.key(1), 6000))
  np.testing.assert_array_equal(factors, again)


def test_mean_white_fraction():
  factors = dsprites.sample_factors(jax.random.key(2), 2000)
  indices = dsprites.factors_to_index(factors)
  images = jax.jit(dsprites.render_indices)(indices)
  assert 0.03 <= float(images.mean()) <= 0.05


def test_jit_and_vmap_match():
  indices = jnp.array([0, 1, 1057, 300000, 500001, dsprites.NUM_IMAGES - 1])
  eager = dsprites.render_indices(indices)
  jitted = jax.jit(dsprites.render_indices)(indices)
  np.testing.assert_array_equal(eager, jitted)
  single = jax.jit(dsprites.render)(dsprites.index_to_factors(indices[3]))
  np.testing.assert_array_equal(single, eager[3])
