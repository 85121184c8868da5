"""Minibatch estimates of the total correlation of the aggregate posterior (β-TCVAE).

TC = KL(q(z) || Π_d q(z_d)), with q(z) = E_x q(z|x). It needs the whole
minibatch: q(z_i) is estimated from the posteriors of every example in the
batch, so it is the one term computed per batch, after the per-example
terms. Since kl = MI + TC + dimension-wise KL, β-TCVAE's recon + kl +
(β − 1)·TC weights TC by β and the other two parts of the KL by 1.
"""

import jax
import jax.numpy as jnp

from vae_jax.models import gaussian
from vae_jax.objectives.fields import TC_ESTIMATORS


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
            for j ≠ i: example i's own posterior at its share 1/N of the
            dataset, the other M − 1 standing in equally for the other N − 1
            examples. Averaged over the batches that hold example i, the
            estimated densities q(z_i) and q(z_id) equal the aggregate
            posterior's (unbiased; their logs are not), and with the whole
            dataset as the batch (M = N, every weight 1/N) they are exact.
            These are not the weights of the original β-TCVAE code: its
            importance-weight matrix is meant to give w_ii = 1/N, one other
            example (N − M')/(N·M') and the rest 1/M' (M' = M − 1), but its
            flat-index stride is the row length where the diagonal needs the
            row length + 1, so 1/N lands down the first column and
            (N − M')/(N·M') down the second. tests/test_total_correlation.py checks these weights
            against the exact TC of a small full dataset.
  """
  num = z.shape[0]
  log_q = gaussian.log_density(z[:, None, :], mu[None, :, :],
                               0.5 * logvar[None, :, :])  # [M, M, D]
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
