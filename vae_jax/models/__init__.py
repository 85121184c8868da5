"""Networks: the architectures (one module each), likelihoods, Gaussian maths, and the
one way to call a model (`encode_one`/`decode_one` for ONE example; `encode`,
`decode`, `decode_mean` batched and jitted).

An architecture is a module here defining `ARCHITECTURE` (the encoder/decoder
protocol: architecture.py), listed in `ARCHITECTURES` below.
"""

from vae_jax.models import conv, mlp, reference_conv
from vae_jax.models.architecture import Architecture
from vae_jax.models.layers import ACTIVATIONS, INITS
from vae_jax.models.vae import VAE, decode, decode_mean, decode_one, encode, encode_one
from vae_jax.models import vae as _vae

# config.model.architecture → Architecture: a new architecture adds its row.
ARCHITECTURES = {a.name: a for a in (mlp.ARCHITECTURE, conv.ARCHITECTURE,
                                     reference_conv.ARCHITECTURE)}


def build(model_config, image_shape, num_classes: int) -> VAE:
  """The VAE that `config.model` describes for images of `image_shape`."""
  return _vae.build(model_config, image_shape, num_classes, ARCHITECTURES)


def architecture(model: VAE) -> Architecture:
  """The Architecture `model` was built from (its step strategy)."""
  return ARCHITECTURES[model.architecture]


__all__ = ['ACTIVATIONS', 'ARCHITECTURES', 'INITS', 'VAE', 'Architecture', 'architecture',
           'build', 'decode', 'decode_mean', 'decode_one', 'encode', 'encode_one']
