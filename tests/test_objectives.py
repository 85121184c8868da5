"""The maths of vae_jax.likelihoods and vae_jax.objectives against closed forms.

Monte Carlo checks use tolerances of a few standard errors, computed from the
samples themselves; exact identities are checked in float64.
"""

import dataclasses

import jax

jax.config.update('jax_numpy_rank_promotion', 'raise')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np
import pytest
from scipy import special, stats

from vae_jax import configs, objectives
from vae_jax.errors import ConfigError
from vae_jax.models import gaussian
from vae_jax.models import likelihoods

NUM_SIGMAS = 5.0  # Monte Carlo tolerance, in standard errors


def _mc_close(samples, expected, axis=0):
  """Asserts mean(samples) == expected within NUM_SIGMAS standard errors."""
  samples = np.asarray(samples, np.float64)
  mean = samples.mean(axis)
  stderr = samples.std(axis) / np.sqrt(samples.shape[axis])
  np.testing.assert_array_less(np.abs(mean - expected), NUM_SIGMAS * stderr + 1e-6)


def _random_gaussian(seed: int, dim: int):
  rng = np.random.default_rng(seed)
  mu = rng.normal(0.0, 1.0, dim).astype(np.float32)
  logvar = rng.uniform(-1.5, 1.0, dim).astype(np.float32)
  return mu, logvar


# ------------------------------------------------------------------ gaussian_kl


def test_gaussian_kl_is_zero_at_the_prior():
  kl = gaussian.kl_to_standard(jnp.zeros(7), jnp.zeros(7))
  assert kl.shape == (7,)
  np.testing.assert_array_equal(np.asarray(kl), np.zeros(7))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_gaussian_kl_matches_multivariate_closed_form(seed):
  mu, logvar = _random_gaussian(seed, 6)
  cov = np.diag(np.exp(logvar.astype(np.float64)))
  _, logdet = np.linalg.slogdet(cov)
  # KL(N(mu, S) || N(0, I)) = ½(tr S + muᵀmu − d − log det S).
  expected = 0.5 * (np.trace(cov) + mu @ mu.astype(np.float64) - 6 - logdet)
  kl = float(jnp.sum(gaussian.kl_to_standard(mu, logvar)))
  np.testing.assert_allclose(kl, expected, rtol=1e-5)
  assert kl > 0.0


def test_gaussian_kl_matches_monte_carlo():
  mu, logvar = _random_gaussian(3, 4)
  scale = np.exp(0.5 * logvar.astype(np.float64))
  eps = np.asarray(jax.random.normal(jax.random.key(0), (200_000, 4)), np.float64)
  z = mu[None, :] + scale[None, :] * eps
  log_q = stats.norm.logpdf(z, mu[None, :], scale[None, :]).sum(axis=1)
  log_p = stats.norm.logpdf(z).sum(axis=1)
  kl = float(jnp.sum(gaussian.kl_to_standard(mu, logvar)))
  _mc_close(log_q - log_p, kl)


# ------------------------------------------------------------------ likelihoods


def _numpy_bernoulli(x, logits):
  """Σ x log p + (1 − x) log(1 − p), p = sigmoid(logits), in float64.

  1 − p is evaluated as sigmoid(−logits), which float64 represents exactly
  even where p rounds to 1.
  """
  x, logits = np.asarray(x, np.float64), np.asarray(logits, np.float64)
  p, one_minus_p = special.expit(logits), special.expit(-logits)
  return float(np.sum(x * np.log(p) + (1.0 - x) * np.log(one_minus_p)))


def test_bernoulli_log_prob_matches_direct_formula():
  rng = np.random.default_rng(0)
  x = (rng.random((6, 5, 1)) < 0.5).astype(np.float32)
  logits = rng.normal(0.0, 3.0, (6, 5, 1)).astype(np.float32)
  value = likelihoods.bernoulli_log_prob(x, logits)
  assert value.shape == ()
  np.testing.assert_allclose(float(value), _numpy_bernoulli(x, logits), rtol=1e-5)


