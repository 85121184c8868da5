"""The config saved in a run directory: loading it, and checking a resumed run's config against it.

Also a config file: vae_jax.main passes --config=<this file>:WORKDIR when
--workdir=DIR comes without --config, so that a run resumes (or is evaluated
or scored) with its own config and --config.a.b=v overrides still apply.
"""

import json
import os

import ml_collections

from vae_jax import configs
from vae_jax.errors import WorkdirError
from vae_jax.run.workdir import config_to_dict, flatten

# Settings that do not change the function a run trains: a resumed run (and
# --mode=eval) may change them; run.json records the change. Exact keys, or
# prefixes ending in '.'.
FREE_ON_RESUME = ('train.num_steps', 'train.log_every_steps', 'train.eval_every_steps',
                  'train.checkpoint_every_steps', 'eval.')


def check_config_matches(workdir: str, config: ml_collections.ConfigDict,
                         free_keys: tuple = FREE_ON_RESUME) -> dict:
  """{key: [saved, now]} of the `free_keys` that differ from the saved config;
  WorkdirError listing every other key that differs, with both values."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return {}
  saved = flatten(read_config_json(path))
  current = flatten(config_to_dict(config))
  defaults = flatten(config_to_dict(configs.get_config()))
  # A field added to vae_jax after the run was saved matches while it has its default.
  added_since = {k for k in set(current) - set(saved)
                 if k in defaults and current[k] == defaults[k]}
  free = lambda k: any(k == f or (f.endswith('.') and k.startswith(f)) for f in free_keys)
  changed = sorted(k for k in (set(saved) | set(current)) - added_since
                   if saved.get(k) != current.get(k))
  differing = [k for k in changed if not free(k)]
  if differing:
    details = ', '.join(f'{k}: saved {saved.get(k)!r} vs now {current.get(k)!r}'
                        for k in differing)
    raise WorkdirError(
        f'workdir {workdir} holds a run with a different config ({details}); resume with '
        'the same config (only the run length, the log/eval/checkpoint periods and eval.* '
        'may change) or pass a new --workdir')
  return {k: [saved.get(k), current.get(k)] for k in changed}


def load(workdir: str) -> ml_collections.ConfigDict:
  """The config saved in `workdir`/config.json, on top of today's defaults.

  Fields added to vae_jax after the run was made keep their defaults.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(path):
    raise WorkdirError(f'no config.json in {workdir}; pass the workdir of a run, or '
                       '--config=FILE')
  saved = flatten(read_config_json(path))
  config = configs.get_config()
  known = flatten(config_to_dict(config))
  unknown = sorted(set(saved) - set(known))
  if unknown:
    raise WorkdirError(f'{path} has fields this version of vae_jax does not know '
                       f'({", ".join(unknown[:3])}); use the version that made the run')
  config.update_from_flattened_dict(
      {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
  return config


def read_config_json(path: str) -> dict:
  """The dict saved in a config.json; WorkdirError if it is not one."""
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirError(f'{path} cannot be read as a saved config ({type(e).__name__}: '
                       f'{str(e).splitlines()[0] if str(e) else ""}); restore it from a copy '
                       'or pass a new --workdir') from None
  if not isinstance(saved, dict):
    raise WorkdirError(f'{path} holds a {type(saved).__name__}, not a saved config; restore '
                       'it from a copy or pass a new --workdir')
  return saved


def get_config(workdir_path: str) -> ml_collections.ConfigDict:
  """The config-file entry point: the config saved in `workdir_path`."""
  return load(workdir_path)
