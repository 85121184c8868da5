"""ELBO terms of ONE example, in nats, and the capacity schedule.

For an example x (label y for a CVAE), encoder q(z|x) = N(mu, diag(exp(logvar)))
and prior p(z) = N(0, I):

    recon = −E_q[log p(x|z)]          (one reparameterized sample z)
    kl    = KL(q(z|x) || p(z))        (analytic)
    nelbo = recon + kl  ≥ −log p(x)
"""

from typing import Callable

import flax
import jax
import jax.numpy as jnp

from vae_jax.models import gaussian, likelihoods


@flax.struct.dataclass
class Terms:
  """ELBO terms of ONE example in nats (vmapped: a leading batch axis on each)."""
  recon: jax.Array  # −log p(x|z) at the sampled z
  kl: jax.Array  # KL(q(z|x) || p(z)), summed over latents
  kl_per_dim: jax.Array  # [D]
  z: jax.Array  # [D] the latent sample (mu for the autoencoder)
  mu: jax.Array  # [D]
  logvar: jax.Array  # [D]

  @property
  def nelbo(self) -> jax.Array:
    return self.recon + self.kl


def example_terms(encode: Callable, decode: Callable, likelihood: str,
                  x: jax.Array, key: jax.Array, *, stochastic: bool = True,
                  sample: bool = True) -> Terms:
  """ELBO terms of one example.

  `encode(x) -> (mu, logvar)` and `decode(z) -> likelihood params` are the
  model's functions for this example (labels already bound for a CVAE).
  With `stochastic=False` (the autoencoder) z = mu and the KL terms are zero;
  with `sample=False` (WAE's deterministic encoder) z = mu, the KL still computed.
  """
  mu, logvar = encode(x)
  z = gaussian.reparameterize(key, mu, logvar) if stochastic and sample else mu
  recon = -likelihoods.log_prob(likelihood, x, decode(z))
  kl_per_dim = gaussian.kl_to_standard(mu, logvar) if stochastic else jnp.zeros_like(mu)
  return Terms(recon=recon, kl=jnp.sum(kl_per_dim), kl_per_dim=kl_per_dim, z=z, mu=mu,
               logvar=logvar)


def capacity(step: jax.Array, capacity_max: jax.Array,
             capacity_steps: jax.Array) -> jax.Array:
  """C(t) = C_max·min(1, t/T): the linearly increasing KL target, in nats."""
  frac = jnp.minimum(1.0, step / jnp.maximum(capacity_steps, 1.0))
  return capacity_max * frac