def test_bernoulli_log_prob_accepts_fractional_pixels():
  rng = np.random.default_rng(1)
  x = rng.random((4, 4, 1)).astype(np.float32)
  logits = rng.normal(0.0, 2.0, (4, 4, 1)).astype(np.float32)
  np.testing.assert_allclose(float(likelihoods.bernoulli_log_prob(x, logits)),
                             _numpy_bernoulli(x, logits), rtol=1e-5)


def test_bernoulli_log_prob_is_finite_and_accurate_at_large_logits():
  logits = np.array([30.0, -30.0, 30.0, -30.0, 100.0, -100.0], np.float32)
  x = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 1.0], np.float32)
  # Pixel by pixel: a confident right answer costs ~e^-30 nats, a wrong one ~30.
  per_pixel = [float(likelihoods.bernoulli_log_prob(x[i:i + 1], logits[i:i + 1]))
               for i in range(len(x))]
  assert np.all(np.isfinite(per_pixel))
  expected = [_numpy_bernoulli(x[i:i + 1], logits[i:i + 1]) for i in range(len(x))]
  np.testing.assert_allclose(per_pixel, expected, rtol=1e-6, atol=1e-12)
  np.testing.assert_allclose(per_pixel[1], -30.0, rtol=1e-6)
  np.testing.assert_allclose(per_pixel[4], -100.0, rtol=1e-6)
  assert -1e-12 < per_pixel[0] <= 0.0


@pytest.mark.parametrize('log_scale_shape', [(), (3, 4, 2)])
def test_gaussian_log_prob_matches_scipy(log_scale_shape):
  rng = np.random.default_rng(2)
  x = rng.random((3, 4, 2)).astype(np.float32)
  mean = rng.random((3, 4, 2)).astype(np.float32)
  log_scale = rng.uniform(-2.0, 0.5, log_scale_shape).astype(np.float32)
  expected = stats.norm.logpdf(x, mean, np.exp(log_scale.astype(np.float64))).sum()
  value = likelihoods.gaussian_log_prob(x, mean, jnp.asarray(log_scale))
  assert value.shape == ()
  np.testing.assert_allclose(float(value), expected, rtol=1e-5)


def test_log_prob_dispatches_on_the_likelihood_name():
  rng = np.random.default_rng(3)
  x = rng.random((5, 5, 1)).astype(np.float32)
  out = rng.normal(size=(5, 5, 1)).astype(np.float32)
  bern = likelihoods.log_prob('bernoulli', x, {'logits': out})
  np.testing.assert_allclose(float(bern), _numpy_bernoulli(x, out), rtol=1e-5)
  gauss_params = {'mean': out, 'log_scale': jnp.asarray(np.log(0.3), jnp.float32)}
  expected = stats.norm.logpdf(x, out, 0.3).sum()
  for name in ('gaussian_fixed', 'gaussian_learned'):
    np.testing.assert_allclose(float(likelihoods.log_prob(name, x, gauss_params)),
                               expected, rtol=1e-5)
  with pytest.raises(ValueError, match='unknown likelihood'):
    likelihoods.log_prob('poisson', x, {'logits': out})


def test_mean_of_each_likelihood():
  logits = np.array([[-2.0, 0.0, 3.0]], np.float32)
  np.testing.assert_allclose(np.asarray(likelihoods.mean('bernoulli', {'logits': logits})),
                             special.expit(logits), rtol=1e-6)
  params = {'mean': logits, 'log_scale': jnp.zeros((), jnp.float32)}
  for name in ('gaussian_fixed', 'gaussian_learned'):
    np.testing.assert_array_equal(np.asarray(likelihoods.mean(name, params)), logits)


# ------------------------------------------------------------ reparameterization


