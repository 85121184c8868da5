"""β-TCVAE: the total-correlation estimators against closed forms and direct sums."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from vae_jax.objectives.total_correlation import total_correlation

jax.config.update('jax_numpy_rank_promotion', 'raise')


def _batch(rng, cov, num, posterior_std, dim):
  """Posterior means mu_j ~ N(0, cov), q(z|x_j) = N(mu_j, s²I), z_i ~ q(z|x_i)."""
  mu = rng.multivariate_normal(np.zeros(dim), cov, size=num)
  logvar = np.full((num, dim), 2.0 * np.log(posterior_std))
  z = mu + posterior_std * rng.standard_normal((num, dim))
  return z, mu, logvar


def _analytic_tc(cov):
  """TC of N(0, C): ½(Σ_d log C_dd − log det C)."""
  return 0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1])


@pytest.mark.parametrize('rho', [0.0, 0.8])
def test_stratified_estimate_approaches_the_analytic_tc(rho):
  rng = np.random.default_rng(0)
  cov = np.array([[1.0, rho], [rho, 1.0]])
  posterior_std = 0.3
  # The aggregate posterior is N(0, cov + s²I) exactly.
  aggregate = cov + posterior_std ** 2 * np.eye(2)
  with jax.enable_x64(True):
    z, mu, logvar = _batch(rng, cov, 3000, posterior_std, 2)
    tc = total_correlation(jnp.asarray(z), jnp.asarray(mu), jnp.asarray(logvar),
                                      jnp.asarray(1e6), 'mss')
    tc = np.asarray(tc)
  expected = _analytic_tc(aggregate)
  assert float(np.mean(tc)) == pytest.approx(expected, abs=0.03)
  if rho == 0.0:
    assert abs(float(np.mean(tc))) < 0.03


@pytest.mark.parametrize('estimator', ['mws', 'mss'])
def test_estimators_match_a_direct_evaluation_of_their_formula(estimator):
  rng = np.random.default_rng(1)
  num, dim, n = 6, 3, 1000.0
  z, mu, logvar = (rng.standard_normal((num, dim)) for _ in range(3))
  with jax.enable_x64(True):
    tc = np.asarray(total_correlation(jnp.asarray(z), jnp.asarray(mu),
                                                 jnp.asarray(logvar), jnp.asarray(n),
                                                 estimator))
  std = np.exp(0.5 * logvar)
  for i in range(num):
    dens = stats.norm.logpdf(z[i][None, :], mu, std)  # [M, D]: log q(z_id | x_j)
    if estimator == 'mws':
      log_w = np.full(num, -np.log(n * num))
    else:
      log_w = np.full(num, np.log((n - 1) / (n * (num - 1))))
      log_w[i] = -np.log(n)
    log_qz = logsumexp(dens.sum(axis=1) + log_w)
    log_marginals = sum(logsumexp(dens[:, d] + log_w) for d in range(dim))
    assert tc[i] == pytest.approx(log_qz - log_marginals, rel=1e-10)


def test_beta_tc_loss_adds_beta_minus_one_times_tc():
  """batch_loss of beta_tc = mean(recon + kl) + (β − 1)·mean(TC) on the same z."""
  from vae_jax import configs, models, steps  # pylint: disable=g-import-not-at-top
  from vae_jax import train_state
  from vae_jax.data import DataSpec  # pylint: disable=g-import-not-at-top
  config = configs.get_config()
  config.model.hidden_dims = (8,)
  config.model.latent_dim = 3
  config.objective.name = 'beta_tc'
  data_spec = DataSpec(name='toy', procedural=False, image_shape=(4, 4, 1), num_classes=0,
                       binarize='none')
  model = models.build(config.model, (4, 4, 1), 0)
  spec = train_state.make_spec(config, data_spec)
  x = jax.random.uniform(jax.random.key(0), (8, 4, 4, 1))
  y = jnp.zeros((8,), jnp.int32)
  params = model.init(jax.random.key(1), x[0], y[0])
  key = jax.random.key(2)
  losses = {}
  for beta in (1.0, 5.0):
    config.objective.beta = beta
    hparams = train_state.make_hparams(config, dataset_size=1000)
    losses[beta], terms = steps.batch_loss(params, x, y, key, hparams, 0, spec)
  assert float(losses[1.0]) == pytest.approx(float(terms['nelbo']), rel=1e-6)
  assert float(losses[5.0]) == pytest.approx(
      float(terms['nelbo']) + 4.0 * float(terms['tc']), rel=1e-6)
