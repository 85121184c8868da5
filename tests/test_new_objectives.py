"""DIP-VAE-I/II, WAE-MMD, IWAE and FactorVAE: their maths against direct evaluations and
closed forms, and each objective trained, resumed and swept end to end."""

import copy
import hashlib
import json
import os
import signal

import jax

jax.config.update('jax_numpy_rank_promotion', 'raise')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np
import optax
import pytest

from conftest import cli, final_state, load_experiment
from vae_jax import data as data_lib
from scipy import stats

from vae_jax import evaluate_run, key_streams, objectives, steps, train
from vae_jax import train_state
from vae_jax.objectives import discriminator
from vae_jax.run import guards
from vae_jax.objectives import iw_bound, penalties, registry
from vae_jax.errors import Interrupted

NUM_SIGMAS = 5.0  # Monte Carlo tolerance, in standard errors


def _mc_close(samples, expected, extra_stderr: float = 0.0):
  """Asserts mean(samples) == expected within NUM_SIGMAS standard errors."""
  samples = np.asarray(samples, np.float64)
  stderr = np.hypot(samples.std() / np.sqrt(len(samples)), extra_stderr)
  assert abs(samples.mean() - expected) < NUM_SIGMAS * stderr + 1e-6, (
      samples.mean(), expected, stderr)


# ----------------------------------------------------------------- DIP-VAE


def _numpy_dip(mu, logvar, variant, lambda_od, lambda_d):
  """(off-diagonal, diagonal, penalty) of DIP-VAE written out in float64 loops."""
  mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
  num, dim = mu.shape
  mean = mu.mean(0)
  cov = np.zeros((dim, dim))
  for i in range(dim):
    for j in range(dim):
      cov[i, j] = np.sum((mu[:, i] - mean[i]) * (mu[:, j] - mean[j])) / num
      if variant == 'ii' and i == j:
        cov[i, j] += np.mean(np.exp(logvar[:, i]))
  off = sum(cov[i, j]**2 for i in range(dim) for j in range(dim) if i != j)
  diag = sum((cov[i, i] - 1.0)**2 for i in range(dim))
  return off, diag, lambda_od * off + lambda_d * diag


def _batch_terms(mu, logvar):
  mu, logvar = jnp.asarray(mu, jnp.float32), jnp.asarray(logvar, jnp.float32)
  zeros = jnp.zeros(mu.shape[0])
  return objectives.Terms(recon=zeros, kl=zeros, kl_per_dim=jnp.zeros_like(mu), z=mu,
                          mu=mu, logvar=logvar)


@pytest.mark.parametrize('variant', penalties.DIP_VARIANTS)
def test_dip_penalties_equal_the_formula(variant):
  rng = np.random.default_rng(0)
  mu = rng.normal(size=(32, 4)) @ rng.normal(size=(4, 4))  # correlated means
  logvar = rng.uniform(-2.0, 0.5, (32, 4))
  hparams = {'lambda_od': jnp.asarray(3.0), 'lambda_d': jnp.asarray(7.0)}
  extra, metrics = objectives.get(f'dip_vae_{variant}').batch_term(
      _batch_terms(mu, logvar), hparams, {}, None, jnp.asarray(0))
  off, diag, penalty = _numpy_dip(mu, logvar, variant, 3.0, 7.0)
  assert extra.shape == (32,)
  np.testing.assert_allclose(np.asarray(extra), np.full(32, penalty), rtol=1e-4)
  np.testing.assert_allclose(float(metrics['dip_off_diagonal']), off, rtol=1e-4)
  np.testing.assert_allclose(float(metrics['dip_diagonal']), diag, rtol=1e-4)
  assert off > 0.1 and diag > 0.1


def _whitened(num: int, dim: int, scale: float, seed: int = 1) -> np.ndarray:
  """[num, dim] points whose batch covariance (divided by num) is exactly scale·I."""
  x = np.random.default_rng(seed).normal(size=(num, dim))
  x -= x.mean(0)
  u, _, vt = np.linalg.svd(x, full_matrices=False)
  return np.sqrt(num * scale) * u @ vt + 3.0  # the mean does not matter


@pytest.mark.parametrize('variant, mu_scale, posterior_var', [('i', 1.0, 2.0),
                                                              ('ii', 0.25, 0.75)])