def test_reparameterize_has_the_right_mean_and_std():
  mu = jnp.array([0.5, -1.0, 2.0])
  logvar = jnp.array([0.0, -2.0, 1.0])
  keys = jax.random.split(jax.random.key(0), 100_000)
  z = np.asarray(jax.vmap(gaussian.reparameterize, in_axes=(0, None, None))(
      keys, mu, logvar), np.float64)
  std = np.exp(0.5 * np.asarray(logvar))
  _mc_close(z, np.asarray(mu))
  # The sample variance has standard error ≈ σ²·sqrt(2/n).
  np.testing.assert_allclose(z.std(0), std, rtol=NUM_SIGMAS * np.sqrt(0.5 / len(z)))
  assert z.shape == (100_000, 3)


def _mc_grads(f, mu, logvar, num: int = 100_000):
  """Per-key gradients of f(reparameterize(key, mu, logvar)) w.r.t. (mu, logvar)."""
  loss = lambda m, lv, key: f(gaussian.reparameterize(key, m, lv))
  grad = jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None, None, 0))
  return grad(mu, logvar, jax.random.split(jax.random.key(1), num))


def test_reparameterized_gradient_of_square():
  mu = jnp.array([0.3, -1.2, 0.8])
  logvar = jnp.array([-0.5, 0.2, -1.0])
  g_mu, g_logvar = _mc_grads(lambda z: jnp.sum(z * z), mu, logvar)
  # E[Σ z²] = Σ mu² + exp(logvar).
  _mc_close(g_mu, 2.0 * np.asarray(mu))
  _mc_close(g_logvar, np.exp(np.asarray(logvar)))


def test_reparameterized_gradient_of_sine():
  mu = jnp.array([0.3, -1.2, 2.0])
  logvar = jnp.array([-0.5, 0.2, -1.0])
  g_mu, g_logvar = _mc_grads(lambda z: jnp.sum(jnp.sin(z)), mu, logvar)
  # E[Σ sin z] = Σ sin(mu)·exp(−σ²/2), σ² = exp(logvar).
  mu64, var = np.asarray(mu, np.float64), np.exp(np.asarray(logvar, np.float64))
  damp = np.exp(-0.5 * var)
  _mc_close(g_mu, np.cos(mu64) * damp)
  _mc_close(g_logvar, -0.5 * var * np.sin(mu64) * damp)


# ------------------------------------------------- ELBO on a linear-Gaussian model

D, LATENT, SIGMA = 5, 3, 0.5


def _linear_gaussian(orthogonal: bool):
  """(W [D, d], b [D], x [D]) of p(z) = N(0, I), p(x|z) = N(Wz + b, σ²I)."""
  rng = np.random.default_rng(4)
  w = rng.normal(size=(D, LATENT))
  if orthogonal:
    q, _ = np.linalg.qr(w)
    w = q * np.array([1.5, 0.7, 0.3])[None, :]  # orthogonal columns, distinct norms
  b = rng.normal(size=D)
  x = rng.normal(size=D) * 1.5 + b
  return w, b, x


def _log_evidence(w, b, x):
  cov = w @ w.T + SIGMA**2 * np.eye(D)
  return float(stats.multivariate_normal(b, cov).logpdf(x))


def _posterior(w, b, x):
  cov = np.linalg.inv(np.eye(LATENT) + w.T @ w / SIGMA**2)
  return cov @ w.T @ (x - b) / SIGMA**2, cov


def _decoder(w, b):
  w, b = jnp.asarray(w), jnp.asarray(b)
  log_sigma = jnp.asarray(np.log(SIGMA), w.dtype)
  return lambda z: {'mean': w @ z + b, 'log_scale': log_sigma}


def _nelbo_samples(w, b, x, mu, logvar, num: int):
  """example_terms over `num` keys for the fixed diagonal q = N(mu, exp(logvar))."""
  encode = lambda _: (jnp.asarray(mu), jnp.asarray(logvar))
  decode = _decoder(w, b)
  keys = jax.random.split(jax.random.key(2), num)
  terms_fn = lambda key: objectives.example_terms(encode, decode, 'gaussian_fixed',
                                                  jnp.asarray(x), key)
  return jax.vmap(terms_fn)(keys), keys


