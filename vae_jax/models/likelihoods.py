"""Decoder likelihoods log p(x|z) for ONE example, summed over pixels, in nats.

Pixels are floats in [0, 1]. Each function takes the decoder's likelihood
parameters for one example (same shape as `x`) and returns a scalar.

- Bernoulli:           log p(x|z) = Σ_d x_d log σ(l_d) + (1 − x_d) log σ(−l_d)
- Gaussian, scale σ:   log p(x|z) = Σ_d −½((x_d − m_d)/σ)² − log σ − ½ log 2π
  (fixed σ from the config, or one learned log σ shared by all pixels: the
  "σ-VAE" of Rybkin et al. 2021, whose optimum is the reconstruction RMSE).
"""

import jax
import jax.numpy as jnp

from vae_jax.models import gaussian

LIKELIHOODS = ('bernoulli', 'gaussian_fixed', 'gaussian_learned')


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
  """Σ_d log Bernoulli(x_d; σ(logits_d)); x may be fractional (cross-entropy).

  x·log σ(l) + (1 − x)·log σ(−l) = x·l − softplus(l), since log σ(l) − log σ(−l) = l:
  one stable softplus per pixel instead of two log-sigmoids.
  """
  return jnp.sum(x * logits - jax.nn.softplus(logits))


def gaussian_log_prob(x: jax.Array, mean: jax.Array,
                      log_scale: jax.Array) -> jax.Array:
  """Σ_d log N(x_d; mean_d, exp(log_scale)²); log_scale broadcasts to x."""
  return jnp.sum(gaussian.log_density(x, mean, jnp.broadcast_to(log_scale, x.shape)))


def log_prob(likelihood: str, x: jax.Array, params: dict) -> jax.Array:
  """log p(x|z) for the named likelihood and decoder output `params`."""
  if likelihood == 'bernoulli':
    return bernoulli_log_prob(x, params['logits'])
  if likelihood in ('gaussian_fixed', 'gaussian_learned'):
    return gaussian_log_prob(x, params['mean'], params['log_scale'])
  raise ValueError(f'unknown likelihood {likelihood!r}; choose one of {LIKELIHOODS}')


def mean(likelihood: str, params: dict) -> jax.Array:
  """E[x|z]: the picture a decoder output stands for (pixel intensities)."""
  if likelihood == 'bernoulli':
    return jax.nn.sigmoid(params['logits'])
  return params['mean']