def test_dip_penalties_vanish_at_identity_covariance(variant, mu_scale, posterior_var):
  mu = _whitened(64, 5, mu_scale)
  logvar = np.full((64, 5), np.log(posterior_var))  # ignored by DIP-I
  cov = penalties.dip_covariance(jnp.asarray(mu), jnp.asarray(logvar), variant)
  np.testing.assert_allclose(np.asarray(cov), np.eye(5), atol=1e-5)
  off, diag = penalties.dip_penalties(cov)
  assert float(off) < 1e-9 and float(diag) < 1e-9
  # The other variant sees a covariance of (1 − 0.75)·I or (1 + 2)·I: penalized.
  other = 'ii' if variant == 'i' else 'i'
  _, other_diag = penalties.dip_penalties(
      penalties.dip_covariance(jnp.asarray(mu), jnp.asarray(logvar), other))
  assert float(other_diag) > 1.0


# ------------------------------------------------------------------- WAE-MMD


def _numpy_imq(x, y):
  """Σ_s sC/(sC + ‖x − y‖²) per row pair (C = 2d), in float64."""
  sq = np.sum((np.asarray(x, np.float64) - np.asarray(y, np.float64))**2, axis=-1)
  c = 2.0 * np.shape(x)[-1]
  return sum(s * c / (s * c + sq) for s in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0))


def test_mmd_equals_the_u_statistic_written_out():
  rng = np.random.default_rng(2)
  z, p = rng.normal(size=(5, 3)) + 0.5, rng.normal(size=(5, 3))
  within = lambda a: np.mean([_numpy_imq(a[i], a[j]) for i in range(5) for j in range(5)
                              if i != j])
  cross = np.mean([_numpy_imq(z[i], p[j]) for i in range(5) for j in range(5)])
  expected = within(z) + within(p) - 2.0 * cross
  np.testing.assert_allclose(float(penalties.mmd_imq(jnp.asarray(z), jnp.asarray(p))),
                             expected, rtol=1e-5)


def _mmd_over_batches(shift: float, scale: float, num_batches: int, batch: int, dim: int):
  """MMD estimates of independent batches of q = N(shift, scale²I) against p = N(0, I)."""
  keys = jax.random.split(jax.random.key(3), 2 * num_batches).reshape(num_batches, 2)
  def one(pair):
    z = shift + scale * jax.random.normal(pair[0], (batch, dim), jnp.float64)
    return penalties.mmd_imq(z, jax.random.normal(pair[1], (batch, dim), jnp.float64))
  return np.asarray(jax.vmap(one)(keys))


@pytest.mark.parametrize('shift, scale', [(0.7, 1.5), (0.0, 1.0)])
def test_mmd_is_unbiased(shift, scale):
  with jax.enable_x64(True):
    dim, num = 2, 400_000
    estimates = _mmd_over_batches(shift, scale, 20_000, 6, dim)
    # E k(x, x') − 2 E k(x, y) + E k(y, y') from a large independent sample of pairs.
    rng = np.random.default_rng(4)
    q = lambda: shift + scale * rng.normal(size=(num, dim))
    p = lambda: rng.normal(size=(num, dim))
    parts = _numpy_imq(q(), q()) - 2.0 * _numpy_imq(q(), p()) + _numpy_imq(p(), p())
    reference = parts.mean()
  _mc_close(estimates, reference, extra_stderr=parts.std() / np.sqrt(num))
  if shift == 0.0 and scale == 1.0:
    assert reference == 0.0 or abs(reference) < 5 * parts.std() / np.sqrt(num)
  else:
    assert reference > 20 * estimates.std() / np.sqrt(len(estimates))


def test_wae_batch_term_draws_the_prior_from_its_key():
  z = jnp.asarray(np.random.default_rng(5).normal(size=(8, 3)), jnp.float32)
  terms = _batch_terms(z, jnp.zeros_like(z))
  term = objectives.get('wae_mmd').batch_term
  hparams = {'wae_lambda': jnp.asarray(10.0)}
  extra, metrics = term(terms, hparams, {'wae_encoder': 'gaussian'}, jax.random.key(0),
                        jnp.asarray(0))
  prior = jax.random.normal(jax.random.key(0), (8, 3))
  np.testing.assert_allclose(float(metrics['mmd']), float(penalties.mmd_imq(z, prior)),
                             rtol=1e-6)
  np.testing.assert_allclose(np.asarray(extra), np.full(8, 10.0 * float(metrics['mmd'])),
                             rtol=1e-6)
  other, _ = term(terms, hparams, {'wae_encoder': 'gaussian'}, jax.random.key(1),
                  jnp.asarray(0))
  assert float(other[0]) != float(extra[0])


