"""The encoder/decoder protocol an architecture implements, and how the train loop runs it.

An architecture is one module of vae_jax/models/ that defines
`ARCHITECTURE = Architecture(...)`, listed in `vae_jax.models.ARCHITECTURES`
(docs/extending.md has a worked example). Its two Flax linen modules work on
ONE example (the train step and the batched calls vmap them):

- encoder(x, y) → (mu, logvar): x float32 [H, W, C] in [0, 1], y an int32
  scalar label (None or ignored when unconditional); mu, logvar each
  [latent_dim].
- decoder(z, y) → the likelihood's parameters, each [H, W, C]:
  `layers.likelihood_params` of the last layer's output ({'logits'} for
  Bernoulli, {'mean', 'log_scale'} for Gaussian).

A conditional model (config.model.conditional) passes `num_classes > 0`:
feed `layers.with_label(h, y, num_classes)` to both networks. `Encoder` and
`Decoder` below hold the settings every architecture gets; an architecture's
modules subclass them (`kw_only=True`) and add their own fields.
"""

import dataclasses
from typing import Callable, Sequence

import flax.linen as nn
import jax
import ml_collections

from vae_jax.models import layers

# (config.model, image_shape (H, W, C), num_classes: 0 unless conditional) → a module
ModuleFactory = Callable[[ml_collections.ConfigDict, tuple, int], nn.Module]


class Encoder(nn.Module):
  """x [H, W, C] (+ label) → (mu, logvar), each [latent_dim]."""
  latent_dim: int
  num_classes: int = 0
  activation: str = 'relu'
  weight_init: str = 'flax'  # see layers.initializers


class Decoder(nn.Module):
  """z [latent_dim] (+ label) → likelihood parameters, each [H, W, C]."""
  image_shape: Sequence[int]
  num_classes: int = 0
  activation: str = 'relu'
  likelihood: str = 'bernoulli'
  gaussian_scale: float = 0.1
  weight_init: str = 'flax'

  def likelihood_params(self, out: jax.Array) -> dict:
    """The last layer's output [H, W, C] as the likelihood's parameters."""
    return layers.likelihood_params(self, out, self.likelihood, self.gaussian_scale)


@dataclasses.dataclass(frozen=True)
class Architecture:
  """An encoder/decoder pair by name, and the step strategy it asks for.

  The two strategy flags concern XLA's CPU backend, which runs a convolution
  inside a while loop far slower than the same convolution at top level
  (benchmarks/README.md): a convolutional architecture sets
  `unroll_steps=True` (the K steps of one dispatch are unrolled, not looped)
  and `loop_population_on_cpu=False` (a sweep population is vmapped, not
  written member after member, which would compile M unrolled programs).
  Accelerators ignore `loop_population_on_cpu`.
  """
  name: str
  encoder: ModuleFactory
  decoder: ModuleFactory
  unroll_steps: bool = False
  loop_population_on_cpu: bool = True
  # ConfigError (a one-line message) for images the networks cannot take, or None.
  check_image_shape: Callable[[ml_collections.ConfigDict, Sequence[int]], None] = None
