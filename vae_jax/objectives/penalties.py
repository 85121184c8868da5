"""Batch penalties on the latent codes: DIP-VAE's covariance moments and WAE's MMD.

Both couple the examples of a batch (like β-TCVAE's total correlation), so the
objectives add them once per batch, after the per-example terms.

DIP-VAE (Kumar et al. 2018) matches the covariance of the aggregate posterior
to the prior's identity, with Cov taken over the batch (mean over the batch,
divided by B, not B − 1):

    'i'   Cov = Cov[mu]                              (encoder means)
    'ii'  Cov = E[diag exp(logvar)] + Cov[mu]        (aggregate posterior q(z))
    penalty = λ_od·Σ_{i≠j} Cov_ij² + λ_d·Σ_i (Cov_ii − 1)²

WAE-MMD (Tolstikhin et al. 2018): the unbiased U-statistic of MMD²(q(z), p(z))
with the inverse multiquadratic kernel k(x, y) = Σ_s sC / (sC + ‖x − y‖²),
C = 2·d·σ_z², s ∈ IMQ_SCALES.
"""

import jax
import jax.numpy as jnp

DIP_VARIANTS = ('i', 'ii')
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def dip_covariance(mu: jax.Array, logvar: jax.Array, variant: str) -> jax.Array:
  """[D, D] Cov[mu] ('i') or E[diag exp(logvar)] + Cov[mu] ('ii') over the batch [B, D]."""
  centered = mu - jnp.mean(mu, axis=0, keepdims=True)
  cov = centered.T @ centered / mu.shape[0]
  if variant == 'ii':
    return cov + jnp.diag(jnp.mean(jnp.exp(logvar), axis=0))
  if variant != 'i':
    raise ValueError(f'unknown DIP-VAE variant {variant!r}; choose one of {DIP_VARIANTS}')
  return cov


def dip_penalties(cov: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(Σ_{i≠j} Cov_ij², Σ_i (Cov_ii − 1)²) of a [D, D] covariance."""
  diag = jnp.diag(cov)
  return jnp.sum(cov * cov) - jnp.sum(diag * diag), jnp.sum((diag - 1.0)**2)


def imq_kernel(x: jax.Array, y: jax.Array, prior_var: float = 1.0) -> jax.Array:
  """[N, M] Σ_s sC / (sC + ‖x_i − y_j‖²), C = 2·d·σ², s ∈ IMQ_SCALES."""
  sq_dist = jnp.sum((x[:, None, :] - y[None, :, :])**2, axis=-1)
  c = 2.0 * x.shape[-1] * prior_var
  return sum(s * c / (s * c + sq_dist) for s in IMQ_SCALES)


def mmd_imq(z: jax.Array, prior_z: jax.Array, prior_var: float = 1.0) -> jax.Array:
  """Unbiased MMD² of z ~ q and prior_z ~ p ([N, D] each, N ≥ 2):
  Σ_{i≠j} k(z_i, z_j)/(N(N−1)) + Σ_{i≠j} k(p_i, p_j)/(N(N−1)) − 2·Σ_{i,j} k(z_i, p_j)/N²."""
  num = z.shape[0]
  off_diagonal = 1.0 - jnp.eye(num, dtype=z.dtype)
  within = lambda a: jnp.sum(imq_kernel(a, a, prior_var) * off_diagonal) / (num * (num - 1))
  return within(z) + within(prior_z) - 2.0 * jnp.mean(imq_kernel(z, prior_z, prior_var))
