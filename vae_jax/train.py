"""The training loop: `train_and_evaluate` and `train_group` (sweeps).

A group is one run or several runs that differ only in hyperparameters that
enter the step as arrays (seed, β, learning rate, ...): their states are
stacked on a leading member axis and trained by ONE compiled step
(`steps.population_train_steps`, up to MAX_STEPS_PER_CALL steps per
dispatch, as `steps.train_steps` for one run; the members vmapped or looped
over, config.train.population); each member keeps its own
workdir, written exactly as a single run's.

With several processes (`jax.distributed`, vae_jax/run/parallel.py) every
process runs the loop and the checkpoint saves and restores (Orbax
coordinates them); only process 0 takes the workdir lock, evaluates and
writes config.json, run.json, metrics.jsonl, events, images and summary.json
(an evaluation is recorded by vae_jax/evaluate_run.py).
A SIGINT/SIGTERM to any process stops all of them at the same step.

Resume rules (docs/design.md):
1. A workdir with checkpoints is resumed from its newest readable checkpoint.
2. Its saved config.json must equal the current config except for settings
   that keep the trained function (saved_config.FREE_ON_RESUME; run.json records them).
3. Records in metrics.jsonl past the restored step (written by a run killed
   after its last checkpoint) are dropped; they are re-made identically.
4. Batches and random draws are functions of (seed, step), so the resumed run
   continues exactly as an uninterrupted one would.
"""

import contextlib
import dataclasses
import os
import signal
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from vae_jax import evaluate_run
from vae_jax import evaluator
from vae_jax import steps
from vae_jax import terminal
from vae_jax import train_state
from vae_jax.run import checkpoints
from vae_jax.run import guards
from vae_jax.run import parallel
from vae_jax.evaluation import evaluators
from vae_jax.run import workdir as workdir_lib
from vae_jax.run import metrics_log
from vae_jax.errors import Interrupted, SignalInterrupt
from vae_jax.run.build import Run, build_run


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) the run in `workdir`; returns the final held-out metrics."""
  return train_group([build_run(config, workdir)])[0]


def train_group(runs: list) -> list:
  """Trains (or resumes) runs that share every static setting (one compiled
  step; the first run's spec), each in its own workdir; returns their final
  held-out metrics. Several runs train together as one vmapped population;
  each one's log lines start with its name (`Run.name`, else its directory's).

  With several processes, only process 0 (`parallel.is_primary`) evaluates
  and writes the run's files; the others return None for each run.
  """
  if len(runs) > 1:
    runs = [run if run.name else dataclasses.replace(
        run, name=os.path.basename(os.path.normpath(run.workdir))) for run in runs]
  primary = parallel.is_primary()
  with contextlib.ExitStack() as cleanup:
    ckpts, writers = [], []
    for run in runs:
      if primary:
        cleanup.callback(workdir_lib.WorkdirLock(run.workdir).release)
      keep = None if run.config.eval.inline else evaluator.unevaluated(run.workdir,
                                                                     run.config.train)
      ckpts.append(checkpoints.Checkpointer(run.workdir, preserve=keep))
      cleanup.callback(ckpts[-1].close)
    states = _restore_common_step(runs, ckpts)
    start = int(states[0].step)
    for run in runs:
      if start and start >= run.config.train.num_steps:
        logging.info('%s%s is finished (step %d of %d): nothing to train; its final '
                     'evaluation is run only if missing (--config.train.num_steps=N trains '
                     'it further)', run.log_prefix, run.workdir, start,
                     run.config.train.num_steps)
      elif start:
        logging.info('%sresuming %s from step %d', run.log_prefix, run.workdir, start)
      if not primary:
        writers.append(metrics_log.NoWriter())
        continue
      workdir_lib.write_json(os.path.join(run.workdir, 'config.json'),
                             workdir_lib.config_to_dict(run.config))
      workdir_lib.write_run_info(run.workdir, workdir_lib.run_info(
          run.config, start, run.dataset.spec, run.config_changes))
      writers.append(metrics_log.MetricWriter(run.workdir))
      cleanup.callback(writers[-1].close)
      # Inline, step 0 is evaluated again; else its record is the evaluator's.
      writers[-1].truncate_after(start if start or not run.config.eval.inline else -1)
    interrupts = cleanup.enter_context(guards.Interrupts())
    cleanup.enter_context(guards.out_of_memory_is_a_user_error(lead_config=runs[0].config))
    lead = runs[0]
    logging.info('workdir %s%s; data: %s (%d train, %d eval examples)', lead.workdir,
                 f' and {len(runs) - 1} more' if len(runs) > 1 else '',
                 lead.dataset.source, lead.dataset.num_train, lead.dataset.num_eval)
    state = states[0] if len(runs) == 1 else train_state.stack(states)
    if not lead.config.eval.inline:
      logging.info('eval.inline=False: checkpoints at step 0 and every evaluation step, '
                   'evaluated by python -m vae_jax.main --mode=evaluator --workdir=%s',
                   os.path.dirname(lead.workdir.rstrip('/')) if lead.name else lead.workdir)
    state, metrics = _loop(runs, parallel.replicate(state, lead.mesh), start, ckpts, writers,
                           interrupts)
    if primary and lead.config.eval.inline:
      for run, member_metrics in zip(runs, metrics):
        evaluate_run.write_summary(run, int(state.step.ravel()[0]), member_metrics)
    return metrics


def _restore_common_step(runs: list, ckpts: list) -> list:
  """Each run's state at the newest step that every run has a readable checkpoint of."""
  limit = None
  while True:
    states = []
    for run, ckpt in zip(runs, ckpts):
      fresh = train_state.init_state(run.spec, run.config.seed)
      had_checkpoints = bool(ckpt.all_steps())
      restored = ckpt.restore_latest(fresh, max_step=limit)
      if restored is None and had_checkpoints and limit is None:
        logging.warning('no checkpoint in %s/checkpoints is readable (moved to '
                        'checkpoints_unreadable/); training starts again from step 0 and '
                        'metrics.jsonl is rewritten from there', run.workdir)
      states.append(fresh if restored is None else restored)
    start_steps = {int(s.step) for s in states}
    if len(start_steps) == 1:
      return states
    limit = min(start_steps)


