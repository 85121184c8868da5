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

Everything here is per example; `jax.vmap` maps it over a batch and the caller
reduces once (mean over the batch).
"""

from typing import Callable

import jax
import jax.numpy as jnp

from vae_jax import likelihoods

OBJECTIVES = ('elbo', 'beta', 'capacity', 'ae')


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
  """
  mu, logvar = encode(x)
  z = reparameterize(key, mu, logvar) if stochastic else mu
  recon = -likelihoods.log_prob(likelihood, x, decode(z))
  kl_per_dim = gaussian_kl(mu, logvar) if stochastic else jnp.zeros_like(mu)
  kl = jnp.sum(kl_per_dim)
  return {'recon': recon, 'kl': kl, 'nelbo': recon + kl, 'kl_per_dim': kl_per_dim}


def objective_loss(name: str, terms: dict, hparams: dict,
                   step: jax.Array) -> jax.Array:
  """The minimized loss of one example from its terms; hparams are arrays."""
  recon, kl = terms['recon'], terms['kl']
  if name == 'elbo':
    return recon + kl
  if name == 'beta':
    return recon + hparams['beta'] * kl
  if name == 'capacity':
    target = capacity(step, hparams['capacity_max'], hparams['capacity_steps'])
    return recon + hparams['gamma'] * jnp.abs(kl - target)
  if name == 'ae':
    return recon
  raise ValueError(f'unknown objective {name!r}; choose one of {OBJECTIVES}')
