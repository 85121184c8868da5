"""The plan of a sweep: its members, their groups (populations) and shards.

    python -m vae_jax.main --mode=sweep --config=experiments/sweeps/beta_sweep.py \\
        [--config.train.num_steps=2000] [--workdir=runs/beta_sweep]

A sweep file is an experiment file (`get_config()`: the base config, which
--config.a.b=v overrides) plus `get_sweep()`, which returns

    {config key: [values], ...}   a grid: the members are the Cartesian
                                  product of its axes; or
    [grid, grid, ...]             the union of the grids' members, in order
                                  (e.g. one grid per objective with its own values).

Within a grid, a tuple of keys takes a list of value tuples: the keys move
together (tied values, e.g. {('objective.lambda_od', 'objective.lambda_d'):
[(1.0, 10.0), (2.0, 20.0)]}). A `get_sweep(config, arg)` of two parameters
receives the base config with the command line's overrides and ARG of
--config=FILE:ARG, to derive values from them (a schedule length from
train.num_steps, the number of seeds from a switch). A member is named by
label=value of each axis of its grid, joined by '_': the label is the key's
last part (the whole key where two axes' last parts clash), a tuple of tied
keys is named by its first key, and objective.name shows its value alone
(`beta_beta=4_seed=0`); names must be unique. Every member's config is
checked before any trains. Members that differ only in
keys of `VMAPPED_KEYS` train together as ONE population (one compiled step,
states stacked on a member axis, each data batch gathered from the shared
device-resident dataset; the program vmaps the step over the members, or
loops over them where that is faster: config.train.population,
steps.loop_members); members that differ in anything else (latent_dim,
architecture, objective, run length, ...) form separate groups, trained one
after another.

This module is the plan alone (pure functions of the sweep file and the base
config: no training, no device, no files written); runner.py trains it.
"""

import copy
import inspect
import itertools
import json
import os
import re
from typing import Optional

import ml_collections

from vae_jax import config_files, configs, objectives, report
from vae_jax.errors import ConfigError
from vae_jax.run import workdir as workdir_lib

# Keys that enter the train step as arrays (the seed, train_state.make_hparams of
# any objective): members differing only in these share one compiled step.
# train.num_steps enters it too but also sets the loop's length: it splits groups.
VMAPPED_KEYS = (('seed',) + tuple(f'train.{k}' for k in configs.TRAIN_HPARAMS
                                  if k != 'num_steps') +
                tuple(f'objective.{k}' for k in objectives.ARRAY_FIELDS))
# Named by its value alone in member names (it names the method).
BARE_KEY = 'objective.name'


def load(path_arg: str, base: ml_collections.ConfigDict = None):
  """(base config, axes) of a sweep file 'experiments/sweeps/x.py[:arg]'.

  For notebooks and scripts; the command line applies --config overrides to
  the base config first and passes it as `base` (vae_jax.main), the config a
  two-parameter get_sweep(config, arg) derives values from (default: the
  file's own).
  """
  path = path_arg.partition(':')[0]
  if not os.path.isfile(path):
    raise ConfigError(f'sweep file {path} not found; pass experiments/sweeps/<name>.py')
  module = config_files.load_module(path)
  if not hasattr(module, 'get_sweep'):
    raise ConfigError(f'{path} has no get_sweep(); a sweep file such as '
                      'experiments/sweeps/beta_sweep.py defines get_config() and get_sweep()')
  config = config_files.module_config(module, path_arg)
  if not inspect.signature(module.get_sweep).parameters:
    return config, module.get_sweep()
  return config, module.get_sweep(config if base is None else base, path_arg.partition(':')[2])


def set_value(config: ml_collections.ConfigDict, key: str, value) -> None:
  """Sets the dotted `key` of `config` to `value`; ConfigError if `config` has no such
  field or the value does not fit it."""
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
  if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
    raise ConfigError(f'unknown config key {key}; the fields are listed in '
                      'vae_jax/configs.py')
  try:
    node[leaf] = value
  except (TypeError, ValueError) as e:
    raise ConfigError(f'{key}: value {value!r} does not fit the field '
                      f'({" ".join(str(e).split())})') from None


def grids(axes) -> list:
  """The grids of get_sweep()'s answer: [axes] for one grid, else the list."""
  return [axes] if isinstance(axes, dict) else list(axes)


def axis_keys(axes) -> list:
  """Every config key the sweep sets (tied keys one by one), in order."""
  keys = [k for grid in grids(axes) for axis in grid
          for k in (axis if isinstance(axis, tuple) else (axis,))]
  return list(dict.fromkeys(keys))


