"""Procedural factor datasets: the protocol, and the registry every caller reads.

A procedural dataset is rendered on the device from discrete ground-truth
factors; nothing is stored or downloaded. It is ONE module of vae_jax/data/
that defines `PROCEDURAL = ProceduralFactors(...)`, plus its row in
`REGISTRY` below. From that entry alone come: data loading and the batches
gathered inside the jitted step (`vae_jax.data`), the factor source of the
disentanglement scores (`vae_jax.data.factors`), the config's allowed
`data.name` and `eval.factor_source` values (`vae_jax.configs`) and the
ground-truth factor traversal picture (`vae_jax.pictures.model_pictures`).

Example `i` of a dataset is the factor combination with flat index `i`
(mixed radix over `factor_sizes`, the last factor fastest); a fixed random
`data.eval_size` of them is held out for evaluation.

Randomness (an optional `noise` hook): training batches draw it from the
step's data key (a function of (seed, step), so a resumed run sees exactly
the same images); evaluation examples, scoring images and pictures draw it
from `eval_noise_keys` of their flat index, so held-out numbers are
reproducible and example `i` is always the same image outside training.
"""

import dataclasses
import functools
import importlib
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

# name (config.data.name and config.eval.factor_source) → the module defining
# PROCEDURAL. A new procedural dataset adds its row.
REGISTRY = {
    'dsprites': 'vae_jax.data.dsprites',
    'noisy_dsprites': 'vae_jax.data.noisy_dsprites',
}
NAMES: tuple[str, ...] = tuple(REGISTRY)

EVAL_NOISE_SEED = 20190613  # evaluation noise of example i: fold_in(key(this), i)

# factor classes int32 [N, F] → images float32 [N, H, W, C] in [0, 1]
Render = Callable[[jax.Array], jax.Array]
# (keys [N] (one per image), clean images [N, H, W, C]) → images, same shape
Noise = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class ProceduralFactors:
  """A dataset rendered in JAX from discrete factors (see the module docstring).

  `render` and `noise` are pure JAX functions, jittable and vmappable: the
  train step calls them on every batch. `binary=True` promises images exactly
  0/1, so config.data.binarize is ignored (dSprites); otherwise the pixels
  are continuous and the config must say binarize='none'.
  """
  name: str  # config.data.name / config.eval.factor_source
  title: str  # readable name, for picture titles ('dSprites')
  factor_names: tuple[str, ...]
  factor_sizes: tuple[int, ...]  # classes per factor; flat index: last fastest
  image_shape: tuple[int, int, int]  # (H, W, C)
  class_factor: str  # the factor whose class is the label y
  class_names: tuple[str, ...]  # readable names of its classes
  render: Render
  noise: Optional[Noise] = None  # None: rendering is deterministic
  binary: bool = False
  traversal_base: tuple[int, ...] = ()  # classes the factor picture varies from
  source: str = ''  # where the data come from (run.json, logs)

  @property
  def num_images(self) -> int:
    """Number of factor combinations (examples)."""
    return math.prod(self.factor_sizes)

  @property
  def num_classes(self) -> int:
    """Number of labels: the class factor's classes."""
    return self.factor_sizes[self.factor_names.index(self.class_factor)]

  @property
  def varying(self) -> tuple[int, ...]:
    """Positions of the factors with more than one class (those scored and traversed)."""
    return tuple(i for i, size in enumerate(self.factor_sizes) if size > 1)


def get(name: str) -> ProceduralFactors:
  """The registered procedural dataset `name` (KeyError if unknown)."""
  return importlib.import_module(REGISTRY[name]).PROCEDURAL


def continuous_names() -> tuple[str, ...]:
  """Names of the registered datasets whose pixels are not binary."""
  return tuple(name for name in NAMES if not get(name).binary)


def binarize_allowed(name: str, binarize: str) -> bool:
  """Whether config.data.binarize=`binarize` may be used with dataset `name`."""
  return name not in REGISTRY or get(name).binary or binarize == 'none'


def _strides(sizes: tuple[int, ...]) -> np.ndarray:
  """Flat-index stride int32 [F] of each factor (the last fastest)."""
  return np.array([math.prod(sizes[i + 1:]) for i in range(len(sizes))], np.int32)


def index_to_factors(p: ProceduralFactors, index: jax.Array) -> jax.Array:
  """Flat indices int [N] → factor classes int32 [N, F]."""
  index = jnp.asarray(index, jnp.int32)[:, None]
  return (index // jnp.asarray(_strides(p.factor_sizes))[None]) % jnp.asarray(
      p.factor_sizes, jnp.int32)[None]


def factors_to_index(p: ProceduralFactors, factors: jax.Array) -> jax.Array:
  """Factor classes int [N, F] → flat indices int32 [N]."""
  factors = jnp.asarray(factors, jnp.int32)
  return jnp.sum(factors * jnp.asarray(_strides(p.factor_sizes))[None], axis=-1)


def eval_noise_keys(index: jax.Array) -> jax.Array:
  """The fixed noise key [N] of each example (flat index int [N]) outside training."""
  fold = lambda i: jax.random.fold_in(jax.random.key(EVAL_NOISE_SEED), i)
  return jax.vmap(fold)(jnp.asarray(index, jnp.int32))


def images(p: ProceduralFactors, factors: jax.Array, index: jax.Array,
           key: Optional[jax.Array] = None) -> jax.Array:
  """Images [N, H, W, C] of factor classes [N, F] (flat indices `index` [N]).

  Noise, if the dataset has any, comes from `key` (split once per image: a
  training batch) or, with key=None, from `eval_noise_keys(index)`.
  """
  x = p.render(factors)
  if p.noise is not None:
    keys = eval_noise_keys(index) if key is None else jax.random.split(key, len(x))
    x = p.noise(keys, x)
  return x


def gather(p: ProceduralFactors, index: jax.Array, key: Optional[jax.Array] = None):
  """(x [N, H, W, C], y [N] int32) of examples `index` [N]; jittable."""
  factors = index_to_factors(p, index)
  x = images(p, factors, index, key)
  return x, factors[:, p.factor_names.index(p.class_factor)]


@functools.partial(jax.jit, static_argnums=0)
def factor_images(p: ProceduralFactors, factors: jax.Array) -> jax.Array:
  """Images [N, H, W, C] of factor classes [N, F] (all F factors), as evaluated."""
  if p.noise is None:
    return p.render(factors)
  return images(p, factors, factors_to_index(p, factors))
