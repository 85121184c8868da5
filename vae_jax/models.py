"""Flax linen encoders and decoders for ONE example (batch with `jax.vmap`).

Shapes: an image x is float32 [H, W, C] in [0, 1]; a label y is an int32
scalar; a latent z is float32 [latent_dim]. The encoder returns
`(mu, logvar)`, each [latent_dim]; the decoder returns the likelihood's
parameters, each [H, W, C] (`logits` for Bernoulli, `mean` and `log_scale`
for Gaussian). A conditional model (CVAE) feeds the one-hot label to both.

Architectures:
- `mlp`:  flatten → Dense(h) for h in hidden_dims → Dense(2·latent_dim);
          decoder Dense(h) for h in decoder_hidden_dims → Dense(H·W·C).
- `conv`: Conv(c, 4×4, stride 2, SAME) for c in conv_channels → flatten →
          Dense(h) for h in hidden_dims → Dense(2·latent_dim); the decoder
          mirrors it with stride-2 transposed convolutions. With
          conv_channels=(32, 32, 32, 32), hidden_dims=(256, 256) on 64×64
          inputs this is the β-VAE network of Burgess et al. (2018).
          The convolutions are `vae_jax.conv.StridedConv` and
          `StridedConvTranspose`: the functions, parameters and parameter
          paths (Conv_i, ConvTranspose_i) of nn.Conv / nn.ConvTranspose, in
          a form whose forward and backward passes XLA runs fast on CPU.
"""

import functools
import math
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae_jax import conv, likelihoods
from vae_jax.errors import ConfigError

ACTIVATIONS = {'relu': nn.relu, 'tanh': jnp.tanh, 'elu': nn.elu, 'gelu': nn.gelu,
               'swish': nn.swish}
INITS = ('flax', 'torch')  # config.model.init: see `initializers`
CONV_KERNEL = 4  # the kernel side of every (transposed) convolution (vae_jax.conv's default)


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


def _with_label(h: jax.Array, y: Optional[jax.Array], num_classes: int) -> jax.Array:
  """Appends the one-hot label to a feature vector (CVAE); no-op if unconditional."""
  if num_classes == 0:
    return h
  return jnp.concatenate([h, jax.nn.one_hot(y, num_classes, dtype=h.dtype)])


class Encoder(nn.Module):
  """x [H, W, C] (+ label) → (mu, logvar), each [latent_dim]."""
  latent_dim: int
  hidden_dims: Sequence[int]
  conv_channels: Sequence[int] = ()
  num_classes: int = 0
  activation: str = 'relu'
  weight_init: str = 'flax'  # see `initializers`

  @nn.compact
  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None):
    act = ACTIVATIONS[self.activation]
    dense = lambda n, h: nn.Dense(n, **initializers(self.weight_init, h.shape[-1]))(h)
    h = x
    for i, channels in enumerate(self.conv_channels):
      fan_in = CONV_KERNEL**2 * h.shape[-1]
      h = act(conv.StridedConv(channels, name=f'Conv_{i}',
                               **initializers(self.weight_init, fan_in))(h))
    h = _with_label(h.reshape(-1), y, self.num_classes)
    for width in self.hidden_dims:
      h = act(dense(width, h))
    out = dense(2 * self.latent_dim, h)
    mu, logvar = jnp.split(out, 2)
    return mu, logvar


class Decoder(nn.Module):
  """z [latent_dim] (+ label) → likelihood parameters, each [H, W, C]."""
  image_shape: Sequence[int]
  hidden_dims: Sequence[int]
  conv_channels: Sequence[int] = ()
  num_classes: int = 0
  activation: str = 'relu'
  likelihood: str = 'bernoulli'
  gaussian_scale: float = 0.1
  weight_init: str = 'flax'  # see `initializers`

  @nn.compact
  def __call__(self, z: jax.Array, y: Optional[jax.Array] = None) -> dict:
    act = ACTIVATIONS[self.activation]
    dense = lambda n, h: nn.Dense(n, **initializers(self.weight_init, h.shape[-1]))(h)
    # PyTorch takes a transposed conv's fan-in from its OUTPUT channels (the
    # second axis of its [Cin, Cout, k, k] weight); 'torch' does the same.
    transposed = lambda n, name: conv.StridedConvTranspose(
        n, name=name, **initializers(self.weight_init, CONV_KERNEL**2 * n))
    height, width, channels = self.image_shape
    h = _with_label(z, y, self.num_classes)
    for size in self.hidden_dims:
      h = act(dense(size, h))
    if self.conv_channels:
      factor = 2 ** len(self.conv_channels)
      start = (height // factor, width // factor, self.conv_channels[-1])
      h = act(dense(math.prod(start), h)).reshape(start)
      last = len(self.conv_channels) - 1
      for i, size in enumerate(reversed(self.conv_channels[:-1])):
        h = act(transposed(size, f'ConvTranspose_{i}')(h))
      out = transposed(channels, f'ConvTranspose_{last}')(h)
    else:
      out = dense(height * width * channels, h).reshape(self.image_shape)
    if self.likelihood == 'bernoulli':
      return {'logits': out}
    if self.likelihood == 'gaussian_learned':
      log_scale = self.param('log_scale', nn.initializers.zeros, (), jnp.float32)
    else:
      log_scale = jnp.asarray(math.log(self.gaussian_scale), jnp.float32)
    return {'mean': out, 'log_scale': log_scale}


class VAE(nn.Module):
  """An encoder/decoder pair; `encode` and `decode` are the pure entry points."""
  encoder: Encoder
  decoder: Decoder

  def __call__(self, x: jax.Array, y: Optional[jax.Array] = None) -> dict:
    """Decodes the posterior mean (used to initialise every parameter)."""
    mu, _ = self.encoder(x, y)
    return self.decoder(mu, y)

  def encode(self, x: jax.Array, y: Optional[jax.Array] = None):
    return self.encoder(x, y)

  def decode(self, z: jax.Array, y: Optional[jax.Array] = None) -> dict:
    return self.decoder(z, y)


def build(model_config, image_shape: Sequence[int], num_classes: int) -> VAE:
  """The VAE that `config.model` describes for images of `image_shape`."""
  image_shape = tuple(int(d) for d in image_shape)
  conv = tuple(model_config.conv_channels) if model_config.architecture == 'conv' else ()
  factor = 2 ** len(conv)
  if conv and (image_shape[0] % factor or image_shape[1] % factor):
    raise ConfigError(
        f'config.model.conv_channels: {len(conv)} stride-2 layers need image sides '
        f'divisible by {factor}, got {image_shape[:2]}; use fewer layers or architecture=mlp')
  labels = num_classes if model_config.conditional else 0
  hidden = tuple(model_config.hidden_dims)
  decoder_hidden = tuple(model_config.decoder_hidden_dims or hidden[::-1])
  encoder = Encoder(latent_dim=model_config.latent_dim, hidden_dims=hidden,
                    conv_channels=conv, num_classes=labels,
                    activation=model_config.activation, weight_init=model_config.init)
  decoder = Decoder(image_shape=image_shape, hidden_dims=decoder_hidden,
                    conv_channels=conv, num_classes=labels,
                    activation=model_config.activation,
                    likelihood=model_config.likelihood,
                    gaussian_scale=model_config.gaussian_scale,
                    weight_init=model_config.init)
  return VAE(encoder=encoder, decoder=decoder)


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
  return likelihoods.mean(model.decoder.likelihood, decode(model, params, z, y))
