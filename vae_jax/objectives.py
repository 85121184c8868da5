"""ELBO terms for ONE example and the objectives built from them, in nats.

For an example x (label y for a CVAE), encoder q(z|x) = N(mu, diag(exp(logvar)))
and prior p(z) = N(0, I):

    recon = −E_q[log p(x|z)]          (one reparameterized sample z)
    kl    = KL(q(z|x) || p(z))        (analytic)
    nelbo = recon + kl  ≥ −log p(x)

Objectives (the `loss` actually minimized, chosen by config.objective.name):

    elbo      recon + kl                                (plain VAE)
    beta      recon + β·kl                              (Higgins et al. 2017)
    capacity  recon + γ·|kl − C(t)|, C(t) = C_max·min(1, t/T)   (Burgess et al. 2018)
    ae        −log p(x|z=mu): deterministic autoencoder, no sampling, no KL
    beta_tc   recon + kl + (β − 1)·TC                   (β-TCVAE, Chen et al. 2018)

TC = KL(q(z) || Π_d q(z_d)) is the total correlation of the aggregate
posterior q(z) = E_x q(z|x). It needs the whole minibatch (q(z_i) is
estimated from the posteriors of every example in the batch), so it is the
one term computed per batch, by `total_correlation`, after the per-example
terms. Since kl = MI + TC + dimension-wise KL, this weights TC by β and the
other two parts of the KL by 1.

Everything here is per example; `jax.vmap` maps it over a batch and the caller
reduces once (mean over the batch).
"""

from typing import Callable

import jax
import jax.numpy as jnp

from vae_jax import likelihoods

OBJECTIVES = ('elbo', 'beta', 'capacity', 'ae', 'beta_tc')
TC_ESTIMATORS = ('mws', 'mss')
BATCH_OBJECTIVES = ('beta_tc',)  # objectives with a term that couples the batch


def reparameterize(key: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """z = mu + exp(logvar/2)·eps with eps ~ N(0, I) drawn from `key`."""
  eps = jax.random.normal(key, mu.shape, mu.dtype)
  return mu + jnp.exp(0.5 * logvar) * eps


def gaussian_kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """Per-dimension KL(N(mu, exp(logvar)) || N(0, 1)) = ½(mu² + e^logvar − 1 − logvar)."""
  return 0.5 * (mu * mu + jnp.exp(logvar) - 1.0 - logvar)


def capacity(step: jax.Array, capacity_max: jax.Array,
             capacity_steps: jax.Array) -> jax.Array:
  """C(t) = C_max·min(1, t/T): the linearly increasing KL target, in nats."""
  frac = jnp.minimum(1.0, step / jnp.maximum(capacity_steps, 1.0))
  return capacity_max * frac


def example_terms(encode: Callable, decode: Callable, likelihood: str,
                  x: jax.Array, key: jax.Array, *, stochastic: bool = True) -> dict:
  """ELBO terms of one example: recon, kl (total and per dimension), nelbo.

  `encode(x) -> (mu, logvar)` and `decode(z) -> likelihood params` are the
  model's functions for this example (labels already bound for a CVAE).
  With `stochastic=False` (the autoencoder) z = mu and the KL terms are zero.
  The latent sample `z` and `mu`, `logvar` are returned too (for batch terms).
  """
  mu, logvar = encode(x)
  z = reparameterize(key, mu, logvar) if stochastic else mu
  recon = -likelihoods.log_prob(likelihood, x, decode(z))
  kl_per_dim = gaussian_kl(mu, logvar) if stochastic else jnp.zeros_like(mu)
  kl = jnp.sum(kl_per_dim)
  return {'recon': recon, 'kl': kl, 'nelbo': recon + kl, 'kl_per_dim': kl_per_dim,
          'z': z, 'mu': mu, 'logvar': logvar}


def objective_loss(name: str, terms: dict, hparams: dict,
                   step: jax.Array) -> jax.Array:
  """The minimized loss of one example from its terms; hparams are arrays."""
  recon, kl = terms['recon'], terms['kl']
  if name in ('elbo', 'beta_tc'):  # beta_tc adds its batch term in `total_correlation`
    return recon + kl
  if name == 'beta':
    return recon + hparams['beta'] * kl
  if name == 'capacity':
    target = capacity(step, hparams['capacity_max'], hparams['capacity_steps'])
    return recon + hparams['gamma'] * jnp.abs(kl - target)
  if name == 'ae':
    return recon
  raise ValueError(f'unknown objective {name!r}; choose one of {OBJECTIVES}')


def gaussian_log_density(z: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """Elementwise log N(z; mu, exp(logvar)) = −½(log 2π + logvar + (z − mu)²/e^logvar)."""
  return -0.5 * (jnp.log(2.0 * jnp.pi) + logvar + (z - mu) ** 2 * jnp.exp(-logvar))


def total_correlation(z: jax.Array, mu: jax.Array, logvar: jax.Array,
                      dataset_size: jax.Array, estimator: str = 'mws') -> jax.Array:
  """Per-example TC estimates [M] = log q(z_i) − Σ_d log q(z_id) for a batch.

  z, mu, logvar: [M, D], z_i ~ q(z|x_i). With ℓ_ijd = log q(z_id|x_j), the
  aggregate density is estimated from the batch as
      log q(z_i)    ≈ logsumexp_j (Σ_d ℓ_ijd + log w_ij)
      log q(z_id)   ≈ logsumexp_j (ℓ_ijd + log w_ij)
  with N = dataset_size and weights (Chen et al. 2018, appendix C):
      'mws' (minibatch weighted sampling): w_ij = 1/(N·M) for all j — the
            published β-TCVAE objective; biased by a roughly constant offset.
      'mss' (minibatch stratified sampling): w_ii = 1/N, w_ij = (N−1)/(N(M−1))
            for j ≠ i — consistent: → the true TC as M grows.
  """
  num = z.shape[0]
  log_q = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])  # [M, M, D]
  if estimator == 'mws':
    log_w = jnp.full((num, num), -jnp.log(dataset_size * num))
  elif estimator == 'mss':
    own = -jnp.log(dataset_size)
    other = jnp.log(dataset_size - 1.0) - jnp.log(dataset_size) - jnp.log(num - 1.0)
    log_w = jnp.where(jnp.eye(num, dtype=bool), own, other)
  else:
    raise ValueError(f'unknown TC estimator {estimator!r}; choose one of {TC_ESTIMATORS}')
  log_qz = jax.nn.logsumexp(jnp.sum(log_q, axis=2) + log_w, axis=1)
  log_qz_marginals = jnp.sum(jax.nn.logsumexp(log_q + log_w[:, :, None], axis=1), axis=1)
  return log_qz - log_qz_marginals