@pytest.mark.parametrize('encoder', ['gaussian', 'deterministic'])
def test_wae_encoder_samples_z_or_takes_the_mean(encoder):
  config = _test_config('wae_mmd')
  config.objective.wae_encoder = encoder
  dataset = data_lib.load(config.data)
  spec = train_state.make_spec(config, dataset.spec)
  hparams = train_state.make_hparams(config, dataset.num_train)
  params = train_state.init_state(spec, 0).params
  x, y = data_lib.get_batch(spec.data, dataset.arrays, 'train',
                            jnp.asarray(dataset.train_indices(0, 0, 8)), jax.random.key(0))
  out = [steps.batch_loss(params, x, y, jax.random.key(k), hparams, jnp.asarray(0), spec)
         for k in (1, 2)]
  (loss_a, terms_a), (loss_b, terms_b) = out
  assert float(terms_a['kl']) > 0.0 and float(terms_a['kl']) == float(terms_b['kl'])
  assert float(terms_a['mmd']) != float(terms_b['mmd'])  # fresh prior draws per key
  # loss = recon + λ·MMD; the recon is at z = mu (key-free) for the deterministic encoder.
  np.testing.assert_allclose(float(loss_a), float(terms_a['recon'] + 10.0 * terms_a['mmd']),
                             rtol=1e-5)
  assert (float(terms_a['recon']) == float(terms_b['recon'])) == (encoder == 'deterministic')


# ---------------------------------------------------------------------- IWAE

SIGMA = 0.5  # the linear-Gaussian decoder's σ


def _linear_gaussian_model():
  """(encode, decode, x, mu, logvar, W, b, log p(x)): p(z) = N(0, I), p(x|z) =
  N(Wz + b, σ²I), a fixed q(z|x) = N(mu, diag exp(logvar)) away from the posterior."""
  rng = np.random.default_rng(6)
  w, b = rng.normal(size=(5, 3)), rng.normal(size=5)
  x = rng.normal(size=5) * 1.5 + b
  mu, logvar = np.zeros(3), np.full(3, -1.0)
  encode = lambda _: (jnp.asarray(mu), jnp.asarray(logvar))
  decode = lambda z: {'mean': jnp.asarray(w) @ z + jnp.asarray(b),
                      'log_scale': jnp.asarray(np.log(SIGMA))}
  log_px = stats.multivariate_normal(b, w @ w.T + SIGMA**2 * np.eye(5)).logpdf(x)
  return encode, decode, jnp.asarray(x), mu, logvar, w, b, log_px


def _iwae_losses(k: int, keys, name: str = 'iwae'):
  encode, decode, x = _linear_gaussian_model()[:3]
  loss = lambda key: objectives.get(name).example_loss_from_model(
      encode, decode, 'gaussian_fixed', x, key, {}, jnp.asarray(0), {'iw_k': k})
  return np.asarray(jax.vmap(loss)(keys))


def test_iwae_with_one_sample_is_the_elbo_at_the_same_key():
  with jax.enable_x64(True):
    encode, decode, x, mu, logvar, w, b, _ = _linear_gaussian_model()
    keys = jax.random.split(jax.random.key(7), 20_000)
    losses = _iwae_losses(1, keys)
    # −log w_1 at z_1 drawn from fold_in(key, 0): recon there + log q(z_1) − log p(z_1).
    first = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, 0)
    terms = jax.vmap(lambda key: objectives.example_terms(
        encode, decode, 'gaussian_fixed', x, key))(first)
    z = np.asarray(terms.z)
    sd = np.exp(0.5 * logvar)
    log_q = stats.norm.logpdf(z, mu, sd).sum(1)
    log_p = stats.norm.logpdf(z).sum(1)
    log_lik = stats.norm.logpdf(np.asarray(x), z @ w.T + b, SIGMA).sum(1)
    np.testing.assert_allclose(losses, -(log_lik + log_p - log_q), rtol=1e-9)
    np.testing.assert_allclose(losses, np.asarray(terms.recon) + log_q - log_p, rtol=1e-9)
    # Over keys: the analytic-KL negative ELBO, −E_q log p(x|z) + KL(q || p), in closed form.
    var = np.exp(logvar)
    nelbo = (-stats.norm.logpdf(np.asarray(x), w @ mu + b, SIGMA).sum()
             + np.sum((w * w) @ var) / (2 * SIGMA**2)
             + 0.5 * np.sum(mu * mu + var - 1.0 - logvar))
    _mc_close(losses, nelbo)