def check_axes(config: ml_collections.ConfigDict, axes) -> None:
  """ConfigError unless `axes` is a grid or a non-empty list of grids whose
  every axis is a config key (or a tuple of them) with a non-empty list of values."""
  example = ("{'objective.beta': [1, 4], 'seed': [0, 1]} or a list of such grids")
  if not isinstance(axes, (dict, list, tuple)) or not axes:
    raise ConfigError(f'get_sweep() must return {{config key: [values, ...]}}, e.g. {example}')
  flat = workdir_lib.flatten(workdir_lib.config_to_dict(config))
  for grid in grids(axes):
    if not isinstance(grid, dict) or not grid:
      raise ConfigError(f'get_sweep() returned a list holding {grid!r}; each grid must be '
                        f'a non-empty {{config key: [values, ...]}}, e.g. {example}')
    for axis, values in grid.items():
      for key in axis if isinstance(axis, tuple) else (axis,):
        if key not in flat:
          raise ConfigError(f'sweep axis {key!r} is not a config key; use a dotted key from '
                            'vae_jax/configs.py such as objective.beta')
      if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f'sweep axis {axis!r} needs a non-empty list of values')
      if isinstance(axis, tuple) and not all(
          isinstance(v, (list, tuple)) and len(v) == len(axis) for v in values):
        raise ConfigError(f'sweep axis {axis!r} ties {len(axis)} keys: each of its values '
                          f'must be a tuple of {len(axis)} values')


def members(base: ml_collections.ConfigDict, axes) -> list:
  """[(name, {key: value}, config)] of every grid's Cartesian product, in order."""
  check_axes(base, axes)
  named = list(dict.fromkeys(axis[0] if isinstance(axis, tuple) else axis
                             for grid in grids(axes) for axis in grid))
  short = [key.split('.')[-1] for key in named]
  labels = dict(zip(named, short if len(set(short)) == len(short) else named))
  result = []
  for grid in grids(axes):
    for values in itertools.product(*grid.values()):
      settings, parts = {}, []
      for axis, value in zip(grid, values):
        if isinstance(axis, tuple):
          settings.update(zip(axis, value))
          axis, value = axis[0], value[0]
        else:
          settings[axis] = value
        text = report.format_value(value)
        parts.append(text if axis == BARE_KEY else f'{labels[axis]}={text}')
      result.append(('_'.join(parts), settings, _member_config(base, settings)))
  names = [name for name, _, _ in result]
  clash = next((name for i, name in enumerate(names) if name in names[:i]), None)
  if clash is not None:
    raise ConfigError(f'two sweep members are both named {clash!r}; give the grids '
                      'distinct values (or a distinguishing axis)')
  return result


def _member_config(base: ml_collections.ConfigDict, settings: dict):
  config = copy.deepcopy(base)
  for key, value in settings.items():
    try:
      set_value(config, key, value)
    except ConfigError as e:
      raise ConfigError(f'sweep axis {key!r}: {e}') from None
  return config


def group_key(config: ml_collections.ConfigDict) -> str:
  """Equal for configs that can share one compiled step (all but VMAPPED_KEYS equal)."""
  flat = workdir_lib.flatten(workdir_lib.config_to_dict(config))
  return json.dumps({k: v for k, v in flat.items() if k not in VMAPPED_KEYS},
                    sort_keys=True, default=str)


def groups(member_list: list) -> list:
  """Member lists that train together, in order of first appearance."""
  by_key = {}
  for member in member_list:
    by_key.setdefault(group_key(member[2]), []).append(member)
  return list(by_key.values())


def parse_shard(text: Optional[str]):
  """(index, count) of --sweep_shard=I/N (0 <= I < N), 'report', or None when unset;
  ConfigError for anything else."""
  if text is None or text == '':
    return None
  if text == 'report':
    return 'report'
  found = re.fullmatch(r'\s*(\d+)\s*/\s*(\d+)\s*', text)
  if not found or int(found.group(2)) == 0 or int(found.group(1)) >= int(found.group(2)):
    raise ConfigError(f'--sweep_shard={text} is not I/N with 0 <= I < N (e.g. '
                      '--sweep_shard=0/4 ... 3/4) or report')
  return int(found.group(1)), int(found.group(2))


def shard_members(member_groups: list, index: int, count: int) -> list:
  """Shard `index` of `count`: members [index·M/count, (index+1)·M/count) of the
  M members in group order (sweep.json's), regrouped (`groups`)."""
  ordered = [member for group in member_groups for member in group]
  start, stop = index * len(ordered) // count, (index + 1) * len(ordered) // count
  return groups(ordered[start:stop])


def _json_grid(grid: dict) -> dict:
  """A grid as JSON holds it: tied keys joined by '+', tuples as lists."""
  return {'+'.join(k) if isinstance(k, tuple) else k: list(v) for k, v in grid.items()}


def record(axes, member_groups: list) -> dict:
  """sweep.json's content: the axes and every member (name, settings, group), as
  JSON reads it back (tied keys joined by '+', tuples as lists)."""
  plan = {'axes': (_json_grid(axes) if isinstance(axes, dict) else
                   [_json_grid(grid) for grid in axes]),
          'members': [{'name': name, 'settings': settings, 'group': g}
                      for g, group in enumerate(member_groups)
                      for name, settings, _ in group]}
  return json.loads(json.dumps(plan))
