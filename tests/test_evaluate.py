"""vae_jax.evaluation against closed forms: IW bound, latent diagnostics, AUROC.

The importance-weighted bound is checked on a linear-Gaussian model whose
log p(x) is exact, in float64; Monte Carlo tolerances are a few standard
errors computed from the samples themselves.
"""

import jax

jax.config.update('jax_numpy_rank_promotion', 'raise')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np
import pytest
from scipy import stats

from vae_jax import configs, models, objectives
from vae_jax import train_state
from vae_jax.evaluation import diagnostics
from vae_jax.evaluation import loop as eval_loop
from vae_jax.models import gaussian
from vae_jax.objectives import iw_bound
from vae_jax import data as data_lib

NUM_SIGMAS = 5.0  # Monte Carlo tolerance, in standard errors

# ------------------------------------------------- linear-Gaussian model

D, LATENT, SIGMA = 5, 3, 0.5


def _linear_gaussian(orthogonal: bool = False):
  """(W [D, d], b [D], x [D]) of p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I)."""
  rng = np.random.default_rng(4)
  w = rng.normal(size=(D, LATENT))
  if orthogonal:
    q, _ = np.linalg.qr(w)
    w = q * np.array([1.5, 0.7, 0.3])[None, :]  # diagonal posterior covariance
  b = rng.normal(size=D)
  x = rng.normal(size=D) * 1.5 + b
  return w, b, x


def _log_evidence(w, b, x) -> float:
  """log p(x) = log N(x; b, WWᵀ + σ²I)."""
  return float(stats.multivariate_normal(b, w @ w.T + SIGMA**2 * np.eye(D)).logpdf(x))


def _posterior(w, b, x):
  """(mean, cov) of p(z|x): cov = (I + WᵀW/σ²)⁻¹, mean = cov Wᵀ(x − b)/σ²."""
  cov = np.linalg.inv(np.eye(LATENT) + w.T @ w / SIGMA**2)
  return cov @ w.T @ (x - b) / SIGMA**2, cov


def _model(w, b, mu, logvar):
  """(encode, decode) closures: q(z|x) = N(mu, diag(exp(logvar))) for every x."""
  encode = lambda _: (jnp.asarray(mu), jnp.asarray(logvar))
  w_, b_ = jnp.asarray(w), jnp.asarray(b)
  log_sigma = jnp.asarray(np.log(SIGMA), w_.dtype)
  decode = lambda z: {'mean': w_ @ z + b_, 'log_scale': log_sigma}
  return encode, decode


def _wrong_q(w, b, x):
  """A diagonal q that is not p(z|x): shifted mean, 3× the marginal variances."""
  post_mean, post_cov = _posterior(w, b, x)
  return post_mean + 0.3, np.log(3.0 * np.diag(post_cov))


def _iw_nll_over_keys(encode, decode, x, num_samples: int, num_keys: int, seed: int = 1):
  """nll_iw(k) of the same x for `num_keys` independent keys (float64 numpy)."""
  keys = jax.random.split(jax.random.key(seed), num_keys)
  fn = lambda key: iw_bound.iw_nll_from_log_weights(iw_bound.log_importance_weights(
      encode, decode, 'gaussian_fixed', jnp.asarray(x), key, num_samples))
  return np.asarray(jax.jit(jax.vmap(fn))(keys), np.float64)


def test_iw_nll_from_log_weights_by_hand():
  log_w = jnp.log(jnp.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]]))
  # −log mean(w): −log 2 and −log 0.5.
  np.testing.assert_allclose(np.asarray(iw_bound.iw_nll_from_log_weights(log_w)),
                             [-np.log(2.0), np.log(2.0)], rtol=1e-6)
  # Stable far outside float range: log w ≈ −1000 shifts the answer by +1000.
  far = iw_bound.iw_nll_from_log_weights(jnp.log(jnp.array([1.0, 2.0, 3.0])) - 1000.0)
  np.testing.assert_allclose(float(far), 1000.0 - np.log(2.0), rtol=1e-6)


