"""The importance-weighted bound of ONE example (Burda et al. 2015), in nats.

For an example x and z_i ~ q(z|x), i = 1..k (reparameterized, z_i = mu + σ·eps_i):

    log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x)
    nll_iw  = −(logsumexp_i log w_i − log k)

E[nll_iw] is the negative ELBO at k = 1 (with a sampled KL), decreases with k
and tends to −log p(x) as k → ∞. Sample i of an example with key `key` is
drawn from `fold_in(key, i)`, so the samples do not depend on how the k
draws are split into chunks (and the first k of k' > k draws are shared).
The held-out loop over a dataset is `vae_jax.evaluation.loop.importance_weighted_nll`.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from vae_jax.models import gaussian
from vae_jax.models import likelihoods


def _flatten_like(params: dict, shape: tuple) -> dict:
  """Decoder outputs of x's shape reshaped to [-1]; others (a scalar log σ) kept."""
  return {name: v.reshape(-1) if v.shape == shape else v for name, v in params.items()}


def log_importance_weight(decode: Callable, likelihood: str, x: jax.Array,
                          mu: jax.Array, logvar: jax.Array, key: jax.Array) -> jax.Array:
  """log p(x|z) + log p(z) − log q(z|x) at z = mu + exp(logvar/2)·eps, eps ~ N(0, I).

  log q(z|x) = log N(eps; 0, I) − ½Σ logvar, evaluated from eps itself (exact,
  no division by σ). The likelihood is summed over flattened pixels: the same
  value, but XLA on CPU reduces a flat [H·W·C] faster than [H, W, C].
  """
  eps = jax.random.normal(key, mu.shape, mu.dtype)
  z = mu + jnp.exp(0.5 * logvar) * eps
  log_q = gaussian.standard_log_density(eps) - 0.5 * jnp.sum(logvar)
  log_lik = likelihoods.log_prob(likelihood, x.reshape(-1),
                                 _flatten_like(decode(z), x.shape))
  return log_lik + gaussian.standard_log_density(z) - log_q


def _log_weights_at(decode: Callable, likelihood: str, x: jax.Array, mu: jax.Array,
                    logvar: jax.Array, key: jax.Array, sample_ids: jax.Array) -> jax.Array:
  """log w_i for the samples i in `sample_ids`, sample i drawn from fold_in(key, i)."""
  keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, sample_ids)
  return jax.vmap(lambda k: log_importance_weight(decode, likelihood, x, mu, logvar, k))(keys)


def log_importance_weights(encode: Callable, decode: Callable, likelihood: str,
                           x: jax.Array, key: jax.Array, num_samples: int) -> jax.Array:
  """[num_samples] log w_i of ONE example (encode(x) → (mu, logvar), decode(z) → params)."""
  mu, logvar = encode(x)
  return _log_weights_at(decode, likelihood, x, mu, logvar, key, jnp.arange(num_samples))


def iw_nll_from_log_weights(log_w: jax.Array) -> jax.Array:
  """nll_iw = −(logsumexp_i log w_i − log k), over the last axis (k = its length)."""
  return -(jax.nn.logsumexp(log_w, axis=-1) - jnp.log(log_w.shape[-1]))


def example_iw_nll(encode: Callable, decode: Callable, likelihood: str, x: jax.Array,
                   key: jax.Array, num_samples: int, chunk_size: int) -> jax.Array:
  """nll_iw of ONE example with the k samples taken `chunk_size` at a time.

  A `lax.scan` over ⌈k / chunk_size⌉ chunks keeps the running
  L ← logaddexp(L, logsumexp(chunk)); draws past k in the last chunk get
  log w = −inf. Equals iw_nll_from_log_weights(log_importance_weights(...)).
  """
  mu, logvar = encode(x)
  chunk_size = min(chunk_size, num_samples)
  num_chunks = -(-num_samples // chunk_size)

  def body(total: jax.Array, chunk: jax.Array):
    ids = chunk * chunk_size + jnp.arange(chunk_size)
    log_w = _log_weights_at(decode, likelihood, x, mu, logvar, key, ids)
    log_w = jnp.where(ids < num_samples, log_w, -jnp.inf)
    return jnp.logaddexp(total, jax.nn.logsumexp(log_w).astype(total.dtype)), None

  start = jnp.full((), -jnp.inf, mu.dtype)
  total, _ = jax.lax.scan(body, start, jnp.arange(num_chunks))
  return -(total - jnp.log(jnp.asarray(num_samples, total.dtype)))
