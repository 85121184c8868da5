"""Diagonal Gaussian formulas, written once: log-density, KL to N(0, I), sampling.

Shapes broadcast elementwise; the callers sum over the latent axis. The
densities and the KL take jax or numpy arrays: numpy in, numpy out (float64
host-side diagnostics keep their precision).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _xp(*arrays):
  """numpy if every input is a numpy array or scalar, else jax.numpy."""
  return np if all(isinstance(a, (np.ndarray, np.generic, float, int)) for a in arrays) else jnp


def log_density(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
  """Elementwise log N(x; mean, exp(log_std)²) = −½((x − mean)/σ)² − log σ − ½ log 2π."""
  u = (x - mean) * _xp(x, mean, log_std).exp(-log_std)
  return -0.5 * u * u - log_std - HALF_LOG_2PI


def standard_log_density(z: jax.Array) -> jax.Array:
  """log N(z; 0, I) = Σ_d −½z_d² − ½ log 2π, summed over the last axis."""
  return _xp(z).sum(-0.5 * z * z - HALF_LOG_2PI, axis=-1)


def kl_to_standard(mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """Elementwise KL(N(mu, e^logvar) || N(0, 1)) = ½(mu² + e^logvar − 1 − logvar)."""
  return 0.5 * (mu * mu + _xp(mu, logvar).exp(logvar) - 1.0 - logvar)


def reparameterize(key: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
  """z = mu + exp(logvar/2)·eps with eps ~ N(0, I) drawn from `key`."""
  eps = jax.random.normal(key, mu.shape, mu.dtype)
  return mu + jnp.exp(0.5 * logvar) * eps