def test_log_weights_are_exact_at_the_true_posterior():
  # q = p(z|x): every log w_i = log p(x|z) + log p(z) − log p(z|x) = log p(x).
  with jax.enable_x64(True):
    w, b, x = _linear_gaussian(orthogonal=True)
    post_mean, post_cov = _posterior(w, b, x)
    np.testing.assert_allclose(post_cov, np.diag(np.diag(post_cov)), atol=1e-12)
    encode, decode = _model(w, b, post_mean, np.log(np.diag(post_cov)))
    log_w = iw_bound.log_importance_weights(encode, decode, 'gaussian_fixed',
                                            jnp.asarray(x), jax.random.key(0), 100)
    assert log_w.shape == (100,) and log_w.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(log_w), _log_evidence(w, b, x), rtol=1e-12)


def test_log_weight_matches_scipy_densities():
  with jax.enable_x64(True):
    w, b, x = _linear_gaussian()
    mu, logvar = _wrong_q(w, b, x)
    encode, decode = _model(w, b, mu, logvar)
    key = jax.random.key(3)
    log_w = np.asarray(iw_bound.log_importance_weights(encode, decode, 'gaussian_fixed',
                                                       jnp.asarray(x), key, 4))
    # Sample i is the reparameterized draw of fold_in(key, i).
    z = np.stack([np.asarray(gaussian.reparameterize(jax.random.fold_in(key, i),
                                                       jnp.asarray(mu), jnp.asarray(logvar)))
                  for i in range(4)])
    expected = (stats.norm.logpdf(x[None, :], z @ w.T + b, SIGMA).sum(1)
                + stats.norm.logpdf(z).sum(1)
                - stats.norm.logpdf(z, mu, np.exp(0.5 * logvar)).sum(1))
    np.testing.assert_allclose(log_w, expected, rtol=1e-10)


def test_iw_bound_converges_to_the_log_evidence():
  with jax.enable_x64(True):
    w, b, x = _linear_gaussian()
    encode, decode = _model(w, b, *_wrong_q(w, b, x))
    nll = _iw_nll_over_keys(encode, decode, x, num_samples=5000, num_keys=16)
    neg_log_px = -_log_evidence(w, b, x)
    stderr = nll.std() / np.sqrt(len(nll))
    assert abs(nll.mean() - neg_log_px) < 0.05, (nll.mean(), neg_log_px)
    assert abs(nll.mean() - neg_log_px) < NUM_SIGMAS * stderr + 0.01
    assert np.all(np.abs(nll - neg_log_px) < 0.2)


def test_single_sample_bound_is_the_nelbo_in_expectation():
  with jax.enable_x64(True):
    w, b, x = _linear_gaussian()
    mu, logvar = _wrong_q(w, b, x)
    encode, decode = _model(w, b, mu, logvar)
    nll_1 = _iw_nll_over_keys(encode, decode, x, num_samples=1, num_keys=20_000)
    # nelbo = recon + analytic KL (objectives.example_terms), averaged over keys.
    keys = jax.random.split(jax.random.key(2), 20_000)
    terms = jax.vmap(lambda k: objectives.example_terms(
        encode, decode, 'gaussian_fixed', jnp.asarray(x), k))(keys)
    nelbo = np.asarray(terms.nelbo)
    # Closed form: −E_q[log p(x|z)] + KL(q || p(z)).
    var = np.exp(logvar)
    exact = (-stats.norm.logpdf(x, w @ mu + b, SIGMA).sum()
             + np.sum((w * w) @ var) / (2 * SIGMA**2)
             + 0.5 * np.sum(mu * mu + var - 1.0 - logvar))
    se_iw, se_nelbo = nll_1.std() / np.sqrt(len(nll_1)), nelbo.std() / np.sqrt(len(nelbo))
    assert abs(nll_1.mean() - exact) < NUM_SIGMAS * se_iw
    assert abs(nelbo.mean() - exact) < NUM_SIGMAS * se_nelbo
    assert abs(nll_1.mean() - nelbo.mean()) < NUM_SIGMAS * np.hypot(se_iw, se_nelbo)
    assert exact > -_log_evidence(w, b, x) + 1.0  # q is far enough from p(z|x) to matter


