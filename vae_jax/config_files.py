"""Experiment files: `load_config('experiments/x.py[:ARG]')` → its checked get_config(ARG).

An experiment file defines `get_config(arg='')` returning a ConfigDict built
on the base config (vae_jax/configs.py); a file without get_config(), one
returning something else, or one adding a key the base config lacks is
refused with a one-line ConfigError.
"""

import importlib.util
import os
import re
import types

import ml_collections

from vae_jax import configs
from vae_jax.errors import ConfigError


def flat_keys(config: ml_collections.ConfigDict, prefix: str = '') -> list:
  """The dotted leaf keys of a config ('train.num_steps', ...), in order."""
  keys = []
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      keys += flat_keys(value, f'{prefix}{key}.')
    else:
      keys.append(f'{prefix}{key}')
  return keys


def check_keys(config: ml_collections.ConfigDict, source: str) -> None:
  """ConfigError naming the first key of `config` that the base config lacks."""
  known = set(flat_keys(configs.get_config()))
  for key in flat_keys(config):
    if key not in known:
      raise ConfigError(f'unknown config key {key} (set in {source}); the fields are '
                        'listed in vae_jax/configs.py')


def _not_found(path: str) -> str:
  """The message for a config file that is not at `path`: where it looked, and the
  file of that name in the repository when there is one."""
  message = f'config file {path} not found (looked in {os.path.abspath(path)})'
  repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  candidate = os.path.join(repository, path)
  if not os.path.isabs(path) and os.path.isfile(candidate):
    return f'{message}; paths are relative to the current directory: pass --config={candidate}'
  return f'{message}; pass --config=experiments/<name>.py from the repository root'


def load_module(path: str) -> types.ModuleType:
  """The module of an experiment file; ConfigError if it is missing, is not a
  Python file or has no get_config()."""
  if not os.path.isfile(path):
    raise ConfigError(_not_found(path))
  if not path.endswith('.py'):
    raise ConfigError(f'--config={path} is not a Python file; pass an experiment file such '
                      'as experiments/vae.py')
  stem = re.sub(r'\W', '_', os.path.splitext(os.path.basename(path))[0])
  spec = importlib.util.spec_from_file_location(f'vae_jax_experiment_{stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not callable(getattr(module, 'get_config', None)):
    raise ConfigError(f'{path} has no get_config(); an experiment file defines '
                      'get_config() returning a ConfigDict')
  return module


def module_config(module: types.ModuleType, path_arg: str) -> ml_collections.ConfigDict:
  """get_config(ARG) of a loaded 'FILE[:ARG]' (get_config() without ':'), checked."""
  path, colon, arg = path_arg.partition(':')
  config = module.get_config(arg) if colon else module.get_config()
  if not isinstance(config, ml_collections.ConfigDict):
    what = 'None' if config is None else f'a {type(config).__name__}'
    raise ConfigError(f'{path}: get_config() returned {what}, not a ConfigDict (a missing '
                      'return statement?)')
  check_keys(config, path)
  return config


def load_config(path_arg: str) -> ml_collections.ConfigDict:
  """The checked get_config() of an experiment file 'experiments/x.py[:ARG]'."""
  return module_config(load_module(path_arg.partition(':')[0]), path_arg)
