"""Ablation sweeps trained as vmapped populations.

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

Sweep directory:
    sweep.json            the axes and the members (name, settings, group)
    <member>/             a run's workdir (config.json, metrics.jsonl, checkpoints, ...)
    results.md            one row per member (vae_jax.report), settings shared by
                          every member stated once above the table
    results.csv           the same rows with every column
    <metric>_vs_<axis>.png    metric against each swept value, seeds as error bars
    rate_distortion.png       kl (rate) vs recon (distortion) per setting
    study.csv, study.md, study_<score>.png   when the members have disentanglement
                              scores: per method and setting, median and spread
                              over seeds (vae_jax.study)

Re-running the same command resumes every member from its checkpoints.

Over a cluster (`--sweep_shard=I/N`, one job per I = 0..N-1, e.g. a Slurm
array): shard I trains members [I·M/N, (I+1)·M/N) of the M members in
sweep.json's order (group by group, so a shard's members still form
populations; `shard_members`), into the same sweep directory (disjoint
member workdirs; every shard writes the same sweep.json). The shard that
finds every member finished writes the tables and plots (holding a lock on sweep.json);
`--sweep_shard=report` writes them from finished members at any time.
"""

import copy
import fcntl
import inspect
import itertools
import json
import os
import re
from typing import Optional

import ml_collections
from absl import logging

from vae_jax import configs, objectives, report, steps, train
from vae_jax.run import parallel
from vae_jax.sweeps import study
from vae_jax.pictures import sweep_plots
from vae_jax.run.build import build_run
from vae_jax.run import workdir as workdir_lib
from vae_jax.errors import ConfigError, WorkdirError

