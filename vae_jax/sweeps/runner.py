"""Running a sweep: its members trained group by group as populations, then its tables and plots.

    python -m vae_jax.main --mode=sweep --config=experiments/sweeps/beta_sweep.py \\
        [--config.train.num_steps=2000] [--workdir=runs/beta_sweep]

The sweep file and its members: plan.py.

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

import contextlib
import fcntl
import json
import os
import subprocess
import sys

import ml_collections
from absl import logging

from vae_jax import configs, report, train
from vae_jax.errors import WorkdirError
from vae_jax.pictures import sweep_plots
from vae_jax.run import parallel
from vae_jax.run import workdir as workdir_lib
from vae_jax.run import saved_config
from vae_jax.run.build import build_run
from vae_jax.sweeps import study
from vae_jax.sweeps import plan as plan_lib
from vae_jax.sweeps.plan import axis_keys, groups, members, shard_members

def _write_plan(sweep_dir: str, axes, member_groups: list) -> None:
  """sweep.json (left as it is when it already holds this plan, so concurrent
  shards agree); WorkdirError if the directory holds a sweep with other axes."""
  path = os.path.join(sweep_dir, 'sweep.json')
  plan = plan_lib.record(axes, member_groups)
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
      saved_config.check_config_matches(os.path.join(sweep_dir, name), config)
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
  with _evaluators(sweep_dir, base, shard):
    for g, group in enumerate(member_groups):
      workdirs += _train_group(sweep_dir, g, group, len(member_groups))
  if parallel.is_primary() and not _report_if_finished(sweep_dir, everyone, axes):
    logging.info('%s: not every member has finished; the last shard to finish (or '
                 '--sweep_shard=report) writes the results', sweep_dir)
  return workdirs


def _train_group(sweep_dir: str, g: int, group: list, num_groups: int) -> list:
  """Trains one group of members as one population; their workdirs."""
  runs, workdirs = [], []
  for name, _, config in group:
    workdir = os.path.join(sweep_dir, name)
    runs.append(build_run(config, workdir, shares=runs[0] if runs else None, name=name))
    workdirs.append(workdir)
  logging.info('sweep group %d/%d: %d members trained as one population (%s)', g + 1,
               num_groups, len(runs), ', '.join(n for n, _, _ in group))
  train.train_group(runs)
  return workdirs


@contextlib.contextmanager
def _evaluators(sweep_dir: str, base: ml_collections.ConfigDict, shard):
  """With eval.inline=False and eval.workers=N (an unsharded sweep), N evaluator
  processes (vae_jax/evaluator.py) score the members' checkpoints while the
  next members train; waits for them to finish every member."""
  count = base.eval.workers if not base.eval.inline and shard is None else 0
  if not parallel.is_primary():
    count = 0
  command = [sys.executable, '-m', 'vae_jax.main', '--mode=evaluator',
             f'--workdir={sweep_dir}']
  processes = [subprocess.Popen(command) for _ in range(count)]
  if count:
    logging.info('%d evaluator processes score the members beside the training', count)
  try:
    yield
    failed = [p.args for p in processes if p.wait() != 0]
    if failed:
      raise WorkdirError(f'{len(failed)} evaluator process(es) of {sweep_dir} failed; run '
                         f'{" ".join(command[1:])} to finish the evaluations')
  finally:
    for process in processes:
      if process.poll() is None:
        process.terminate()
        process.wait()



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