def test_iwae_bound_improves_with_k():
  with jax.enable_x64(True):
    log_px = _linear_gaussian_model()[-1]
    keys = jax.random.split(jax.random.key(8), 4_000)
    means, previous = [], None
    for k in (1, 5, 50):
      losses = _iwae_losses(k, keys)
      means.append(losses.mean())
      if previous is not None:  # paired over the same keys (shared first draws)
        gain = previous - losses
        assert gain.mean() > NUM_SIGMAS * gain.std() / np.sqrt(len(gain)), k
      previous = losses
    assert means[0] > means[1] > means[2] > -log_px - 1e-3
    assert means[0] - (-log_px) > 0.5  # a real gap for k to close


def test_the_k_sample_elbo_is_the_mean_of_the_same_log_weights():
  # 'elbo_k' (the IWAE's equal-cost baseline): −mean_i log w_i over the k draws the
  # IWAE's loss takes; its expectation is the one-sample ELBO whatever k is, and it
  # lies above the IWAE's −log mean_i w_i at every key (Jensen).
  with jax.enable_x64(True):
    encode, decode, x, mu, logvar, w, b, _ = _linear_gaussian_model()
    keys = jax.random.split(jax.random.key(9), 4_000)
    elbo_k = _iwae_losses(5, keys, 'elbo_k')
    iwae = _iwae_losses(5, keys)
    log_w = jax.vmap(lambda key: iw_bound.log_importance_weights(
        encode, decode, 'gaussian_fixed', x, key, 5))(keys)
    np.testing.assert_allclose(elbo_k, -np.asarray(log_w).mean(1), rtol=1e-12)
    assert np.all(elbo_k >= iwae - 1e-12) and np.mean(elbo_k - iwae) > 0.1
    np.testing.assert_allclose(_iwae_losses(1, keys[:50], 'elbo_k'),
                               _iwae_losses(1, keys[:50]), rtol=1e-12)
    var = np.exp(logvar)
    nelbo = (-stats.norm.logpdf(np.asarray(x), w @ mu + b, SIGMA).sum()
             + np.sum((w * w) @ var) / (2 * SIGMA**2)
             + 0.5 * np.sum(mu * mu + var - 1.0 - logvar))
    _mc_close(elbo_k, nelbo)


def test_iwae_loss_is_not_a_function_of_the_terms():
  iwae = objectives.get('iwae')
  assert iwae.example_loss is None and iwae.example_loss_from_model is not None


# ------------------------------------------- every new objective, end to end

# name: its extra train metrics.
NEW_OBJECTIVES = {'dip_vae_i': ('dip_off_diagonal', 'dip_diagonal'),
                  'dip_vae_ii': ('dip_off_diagonal', 'dip_diagonal'),
                  'wae_mmd': ('mmd',), 'iwae': (), 'elbo_k': (),
                  'factor_vae': ('tc_estimate', 'discriminator_loss', 'discriminator_accuracy')}


def _test_config(name: str):
  config = load_experiment('test')
  config.objective.name = name
  return config


# A second member: another seed and every array hyperparameter of the objective changed.
def _members(name: str) -> list:
  base = _test_config(name)
  other = copy.deepcopy(base)
  other.seed = 1
  for key in objectives.get(name).hparams:
    other.objective[key] = 0.5 * float(base.objective[key])
  return [base, other]


@pytest.mark.parametrize('name', sorted(NEW_OBJECTIVES))
def test_vmapped_population_equals_members_trained_alone(name):
  member_configs = _members(name)
  dataset = data_lib.load(member_configs[0].data)
  spec = train_state.make_spec(member_configs[0], dataset.spec)
  assert spec == train_state.make_spec(member_configs[1], dataset.spec)  # one program
  hparams = [train_state.make_hparams(c, dataset.num_train) for c in member_configs]
  batch, num_steps = member_configs[0].data.batch_size, 3
  indices = np.stack([[dataset.train_indices(c.seed, s, batch) for c in member_configs]
                      for s in range(num_steps)])
  population = train_state.stack([train_state.init_state(spec, c.seed) for c in member_configs])
  population, metrics = steps.population_train_steps(
      population, dataset.arrays, indices, train_state.stack(hparams), spec=spec,
      loop_members=False)
  assert metrics['loss'].shape == (num_steps, 2)
  for m, (config, h) in enumerate(zip(member_configs, hparams)):
    state = train_state.init_state(spec, config.seed)
    for s in range(num_steps):
      state, alone = steps.train_step(state, dataset.arrays, indices[s, m], h, spec=spec)
    np.testing.assert_allclose(float(metrics['loss'][-1, m]), float(alone['loss']),
                               rtol=1e-4)
    # Summation order differs between the vmapped and the single step; Adam divides
    # each gradient by its running scale, so a parameter whose gradient is near zero
    # can move by a visible fraction of the learning rate (1e-3) on that noise alone:
    # atol is 1% of a step. Another member's keys or hyperparameters move the
    # parameters by whole steps.
    member = train_state.member(population, m)
    for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(state)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------- FactorVAE