# Keys that enter the train step as arrays (the seed, steps.make_hparams of
# any objective): members differing only in these share one compiled step.
# train.num_steps enters it too but also sets the loop's length: it splits groups.
VMAPPED_KEYS = (('seed',) + tuple(f'train.{k}' for k in steps.TRAIN_HPARAMS
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
  module = configs.load_module(path)
  if not hasattr(module, 'get_sweep'):
    raise ConfigError(f'{path} has no get_sweep(); a sweep file such as '
                      'experiments/sweeps/beta_sweep.py defines get_config() and get_sweep()')
  config = configs.module_config(module, path_arg)
  if not inspect.signature(module.get_sweep).parameters:
    return config, module.get_sweep()
  return config, module.get_sweep(config if base is None else base, path_arg.partition(':')[2])


def _set(config: ml_collections.ConfigDict, key: str, value) -> None:
  *parents, leaf = key.split('.')
  node = config
  for part in parents:
    node = node[part]
  node[leaf] = value


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
      _set(config, key, value)
    except (TypeError, ValueError) as e:
      raise ConfigError(f'sweep axis {key!r}: value {value!r} does not fit the field '
                        f'({" ".join(str(e).split())})') from None
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


def _write_plan(sweep_dir: str, axes, member_groups: list) -> None:
  """sweep.json (left as it is when it already holds this plan, so concurrent
  shards agree); WorkdirError if the directory holds a sweep with other axes."""
  path = os.path.join(sweep_dir, 'sweep.json')
  plan = {'axes': (_json_grid(axes) if isinstance(axes, dict) else
                   [_json_grid(grid) for grid in axes]),
          'members': [{'name': name, 'settings': settings, 'group': g}
                      for g, group in enumerate(member_groups)
                      for name, settings, _ in group]}
  plan = json.loads(json.dumps(plan))  # tuples → lists, as read back
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if saved.get('axes') != plan['axes']:
      raise WorkdirError(f'{sweep_dir} holds a sweep over {saved.get("axes")}, not '
                         f'{plan["axes"]}; resume it with the same sweep file or pass a '
                         'new --workdir')
    if saved == plan:
      return
  os.makedirs(sweep_dir, exist_ok=True)
  workdir_lib.write_json(path, plan)


def run_sweep(base: ml_collections.ConfigDict, axes, sweep_dir: str,
              shard=None) -> list:
  """Trains (or resumes) every member, or shard (index, count) of them
  (`shard_members`); writes the tables and plots once every member has
  finished; returns the workdirs of the members trained here.

  `shard='report'` trains nothing: it writes the tables and plots of the
  finished sweep (WorkdirError naming the members not finished).
  """
  all_groups = groups(members(base, axes))
  for group in all_groups:  # every member is checked before any trains
    for name, _, config in group:
      configs.validate(config)
      workdir_lib.check_config_matches(os.path.join(sweep_dir, name), config)
  everyone = [member for group in all_groups for member in group]
  unfinished = [name for name, _, config in everyone if shard == 'report'
                and not _finished(os.path.join(sweep_dir, name), config)]
  if unfinished:
    raise WorkdirError(f'{len(unfinished)} of the {len(everyone)} members of {sweep_dir} '
                       f'have not finished ({", ".join(unfinished[:3])}'
                       f'{", ..." if len(unfinished) > 3 else ""}); run their shards '
                       'first (the same command resumes them)')
  if parallel.is_primary():
    _write_plan(sweep_dir, axes, all_groups)
  if shard == 'report':
    if parallel.is_primary():
      _report_if_finished(sweep_dir, everyone, axes)
    return []
  member_groups = all_groups if shard is None else shard_members(all_groups, *shard)
  if shard is not None:
    logging.info('sweep shard %d/%d: %d of the %d members', shard[0], shard[1],
                 sum(map(len, member_groups)), len(everyone))
  workdirs = []
  for g, group in enumerate(member_groups):
    runs = []
    for name, _, config in group:
      workdir = os.path.join(sweep_dir, name)
      runs.append(build_run(config, workdir, shares=runs[0] if runs else None, name=name))
      workdirs.append(workdir)
    logging.info('sweep group %d/%d: %d members trained as one population (%s)', g + 1,
                 len(member_groups), len(runs), ', '.join(n for n, _, _ in group))
    train.train_group(runs)
  if parallel.is_primary() and not _report_if_finished(sweep_dir, everyone, axes):
    logging.info('%s: not every member has finished; the last shard to finish (or '
                 '--sweep_shard=report) writes the results', sweep_dir)
  return workdirs


def results_line(sweep_dir: str) -> str:
  """The closing line of --mode=sweep: where the results are."""
  return (f'results: {os.path.join(sweep_dir, "results.md")} (and results.csv, plots '
          f'*.png beside it); members in {os.path.join(sweep_dir, "<member>", "")}')


def _finished(workdir: str, config: ml_collections.ConfigDict) -> bool:
  """True if the member's summary.json holds its final step's metrics."""
  try:
    with open(os.path.join(workdir, 'summary.json')) as f:
      return json.load(f).get('step') == config.train.num_steps
  except (OSError, ValueError, AttributeError):
    return False


def _report_if_finished(sweep_dir: str, member_list: list, axes) -> bool:
  """Writes the results if every member has finished (holding a lock on
  sweep.json, so shards finishing together write one after the other); True
  if it wrote them."""
  with open(os.path.join(sweep_dir, 'sweep.json'), 'a') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
    if not all(_finished(os.path.join(sweep_dir, name), config)
               for name, _, config in member_list):
      return False
    write_results(sweep_dir, [os.path.join(sweep_dir, name) for name, _, _ in member_list],
                  axis_keys(axes), [settings for _, settings, _ in member_list],
                  one_grid=isinstance(axes, dict))
    return True


def write_results(sweep_dir: str, workdirs: list, axes: list, settings: list = None,
                  one_grid: bool = True) -> None:
  """results.csv, results.md and the plots of a finished sweep; with the
  members' `settings` ({key: value} each) and scores, the study table and plots.

  The plots against each axis need a single grid (in a list of grids the
  axes mean different things for different members).
  """
  headers, rows = report.table_rows(workdirs, extra_keys=axes)
  report.write_csv(os.path.join(sweep_dir, 'results.csv'), headers, rows)
  with open(os.path.join(sweep_dir, 'results.md'), 'w') as f:
    f.write(report.markdown(headers, rows) + '\n')
  records = [report.read_run(w, extra_keys=axes) for w in workdirs]
  written = sweep_plots.write_plots(sweep_dir, records, axes) if one_grid else []
  if settings is not None:
    written += study.write_study(sweep_dir, records, settings)
  for path in written:
    logging.info('wrote %s', path)
