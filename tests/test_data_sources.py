"""Tests for vae_jax.data.idx and vae_jax.data.image_arrays (no network)."""

import gzip
import os
import struct

import numpy as np
import pytest

from vae_jax.data import idx
from vae_jax.data import image_arrays
from vae_jax.errors import DataError

NUM_TRAIN, NUM_TEST = 50, 20
FILE_NAMES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
              't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')
DEBIAN_FASHION_DIR = '/usr/share/datasets/fashion-mnist'


def _fixture_arrays(seed: int = 0) -> dict:
  """Small MNIST-like train/test arrays: uint8 [N, 28, 28] images, labels 0..9."""
  rng = np.random.default_rng(seed)
  return {
      'train_images': rng.integers(0, 256, (NUM_TRAIN, 28, 28), dtype=np.uint8),
      'train_labels': (np.arange(NUM_TRAIN) % 10).astype(np.uint8),
      'test_images': rng.integers(0, 256, (NUM_TEST, 28, 28), dtype=np.uint8),
      'test_labels': (np.arange(NUM_TEST) * 3 % 10).astype(np.uint8),
  }


def _write_fixture_dir(directory, arrays: dict) -> str:
  """Writes `arrays` as IDX files: train gzipped, test raw (both are accepted)."""
  os.makedirs(directory, exist_ok=True)
  files = zip(FILE_NAMES, ('train_images', 'train_labels', 'test_images',
                           'test_labels'), ('.gz', '.gz', '', ''))
  for basename, key, suffix in files:
    idx.write_idx(os.path.join(directory, basename + suffix), arrays[key])
  return str(directory)


@pytest.fixture(name='fixture_dir')
def fixture_dir_fixture(tmp_path):
  return _write_fixture_dir(tmp_path / 'idx', _fixture_arrays())


def _assert_one_line(error: pytest.ExceptionInfo) -> str:
  message = str(error.value)
  assert '\n' not in message
  return message


# ------------------------------------------------------------------------ idx


@pytest.mark.parametrize('suffix', ['', '.gz'])
@pytest.mark.parametrize('shape', [(7,), (5, 28, 28)])
def test_idx_round_trip(tmp_path, suffix, shape):
  array = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
  path = str(tmp_path / f'a-idx{suffix}')
  idx.write_idx(path, array)
  result = idx.read_idx(path)
  assert result.dtype == np.uint8
  assert result.shape == shape
  np.testing.assert_array_equal(result, array)


def test_write_idx_uses_the_mnist_header(tmp_path):
  path = str(tmp_path / 'images-idx3-ubyte.gz')
  idx.write_idx(path, np.zeros((3, 28, 27), np.uint8))
  with gzip.open(path, 'rb') as f:
    data = f.read()
  assert data[:16] == struct.pack('>IIII', 0x00000803, 3, 28, 27)
  assert len(data) == 16 + 3 * 28 * 27


def test_idx_round_trip_int32(tmp_path):
  array = np.array([[-5, 70000], [1, 2]], np.int32)
  path = str(tmp_path / 'a-idx')
  idx.write_idx(path, array)
  np.testing.assert_array_equal(idx.read_idx(path), array)


@pytest.mark.parametrize('suffix', ['', '.gz'])
def test_read_idx_truncated_raises(tmp_path, suffix):
  path = str(tmp_path / f'images{suffix}')
  idx.write_idx(path, np.ones((4, 28, 28), np.uint8))
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:-30])
  with pytest.raises(DataError, match='truncated') as error:
    idx.read_idx(path)
  assert path in _assert_one_line(error)


def test_read_idx_bad_magic_and_missing_file(tmp_path):
  path = str(tmp_path / 'not-idx')
  with open(path, 'wb') as f:
    f.write(b'hello world, not an IDX file')
  with pytest.raises(DataError, match='not a valid IDX file'):
    idx.read_idx(path)
  with pytest.raises(DataError, match='does not exist'):
    idx.read_idx(str(tmp_path / 'missing'))


def test_find_idx_split(fixture_dir):
  assert idx.find_idx_split(fixture_dir, 'train') == (
      os.path.join(fixture_dir, 'train-images-idx3-ubyte.gz'),
      os.path.join(fixture_dir, 'train-labels-idx1-ubyte.gz'))
  assert idx.find_idx_split(fixture_dir, 'test') == (
      os.path.join(fixture_dir, 't10k-images-idx3-ubyte'),
      os.path.join(fixture_dir, 't10k-labels-idx1-ubyte'))


def test_find_idx_split_missing_names_the_files(tmp_path):
  with pytest.raises(DataError) as error:
    idx.find_idx_split(str(tmp_path), 'test')
  message = _assert_one_line(error)
  assert str(tmp_path) in message
  assert 't10k-images-idx3-ubyte' in message
  assert 't10k-labels-idx1-ubyte' in message


# --------------------------------------------------------------- local dir


def test_load_local_dir(fixture_dir):
  expected = _fixture_arrays()
  data = image_arrays.load_image_arrays('mnist', local_dir=fixture_dir)
  assert data.train_images.shape == (NUM_TRAIN, 28, 28, 1)
  assert data.test_images.shape == (NUM_TEST, 28, 28, 1)
  assert data.train_images.dtype == data.test_images.dtype == np.uint8
  assert data.train_labels.dtype == data.test_labels.dtype == np.int32
  np.testing.assert_array_equal(data.train_images[..., 0],
                                expected['train_images'])
  np.testing.assert_array_equal(data.test_images[..., 0],
                                expected['test_images'])
  np.testing.assert_array_equal(data.train_labels, expected['train_labels'])
  np.testing.assert_array_equal(data.test_labels, expected['test_labels'])
  assert data.num_classes == 10
  assert data.source == fixture_dir


