"""The MLP architecture ('mlp'): flatten → Dense(h) for h in hidden_dims → Dense(2·latent_dim);
the decoder Dense(h) for h in decoder_hidden_dims (default: hidden_dims reversed) → Dense(H·W·C).

With hidden_dims=(1200, 1200) on 64×64 dSprites this is the fully connected
network of the β-VAE paper (Higgins et al. 2017), with a ReLU decoder.
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax.models import layers
from vae_jax.models.architecture import Architecture


class MLPEncoder(nn.Module):
  """x [H, W, C] (+ label) → (mu, logvar), each [latent_dim]."""
  latent_dim: int
  hidden_dims: Sequence[int]
  num_classes: int = 0
  activation: str = 'relu'
  weight_init: str = 'flax'  # see layers.initializers

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None):
    act = layers.ACTIVATIONS[self.activation]
    h = layers.with_label(x.reshape(-1), y, self.num_classes)
    for width in self.hidden_dims:
      h = act(layers.dense(width, h, self.weight_init))
    mu, logvar = jnp.split(layers.dense(2 * self.latent_dim, h, self.weight_init), 2)
    return mu, logvar


class MLPDecoder(nn.Module):
  """z [latent_dim] (+ label) → likelihood parameters, each [H, W, C]."""
  image_shape: Sequence[int]
  hidden_dims: Sequence[int]
  num_classes: int = 0
  activation: str = 'relu'
  likelihood: str = 'bernoulli'
  gaussian_scale: float = 0.1
  weight_init: str = 'flax'

  @nn.compact
  def __call__(self, z: jax.Array, y: Optional[jax.Array] = None) -> dict:
    act = layers.ACTIVATIONS[self.activation]
    h = layers.with_label(z, y, self.num_classes)
    for width in self.hidden_dims:
      h = act(layers.dense(width, h, self.weight_init))
    height, width, channels = self.image_shape
    out = layers.dense(height * width * channels, h, self.weight_init)
    return layers.likelihood_params(self, out.reshape(self.image_shape), self.likelihood,
                                    self.gaussian_scale)


def decoder_widths(model_config) -> tuple:
  """config.model.decoder_hidden_dims, or the encoder's widths reversed when ()."""
  return tuple(model_config.decoder_hidden_dims or tuple(model_config.hidden_dims)[::-1])


ARCHITECTURE = Architecture(
    name='mlp',
    encoder=lambda c, shape, classes: MLPEncoder(
        latent_dim=c.latent_dim, hidden_dims=tuple(c.hidden_dims), num_classes=classes,
        activation=c.activation, weight_init=c.init),
    decoder=lambda c, shape, classes: MLPDecoder(
        image_shape=shape, hidden_dims=decoder_widths(c), num_classes=classes,
        activation=c.activation, likelihood=c.likelihood,
        gaussian_scale=c.gaussian_scale, weight_init=c.init))
