"""The VAE module (an architecture's encoder/decoder pair) and the one way to call it.

Shapes: an image x is float32 [H, W, C] in [0, 1]; a label y is an int32
scalar; a latent z is float32 [latent_dim]. The encoder returns
`(mu, logvar)`, each [latent_dim]; the decoder returns the likelihood's
parameters, each [H, W, C] (`logits` for Bernoulli, `mean` and `log_scale`
for Gaussian). A conditional model (CVAE) feeds the one-hot label to both.
The architectures and their protocol: vae_jax/models/architecture.py.
"""

import functools
from typing import Optional, Sequence

import flax.linen as nn
import jax

from vae_jax.models import likelihoods


class VAE(nn.Module):
  """An encoder/decoder pair; `encode` and `decode` are the pure entry points."""
  encoder: nn.Module
  decoder: nn.Module
  architecture: str  # its name in vae_jax.models.ARCHITECTURES
  latent_dim: int
  num_classes: int  # 0 unless conditional (CVAE)
  likelihood: str  # one of likelihoods.LIKELIHOODS

  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None) -> dict:
    """Decodes the posterior mean (used to initialise every parameter)."""
    mu, _ = self.encoder(x, y)
    return self.decoder(mu, y)

  def encode(self, x: jax.Array, y: Optional[jax.Array] = None):
    return self.encoder(x, y)

  def decode(self, z: jax.Array, y: Optional[jax.Array] = None) -> dict:
    return self.decoder(z, y)


def build(model_config, image_shape: Sequence[int], num_classes: int,
          architectures: dict) -> VAE:
  """The VAE that `config.model` describes for images of `image_shape`, its
  architecture looked up in `architectures` (name → Architecture)."""
  image_shape = tuple(int(d) for d in image_shape)
  architecture = architectures[model_config.architecture]
  if architecture.check_image_shape is not None:
    architecture.check_image_shape(model_config, image_shape)
  labels = num_classes if model_config.conditional else 0
  return VAE(encoder=architecture.encoder(model_config, image_shape, labels),
             decoder=architecture.decoder(model_config, image_shape, labels),
             architecture=architecture.name, latent_dim=model_config.latent_dim,
             num_classes=labels, likelihood=model_config.likelihood)


# --- Calling a model: the one way, used by training, evaluation and pictures --
#
# `encode_one` / `decode_one` apply the model to ONE example (the per-example
# ELBO is written with them and vmapped); `encode`, `decode` and
# `decode_mean` are their batched, jitted forms (params an argument, the
# module static) for every caller outside the train step.


def encode_one(model: VAE, params, x: jax.Array, y: jax.Array):
  """(mu, logvar), each [D], of ONE image x [H, W, C] with label y (int scalar)."""
  return model.apply(params, x, y, method=VAE.encode)


def decode_one(model: VAE, params, z: jax.Array, y: jax.Array) -> dict:
  """Likelihood parameters, each [H, W, C], of ONE latent z [D] with label y."""
  return model.apply(params, z, y, method=VAE.decode)


@functools.partial(jax.jit, static_argnums=0)
def encode(model: VAE, params, x: jax.Array, y: jax.Array):
  """(mu, logvar), each [N, D], of images x [N, H, W, C] with labels y [N]."""
  return jax.vmap(encode_one, in_axes=(None, None, 0, 0))(model, params, x, y)


@functools.partial(jax.jit, static_argnums=0)
def decode(model: VAE, params, z: jax.Array, y: jax.Array) -> dict:
  """Likelihood parameters, each [N, H, W, C], of latents z [N, D] with labels y [N]."""
  return jax.vmap(decode_one, in_axes=(None, None, 0, 0))(model, params, z, y)


@functools.partial(jax.jit, static_argnums=0)
def decode_mean(model: VAE, params, z: jax.Array, y: jax.Array) -> jax.Array:
  """E[x|z], [N, H, W, C]: the pictures that latents z [N, D] (labels y [N]) stand for."""
  return likelihoods.mean(model.likelihood, decode(model, params, z, y))