RHO = 0.8  # correlation of the 2-D Gaussian codes
GAUSSIAN_TC = -0.5 * np.log(1.0 - RHO**2)  # TC of N(0, [[1, ρ], [ρ, 1]]): −½ log det(corr)


def _correlated_codes(key, num: int) -> jax.Array:
  """[num, 2] draws of N(0, [[1, ρ], [ρ, 1]])."""
  chol = jnp.linalg.cholesky(jnp.asarray([[1.0, RHO], [RHO, 1.0]]))
  return jax.random.normal(key, (num, 2)) @ chol.T


def test_optimal_discriminator_logit_difference_is_the_total_correlation():
  # The Bayes-optimal logits for q(z) vs Π_j q(z_j) with equal class sizes are
  # the two log densities (up to a shared constant); their difference, averaged
  # over z ~ q(z), is the total correlation.
  z = np.asarray(_correlated_codes(jax.random.key(0), 200_000), np.float64)
  joint = stats.multivariate_normal([0.0, 0.0], [[1.0, RHO], [RHO, 1.0]]).logpdf(z)
  product = stats.norm.logpdf(z).sum(1)
  shift = 3.0  # logits are defined up to a constant shared by both classes
  logits = jnp.asarray(np.stack([joint + shift, product + shift], axis=-1))
  estimate = np.asarray(discriminator.tc_estimate(logits))
  np.testing.assert_allclose(estimate, joint - product, rtol=1e-6, atol=1e-6)
  _mc_close(estimate, GAUSSIAN_TC)
  assert GAUSSIAN_TC > 0.5


@pytest.mark.slow
def test_trained_discriminator_estimates_the_total_correlation():
  # The discriminator's own loss (codes vs codes permuted by permute_dims),
  # minimized by Adam on fresh correlated batches, approaches the optimum.
  settings = {'discriminator_hidden_dims': (64, 64)}
  auxiliary = registry.FACTOR_DISCRIMINATOR
  params = auxiliary.init(jax.random.key(0), 2, settings)
  optimizer = optax.adam(2e-3, b1=0.5, b2=0.9)

  def step(carry, key):
    params, opt_state = carry
    data_key, loss_key = jax.random.split(key)
    codes = _correlated_codes(data_key, 512)
    loss_fn = lambda p: auxiliary.loss(p, codes, codes, {}, settings, loss_key)
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), metrics

  train = jax.jit(lambda carry, keys: jax.lax.scan(step, carry, keys))
  (params, _), metrics = train((params, optimizer.init(params)),
                               jax.random.split(jax.random.key(1), 1500))
  z = _correlated_codes(jax.random.key(2), 100_000)
  logits = discriminator.Discriminator(settings['discriminator_hidden_dims']).apply(params, z)
  estimate = float(jnp.mean(discriminator.tc_estimate(logits)))
  assert abs(estimate - GAUSSIAN_TC) < 0.1, (estimate, GAUSSIAN_TC)
  # It tells the classes apart better than chance, as far as they can be told apart.
  assert 0.55 < float(jnp.mean(metrics['discriminator_accuracy'][-100:])) < 0.8
  assert float(jnp.mean(metrics['discriminator_loss'][-100:])) < np.log(2.0) - 0.05


def test_permute_dims_keeps_each_marginal_and_breaks_the_dependence():
  z = _correlated_codes(jax.random.key(3), 4096)
  permuted = np.asarray(discriminator.permute_dims(jax.random.key(4), z))
  z = np.asarray(z)
  for j in range(2):  # each column is a permutation of the original column
    np.testing.assert_array_equal(np.sort(permuted[:, j]), np.sort(z[:, j]))
    assert not np.array_equal(permuted[:, j], z[:, j])
  assert np.corrcoef(z.T)[0, 1] > 0.78
  assert abs(np.corrcoef(permuted.T)[0, 1]) < 5.0 / np.sqrt(len(z))  # independent columns
  # Each column has its own permutation; the key decides it.
  rows = lambda p, j: [int(np.flatnonzero(z[:, j] == v)[0]) for v in p[:8, j]]
  assert rows(permuted, 0) != rows(permuted, 1)
  again = np.asarray(discriminator.permute_dims(jax.random.key(4), jnp.asarray(z)))
  np.testing.assert_array_equal(again, permuted)
  assert not np.array_equal(
      np.asarray(discriminator.permute_dims(jax.random.key(5), jnp.asarray(z))), permuted)


