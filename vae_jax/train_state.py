"""The train state, the step's static spec (`StepSpec`) and its array hyperparameters.

Everything static a step needs is in the hashable `StepSpec` (network, data
spec, objective name and static settings, optimizer settings); every numeric
hyperparameter enters the step as a float32 array (`make_hparams`), so a
population of runs differing only in those shares one compiled program.
"""

import dataclasses
import functools

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from vae_jax import data as data_lib
from vae_jax import configs, key_streams, models, objectives

# config.train fields that enter the step as arrays (with the objective's own).
TRAIN_HPARAMS = configs.TRAIN_HPARAMS


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: number of updates applied
  seed: jax.Array  # int32 scalar: keys are fold_in(key(seed), step)
  params: dict
  opt_state: optax.OptState


@flax.struct.dataclass
class AuxTrainState(TrainState):
  """The train state of an objective with an auxiliary network (objectives.Auxiliary)."""
  aux: dict  # {'params': the network's parameters, 'opt_state': its Adam state}


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """Everything static the steps need: hashable, so jit keys its cache on it."""
  model: models.VAE
  data: data_lib.DataSpec
  objective: str
  lr_schedule: str
  adam: tuple  # (b1, b2, eps, grad_clip_norm): see `adam`
  settings: tuple = ()  # the objective's static settings, ((name, value), ...)

  @property
  def likelihood(self) -> str:
    return self.model.likelihood

  @property
  def optimizer(self) -> optax.GradientTransformation:
    return adam(*self.adam)

  @property
  def aux_optimizer(self) -> optax.GradientTransformation:
    """The auxiliary network's Adam scaling (its β1, β2 from the settings, ε = 1e-8)."""
    settings = dict(self.settings)
    b1, b2 = (settings[k] for k in objectives.get(self.objective).auxiliary.adam_betas)
    return adam(b1, b2, 1e-8, 0.0)


def _adam_settings(train_config: ml_collections.ConfigDict) -> tuple:
  return tuple(float(train_config[k]) for k in ('adam_b1', 'adam_b2', 'adam_eps',
                                                'grad_clip_norm'))


def adam(b1: float, b2: float, eps: float, clip_norm: float) -> optax.GradientTransformation:
  """Adam's scaling (after global-norm clipping when clip_norm > 0); the step applies −lr."""
  scale = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)
  if clip_norm > 0:
    return optax.chain(optax.clip_by_global_norm(clip_norm), scale)
  return scale


def hparam_keys(objective: str) -> tuple[str, ...]:
  """The dotted config keys whose values enter the step of `objective` as arrays."""
  return (tuple(f'train.{k}' for k in TRAIN_HPARAMS) +
          tuple(f'objective.{k}' for k in objectives.get(objective).hparams))


def make_hparams(config: ml_collections.ConfigDict, dataset_size: int) -> dict:
  """The numeric hyperparameters as float32 arrays (vmappable in sweeps).

  `dataset_size` (the number of training examples) enters the β-TCVAE
  total-correlation estimate only.
  """
  values = {key.split('.')[1]: config[key.split('.')[0]][key.split('.')[1]]
            for key in hparam_keys(config.objective.name)}
  values['dataset_size'] = dataset_size
  return {k: jnp.asarray(v, jnp.float32) for k, v in values.items()}


def make_spec(config: ml_collections.ConfigDict, data_spec: data_lib.DataSpec) -> StepSpec:
  """The StepSpec of `config` for data described by `data_spec`."""
  model = models.build(config.model, data_spec.image_shape, data_spec.num_classes)
  objective = objectives.get(config.objective.name)
  return StepSpec(model=model, data=data_spec, objective=objective.name,
                  lr_schedule=config.train.lr_schedule,
                  adam=_adam_settings(config.train),
                  settings=tuple((k, config.objective[k]) for k in objective.settings))


@functools.partial(jax.jit, static_argnames='spec')
def init_state(spec: StepSpec, seed: int) -> TrainState:
  """Fresh parameters and optimizer state from `key(seed)` (jitted: one compile, not one per op)."""
  height, width, channels = spec.data.image_shape
  x = jnp.zeros((height, width, channels), jnp.float32)
  y = jnp.zeros((), jnp.int32)
  init_key = jax.random.fold_in(jax.random.key(seed), key_streams.INIT_STREAM)
  params = spec.model.init(init_key, x, y)
  fields = dict(step=jnp.zeros((), jnp.int32), seed=jnp.asarray(seed, jnp.int32),
                params=params, opt_state=spec.optimizer.init(params))
  auxiliary = objectives.get(spec.objective).auxiliary
  if auxiliary is None:
    return TrainState(**fields)
  aux_params = auxiliary.init(jax.random.fold_in(init_key, key_streams.AUX_STREAM),
                              spec.model.latent_dim, dict(spec.settings))
  return AuxTrainState(**fields, aux={'params': aux_params,
                                      'opt_state': spec.aux_optimizer.init(aux_params)})


def stack(trees: list):
  """Stacks equally shaped pytrees (train states, hparams) on a new leading axis."""
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def member(stacked, index: int):
  """The `index`-th pytree of a `stack`ed one."""
  return jax.tree.map(lambda leaf: leaf[index], stacked)
