"""Tests for the disentanglement scores and the ground-truth factor sources."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax.evaluation import disentanglement as dis
from vae_jax.evaluation import factor_codes
from vae_jax.data import dsprites, factors
from vae_jax.errors import DataError

jax.config.update('jax_numpy_rank_promotion', 'raise')


class FactorImages:
  """A cheap factor source whose 'images' [N, F, 1, 1] are the factors in [0, 1]."""
  factor_names = ('a', 'b', 'c', 'd', 'e')
  factor_sizes = (3, 4, 6, 5, 8)

  def sample_factors(self, rng: np.random.Generator, num: int) -> np.ndarray:
    """Uniform factor classes int32 [num, 5]."""
    return factors.uniform_factors(rng, num, self.factor_sizes)

  def images(self, classes: np.ndarray) -> np.ndarray:
    """Each factor class scaled to [0, 1], as float32 [num, 5, 1, 1]."""
    values = classes / (np.asarray(self.factor_sizes) - 1.0)
    return values.astype(np.float32)[:, :, None, None]


SOURCE = FactorImages()
NUM_FACTORS = len(SOURCE.factor_sizes)
ROTATION = np.linalg.qr(np.random.default_rng(7).normal(size=(5, 5)))[0]


def identity(x: np.ndarray) -> np.ndarray:
  """Codes = the normalised factor values."""
  return x.reshape(len(x), -1).astype(np.float64)


def zero(x: np.ndarray) -> np.ndarray:
  """A representation that carries no information."""
  return np.zeros((len(x), NUM_FACTORS))


def duplicated(x: np.ndarray) -> np.ndarray:
  """Every factor coded twice (10 latents)."""
  return np.concatenate([identity(x), identity(x)], axis=1)


def rotated(x: np.ndarray) -> np.ndarray:
  """A random rotation of the identity: informative but entangled."""
  return identity(x) @ ROTATION


def noise_fn(seed: int):
  """A representation of pure Gaussian noise, independent of the images."""
  rng = np.random.default_rng(seed)
  return lambda x: rng.normal(size=(len(x), NUM_FACTORS))


def rng(seed: int = 0) -> np.random.Generator:
  return np.random.default_rng(seed)


# ------------------------------------------------------------------ scores


def test_identity_scores_high():
  beta = dis.beta_vae_score(identity, SOURCE, rng(), batch_size=16,
                            num_train=200, num_eval=100)
  factor = dis.factor_vae_score(identity, SOURCE, rng(), batch_size=16,
                                num_train=200, num_eval=100,
                                num_variance_estimate=500)
  assert beta['eval_accuracy'] >= 0.9 and beta['train_accuracy'] >= 0.9
  assert factor['eval_accuracy'] >= 0.9 and factor['train_accuracy'] >= 0.9
  assert factor['num_active_dims'] == NUM_FACTORS
  assert dis.mig(identity, SOURCE, rng(), num_train=1000)['mig'] >= 0.9
  scores = dis.dci(identity, SOURCE, rng(), num_train=300, num_test=200)
  assert scores['disentanglement'] >= 0.9
  assert scores['completeness'] >= 0.9
  assert scores['informativeness_test'] >= 0.9


def test_zero_representation_scores_low():
  factor = dis.factor_vae_score(zero, SOURCE, rng(), batch_size=16,
                                num_train=100, num_eval=50,
                                num_variance_estimate=200)
  assert factor == {'train_accuracy': 0.0, 'eval_accuracy': 0.0,
                    'num_active_dims': 0}
  assert dis.mig(zero, SOURCE, rng(), num_train=500)['mig'] <= 0.2


def test_factor_vae_prunes_small_dims():
  def with_tiny(x):  # a sixth latent with std 0.01 < 0.05: not active
    return np.concatenate([identity(x), 0.01 * rng(len(x)).normal(size=(len(x), 1))], 1)
  scores = dis.factor_vae_score(with_tiny, SOURCE, rng(), batch_size=16,
                                num_train=100, num_eval=50,
                                num_variance_estimate=500)
  assert scores['num_active_dims'] == NUM_FACTORS
  assert scores['eval_accuracy'] >= 0.9


def test_duplicated_latents():
  assert dis.mig(duplicated, SOURCE, rng(), num_train=1000)['mig'] <= 0.1
  scores = dis.dci(duplicated, SOURCE, rng(), num_train=300, num_test=100)
  assert scores['disentanglement'] >= 0.9
  # Each factor's importance is split in half over 10 latents.
  assert scores['completeness'] == pytest.approx(1 - math.log(2) / math.log(10),
                                                 abs=0.05)


def test_sap_identity_beats_rotation():
  identity_sap = dis.sap(identity, SOURCE, rng(), num_train=500, num_test=300)
  rotated_sap = dis.sap(rotated, SOURCE, rng(), num_train=500, num_test=300)
  assert identity_sap['sap'] > rotated_sap['sap'] + 0.05


def test_noise_scores_low():
  beta = dis.beta_vae_score(noise_fn(1), SOURCE, rng(), batch_size=16,
                            num_train=200, num_eval=200)
  assert beta['eval_accuracy'] <= 0.5
  assert dis.mig(noise_fn(2), SOURCE, rng(), num_train=1000)['mig'] <= 0.1


def test_dci_from_importance_closed_forms():
  diagonal = np.diag(np.full(5, 3.0))
  assert dis.dci_from_importance(diagonal) == pytest.approx((1.0, 1.0))
  # One latent per two factors: disentanglement 1 − log 2 / log 10.
  shared = np.hstack([diagonal, diagonal])
  d, c = dis.dci_from_importance(shared)
  assert d == pytest.approx(1 - math.log(2) / math.log(10))
  assert c == pytest.approx(1.0)
  # Uninformative: all zero.
  assert dis.dci_from_importance(np.zeros((4, 3))) == pytest.approx((0, 0), abs=1e-6)


def test_histogram_discretize_and_top_two_gap():
  codes = np.array([[0.0, 5.0], [0.5, 5.0], [1.0, 5.0]])
  bins = dis.histogram_discretize(codes, num_bins=2)
  np.testing.assert_array_equal(bins[:, 0], [1, 2, 2])
  assert len(np.unique(bins[:, 1])) == 1
  gap = dis.top_two_gap(np.array([[0.1, 0.9], [0.7, 0.2], [0.3, 0.4]]))
  np.testing.assert_allclose(gap, [0.4, 0.5])


@pytest.mark.slow
def test_all_scores_keys_and_determinism():
  first = dis.all_scores(rotated, SOURCE, seed=3, divisor=100)
  assert tuple(first) == dis.SCORE_KEYS
  assert all(isinstance(v, float) for v in first.values())
  assert dis.all_scores(rotated, SOURCE, seed=3, divisor=100) == first


def test_representation_shape_checked():
  with pytest.raises(ValueError, match='codes'):
    dis.mig(lambda x: np.zeros(len(x)), SOURCE, rng(), num_train=10)


# ------------------------------------------------------------ factor sources


def test_dsprites_factors_match_render():
  source = factors.factor_source('dsprites')
  assert source.factor_names == ('shape', 'scale', 'orientation', 'pos_x', 'pos_y')
  assert source.factor_sizes == (3, 6, 40, 32, 32)
  classes = source.sample_factors(rng(), 2000)
  assert classes.shape == (2000, 5) and classes.dtype == np.int32
  assert classes.min() == 0
  np.testing.assert_array_equal(classes.max(axis=0), np.array(source.factor_sizes) - 1)
  few = classes[:37]
  images = source.images(few)
  assert images.shape == (37, 64, 64, 1) and images.dtype == np.float32
  full = jnp.concatenate([jnp.zeros((37, 1), jnp.int32), jnp.asarray(few)], axis=1)
  np.testing.assert_array_equal(images, np.asarray(jax.vmap(dsprites.render)(full)))
  assert source.images(classes[:1030]).shape == (1030, 64, 64, 1)


def _tiny_labelled(num: int = 20):
  """Random uint8 images [num, 4, 4, 3] with distinct factor classes [num, 3]."""
  sizes = (2, 3, 5)
  flat = rng(5).choice(math.prod(sizes), num, replace=False)
  labels = np.stack(np.unravel_index(flat, sizes), axis=1)
  images = rng(6).integers(0, 256, (num, 4, 4, 3)).astype(np.uint8)
  return images, labels, sizes


def test_tfds_factors_indexing():
  images, labels, sizes = _tiny_labelled()
  source = factors.TFDSFactors(images, labels, sizes, ('x', 'y', 'z'))
  order = rng(1).permutation(len(labels))
  out = source.images(labels[order])
  np.testing.assert_allclose(out, images[order] / 255.0)
  assert out.dtype == np.float32
  binary = factors.TFDSFactors(images, labels, sizes, ('x', 'y', 'z'),
                               binary=True)
  np.testing.assert_array_equal(binary.images(labels[:3]), images[:3] > 0)
  missing = next(f for f in np.ndindex(*sizes) if not (labels == f).all(1).any())
  with pytest.raises(DataError, match='no example with factor classes'):
    source.images(np.array([missing]))


def test_tfds_dsprites_mocked():
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=12):
    source = factors.factor_source('tfds:dsprites')
  assert source.factor_names == ('shape', 'scale', 'orientation', 'pos_x', 'pos_y')
  assert source.factor_sizes == (3, 6, 40, 32, 32)
  assert source.num_examples == 12
  with tfds.testing.mock_data(num_examples=12):
    examples = list(tfds.as_numpy(tfds.load('dsprites', split='train')))
  keys = ('label_shape', 'label_scale', 'label_orientation', 'label_x_position',
          'label_y_position')
  labels = np.array([[ex[k] for k in keys] for ex in examples])
  # Query combinations that occur once (mock labels are random).
  _, first, counts = np.unique(labels, axis=0, return_index=True, return_counts=True)
  rows = first[counts == 1]
  expected = np.stack([examples[i]['image'] > 0 for i in rows]).astype(np.float32)
  np.testing.assert_array_equal(source.images(labels[rows]), expected)


def test_tfds_not_prepared_raises_one_line(tmp_path):
  pytest.importorskip('tensorflow_datasets')
  with pytest.raises(DataError, match='not prepared') as error:
    factors.factor_source('tfds:shapes3d', tfds_data_dir=str(tmp_path))
  assert '\n' not in str(error.value)
  assert 'tfds build shapes3d' in str(error.value)


def test_unknown_factor_source():
  with pytest.raises(DataError, match='Unknown factor source'):
    factors.factor_source('mnist')


# ------------------------------------- encoded once, fitted in parallel: same numbers


def _jitted_mlp_representation():
  """A fixed random MLP encoder of SOURCE's images run by XLA, whose batch shapes are
  what encode-once changes: its 2048-wide contraction is blocked and vectorised."""
  w1 = jnp.asarray(rng(11).normal(size=(NUM_FACTORS, 2048)), jnp.float32)
  w2 = jnp.asarray(rng(12).normal(size=(2048, 6)) / 45, jnp.float32)
  encode = jax.jit(lambda x: jnp.tanh(x.reshape(len(x), -1) @ w1) @ w2)
  return lambda x: np.asarray(encode(jnp.asarray(x)))


def test_scores_encoded_once_and_fitted_in_parallel_equal_each_draw_in_sequence():
  representation = _jitted_mlp_representation()
  calls = []
  counted = lambda x: calls.append(len(x)) or representation(x)
  reference = dis.all_scores(counted, SOURCE, seed=5, divisor=100, encode_once=False,
                             workers=1)
  drawn, calls[:] = sum(calls), []
  fast = dis.all_scores(counted, SOURCE, seed=5, divisor=100, workers=3)
  assert fast == reference  # exactly: every score, every bit, with 3 fit threads or 1
  encoded = sum(calls)
  assert set(calls) == {factor_codes.ENCODE_BATCH}  # one compiled shape
  assert encoded < drawn / 3


def test_factor_codes_encode_each_combination_once():
  seen = []
  codes_of = factor_codes.FactorCodes(lambda x: seen.append(x.copy()) or identity(x), SOURCE)
  draws = SOURCE.sample_factors(rng(), 3000)
  np.testing.assert_array_equal(codes_of(draws), identity(SOURCE.images(draws)))
  images = np.concatenate(seen)
  assert len(images) == len(seen) * factor_codes.ENCODE_BATCH
  unique = np.unique(images.reshape(len(images), -1), axis=0)
  assert len(unique) == len(np.unique(draws, axis=0))  # the padding repeats, no more
  before = len(seen)
  np.testing.assert_array_equal(codes_of(draws[:10]), identity(SOURCE.images(draws[:10])))
  assert len(seen) == before  # all known: nothing encoded
  assert factor_codes.factor_codes(codes_of, SOURCE) is codes_of


def test_a_stop_does_not_wait_for_the_fits_still_running():
  """A signal's exception while fits run in threads propagates at once: the pool
  is not joined (the fits here block until the test releases them, 10 s on)."""
  import signal  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  from vae_jax.evaluation import dci_sap  # pylint: disable=g-import-not-at-top

  class Stop(Exception):
    pass

  release = threading.Event()
  def stop(signum, frame):
    raise Stop()
  previous = signal.signal(signal.SIGALRM, stop)
  releaser = threading.Timer(10.0, release.set)  # a joined pool would wait for this
  releaser.start()
  try:
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    with pytest.raises(Stop):
      dci_sap.in_parallel([release.wait, release.wait], workers=2)
    assert not release.is_set()  # it stopped while the fits were still running
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)
    release.set()
    releaser.cancel()