def test_discriminator_loss_and_accuracy_equal_the_formulas():
  rng = np.random.default_rng(9)
  real, permuted = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
  log_softmax = lambda a: a - np.log(np.exp(a).sum(1, keepdims=True))
  expected = 0.5 * (-log_softmax(real)[:, 0].mean() - log_softmax(permuted)[:, 1].mean())
  accuracy = 0.5 * ((real[:, 0] > real[:, 1]).mean() + (permuted[:, 1] > permuted[:, 0]).mean())
  loss, acc = discriminator.loss_and_accuracy(jnp.asarray(real), jnp.asarray(permuted))
  np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
  assert float(acc) == pytest.approx(accuracy)
  # A confidently wrong discriminator: its probabilities are clipped to [1e-6, 1 − 1e-6]
  # as disentanglement_lib clips them, so each half costs at most −log 1e-6 nats and
  # gives no gradient there.
  wrong = jnp.asarray([[-40.0, 40.0], [-30.0, 30.0]])
  loss = discriminator.loss_and_accuracy(wrong, -wrong)[0]
  np.testing.assert_allclose(float(loss), -np.log(1e-6), rtol=1e-5)
  grad = jax.grad(lambda r: discriminator.loss_and_accuracy(r, -wrong)[0])(wrong)
  np.testing.assert_array_equal(np.asarray(grad), 0.0)


def _factor_setup(gamma: float = 10.0, name: str = 'factor_vae'):
  config = _test_config(name)
  config.objective.factor_gamma = gamma
  dataset = data_lib.load(config.data)
  spec = train_state.make_spec(config, dataset.spec)
  return config, dataset, spec, train_state.make_hparams(config, dataset.num_train)


def test_factor_vae_loss_adds_gamma_times_the_discriminator_estimate():
  config, dataset, spec, hparams = _factor_setup(gamma=7.0)
  state = train_state.init_state(spec, 0)
  assert isinstance(state, train_state.AuxTrainState)
  x, y = data_lib.get_batch(spec.data, dataset.arrays, 'train',
                            jnp.asarray(dataset.train_indices(0, 0, 8)), jax.random.key(0))
  key = jax.random.key(1)
  loss, metrics = steps.batch_loss(state.params, x, y, key, hparams, jnp.asarray(0), spec,
                                   state.aux['params'])
  terms = jax.vmap(steps.example_terms, in_axes=(None, 0, 0, 0, None))(
      state.params, x, y, jax.random.split(key, 8), spec)
  logits = discriminator.Discriminator((16,) * 6).apply(state.aux['params'], terms.z)
  tc = np.asarray(logits[:, 0] - logits[:, 1])
  np.testing.assert_allclose(float(metrics['tc_estimate']), tc.mean(), rtol=1e-5)
  np.testing.assert_allclose(float(loss), float(jnp.mean(terms.recon + terms.kl)) +
                             7.0 * tc.mean(), rtol=1e-6)