def test_iw_bound_decreases_with_k():
  with jax.enable_x64(True):
    w, b, x = _linear_gaussian()
    encode, decode = _model(w, b, *_wrong_q(w, b, x))
    keys = jax.random.split(jax.random.key(1), 256)
    log_w = jax.jit(jax.vmap(lambda key: iw_bound.log_importance_weights(
        encode, decode, 'gaussian_fixed', jnp.asarray(x), key, 1000)))(keys)
    # Sample i comes from fold_in(key, i): the first k of 1000 draws ARE the k-sample
    # draws (checked once, to rounding), so every k uses the same keys and differences are paired.
    first_10 = iw_bound.log_importance_weights(encode, decode, 'gaussian_fixed',
                                               jnp.asarray(x), keys[0], 10)
    np.testing.assert_allclose(np.asarray(first_10), np.asarray(log_w[0, :10]), rtol=1e-12)
    nll = {k: np.asarray(iw_bound.iw_nll_from_log_weights(log_w[:, :k]))
           for k in (1, 10, 100, 1000)}
    neg_log_px = -_log_evidence(w, b, x)
    for small, large in ((1, 10), (10, 100), (100, 1000)):
      diff = nll[large] - nll[small]
      stderr = diff.std() / np.sqrt(len(diff))
      assert diff.mean() <= 3.0 * stderr, (small, large, diff.mean(), stderr)
    assert nll[1].mean() - nll[10].mean() > 1.0
    assert nll[10].mean() - nll[100].mean() > 0.1
    assert nll[1000].mean() > neg_log_px - 0.02  # a bound, up to MC error


def test_chunked_example_nll_equals_unchunked():
  with jax.enable_x64(True):
    w, b, x = _linear_gaussian()
    encode, decode = _model(w, b, *_wrong_q(w, b, x))
    key = jax.random.key(7)
    full = iw_bound.iw_nll_from_log_weights(iw_bound.log_importance_weights(
        encode, decode, 'gaussian_fixed', jnp.asarray(x), key, 50))
    for chunk in (16, 64):  # 50 = 3·16 + 2: the last chunk is masked; 64 > k
      chunked = iw_bound.example_iw_nll(encode, decode, 'gaussian_fixed', jnp.asarray(x),
                                        key, 50, chunk)
      np.testing.assert_allclose(float(chunked), float(full), rtol=1e-12)


# ------------------------------------------------- a real (tiny) model

IMAGE_SHAPE = (8, 8, 1)
NUM_EVAL, NUM_CLASSES, EVAL_BATCH, SEED = 10, 4, 4, 3  # 10 = 4 + 4 + 2 (padded)


def _dataset() -> data_lib.Dataset:
  """Random uint8 images, dynamically binarized: the eval key convention matters."""
  rng = np.random.default_rng(0)
  train_x = rng.integers(0, 256, (16,) + IMAGE_SHAPE, dtype=np.uint8)
  eval_x = rng.integers(0, 256, (NUM_EVAL,) + IMAGE_SHAPE, dtype=np.uint8)
  spec = data_lib.DataSpec(name='tiny', procedural=False, image_shape=IMAGE_SHAPE,
                           num_classes=NUM_CLASSES, binarize='dynamic')
  arrays = {'train_x': jnp.asarray(train_x),
            'train_y': jnp.asarray(np.arange(16) % NUM_CLASSES, jnp.int32),
            'eval_x': jnp.asarray(eval_x),
            'eval_y': jnp.asarray(np.arange(NUM_EVAL) % NUM_CLASSES, jnp.int32)}
  return data_lib.Dataset(spec=spec, arrays=arrays, train_ids=None,
                          eval_ids=np.arange(NUM_EVAL, dtype=np.int32), num_train=16,
                          source='test fixture')


def _config(objective: str = 'elbo'):
  config = configs.make_tiny(configs.get_config())  # 16 hidden units, 3 latents
  config.seed = SEED
  config.data.batch_size = 4
  config.model.conditional = True  # labels reach encode and decode
  config.objective.name = objective
  configs.validate(config)
  return config


