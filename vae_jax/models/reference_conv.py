"""disentanglement_lib's convolutional networks ('reference_conv'), the study's networks.

The networks of Locatello et al. (2019), whose published disentanglement
ranges come from them (`conv_encoder` / `deconv_decoder` of
disentanglement_lib, after row 3 of Table 1 of Higgins et al. 2017):

  encoder  Conv(32, 4×4, s2) → Conv(32, 4×4, s2) → Conv(64, 2×2, s2) →
           Conv(64, 2×2, s2) → flatten → Dense(256) → Dense(2·latent_dim)
  decoder  Dense(256) → Dense(H/16 · W/16 · 64) → ConvT(64, 4×4, s2) →
           ConvT(32, 4×4, s2) → ConvT(32, 4×4, s2) → ConvT(C, 4×4, s2)

all 'SAME', stride 2, ReLU between layers (config.model.activation and
decoder_activation). The widths are fixed: config.model.hidden_dims and
conv_channels are not read; latent_dim, the activations, conditional,
likelihood and init are.
"""

import math
from typing import Optional, Sequence

import flax.linen as nn
import jax

from vae_jax.errors import ConfigError
from vae_jax.models import layers, strided_conv
from vae_jax.models.architecture import Architecture, Decoder, Encoder

ENCODER_CONVS = ((32, 4), (32, 4), (64, 2), (64, 2))  # (channels, kernel side)
DECODER_CONVS = ((64, 4), (32, 4), (32, 4))  # then (C, 4) to the image's channels
WIDTH = 256  # the dense layer between the convolutions and the code
DOWNSAMPLING = 2 ** len(ENCODER_CONVS)


class ReferenceConvEncoder(Encoder):
  """ENCODER_CONVS (stride 2), flatten, Dense(WIDTH), Dense(2·latent_dim)."""

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None):
    act = layers.ACTIVATIONS[self.activation]
    h = x
    for i, (channels, kernel) in enumerate(ENCODER_CONVS):
      init = layers.initializers(self.weight_init, kernel**2 * h.shape[-1])
      h = act(strided_conv.StridedConv(channels, kernel_size=kernel, name=f'Conv_{i}',
                                       **init)(h))
    h = layers.with_label(h.reshape(-1), y, self.num_classes)
    h = layers.dense_stack(h, (WIDTH,), self.activation, self.weight_init)
    return layers.posterior_head(h, self.latent_dim, self.weight_init)


class ReferenceConvDecoder(Decoder):
  """Dense(WIDTH), Dense to the smallest feature map, DECODER_CONVS transposed, then C."""

  @nn.compact
  def __call__(self, z: jax.Array, y: Optional[jax.Array] = None) -> dict:
    act = layers.ACTIVATIONS[self.activation]
    height, width, channels = self.image_shape
    h = layers.with_label(z, y, self.num_classes)
    h = layers.dense_stack(h, (WIDTH,), self.activation, self.weight_init)
    start = (height // DOWNSAMPLING, width // DOWNSAMPLING, DECODER_CONVS[0][0])
    h = act(layers.dense(math.prod(start), h, self.weight_init)).reshape(start)
    sizes = DECODER_CONVS + ((channels, 4),)
    for i, (size, kernel) in enumerate(sizes):
      h = strided_conv.StridedConvTranspose(
          size, kernel_size=kernel, name=f'ConvTranspose_{i}',
          **layers.initializers(self.weight_init, kernel**2 * size))(h)
      if i < len(sizes) - 1:
        h = act(h)
    return self.likelihood_params(h)


def _check_image_shape(model_config, image_shape: Sequence[int]) -> None:
  del model_config
  if image_shape[0] % DOWNSAMPLING or image_shape[1] % DOWNSAMPLING:
    raise ConfigError(
        f"config.model.architecture='reference_conv' needs image sides divisible by "
        f'{DOWNSAMPLING} (64×64 in the study), got {tuple(image_shape[:2])}; use '
        "architecture='mlp' or 'conv'")


ARCHITECTURE = Architecture(
    name='reference_conv',
    encoder=lambda c, shape, classes: ReferenceConvEncoder(
        latent_dim=c.latent_dim, num_classes=classes, activation=c.activation,
        weight_init=c.init),
    decoder=lambda c, shape, classes: ReferenceConvDecoder(
        image_shape=shape, num_classes=classes, activation=layers.decoder_activation(c),
        likelihood=c.likelihood, gaussian_scale=c.gaussian_scale, weight_init=c.init),
    unroll_steps=True, loop_population_on_cpu=False, check_image_shape=_check_image_shape)