def test_factor_vae_step_updates_the_vae_as_the_elbo_with_gamma_zero():
  # The VAE's keys are the ELBO's (the discriminator draws from its own
  # stream) and the discriminator's update does not depend on γ: the codes it
  # sees come from the VAE before the step.
  _, dataset, spec, hparams = _factor_setup(gamma=0.0)
  elbo_config, _, elbo_spec, elbo_hparams = _factor_setup(name='elbo')
  assert type(train_state.init_state(elbo_spec, 0)) is train_state.TrainState  # others: unchanged
  indices = jnp.asarray(dataset.train_indices(0, 0, 8))
  factor, metrics = steps.train_step(train_state.init_state(spec, 0), dataset.arrays, indices,
                                     hparams, spec=spec)
  elbo, _ = steps.train_step(train_state.init_state(elbo_spec, 0), dataset.arrays, indices,
                             elbo_hparams, spec=elbo_spec)
  for a, b in zip(jax.tree.leaves(factor.params), jax.tree.leaves(elbo.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert bool(metrics['finite'])
  assert 0.0 <= float(metrics['discriminator_accuracy']) <= 1.0
  hparams_10 = dict(hparams, factor_gamma=jnp.asarray(10.0, jnp.float32))
  other, _ = steps.train_step(train_state.init_state(spec, 0), dataset.arrays, indices, hparams_10,
                              spec=spec)
  for a, b in zip(jax.tree.leaves(other.aux), jax.tree.leaves(factor.aux)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not all(np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(other.params), jax.tree.leaves(factor.params)))
  fresh = train_state.init_state(spec, 0)
  assert not all(np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(fresh.aux['params']), jax.tree.leaves(factor.aux['params'])))


def test_factor_vae_finite_flag_covers_the_discriminator():
  _, dataset, spec, hparams = _factor_setup()
  indices = jnp.asarray(dataset.train_indices(0, 0, 8))
  hparams = dict(hparams, discriminator_lr=jnp.asarray(np.inf, jnp.float32))
  state, metrics = steps.train_step(train_state.init_state(spec, 0), dataset.arrays, indices,
                                    hparams, spec=spec)
  assert np.isfinite(float(metrics['loss'])) and np.isfinite(float(metrics['grad_norm']))
  assert all(np.isfinite(np.asarray(p)).all() for p in jax.tree.leaves(state.params))
  assert not bool(metrics['finite'])


@pytest.mark.parametrize('loop_members', [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=['vmap', 'loop'])
def test_factor_vae_population_members_differing_in_gamma_equal_single_runs(loop_members):
  member_configs = _members('factor_vae')  # γ and the discriminator's lr halved, seed 1
  assert member_configs[1].objective.factor_gamma == 5.0
  dataset = data_lib.load(member_configs[0].data)
  spec = train_state.make_spec(member_configs[0], dataset.spec)
  hparams = [train_state.make_hparams(c, dataset.num_train) for c in member_configs]
  indices = np.stack([[dataset.train_indices(c.seed, s, 8) for c in member_configs]
                      for s in range(3)])
  population = train_state.stack([train_state.init_state(spec, c.seed) for c in member_configs])
  population, metrics = steps.population_train_steps(
      population, dataset.arrays, indices, train_state.stack(hparams), spec=spec,
      loop_members=loop_members)
  for m, (config, h) in enumerate(zip(member_configs, hparams)):
    state = train_state.init_state(spec, config.seed)
    state, alone = steps.train_steps(state, dataset.arrays, indices[:, m], h, spec=spec)
    for key in ('loss', 'tc_estimate', 'discriminator_loss', 'discriminator_accuracy'):
      np.testing.assert_allclose(np.asarray(metrics[key][:, m]), np.asarray(alone[key]),
                                 rtol=1e-4, atol=1e-6)
    # Summation order differs between the vmapped and the single step; Adam divides
    # each gradient by its running scale, so a parameter whose gradient is near zero
    # can move by a visible fraction of the learning rate (1e-3) on that noise alone:
    # atol is 1% of a step. Another member's keys or hyperparameters move the
    # parameters by whole steps.
    member = train_state.member(population, m)
    for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(state)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


@pytest.mark.e2e
def test_factor_vae_interrupted_and_resumed_equals_uninterrupted(tmp_path, monkeypatch):
  config = _test_config('factor_vae')
  reference = str(tmp_path / 'reference')
  train.train_and_evaluate(config, reference)

  class StopAtOnce(guards.Interrupts):  # a SIGTERM before the first dispatch
    def __enter__(self):
      self.signum = signal.SIGTERM
      return self

  workdir = str(tmp_path / 'interrupted')
  monkeypatch.setattr(guards, 'Interrupts', StopAtOnce)
  with pytest.raises(Interrupted, match='at step 2'):
    train.train_and_evaluate(config, workdir)
  monkeypatch.undo()
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2']
  train.train_and_evaluate(config, workdir)
  resumed, uninterrupted = final_state(workdir, config), final_state(reference, config)
  assert isinstance(resumed, train_state.AuxTrainState)
  assert _state_digest(resumed) == _state_digest(uninterrupted)
  records = lambda w: [{k: v for k, v in json.loads(line).items() if k not in (
      'time', 'steps_per_sec')} for line in open(os.path.join(w, 'metrics.jsonl'))]
  assert records(workdir) == records(reference)


def _state_digest(state) -> str:
  """sha256 of every leaf of a train state (the discriminator's included)."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(state):
    digest.update(np.asarray(leaf).tobytes())
  return digest.hexdigest()


@pytest.mark.e2e
@pytest.mark.slow
def test_factor_vae_cli_run_loads_and_evaluates_from_the_vae_params_alone(tmp_path):
  workdir = str(tmp_path / 'run')
  out = cli('--config=experiments/test.py', '--config.objective.name=factor_vae',
            '--config.train.num_steps=1', f'--workdir={workdir}')
  assert out.returncode == 0, out.stderr[-2000:]
  record = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))
            if '"train"' in line][-1]
  assert record['step'] == 1 and 0.0 <= record['discriminator_accuracy'] <= 1.0
  assert np.isfinite(record['tc_estimate']) and record['discriminator_loss'] > 0.0
  import vae_jax  # pylint: disable=g-import-not-at-top
  model = vae_jax.load(workdir)
  config = load_experiment('test')
  config.objective.name = 'factor_vae'
  config.train.num_steps = 1
  state = final_state(workdir, config)
  for a, b in zip(jax.tree.leaves(model.params), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert model.sample(2).shape == (2, *model.image_shape)
  summary = json.load(open(os.path.join(workdir, 'summary.json')))
  evaluated = evaluate_run.evaluate_workdir(config, workdir)
  assert evaluated['nelbo'] == pytest.approx(summary['nelbo'], rel=1e-6)


def test_factor_vae_second_batch_form_permutes_the_codes_of_an_independent_batch():
  # Kim & Mnih's Algorithm 1: the discriminator's class 1 is a second batch's codes,
  # permuted. The VAE's update is the same-batch form's (it uses the discriminator
  # from before the step); the discriminator's loss is that of the second batch's codes.
  _, dataset, spec, hparams = _factor_setup()
  second_config, _, second_spec, _ = _factor_setup()
  second_config.objective.factor_permuted_codes = 'second_batch'
  second_spec = train_state.make_spec(second_config, dataset.spec)
  indices = jnp.asarray(dataset.train_indices(0, 0, 8))
  same, _ = steps.train_step(train_state.init_state(spec, 0), dataset.arrays, indices,
                             hparams, spec=spec)
  state = train_state.init_state(second_spec, 0)
  second, metrics = steps.train_step(state, dataset.arrays, indices, hparams, spec=second_spec)
  for a, b in zip(jax.tree.leaves(same.params), jax.tree.leaves(second.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not all(np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(same.aux['params']), jax.tree.leaves(second.aux['params'])))
  # The loss it reports is the discriminator's on (the batch's codes, the second batch's).
  state = train_state.init_state(second_spec, 0)
  data_key, sample_key = key_streams.step_keys(state.seed, state.step)
  x, y = data_lib.get_batch(spec.data, dataset.arrays, 'train', indices, data_key)
  _, (_, z) = steps.batch_loss(state.params, x, y, sample_key, hparams, state.step,
                               second_spec, state.aux['params'], with_codes=True)
  other = steps.second_batch_codes(state.params, dataset.arrays, data_key, 8, second_spec)
  assert not np.allclose(np.asarray(other), np.asarray(z))
  loss, _ = registry.FACTOR_DISCRIMINATOR.loss(
      state.aux['params'], z, other, hparams, dict(second_spec.settings),
      jax.random.fold_in(sample_key, key_streams.AUX_STREAM))
  np.testing.assert_allclose(float(metrics['discriminator_loss']), float(loss), rtol=1e-5)


def test_a_second_batch_is_drawn_uniformly_from_the_training_examples():
  _, dataset, spec, _ = _factor_setup()
  ids = np.asarray(data_lib.sample_train_indices(dataset.spec, dataset.arrays,
                                                 jax.random.key(0), 20_000))
  train = dataset.train_ids if dataset.train_ids is not None else np.arange(dataset.num_train)
  assert np.isin(ids, train).all()  # never a held-out example
  assert not np.isin(ids, dataset.eval_ids).any()
  again = data_lib.sample_train_indices(dataset.spec, dataset.arrays, jax.random.key(0), 20_000)
  np.testing.assert_array_equal(np.asarray(again), ids)
  # Uniform over the training positions: each tenth of them gets ≈ 1/10 of the draws.
  positions = np.searchsorted(train, ids)
  counts = np.bincount(positions * 10 // len(train), minlength=10)
  assert np.all(np.abs(counts - 2000) < 5 * np.sqrt(2000 * 0.9))
