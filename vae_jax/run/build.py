"""`Run`: the pieces of one run, built once by `build_run` (a plain record).

Checks the config (and the saved config of an existing workdir) before
anything is loaded or compiled, loads the data onto the device (or shares a
sweep companion's), and derives the step's static spec and hyperparameters.
"""

import dataclasses
import os
from typing import Optional

import jax
import ml_collections
import numpy as np

from vae_jax import configs, objectives
from vae_jax import train_state
from vae_jax.run import parallel
from vae_jax import data as data_lib
from vae_jax.run import saved_config
from vae_jax.data import factors
from vae_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
  """A run's pieces, built once by `build_run`: a plain record."""
  config: ml_collections.ConfigDict
  workdir: str
  mesh: Optional[jax.sharding.Mesh]  # None on one device
  dataset: data_lib.Dataset
  train_arrays: dict  # dataset.arrays, replicated over the mesh
  factor_source: Optional[factors.FactorSource]  # eval.disentanglement's, else None
  spec: train_state.StepSpec
  hparams: dict
  config_changes: dict  # {key: [saved, now]} of settings changed on resume
  name: str = ''  # a sweep member's name (its directory), leading its log lines; '' alone

  @property
  def log_prefix(self) -> str:
    """'[name] ' for a named run (a sweep member), else ''."""
    return f'[{self.name}] ' if self.name else ''

  @property
  def images_dir(self) -> str:
    return os.path.join(self.workdir, 'images')

  @property
  def stochastic(self) -> bool:
    return objectives.get(self.spec.objective).stochastic


def build_run(config: ml_collections.ConfigDict, workdir: str,
              shares: Run = None, name: str = '') -> Run:
  """Checks `config` (and the workdir's saved one) and builds the run's pieces.

  `shares`: a Run with the same data settings whose dataset, factor source
  and train arrays this one reuses (the members of a sweep). `name`: a sweep
  member's name, which leads every log line of its training and evaluation.
  """
  configs.validate(config)
  changes = saved_config.check_config_matches(workdir, config)
  if shares is None:
    mesh = parallel.data_mesh(config.data.batch_size)
    dataset = data_lib.load(config.data)
    train_arrays = parallel.replicate(dataset.arrays, mesh)
    factor_source = _factor_source(config, dataset)
  else:
    mesh, dataset = shares.mesh, shares.dataset
    train_arrays, factor_source = shares.train_arrays, shares.factor_source
  if dataset.num_train < config.data.batch_size:
    raise ConfigError(f'config.data.batch_size={config.data.batch_size} is larger than the '
                      f'{dataset.num_train} training examples of {config.data.name}; lower '
                      'data.batch_size')
  if config.model.conditional and dataset.spec.num_classes == 0:
    raise ConfigError(f'config.model.conditional=True needs labels, but '
                      f'{config.data.name} has none; use a labelled dataset')
  return Run(config=config, workdir=workdir, mesh=mesh, dataset=dataset,
             train_arrays=train_arrays, factor_source=factor_source,
             spec=train_state.make_spec(config, dataset.spec),
             hparams=train_state.make_hparams(config, dataset.num_train), config_changes=changes,
             name=name)


def _factor_source(config: ml_collections.ConfigDict, dataset: data_lib.Dataset):
  """The ground-truth factor source of eval.disentanglement (else None)."""
  if not config.eval.disentanglement:
    return None
  source = factors.factor_source(config.eval.factor_source, config.data.tfds_data_dir)
  shape = tuple(source.images(source.sample_factors(np.random.default_rng(0), 1)).shape[1:])
  if shape != tuple(dataset.spec.image_shape):
    raise ConfigError(f'config.eval.factor_source={config.eval.factor_source!r} gives '
                      f'{shape} images but the model is trained on '
                      f'{dataset.spec.image_shape}; train on that data')
  return source
