"""The MLP architecture ('mlp'): flatten → Dense(h) for h in hidden_dims → Dense(2·latent_dim);
the decoder Dense(h) for h in decoder_hidden_dims (default: hidden_dims reversed) → Dense(H·W·C).

With hidden_dims=(1200, 1200), decoder_hidden_dims=(1200, 1200, 1200) and
decoder_activation='tanh' on 64×64 dSprites this is the fully connected
network of the β-VAE paper (Higgins et al. 2017) and of disentanglement_lib
(`fc_encoder`, ReLU; `fc_decoder`, tanh): experiments' `:fc`.
"""

from typing import Optional, Sequence

import flax.linen as nn
import jax

from vae_jax.models import layers
from vae_jax.models.architecture import Architecture, Decoder, Encoder


class MLPEncoder(Encoder, kw_only=True):
  """flatten, Dense(h) for h in hidden_dims, Dense(2·latent_dim)."""
  hidden_dims: Sequence[int]

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None):
    h = layers.with_label(x.reshape(-1), y, self.num_classes)
    h = layers.dense_stack(h, self.hidden_dims, self.activation, self.weight_init)
    return layers.posterior_head(h, self.latent_dim, self.weight_init)


class MLPDecoder(Decoder, kw_only=True):
  """Dense(h) for h in hidden_dims, Dense(H·W·C)."""
  hidden_dims: Sequence[int]

  @nn.compact
  def __call__(self, z: jax.Array, y: Optional[jax.Array] = None) -> dict:
    h = layers.with_label(z, y, self.num_classes)
    h = layers.dense_stack(h, self.hidden_dims, self.activation, self.weight_init)
    height, width, channels = self.image_shape
    out = layers.dense(height * width * channels, h, self.weight_init)
    return self.likelihood_params(out.reshape(self.image_shape))


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
        activation=layers.decoder_activation(c), likelihood=c.likelihood,
        gaussian_scale=c.gaussian_scale, weight_init=c.init))