def _closed_form_elbo(w, b, x, mu, logvar):
  """E_q[log p(x|z)] − KL(q || p(z)) for Gaussian q, in float64."""
  var = np.exp(logvar)
  expected_loglik = (stats.norm.logpdf(x, w @ mu + b, SIGMA).sum()
                     - np.sum((w * w) @ var) / (2 * SIGMA**2))
  kl = 0.5 * np.sum(mu * mu + var - 1.0 - logvar)
  return expected_loglik - kl


def test_elbo_is_a_strict_lower_bound_away_from_the_posterior():
  with jax.enable_x64(True):
    w, b, x = _linear_gaussian(orthogonal=False)
    mu, logvar = np.zeros(LATENT), np.full(LATENT, -1.0)  # not the posterior
    terms, _ = _nelbo_samples(w, b, x, mu, logvar, 50_000)
    elbo = -np.asarray(terms.nelbo)
    log_px = _log_evidence(w, b, x)
    # The gap is KL(q || p(z|x)) for Gaussians, computed independently.
    post_mean, post_cov = _posterior(w, b, x)
    q_cov = np.diag(np.exp(logvar))
    diff = post_mean - mu
    post_prec = np.linalg.inv(post_cov)
    gap = 0.5 * (np.trace(post_prec @ q_cov) + diff @ post_prec @ diff - LATENT
                 + np.linalg.slogdet(post_cov)[1] - np.linalg.slogdet(q_cov)[1])
    assert gap > 1.0
    np.testing.assert_allclose(_closed_form_elbo(w, b, x, mu, logvar), log_px - gap,
                               rtol=1e-10)
    _mc_close(elbo, log_px - gap)
    stderr = elbo.std() / np.sqrt(len(elbo))
    assert elbo.mean() < log_px - 0.5 * gap and 10 * stderr < gap


def test_elbo_is_tight_at_the_true_posterior():
  with jax.enable_x64(True):
    w, b, x = _linear_gaussian(orthogonal=True)
    post_mean, post_cov = _posterior(w, b, x)
    np.testing.assert_allclose(post_cov, np.diag(np.diag(post_cov)), atol=1e-12)
    mu, logvar = post_mean, np.log(np.diag(post_cov))
    log_px = _log_evidence(w, b, x)
    terms, keys = _nelbo_samples(w, b, x, mu, logvar, 20_000)
    # Analytic-KL ELBO: exact in expectation (checked in closed form and by MC).
    np.testing.assert_allclose(_closed_form_elbo(w, b, x, mu, logvar), log_px,
                               rtol=1e-10)
    np.testing.assert_allclose(float(jnp.sum(terms.kl[0])),
                               0.5 * np.sum(mu * mu + np.exp(logvar) - 1 - logvar),
                               rtol=1e-12)
    _mc_close(-np.asarray(terms.nelbo), log_px)
    # Per sample: log p(x|z) + log p(z) − log q(z) = log p(x), zero variance.
    z = jax.vmap(gaussian.reparameterize, in_axes=(0, None, None))(
        keys, jnp.asarray(mu), jnp.asarray(logvar))
    z = np.asarray(z)
    log_q = stats.norm.logpdf(z, mu[None, :], np.exp(0.5 * logvar)[None, :]).sum(1)
    log_p = stats.norm.logpdf(z).sum(1)
    per_sample = -np.asarray(terms.recon) + log_p - log_q
    np.testing.assert_allclose(per_sample, np.full(len(z), log_px), rtol=1e-10)


# ------------------------------------------------------------------- objectives

TERMS = objectives.Terms(recon=jnp.asarray(100.0), kl=jnp.asarray(12.0), kl_per_dim=None,
                         z=None, mu=None, logvar=None)
