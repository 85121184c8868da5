"""Noisy dSprites (Locatello et al. 2019): the white sprite on uniform noise.

disentanglement_lib's `NoisyDSprites`: the binary dSprites image is repeated
over 3 channels and `min(image + U(0, 1), 1)` is taken pixel by pixel, with
independent noise per pixel and channel. So sprite pixels are exactly 1
(white) and background pixels are U[0, 1) noise, a colour image [64, 64, 3].

Three channels, as in the reference: its noise is drawn independently per
channel, so a one-channel version would be a different dataset and its
scores not comparable with the published ones.

Sprites and factors are dSprites' (vae_jax.data.dsprites: the same renderer,
factor names, sizes and flat indices, the shape as the label), so every
disentanglement score runs on it (`eval.factor_source='noisy_dsprites'`).
The pixels are continuous: the config must say data.binarize='none'. The
noise of a training batch comes from the step's data key; every other image
(evaluation, scoring, pictures) has the fixed noise of its flat index
(vae_jax.data.procedural).
"""

import jax
import jax.numpy as jnp

from vae_jax.data import dsprites
from vae_jax.data import procedural

CHANNELS = 3


def render(factors: jax.Array) -> jax.Array:
  """The noiseless sprites float32 [N, 64, 64, 3] in {0, 1} of factor classes [N, 6]."""
  return jnp.repeat(dsprites.PROCEDURAL.render(factors), CHANNELS, axis=-1)


def noise(keys: jax.Array, clean: jax.Array) -> jax.Array:
  """min(clean + U(0, 1), 1), the uniform draws of image n from keys[n]."""
  uniform = jax.vmap(lambda k: jax.random.uniform(k, clean.shape[1:], jnp.float32))
  return jnp.minimum(clean + uniform(keys), 1.0)


PROCEDURAL = procedural.ProceduralFactors(
    name='noisy_dsprites', title='noisy dSprites',
    factor_names=dsprites.FACTOR_NAMES, factor_sizes=dsprites.FACTOR_SIZES,
    image_shape=dsprites.IMAGE_SHAPE[:2] + (CHANNELS,),
    class_factor='shape', class_names=dsprites.PROCEDURAL.class_names,
    render=render, noise=noise, binary=False,
    traversal_base=dsprites.PROCEDURAL.traversal_base,
    source='procedural noisy dSprites (vae_jax.data.noisy_dsprites)')
