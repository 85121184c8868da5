"""Device-resident datasets: batch order from (seed, step), gathering, binarization."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from vae_jax import configs
from vae_jax import data as data_lib
from vae_jax.data import dsprites
from vae_jax.errors import DataError


def _data_config(**overrides) -> ml_collections.ConfigDict:
  config = configs.get_config().data
  config.update(dict(batch_size=32, eval_size=100))
  config.update(overrides)
  return config


def test_epoch_is_a_permutation_and_order_depends_only_on_seed_and_step(fake_mnist_dir):
  dataset = data_lib.load(_data_config(local_dir=fake_mnist_dir))
  steps_per_epoch = dataset.num_train // 32
  epoch0 = np.concatenate([dataset.train_indices(3, s, 32) for s in range(steps_per_epoch)])
  assert sorted(epoch0.tolist()) == list(range(dataset.num_train))
  epoch1 = np.concatenate([dataset.train_indices(3, s, 32)
                           for s in range(steps_per_epoch, 2 * steps_per_epoch)])
  assert not np.array_equal(epoch0, epoch1)  # a fresh permutation each epoch
  # Asking again (as a resumed run would, in any order) gives the same batches.
  np.testing.assert_array_equal(dataset.train_indices(3, 5, 32), epoch0[5 * 32:6 * 32])
  assert not np.array_equal(dataset.train_indices(4, 0, 32), epoch0[:32])


def test_dynamic_binarization_is_bernoulli_of_intensity(fake_mnist_dir):
  dataset = data_lib.load(_data_config(local_dir=fake_mnist_dir))
  indices = jnp.arange(64, dtype=jnp.int32)
  x, y = data_lib.get_batch(dataset.spec, dataset.arrays, 'train', indices,
                            jax.random.key(0))
  assert x.shape == (64, 28, 28, 1) and x.dtype == jnp.float32
  assert set(np.unique(np.asarray(x)).tolist()) <= {0.0, 1.0}
  intensity = np.asarray(dataset.arrays['train_x'][:64], np.float64) / 255.0
  # 50,176 pixels: the binary mean matches the mean intensity to ~3 standard errors.
  assert abs(float(x.mean()) - intensity.mean()) < 3 * 0.5 / np.sqrt(x.size)
  np.testing.assert_array_equal(np.asarray(y), np.arange(64) % 10)
  x2, _ = data_lib.get_batch(dataset.spec, dataset.arrays, 'train', indices,
                             jax.random.key(1))
  assert not np.array_equal(np.asarray(x), np.asarray(x2))


def test_no_binarization_gives_intensities(fake_mnist_dir):
  dataset = data_lib.load(_data_config(local_dir=fake_mnist_dir, binarize='none'))
  x, _ = data_lib.get_batch(dataset.spec, dataset.arrays, 'eval', jnp.arange(4),
                            jax.random.key(0))
  expected = np.asarray(dataset.arrays['eval_x'][:4], np.float32) / 255.0
  np.testing.assert_allclose(np.asarray(x), expected, rtol=0, atol=1e-7)


def test_static_binarization_is_fixed_and_binary(fake_mnist_dir):
  first = data_lib.load(_data_config(local_dir=fake_mnist_dir, binarize='static'))
  second = data_lib.load(_data_config(local_dir=fake_mnist_dir, binarize='static'))
  values = np.unique(np.asarray(first.arrays['train_x']))
  assert set(values.tolist()) == {0, 255}
  np.testing.assert_array_equal(np.asarray(first.arrays['train_x']),
                                np.asarray(second.arrays['train_x']))


def test_dsprites_holds_out_a_fixed_disjoint_evaluation_set():
  dataset = data_lib.load(_data_config(name='dsprites', eval_size=500))
  assert dataset.num_eval == 500 and dataset.num_train == dsprites.NUM_IMAGES - 500
  assert not np.isin(dataset.eval_ids, dataset.train_ids).any()
  again = data_lib.load(_data_config(name='dsprites', eval_size=500))
  np.testing.assert_array_equal(dataset.eval_ids, again.eval_ids)
  batch = dataset.train_indices(0, 7, 64)
  assert not np.isin(batch, dataset.eval_ids).any()
  x, y = data_lib.get_batch(dataset.spec, dataset.arrays, 'train', batch, jax.random.key(0))
  np.testing.assert_array_equal(np.asarray(x), np.asarray(dsprites.render_indices(batch)))
  np.testing.assert_array_equal(np.asarray(y),
                                np.asarray(dsprites.index_to_factors(batch))[:, 1])


def test_batch_larger_than_dataset_is_a_clear_error(fake_mnist_dir):
  with pytest.raises(DataError, match='batch_size'):
    data_lib.load(_data_config(local_dir=fake_mnist_dir, batch_size=1000))


def test_excluded_classes_are_left_out_of_training_only(fake_mnist_dir):
  dataset = data_lib.load(_data_config(local_dir=fake_mnist_dir, exclude_classes=(1, 3)))
  train_labels = np.asarray(dataset.arrays['train_y'])
  assert not np.isin(train_labels, [1, 3]).any() and dataset.num_train == len(train_labels)
  assert set(np.asarray(dataset.arrays['eval_y']).tolist()) == set(range(10))
  with pytest.raises(DataError, match='exclude_classes'):
    data_lib.load(_data_config(local_dir=fake_mnist_dir, exclude_classes=(12,)))