def test_local_dir_missing_files_raises(tmp_path):
  with pytest.raises(DataError) as error:
    image_arrays.load_image_arrays('mnist', local_dir=str(tmp_path))
  message = _assert_one_line(error)
  assert str(tmp_path) in message
  for name in FILE_NAMES:
    assert name in message


def test_local_dir_not_a_directory_raises(tmp_path):
  with pytest.raises(DataError, match='local_dir') as error:
    image_arrays.load_image_arrays('mnist', local_dir=str(tmp_path / 'nope'))
  assert FILE_NAMES[0] in _assert_one_line(error)


def test_local_dir_mismatched_labels_raises(tmp_path):
  arrays = _fixture_arrays()
  arrays['test_labels'] = arrays['test_labels'][:-1]
  directory = _write_fixture_dir(tmp_path / 'bad', arrays)
  with pytest.raises(DataError, match='one label per image') as error:
    image_arrays.load_image_arrays('mnist', local_dir=directory)
  _assert_one_line(error)


# ------------------------------------------------------------------ Debian


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION_DIR),
                    reason=f'{DEBIAN_FASHION_DIR} absent (apt-get install '
                    'dataset-fashion-mnist)')
def test_debian_fashion_mnist():
  data = image_arrays.load_image_arrays('fashion_mnist')
  assert data.source == DEBIAN_FASHION_DIR
  assert data.train_images.shape == (60000, 28, 28, 1)
  assert data.test_images.shape == (10000, 28, 28, 1)
  assert data.train_images.dtype == np.uint8
  assert data.train_images.max() == 255
  for labels in (data.train_labels, data.test_labels):
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(np.unique(labels), np.arange(10))
  assert data.num_classes == 10


def test_debian_dir_lookup(monkeypatch, fixture_dir, tmp_path):
  monkeypatch.setitem(image_arrays.DEBIAN_DIRS, 'fashion_mnist', fixture_dir)
  data = image_arrays.load_image_arrays(
      'fashion_mnist', tfds_data_dir=str(tmp_path / 'tfds'))
  assert data.source == fixture_dir
  assert data.train_images.shape == (NUM_TRAIN, 28, 28, 1)
  np.testing.assert_array_equal(data.test_labels,
                                _fixture_arrays()['test_labels'])


def test_local_dir_wins_over_debian_dir(monkeypatch, tmp_path):
  debian_dir = _write_fixture_dir(tmp_path / 'debian', _fixture_arrays(1))
  local_dir = _write_fixture_dir(tmp_path / 'local', _fixture_arrays(2))
  monkeypatch.setitem(image_arrays.DEBIAN_DIRS, 'fashion_mnist', debian_dir)
  data = image_arrays.load_image_arrays('fashion_mnist', local_dir=local_dir)
  assert data.source == local_dir
  np.testing.assert_array_equal(data.train_images[..., 0],
                                _fixture_arrays(2)['train_images'])


# -------------------------------------------------------------------- TFDS


def test_tfds_mnist_mocked():
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=12):
    data = image_arrays.load_image_arrays('mnist')
  for images, labels in ((data.train_images, data.train_labels),
                         (data.test_images, data.test_labels)):
    assert images.shape == (12, 28, 28, 1)
    assert images.dtype == np.uint8
    assert labels.shape == (12,)
    assert labels.dtype == np.int32
    assert labels.min() >= 0 and labels.max() < 10
  assert data.num_classes == 10
  assert data.source.startswith('tfds:mnist in ')


def test_tfds_binarized_mnist_maps_to_0_255():
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=6, max_value=2):  # values 0, 1
    data = image_arrays.load_image_arrays('binarized_mnist')
  assert data.train_images.shape == data.test_images.shape == (6, 28, 28, 1)
  assert data.train_images.dtype == np.uint8
  assert set(np.unique(data.train_images)) == {0, 255}
  np.testing.assert_array_equal(data.train_labels, np.zeros(6, np.int32))
  assert data.num_classes == 0


# --------------------------------------------------------- nothing available


def test_unknown_dataset_raises():
  with pytest.raises(DataError, match='not a known dataset') as error:
    image_arrays.load_image_arrays('no_such_dataset_xyz')
  message = _assert_one_line(error)
  assert 'no_such_dataset_xyz' in message
  assert 'local_dir' in message


def test_nothing_available_lists_every_way(monkeypatch, tmp_path):
  empty_debian, empty_tfds = tmp_path / 'debian', tmp_path / 'tfds'
  empty_debian.mkdir()
  empty_tfds.mkdir()
  monkeypatch.setitem(image_arrays.DEBIAN_DIRS, 'fashion_mnist',
                      str(empty_debian))
  with pytest.raises(DataError) as error:
    image_arrays.load_image_arrays('fashion_mnist',
                                   tfds_data_dir=str(empty_tfds))
  message = _assert_one_line(error)
  assert 'fashion_mnist' in message
  assert '--config.data.local_dir=' in message
  for name in FILE_NAMES:
    assert name in message
  assert 'apt-get install dataset-fashion-mnist' in message
  assert 'tfds build fashion_mnist' in message
  assert str(empty_tfds) in message
  assert not os.listdir(empty_tfds)  # nothing was downloaded or created
