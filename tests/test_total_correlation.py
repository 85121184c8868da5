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


def _mixture_log_densities(z, mu, logvar):
  """(log q(z), Σ_d log q(z_d)) of the exact aggregate posterior q(z) = mean_n q(z|x_n)."""
  dens = stats.norm.logpdf(z[:, None, :], mu[None], np.exp(0.5 * logvar)[None])  # [Z, N, D]
  log_n = np.log(len(mu))
  return (logsumexp(dens.sum(2), axis=1) - log_n,
          (logsumexp(dens, axis=1) - log_n).sum(1))


def _small_dataset():
  """Six posteriors q(z|x_n) in 2-D, their means correlated: a TC of ≈ 0.4 nats."""
  mu = np.array([[-1.5, -1.2], [-0.8, -1.0], [-0.2, 0.1], [0.3, 0.2], [1.0, 0.7], [1.6, 1.9]])
  logvar = np.log(np.array([[0.20, 0.30], [0.25, 0.15], [0.30, 0.30], [0.20, 0.35],
                            [0.40, 0.20], [0.25, 0.25]]))
  return mu, logvar


def test_stratified_estimate_is_exact_when_the_batch_is_the_whole_dataset():
  # With M = N each example's weights are all 1/N: the batch's densities are the
  # aggregate posterior's exactly, and the mean over draws is the exact TC, which
  # a quadrature of the mixture on a grid gives independently.
  mu, logvar = _small_dataset()
  n = len(mu)
  grid = np.linspace(-5.0, 5.0, 801)
  points = np.stack(np.meshgrid(grid, grid, indexing='ij'), -1).reshape(-1, 2)
  log_q, log_marginals = _mixture_log_densities(points, mu, logvar)
  exact_tc = float(np.sum(np.exp(log_q) * (log_q - log_marginals)) * (grid[1] - grid[0]) ** 2)
  assert exact_tc > 0.2
  rng = np.random.default_rng(2)
  draws = 4000
  z = mu[None] + np.exp(0.5 * logvar)[None] * rng.standard_normal((draws, n, 2))
  with jax.enable_x64(True):
    tc = jax.vmap(lambda z_: total_correlation(z_, jnp.asarray(mu), jnp.asarray(logvar),
                                               jnp.asarray(float(n)), 'mss'))(jnp.asarray(z))
    tc = np.asarray(tc)  # [draws, N]
  log_q, log_marginals = _mixture_log_densities(z.reshape(-1, 2), mu, logvar)
  np.testing.assert_allclose(tc.reshape(-1), log_q - log_marginals, rtol=1e-9, atol=1e-9)
  per_draw = tc.mean(1)
  assert abs(per_draw.mean() - exact_tc) < 4 * per_draw.std() / np.sqrt(draws)


def test_stratified_density_estimates_are_unbiased_over_the_batches():
  # A batch of M < N examples holding example i: averaged over every such batch
  # (all C(N−1, M−1) of them), exp of the estimated log q(z_i) and of each
  # log q(z_id) equals the aggregate posterior's density exactly.
  import itertools  # pylint: disable=g-import-not-at-top
  mu, logvar = _small_dataset()
  n, m = len(mu), 3
  z_i = np.array([0.4, -0.3])
  log_q, log_marginals = _mixture_log_densities(z_i[None], mu, logvar)
  std = np.exp(0.5 * logvar)
  joint, marginals = [], []
  for others in itertools.combinations(range(1, n), m - 1):  # example 0 first in its batch
    batch = (0,) + others
    dens = stats.norm.logpdf(z_i[None], mu[list(batch)], std[list(batch)])  # [M, D]
    with jax.enable_x64(True):
      z = np.tile(z_i, (m, 1))
      tc = float(total_correlation(jnp.asarray(z), jnp.asarray(mu[list(batch)]),
                                   jnp.asarray(logvar[list(batch)]), jnp.asarray(float(n)),
                                   'mss')[0])
    log_w = np.full(m, np.log((n - 1) / (n * (m - 1))))
    log_w[0] = -np.log(n)
    joint.append(np.exp(logsumexp(dens.sum(1) + log_w)))
    marginals.append(np.exp(logsumexp(dens + log_w[:, None], axis=0)))
    assert tc == pytest.approx(np.log(joint[-1]) - np.log(marginals[-1]).sum(), rel=1e-10)
  assert np.mean(joint) == pytest.approx(np.exp(log_q[0]), rel=1e-12)
  np.testing.assert_allclose(np.mean(marginals, axis=0),
                             np.exp(logsumexp(stats.norm.logpdf(z_i[None], mu, std), axis=0)
                                    - np.log(n)), rtol=1e-12)


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