HPARAMS = {'beta': jnp.asarray(4.0), 'gamma': jnp.asarray(10.0),
           'capacity_max': jnp.asarray(20.0), 'capacity_steps': jnp.asarray(1000.0)}


def _example_loss(name: str, terms, hparams: dict, step) -> jax.Array:
  """The minimized loss of ONE example from its terms (batch terms excluded)."""
  return objectives.get(name).example_loss(terms, hparams, step)


def _loss(name, step=0):
  return float(_example_loss(name, TERMS, HPARAMS, jnp.asarray(step)))


def test_elbo_and_beta_objectives():
  assert _loss('elbo') == pytest.approx(112.0)
  assert _loss('beta') == pytest.approx(100.0 + 4.0 * 12.0)
  assert _loss('ae') == pytest.approx(100.0)
  with pytest.raises(ValueError, match='unknown objective'):
    _loss('vamp')


def test_capacity_schedule_values():
  cap = lambda t: float(objectives.capacity(jnp.asarray(t), jnp.asarray(20.0),
                                            jnp.asarray(1000.0)))
  assert cap(0) == 0.0
  assert cap(250) == pytest.approx(5.0)
  assert cap(500) == pytest.approx(10.0)
  assert cap(1000) == pytest.approx(20.0)
  assert cap(5000) == pytest.approx(20.0)
  # capacity_steps = 0 means the full capacity from the first step on.
  zero = objectives.capacity(jnp.asarray(3), jnp.asarray(20.0), jnp.asarray(0.0))
  assert float(zero) == pytest.approx(20.0)


@pytest.mark.parametrize('step, target', [(0, 0.0), (500, 10.0), (1000, 20.0),
                                          (3000, 20.0)])
@pytest.mark.parametrize('form', ['batch_mean', 'per_example'])
def test_capacity_objective_in_both_forms(step, target, form):
  # A batch whose KLs lie on both sides of C(t) for t > 0: the two forms differ (Jensen).
  recon, kl = np.array([100.0, 90.0, 80.0]), np.array([5.0, 12.0, 30.0])
  terms = objectives.Terms(recon=jnp.asarray(recon), kl=jnp.asarray(kl), kl_per_dim=None,
                           z=None, mu=None, logvar=None)
  objective = objectives.get('capacity')
  t = jnp.asarray(step)
  per_example = jax.vmap(objective.example_loss, in_axes=(0, None, None))(terms, HPARAMS, t)
  extra, _ = objective.batch_term(terms, HPARAMS, {'capacity_form': form}, None, t)
  loss = float(jnp.mean(per_example + extra))
  if form == 'batch_mean':  # disentanglement_lib: recon + γ·|mean_i KL_i − C|
    expected = recon.mean() + 10.0 * abs(kl.mean() - target)
  else:  # pythae: mean_i (recon_i + γ·|KL_i − C|)
    expected = np.mean(recon + 10.0 * np.abs(kl - target))
  assert loss == pytest.approx(expected, rel=1e-6)
  if target > 5.0:  # C inside the KLs' range: the per-example form is strictly larger
    batch_mean = recon.mean() + 10.0 * abs(kl.mean() - target)
    assert form == 'batch_mean' or loss > batch_mean + 1.0


def test_capacity_form_is_a_validated_setting():
  config = configs.get_config()
  config.objective.name = 'capacity'
  assert config.objective.capacity_form == 'batch_mean'
  config.objective.capacity_form = 'per_example'
  configs.validate(config)
  config.objective.capacity_form = 'per_batch'
  with pytest.raises(ConfigError, match='capacity_form'):
    configs.validate(config)