def _loop(runs: list, state, start: int, ckpts: list, writers: list, interrupts):
  """Steps from `start` to `num_steps`, logging, checkpointing and evaluating.

  `state` is one TrainState (one run) or the stacked states of the runs.
  Every step's finiteness is checked before a log, checkpoint or evaluation
  uses the state; a checkpoint is saved before the evaluation of its step.
  Only the primary process evaluates (the others' metrics stay None).
  """
  lead = runs[0]
  cfg = lead.config.train
  num_steps, batch_size = cfg.num_steps, lead.config.data.batch_size
  population = len(runs) > 1
  # One member's state sliced out at a time (an 18-member population's states are GBs).
  members = lambda s: ((train_state.member(s, i) for i in range(len(runs))) if population
                       else iter([s]))
  hparams = train_state.stack([r.hparams for r in runs]) if population else lead.hparams
  primary = parallel.is_primary()
  inline = lead.config.eval.inline  # else an evaluator evaluates the checkpoints
  metrics = [None] * len(runs)
  if not inline:
    if start == 0:
      for ckpt, s in zip(ckpts, members(state)):
        ckpt.save(0, s)
  elif start == 0 and num_steps == 0:
    metrics = [evaluate_run.evaluate_and_write(run, s, start, writer, final=True)
               if primary else None for run, s, writer in zip(runs, members(state), writers)]
  elif start > 0:  # a resumed run: what a stop after the checkpoint at `start` left undone
    with _evaluation(interrupts, ckpts, list(members(state)), start,
                     'the evaluations owed on resume'):
      if primary:
        owe_zero = [(run, writer) for run, writer in zip(runs, writers)
                    if 0 not in metrics_log.evaluated_steps(run.workdir)]
        _evaluate_step_zero([r for r, _ in owe_zero], [w for _, w in owe_zero])
      metrics = [evaluate_run.evaluate_missing(run, s, start, writer) if primary else None
                 for run, s, writer in zip(runs, members(state), writers)]
  # The step-0 evaluation waits for the first log, checkpoint or evaluation step:
  # the first train steps do not wait for it (nor for its pictures' compiles).
  step_zero_owed = inline and primary and start == 0 and num_steps > 0
  history, unchecked, last_log_time, last_log_step = [], [], time.perf_counter(), start
  # A live bar on an interactive terminal, log lines printed above it; plain log
  # lines (every log step) elsewhere.
  with terminal.progress_bar(total=num_steps, initial=start, unit='step') as bar:
    step = start
    while step < num_steps:
      done = _call_end(step, num_steps, cfg)
      indices = np.stack([[run.dataset.train_indices(run.config.seed, s, batch_size)
                           for run in runs] for s in range(step, done)])  # [K, M, B]
      if population:
        state, call_metrics = steps.population_train_steps(
            state, lead.train_arrays, parallel.shard_batch(indices, lead.mesh), hparams,
            spec=lead.spec, loop_members=steps.loop_members(cfg.population, lead.spec))
      else:
        state, call_metrics = steps.train_steps(
            state, lead.train_arrays, parallel.shard_batch(indices[:, 0], lead.mesh), hparams,
            spec=lead.spec)
      history.append(call_metrics)  # leaves [K] (or [K, M]), still on the device
      unchecked.append((step, call_metrics))
      bar.update(done - step)
      step = done
      log = done % cfg.log_every_steps == 0 or done == num_steps
      evaluate = done % cfg.eval_every_steps == 0 or done == num_steps
      save = done % cfg.checkpoint_every_steps == 0 or done == num_steps or (
          evaluate and not inline)
      # Every process stops at the same step, the first boundary after a signal to any.
      signum = parallel.max_over_processes(interrupts.signum or 0)
      stop = signum > 0 and done < num_steps
      if not (log or evaluate or save or stop):
        continue
      guards.check_finite(runs, jax.device_get(unchecked), ckpts)
      unchecked = []
      if log:
        history = jax.device_get(history)  # waits for the steps dispatched so far
        now = time.perf_counter()
        steps_per_sec = (done - last_log_step) / max(now - last_log_time, 1e-9)
        for i, (run, writer) in enumerate(zip(runs, writers)):
          values = [{k: np.reshape(v[j], -1)[i] for k, v in record.items() if k != 'finite'}
                    for record in history for j in range(len(record['loss']))]
          _log_train(run, values, done, steps_per_sec, writer)
          if i == 0:
            bar.set_postfix(loss=f'{float(np.mean([v["loss"] for v in values])):.2f}',
                            refresh=False)
        history, last_log_time, last_log_step = [], time.perf_counter(), done
      if step_zero_owed:  # before any checkpoint (a resumed run makes it if missing)
        with _evaluation(interrupts, ckpts, list(members(state)), done,
                         'the step-0 evaluation'):
          _evaluate_step_zero(runs, writers)
        step_zero_owed = False
        last_log_time = time.perf_counter()  # steps/s counts training only
      if save or stop:
        for ckpt, s in zip(ckpts, members(state)):
          ckpt.save(done, s)
      if evaluate and inline:
        what = 'the final evaluation' if done == num_steps else f'the evaluation at step {done}'
        with _evaluation(interrupts, ckpts, list(members(state)), done, what):
          metrics = [evaluate_run.evaluate_and_write(run, s, done, writer,
                                                     final=done == num_steps)
                     if primary else None
                     for run, s, writer in zip(runs, members(state), writers)]
      if stop:  # train_group's clean-up waits for the save
        name = signal.Signals(signum).name
        raise Interrupted(f'stopped by {name} at step {done}; saved a checkpoint at step '
                          f'{done}; run the same command to resume', signum)
  return state, metrics


