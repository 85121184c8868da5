"""Training from Python: `config`, `fit` and `sweep` (what the command line does).

    import vae_jax

    config = vae_jax.config('experiments/beta_vae.py:fc', **{'train.num_steps': 2000})
    summary = vae_jax.fit(config, 'runs/beta_vae')      # resumes if the run exists
    workdirs = vae_jax.sweep('experiments/sweeps/beta_sweep.py', 'runs/beta_sweep',
                             **{'train.num_steps': 500})
    model = vae_jax.load('runs/beta_vae')

Each is the command line's mode without the command line: the same checks
(a bad value is a ConfigError naming it), the same workdir layout and the
same resume rules (docs/outputs.md); `fit` returns the final held-out
metrics (summary.json's), `sweep` the members' workdirs, and a sweep's
results.md, tables and plots are in its directory. SIGINT while training
stops after a checkpoint (an `errors.Interrupted`); the same call resumes.
"""

import copy
from typing import Optional, Union

import ml_collections

from vae_jax import config_files, configs
from vae_jax.sweeps import plan as sweep_plan


def _override(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """`config` with the dotted `overrides` ({'train.num_steps': 500}) set, validated."""
  config = copy.deepcopy(config)
  for key, value in overrides.items():
    sweep_plan.set_value(config, key, value)
  configs.validate(config)
  return config


def config(path: str, **overrides) -> ml_collections.ConfigDict:
  """The config of an experiment file 'experiments/x.py[:ARG]' with dotted `overrides`
  (as --config.a.b=value), checked."""
  return _override(config_files.load_config(path), overrides)


def fit(run_config: Union[str, ml_collections.ConfigDict], workdir: str,
          **overrides) -> dict:
  """Trains (or resumes) the run in `workdir`; its final held-out metrics.
  `run_config`: a ConfigDict or an experiment file's path (as `config`)."""
  from vae_jax import train as train_lib  # pylint: disable=g-import-not-at-top
  if isinstance(run_config, str):
    run_config = config(run_config)
  return train_lib.train_and_evaluate(_override(run_config, overrides), workdir)


def sweep(sweep_file: str, sweep_dir: str, *, axes=None, shard: Optional[tuple] = None,
          **overrides) -> list:
  """Trains (or resumes) every member of a sweep file 'experiments/sweeps/x.py[:ARG]'
  into `sweep_dir`, the dotted `overrides` applied to its base config first; the
  members' workdirs. `axes` replaces the file's get_sweep() (the same form, e.g.
  {'objective.beta': [1.0, 4.0], 'seed': [0, 1]}); `shard=(i, n)` trains slice i
  of n (as --sweep_shard=i/n)."""
  from vae_jax.sweeps import runner  # pylint: disable=g-import-not-at-top
  base, _ = sweep_plan.load(sweep_file)
  base = _override(base, overrides)
  if axes is None:
    _, axes = sweep_plan.load(sweep_file, base=base)
  return runner.run_sweep(base, axes, sweep_dir, shard=shard)