def test_autoencoder_terms_are_deterministic_and_kl_free():
  mu, logvar = jnp.array([0.5, -0.3]), jnp.array([0.4, -0.2])
  w = jnp.array([[1.0, 0.5], [-0.5, 2.0], [0.3, 0.3]])
  encode = lambda _: (mu, logvar)
  decode = lambda z: {'logits': w @ z}
  x = jnp.array([1.0, 0.0, 1.0])
  runs = [objectives.example_terms(encode, decode, 'bernoulli', x, jax.random.key(k),
                                   stochastic=False) for k in (0, 1)]
  for name in ('recon', 'kl', 'nelbo', 'kl_per_dim'):
    np.testing.assert_array_equal(np.asarray(getattr(runs[0], name)),
                                  np.asarray(getattr(runs[1], name)))
  np.testing.assert_array_equal(np.asarray(runs[0].kl_per_dim), np.zeros(2))
  assert float(runs[0].kl) == 0.0
  expected = -_numpy_bernoulli(x, np.asarray(w @ mu))  # z = mu, not a sample
  np.testing.assert_allclose(float(runs[0].recon), expected, rtol=1e-6)
  assert float(_example_loss('ae', runs[0], HPARAMS, jnp.asarray(0))) == (
      pytest.approx(expected))
  # The stochastic terms do depend on the key, and carry the KL.
  noisy = [objectives.example_terms(encode, decode, 'bernoulli', x, jax.random.key(k))
           for k in (0, 1)]
  assert float(noisy[0].recon) != float(noisy[1].recon)
  np.testing.assert_allclose(float(noisy[0].kl),
                             float(jnp.sum(gaussian.kl_to_standard(mu, logvar))), rtol=1e-6)


# ------------------------------------------------------------- the registry



def _toy_data():
  from vae_jax.data import DataSpec  # pylint: disable=g-import-not-at-top
  return DataSpec(name='toy', procedural=False, image_shape=(4, 4, 1), num_classes=0,
                  binarize='none')


@pytest.mark.parametrize('name', sorted(objectives.OBJECTIVES))
def test_registry_is_the_one_source_of_hyperparameters(name):
  from vae_jax import configs  # pylint: disable=g-import-not-at-top
  from vae_jax import train_state
  from vae_jax.sweeps import plan as sweep_plan  # pylint: disable=g-import-not-at-top
  objective = objectives.OBJECTIVES[name]
  config = configs.get_config()
  config.objective.name = name
  hparams = train_state.make_hparams(config, dataset_size=1)
  assert set(hparams) == ({'dataset_size'} | set(train_state.TRAIN_HPARAMS) |
                          set(objective.hparams))
  for key in objective.hparams:
    assert f'objective.{key}' in sweep_plan.VMAPPED_KEYS
    assert float(hparams[key]) == pytest.approx(float(config.objective[key]))
  spec_settings = {k for k, _ in train_state.make_spec(config, _toy_data()).settings}
  assert spec_settings == set(objective.settings)


def test_every_objective_field_is_in_the_config_and_used():
  from vae_jax import configs  # pylint: disable=g-import-not-at-top
  config = configs.get_config()
  used = {k for o in objectives.OBJECTIVES.values() for k in o.hparams + o.settings}
  assert used == set(objectives.FIELDS)
  for key, field in objectives.FIELDS.items():
    assert config.objective[key] == field.default
    assert field.rule(field.default)


def test_array_fields_are_exactly_the_objectives_hparams():
  """objectives/fields.py marks the fields that enter a step as arrays; the registry
  refuses an objective reading a static field as an array, or the reverse."""
  from vae_jax.objectives import registry  # pylint: disable=g-import-not-at-top
  registry.check_array_fields(objectives.OBJECTIVES, objectives.ARRAY_FIELDS)  # as shipped
  beta = objectives.OBJECTIVES['beta']
  for wrong in (dataclasses.replace(beta, hparams=('beta', 'iw_k')),
                dataclasses.replace(beta, settings=('beta',))):
    with pytest.raises(ValueError, match="objective 'beta'"):
      registry.check_array_fields({'beta': wrong}, objectives.ARRAY_FIELDS)
  with pytest.raises(ValueError, match='is no objective'):
    registry.check_array_fields({'beta': beta}, objectives.ARRAY_FIELDS)
