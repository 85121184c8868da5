"""FactorVAE's discriminator: the density-ratio estimate of the total correlation.

Kim & Mnih (2018) estimate the total correlation of the aggregate posterior,

    TC(z) = KL(q(z) || Π_j q(z_j)) = E_q(z)[log q(z) − log Π_j q(z_j)],

with a classifier D between codes of q(z) (class 0: the batch's samples
z ~ q(z|x)) and codes of Π_j q(z_j) (class 1: the batch's codes with every
dimension permuted across the batch by its own permutation, `permute_dims`).
With equal class sizes the Bayes-optimal classifier's logit difference is the
log density ratio, D(z)_0 − D(z)_1 = log q(z) − log Π_j q(z_j), so

    TC ≈ mean_i [D(z_i)_0 − D(z_i)_1]                      (`tc_estimate`)

over the batch's z_i ~ q(z). The network (Kim & Mnih 2018; Locatello et al.
2019): an MLP of 6 dense layers of 1000 units with leaky ReLU (slope 0.2)
and 2 logits. Its loss (`loss_and_accuracy`): the cross-entropy of the real
codes as class 0 and the permuted codes as class 1, the two halves weighted
equally, in nats, of the softmax probabilities clipped to [1e-6, 1 − 1e-6]
as disentanglement_lib clips them (PROBABILITY_CLIP: a confident
discriminator's loss stays finite and stops pushing; the TC estimate uses the
unclipped logits).

Which codes are permuted (config.objective.factor_permuted_codes): the
batch's own ('same_batch', disentanglement_lib's and pythae's form), or
those of a second batch drawn independently of the first ('second_batch',
Kim & Mnih's Algorithm 1: the permuted codes then carry no dependence on the
batch they are compared with; the step draws it, `steps.second_batch_codes`).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax.objectives import fields

HIDDEN_DIMS = fields.DISCRIMINATOR_HIDDEN_DIMS
LEAKY_SLOPE = 0.2
PROBABILITY_CLIP = 1e-6  # the class probabilities enter the loss clipped to [c, 1 − c]


class Discriminator(nn.Module):
  """codes [..., D] → 2 logits [..., 2] (class 0: q(z), class 1: Π_j q(z_j))."""
  hidden_dims: tuple = HIDDEN_DIMS

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h = z
    for width in self.hidden_dims:
      h = nn.leaky_relu(nn.Dense(width)(h), LEAKY_SLOPE)
    return nn.Dense(2)(h)


def permute_dims(key: jax.Array, z: jax.Array) -> jax.Array:
  """z [B, D] with each column permuted across the batch by its own permutation.

  Column j uses the permutation of split(key, D)[j]: every marginal keeps its
  values, the dependence between the dimensions is broken (a sample of
  Π_j q(z_j) when z's rows are samples of q(z)).
  """
  keys = jax.random.split(key, z.shape[1])
  return jax.vmap(jax.random.permutation, in_axes=(0, 1), out_axes=1)(keys, z)


def tc_estimate(logits: jax.Array) -> jax.Array:
  """D(z)_0 − D(z)_1 per code: log q(z) − log Π_j q(z_j) for the optimal D, nats."""
  return logits[..., 0] - logits[..., 1]


def loss_and_accuracy(real_logits: jax.Array,
                      permuted_logits: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(cross-entropy in nats, accuracy) of real codes [B, 2] as class 0 and
  permuted codes [B, 2] as class 1, each half weighted ½, the probabilities
  clipped to [PROBABILITY_CLIP, 1 − PROBABILITY_CLIP]."""
  log_probs = lambda logits: jnp.log(jnp.clip(jax.nn.softmax(logits), PROBABILITY_CLIP,
                                              1.0 - PROBABILITY_CLIP))
  real = -jnp.mean(log_probs(real_logits)[:, 0])
  permuted = -jnp.mean(log_probs(permuted_logits)[:, 1])
  accuracy = 0.5 * (jnp.mean(jnp.argmax(real_logits, axis=-1) == 0) +
                    jnp.mean(jnp.argmax(permuted_logits, axis=-1) == 1))
  return 0.5 * (real + permuted), accuracy
