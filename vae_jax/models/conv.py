"""The convolutional architecture ('conv'), the β-VAE network of Burgess et al. (2018).

Encoder: Conv(c, 4×4, stride 2, SAME) for c in conv_channels → flatten →
Dense(h) for h in hidden_dims → Dense(2·latent_dim). The decoder mirrors it:
Dense(h) for h in decoder_hidden_dims → Dense to the smallest feature map →
stride-2 transposed convolutions back to [H, W, C]. With
conv_channels=(32, 32, 32, 32), hidden_dims=(256, 256) on 64×64 inputs this
is Burgess et al.'s network. The convolutions are
`strided_conv.StridedConv` and `StridedConvTranspose`: the functions,
parameters and parameter paths (Conv_i, ConvTranspose_i) of nn.Conv /
nn.ConvTranspose, in a form whose forward and backward passes XLA runs fast
on CPU.
"""

import math
from typing import Optional, Sequence

import flax.linen as nn
import jax

from vae_jax.errors import ConfigError
from vae_jax.models import layers, mlp, strided_conv
from vae_jax.models.architecture import Architecture, Decoder, Encoder

KERNEL = 4  # the kernel side of every (transposed) convolution


class ConvEncoder(Encoder, kw_only=True):
  """Conv(c, 4×4, stride 2) for c in conv_channels, flatten, Dense(h) for h in
  hidden_dims, Dense(2·latent_dim)."""
  hidden_dims: Sequence[int]
  conv_channels: Sequence[int]

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None):
    act = layers.ACTIVATIONS[self.activation]
    h = x
    for i, channels in enumerate(self.conv_channels):
      fan_in = KERNEL**2 * h.shape[-1]
      h = act(strided_conv.StridedConv(channels, kernel_size=KERNEL, name=f'Conv_{i}',
                                       **layers.initializers(self.weight_init, fan_in))(h))
    h = layers.with_label(h.reshape(-1), y, self.num_classes)
    h = layers.dense_stack(h, self.hidden_dims, self.activation, self.weight_init)
    return layers.posterior_head(h, self.latent_dim, self.weight_init)


class ConvDecoder(Decoder, kw_only=True):
  """Dense(h) for h in hidden_dims, Dense to the smallest feature map, transposed
  convolutions back to [H, W, C]."""
  hidden_dims: Sequence[int]
  conv_channels: Sequence[int]

  @nn.compact
  def __call__(self, z: jax.Array, y: Optional[jax.Array] = None) -> dict:
    act = layers.ACTIVATIONS[self.activation]
    # PyTorch takes a transposed conv's fan-in from its OUTPUT channels (the
    # second axis of its [Cin, Cout, k, k] weight); 'torch' does the same.
    transposed = lambda n, name: strided_conv.StridedConvTranspose(
        n, kernel_size=KERNEL, name=name,
        **layers.initializers(self.weight_init, KERNEL**2 * n))
    height, width, channels = self.image_shape
    h = layers.with_label(z, y, self.num_classes)
    h = layers.dense_stack(h, self.hidden_dims, self.activation, self.weight_init)
    factor = 2 ** len(self.conv_channels)
    start = (height // factor, width // factor, self.conv_channels[-1])
    h = act(layers.dense(math.prod(start), h, self.weight_init)).reshape(start)
    last = len(self.conv_channels) - 1
    for i, size in enumerate(reversed(self.conv_channels[:-1])):
      h = act(transposed(size, f'ConvTranspose_{i}')(h))
    out = transposed(channels, f'ConvTranspose_{last}')(h)
    return self.likelihood_params(out)


def _check_image_shape(model_config, image_shape: Sequence[int]) -> None:
  layers_count = len(model_config.conv_channels)
  factor = 2 ** layers_count
  if image_shape[0] % factor or image_shape[1] % factor:
    raise ConfigError(
        f'config.model.conv_channels: {layers_count} stride-2 layers need image sides '
        f'divisible by {factor}, got {tuple(image_shape[:2])}; use fewer layers or '
        'architecture=mlp')


ARCHITECTURE = Architecture(
    name='conv',
    encoder=lambda c, shape, classes: ConvEncoder(
        latent_dim=c.latent_dim, hidden_dims=tuple(c.hidden_dims),
        conv_channels=tuple(c.conv_channels), num_classes=classes,
        activation=c.activation, weight_init=c.init),
    decoder=lambda c, shape, classes: ConvDecoder(
        image_shape=shape, hidden_dims=mlp.decoder_widths(c),
        conv_channels=tuple(c.conv_channels), num_classes=classes,
        activation=layers.decoder_activation(c), likelihood=c.likelihood,
        gaussian_scale=c.gaussian_scale, weight_init=c.init),
    unroll_steps=True, loop_population_on_cpu=False, check_image_shape=_check_image_shape)
