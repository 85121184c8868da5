"""Pieces every architecture shares: activations, initializers, the label input, the output head."""

import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = {'relu': nn.relu, 'tanh': jnp.tanh, 'elu': nn.elu, 'gelu': nn.gelu,
               'swish': nn.swish}
INITS = ('flax', 'torch')  # config.model.init: see `initializers`


def initializers(init: str, fan_in: int) -> dict:
  """The kernel_init / bias_init of a layer whose kernel has `fan_in` inputs per output.

  'flax' ({}: the layers' own defaults): LeCun normal kernels (truncated
  normal, variance 1/fan_in), zero biases. 'torch': PyTorch's defaults for
  nn.Linear, nn.Conv2d and nn.ConvTranspose2d (kaiming_uniform with a = √5):
  kernel and bias both U(−1/√fan_in, 1/√fan_in), a kernel variance of
  1/(3·fan_in).
  """
  if init == 'flax':
    return {}
  bound = 1.0 / math.sqrt(fan_in)

  def uniform(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return {'kernel_init': uniform, 'bias_init': uniform}


def dense(features: int, h: jax.Array, init: str) -> jax.Array:
  """nn.Dense(features) of h (auto-named Dense_i in the calling compact module)."""
  return nn.Dense(features, **initializers(init, h.shape[-1]))(h)


def decoder_activation(model_config) -> str:
  """config.model.decoder_activation, or the encoder's activation when it is ''."""
  return model_config.decoder_activation or model_config.activation


def dense_stack(h: jax.Array, widths, activation: str, init: str) -> jax.Array:
  """activation(Dense(w)) for w in widths, in turn (named Dense_i like `dense`)."""
  for width in widths:
    h = ACTIVATIONS[activation](dense(width, h, init))
  return h


def posterior_head(h: jax.Array, latent_dim: int, init: str) -> tuple[jax.Array, jax.Array]:
  """(mu, logvar) of q(z|x), each [latent_dim], from one Dense(2·latent_dim) of h."""
  mu, logvar = jnp.split(dense(2 * latent_dim, h, init), 2)
  return mu, logvar


def with_label(h: jax.Array, y: Optional[jax.Array], num_classes: int) -> jax.Array:
  """Appends the one-hot label to a feature vector (CVAE); no-op if unconditional."""
  if num_classes == 0:
    return h
  return jnp.concatenate([h, jax.nn.one_hot(y, num_classes, dtype=h.dtype)])


def likelihood_params(module: nn.Module, out: jax.Array, likelihood: str,
                      gaussian_scale: float) -> dict:
  """The decoder's output [H, W, C] as the likelihood's parameters.

  Bernoulli: {'logits'}; Gaussian: {'mean', 'log_scale'}, log σ fixed from
  config.model.gaussian_scale or one learned scalar ('log_scale', a
  parameter of `module`, the decoder).
  """
  if likelihood == 'bernoulli':
    return {'logits': out}
  if likelihood == 'gaussian_learned':
    log_scale = module.param('log_scale', nn.initializers.zeros, (), jnp.float32)
  else:
    log_scale = jnp.asarray(math.log(gaussian_scale), jnp.float32)
  return {'mean': out, 'log_scale': log_scale}