@pytest.fixture(name='tiny', scope='module')
def tiny_fixture():
  """(dataset, spec, state) with a z-sensitive decoder: q(z|x) is far from p(z|x)."""
  dataset = _dataset()
  spec = train_state.make_spec(_config(), dataset.spec)
  state = train_state.init_state(spec, SEED)
  params = jax.tree.map(lambda p: p, state.params)
  dense0 = params['params']['decoder']['Dense_0']
  params['params']['decoder']['Dense_0'] = dict(dense0, kernel=4.0 * dense0['kernel'])
  return dataset, spec, state.replace(params=params)


def _iw(tiny, num_samples, chunk_size, batch_size=EVAL_BATCH):
  dataset, spec, state = tiny
  return eval_loop.importance_weighted_nll(state.params, spec, dataset, num_samples,
                                           seed=SEED, batch_size=batch_size,
                                           chunk_size=chunk_size)


def _nelbo(tiny, batch_size: int) -> float:
  dataset, spec, state = tiny
  terms = eval_loop.elbo_terms(state.params, spec, dataset, seed=SEED, batch_size=batch_size)
  return float(np.mean(terms['nelbo'], dtype=np.float64))


def posterior_moments(params, spec: train_state.StepSpec, dataset: data_lib.Dataset, *,
                      seed: int,
                      batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(mu [N, D], logvar [N, D], labels [N]) of q(z|x) over the evaluation set."""
  out = eval_loop.elbo_terms(params, spec, dataset, seed=seed, batch_size=batch_size)
  return out['mu'], out['logvar'], out['labels']


def test_iw_nll_of_a_model_is_below_its_nelbo(tiny):
  dataset, spec, state = tiny
  nll = _iw(tiny, 64, 64)
  assert nll.shape == (NUM_EVAL,) and np.all(np.isfinite(nll))
  nelbo = _nelbo(tiny, EVAL_BATCH)
  assert nll.mean() <= nelbo + 1e-3, (nll.mean(), nelbo)
  assert nll.mean() > 0.0


def test_chunked_model_nll_equals_unchunked(tiny):
  # 64 = 2·24 + 16: the last chunk is partly masked.
  np.testing.assert_allclose(_iw(tiny, 64, 24), _iw(tiny, 64, 64), rtol=1e-5)


def test_model_nll_uses_the_eval_key_convention(tiny):
  # Example 5's binarization and samples are keyed by its index alone.
  dataset, spec, state = tiny
  nll = _iw(tiny, 64, 24)  # compiled by the test above
  data_key, sample_key = jax.random.split(eval_loop.eval_key(SEED))
  x5, y5 = data_lib.gather(dataset.spec, dataset.arrays, 'eval', jnp.asarray([5], jnp.int32))
  x = jax.random.bernoulli(jax.random.fold_in(data_key, 5), x5).astype(jnp.float32)
  y = jnp.concatenate([y5, y5])
  x = jnp.concatenate([x, x])  # index 1 below is example 5
  assert set(np.unique(np.asarray(x))) <= {0.0, 1.0}  # binarized
  key = jax.random.fold_in(sample_key, 5)
  model = spec.model
  encode = lambda x_: model.apply(state.params, x_, y[1], method=models.VAE.encode)
  decode = lambda z: model.apply(state.params, z, y[1], method=models.VAE.decode)
  log_w = jax.jit(lambda x_, key_: iw_bound.log_importance_weights(
      encode, decode, spec.likelihood, x_, key_, 64))(x[1], key)
  np.testing.assert_allclose(nll[5], float(iw_bound.iw_nll_from_log_weights(log_w)),
                             rtol=1e-5)
  # posterior_moments sees the same binarized x.
  mu, logvar, labels = posterior_moments(state.params, spec, dataset, seed=SEED,
                                         batch_size=EVAL_BATCH)
  assert mu.shape == logvar.shape == (NUM_EVAL, 3)
  np.testing.assert_array_equal(labels, np.arange(NUM_EVAL) % NUM_CLASSES)
  mu_5, logvar_5 = encode(x[1])
  np.testing.assert_allclose(mu[5], np.asarray(mu_5), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(logvar[5], np.asarray(logvar_5), rtol=1e-5, atol=1e-6)


def test_autoencoder_has_no_iw_nll(tiny):
  dataset = tiny[0]
  spec = train_state.make_spec(_config('ae'), dataset.spec)
  with pytest.raises(ValueError, match="'ae'"):
    eval_loop.importance_weighted_nll(tiny[2].params, spec, dataset, 10, seed=SEED,
                                      batch_size=EVAL_BATCH)


# ------------------------------------------------- latent diagnostics


def test_active_units_counts_varying_means():
  rng = np.random.default_rng(0)
  scale = np.array([1.0, 0.01, 1.0, 0.01, 0.01])  # variances 1 and 1e-4
  mu = rng.normal(size=(5000, 5)) * scale[None, :]
  count, activity = diagnostics.active_units(mu)
  assert count == 2
  assert activity.shape == (5,)
  np.testing.assert_allclose(activity, scale**2, rtol=0.1)
  assert diagnostics.active_units(mu, threshold=2.0)[0] == 0


def test_aggregate_posterior_matching_the_prior():
  # mu ~ N(0, ½), q(z|x) variance ½: q(z) = N(0, ½ + ½) = N(0, I).
  rng = np.random.default_rng(1)
  mu = rng.normal(scale=np.sqrt(0.5), size=(20_000, 4))
  logvar = np.full((20_000, 4), np.log(0.5))
  stats_ = diagnostics.aggregate_posterior_stats(mu, logvar)
  np.testing.assert_allclose(stats_['variance'], 1.0, atol=0.03)
  np.testing.assert_allclose(stats_['mean'], 0.0, atol=0.03)
  np.testing.assert_allclose(stats_['mean_posterior_variance'], 0.5, rtol=1e-12)
  assert 0.0 <= stats_['kl_moment_matched'] < 2e-3
  assert isinstance(stats_['kl_moment_matched'], float)
  assert all(isinstance(v, float) for v in stats_['variance'])


def test_aggregate_posterior_shifted_closed_form():
  rng = np.random.default_rng(2)
  shift, spread, post_var = np.array([1.0, -2.0, 0.0]), np.array([0.5, 1.0, 0.1]), 0.2
  mu = shift + spread * rng.normal(size=(50_000, 3))
  logvar = np.full_like(mu, np.log(post_var))
  stats_ = diagnostics.aggregate_posterior_stats(mu, logvar)
  # Law of total variance with the sample moments: exact.
  m, v = mu.mean(0), post_var + mu.var(0)
  np.testing.assert_allclose(stats_['variance'], v, rtol=1e-12)
  exact = 0.5 * np.sum(v + m * m - 1.0 - np.log(v))
  np.testing.assert_allclose(stats_['kl_moment_matched'], exact, rtol=1e-12)
  np.testing.assert_allclose(np.sum(stats_['kl_moment_matched_per_dim']), exact, rtol=1e-12)
  # ... and the population values, to sampling error.
  v_pop = post_var + spread**2
  kl_pop = 0.5 * np.sum(v_pop + shift**2 - 1.0 - np.log(v_pop))
  np.testing.assert_allclose(stats_['kl_moment_matched'], kl_pop, rtol=0.02)


def test_aggregate_posterior_kl_with_the_cross_covariances():
  # Means correlated across dimensions: q(z) = N(0, Σ + s²I) with Σ's off-diagonal
  # ρ. The diagonal fit cannot see ρ; the full-covariance KL is the closed form.
  rng = np.random.default_rng(3)
  rho, post_var = 0.6, 0.3
  cov_mu = np.array([[0.7, rho * 0.7], [rho * 0.7, 0.7]])
  mu = rng.multivariate_normal(np.zeros(2), cov_mu, size=200_000)
  logvar = np.full_like(mu, np.log(post_var))
  stats_ = diagnostics.aggregate_posterior_stats(mu, logvar)
  sample_cov = np.cov(mu, rowvar=False, bias=True) + post_var * np.eye(2)
  m = mu.mean(0)
  exact = 0.5 * (np.trace(sample_cov) + m @ m - 2 - np.linalg.slogdet(sample_cov)[1])
  np.testing.assert_allclose(stats_['kl_moment_matched_full_cov'], exact, rtol=1e-10)
  population = cov_mu + post_var * np.eye(2)
  kl_pop = 0.5 * (np.trace(population) - 2 - np.linalg.slogdet(population)[1])
  np.testing.assert_allclose(stats_['kl_moment_matched_full_cov'], kl_pop, rtol=0.02)
  # The correlation is what the diagonal fit misses (Hadamard: full ≥ diagonal).
  assert stats_['kl_moment_matched'] < 1e-3  # each marginal variance is 0.7 + 0.3 = 1
  assert stats_['kl_moment_matched_full_cov'] > 0.09  # −½ log(1 − 0.42²) = 0.097
  one_dim = diagnostics.aggregate_posterior_stats(mu[:, :1], logvar[:, :1])
  assert one_dim['kl_moment_matched_full_cov'] == pytest.approx(one_dim['kl_moment_matched'],
                                                                rel=1e-10)


def test_held_out_mmd_equals_the_training_penalty_and_separates_distributions():
  from vae_jax.objectives import penalties  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(4)
  codes, prior = rng.normal(size=(300, 3)) * 1.3 + 0.2, rng.normal(size=(300, 3))
  with jax.enable_x64(True):
    reference = float(penalties.mmd_imq(jnp.asarray(codes), jnp.asarray(prior)))
  # Blocked (MMD_BLOCK rows at a time, the last block short) = the one-matrix statistic.
  old_block = diagnostics.MMD_BLOCK
  try:
    diagnostics.MMD_BLOCK = 128
    assert diagnostics.mmd_to_prior(codes, prior) == pytest.approx(reference, rel=1e-9)
  finally:
    diagnostics.MMD_BLOCK = old_block
  # Unbiased: for codes that are prior draws it averages 0; a shift is detected.
  same = [diagnostics.mmd_to_prior(rng.normal(size=(400, 3)), rng.normal(size=(400, 3)))
          for _ in range(30)]
  assert abs(np.mean(same)) < 4 * np.std(same) / np.sqrt(len(same))
  assert reference > 10 * np.std(same)


# ------------------------------------------------- anomaly detection


def test_auroc_known_cases():
  labels = np.array([0, 0, 0, 1, 1])
  assert diagnostics.auroc(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), labels) == 1.0
  assert diagnostics.auroc(-np.array([0.1, 0.2, 0.3, 0.8, 0.9]), labels) == 0.0
  # Pairs (anomaly, normal): 0.35 > 0.1, 0.35 < 0.4, 0.8 > both → 3/4.
  assert diagnostics.auroc(np.array([0.1, 0.4, 0.35, 0.8]),
                        np.array([0, 0, 1, 1])) == pytest.approx(0.75)
  # A tie counts one half: 1 of 1 pairs tied.
  assert diagnostics.auroc(np.array([0.5, 0.5]), np.array([False, True])) == 0.5
  # Equals the Mann–Whitney statistic on random scores.
  rng = np.random.default_rng(0)
  scores, is_anomaly = rng.normal(size=40), np.arange(40) % 3 == 0
  pos, neg = scores[is_anomaly], scores[~is_anomaly]
  expected = np.mean(pos[:, None] > neg[None, :])
  assert diagnostics.auroc(scores, is_anomaly) == pytest.approx(expected)


@pytest.mark.slow
def test_held_out_numbers_do_not_depend_on_the_batch_size(tiny):
  dataset, spec, state = tiny
  a = eval_loop.importance_weighted_nll(state.params, spec, dataset, 16, seed=SEED,
                                        batch_size=3, chunk_size=16)
  b = eval_loop.importance_weighted_nll(state.params, spec, dataset, 16, seed=SEED,
                                        batch_size=EVAL_BATCH, chunk_size=16)
  np.testing.assert_allclose(a, b, rtol=1e-5)
  nelbo_a = _nelbo(tiny, 3)
  nelbo_b = _nelbo(tiny, EVAL_BATCH)
  assert nelbo_a == pytest.approx(nelbo_b, rel=1e-5)


@pytest.mark.e2e
def test_a_final_evaluation_equals_the_reference_way_of_scoring(monkeypatch):
  """experiments/test.py's final evaluation (nelbo, nll_iw, the seven scores): the
  default (each factor combination encoded once, fits in parallel) gives the same
  numbers as encoding each draw where it is drawn and fitting in sequence."""
  from conftest import load_experiment  # pylint: disable=g-import-not-at-top
  from vae_jax.data import factors  # pylint: disable=g-import-not-at-top
  from vae_jax.evaluation import disentanglement, evaluators  # pylint: disable=g-import-not-at-top
  config = load_experiment('test')
  config.eval.iw_samples = 4
  config.eval.disentanglement_divisor = 200  # 50 reference points, 25 test points
  dataset = data_lib.load(config.data)
  spec = train_state.make_spec(config, dataset.spec)
  params = train_state.init_state(spec, config.seed).params
  source = factors.factor_source(config.eval.factor_source)
  evaluate = lambda: evaluators.evaluate(params, config, spec, dataset, final=True,
                                         factor_source=source).metrics
  default = evaluate()
  every_way = disentanglement.all_scores
  monkeypatch.setattr(disentanglement, 'all_scores', lambda *a, **k: every_way(
      *a, **k, encode_once=False, workers=1))
  reference = evaluate()
  assert set(disentanglement.SCORE_KEYS) | {'nelbo', 'nll_iw'} <= set(default)
  assert default == reference


def test_cvae_marginal_likelihood_sums_the_labels_out(tiny):
  # −log Σ_y p(y) p̂(x|y), each p̂(x|y) the k-sample bound of q(z|x, y) with the draws
  # of fold_in(example key, y), against the same sum written out per example.
  dataset, spec, state = tiny
  log_prior = np.log(np.array([0.4, 0.3, 0.2, 0.1]))  # NUM_CLASSES = 4
  k = 7
  marginal = eval_loop.marginal_iw_nll(state.params, spec, dataset, k, log_prior, seed=SEED,
                                       batch_size=EVAL_BATCH, chunk_size=3)
  x, _, keys = eval_loop.eval_inputs(spec, dataset.arrays, jnp.asarray(dataset.eval_ids),
                                     eval_loop.eval_key(SEED))
  for i in range(NUM_EVAL):
    per_label = []
    for label in range(NUM_CLASSES):
      y = jnp.asarray(label, jnp.int32)
      encode = lambda v, y=y: models.encode_one(spec.model, state.params, v, y)
      decode = lambda z, y=y: models.decode_one(spec.model, state.params, z, y)
      log_w = iw_bound.log_importance_weights(encode, decode, spec.likelihood, x[i],
                                              jax.random.fold_in(keys[i], label), k)
      per_label.append(float(jax.nn.logsumexp(log_w)) - np.log(k))
    expected = -np.logaddexp.reduce(log_prior + np.array(per_label))
    assert marginal[i] == pytest.approx(expected, rel=1e-5)
  # Each example's draws are its own: the batch size does not matter.
  one_by_one = eval_loop.marginal_iw_nll(state.params, spec, dataset, k, log_prior, seed=SEED,
                                         batch_size=1, chunk_size=k)
  np.testing.assert_allclose(one_by_one, marginal, rtol=1e-5)
  # Summing the labels out costs at least the true label's share:
  # −log p(x) ≤ −log p(x|y) − log p(y), here on average over the draws.
  conditional = eval_loop.importance_weighted_nll(state.params, spec, dataset, 200, seed=SEED,
                                                  batch_size=EVAL_BATCH, chunk_size=50)
  wide = eval_loop.marginal_iw_nll(state.params, spec, dataset, 200, log_prior, seed=SEED,
                                   batch_size=EVAL_BATCH, chunk_size=50)
  labels = np.asarray(dataset.arrays['eval_y'])
  assert np.mean(conditional - log_prior[labels] - wide) > 0


def test_class_prior_is_the_training_labels_frequencies():
  from conftest import load_experiment  # pylint: disable=g-import-not-at-top
  from vae_jax.evaluation import evaluators  # pylint: disable=g-import-not-at-top
  dataset = _dataset()
  counts = np.bincount(np.arange(16) % NUM_CLASSES, minlength=NUM_CLASSES)
  np.testing.assert_allclose(evaluators.class_log_prior(dataset), np.log(counts / 16))
  config = load_experiment('test')
  config.model.conditional = True
  procedural = data_lib.load(config.data)
  prior = evaluators.class_log_prior(procedural)
  np.testing.assert_allclose(prior, np.full(procedural.spec.num_classes,
                                            -np.log(procedural.spec.num_classes)))