@contextlib.contextmanager
def _evaluation(interrupts, ckpts: list, states: list, step: int, what: str):
  """Runs an evaluation inside the training loop that a signal stops at once: the
  checkpoint of `step` is then saved (if it is not yet) and the run stops with
  Interrupted; the same command resumes and makes the evaluation again."""
  try:
    with interrupts.stopping_at_once():
      yield
  except SignalInterrupt as e:
    for ckpt, s in zip(ckpts, states):
      ckpt.save(step, s)  # train_group's clean-up waits for the save
    name = signal.Signals(e.signum).name
    raise Interrupted(f'stopped by {name} during {what}; the checkpoint at step {step} is '
                      'saved; run the same command to resume (it makes that evaluation '
                      'again)', e.signum) from None


def _evaluate_step_zero(runs: list, writers: list) -> None:
  """The evaluation of each run's initial state (made again: the training step
  consumed the first one), recorded at step 0."""
  for run, writer in zip(runs, writers):
    initial = parallel.replicate(train_state.init_state(run.spec, run.config.seed), None)
    evaluate_run.evaluate_and_write(run, initial, 0, writer, final=False)


# Up to this many train steps run in one dispatch (`steps.train_steps`): fewer
# host round trips (benchmarks/README.md). A call never crosses a log, eval or
# checkpoint step, and its end is a function of the absolute step, so a
# resumed run makes the same calls.
MAX_STEPS_PER_CALL = 10


def _call_end(step: int, num_steps: int, cfg) -> int:
  """The step the dispatch starting at `step` ends at (exclusive)."""
  periods = (cfg.log_every_steps, cfg.eval_every_steps, cfg.checkpoint_every_steps,
             MAX_STEPS_PER_CALL)
  return min([num_steps] + [(step // period + 1) * period for period in periods])


def _log_train(run: Run, values: list, done: int, steps_per_sec: float, writer) -> None:
  """Writes the mean train metrics since the last log step."""
  mean = {k: float(np.mean([v[k] for v in values])) for k in values[0]}
  mean['steps_per_sec'] = steps_per_sec
  public = evaluators.public(mean, run.stochastic)
  writer.write(done, 'train', public)
  logging.info('%sstep %d/%d  %s', run.log_prefix, done,
               run.config.train.num_steps, '  '.join(
                   f'{k} {public[k]:.3f}'
                   for k in ('loss', 'nelbo', 'recon', 'kl', 'steps_per_sec')
                   if public[k] is not None))
