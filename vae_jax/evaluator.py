"""--mode=evaluator: a run's evaluations in a process of their own.

With `eval.inline=False` the trainer evaluates nothing: at step 0 and at every
evaluation step it saves a checkpoint, and keeps it (beyond the newest three)
until its evaluation is recorded (`unevaluated`). An evaluator follows the
checkpoints:

    python -m vae_jax.main --mode=evaluator --workdir=DIR    # a run or a sweep directory

It evaluates each evaluation step's checkpoint once, in step order, and writes
what an inline evaluation writes (the metrics.jsonl eval record, TensorBoard
scalars and pictures, images/, summary.json after the final step), so the
run's records equal an inline run's. An evaluation counts as done when its
metrics.jsonl record is written, after everything else; a killed evaluator
restarts at the first step without a record and no step is recorded twice. It
exits when the final step's evaluation is recorded; it waits for checkpoints
the trainer has not saved yet (the trainer may start before or after it).

A sweep directory's members are evaluated by whichever evaluator holds their
lock (<member>/.evaluator.lock): several evaluators share a sweep, and
`--mode=sweep` with `eval.workers=N` starts N of them beside its training.
"""

import json
import os
import time

import ml_collections
from absl import logging

from vae_jax import evaluate_run, train_state
from vae_jax.errors import WorkdirError
from vae_jax.run import checkpoints, guards, metrics_log, saved_config
from vae_jax.run import workdir as workdir_lib
from vae_jax.run.build import Run, build_run

LOCK = '.evaluator.lock'
POLL_SECONDS = 2.0  # between looks for new checkpoints


def is_evaluation_step(step: int, train: ml_collections.ConfigDict) -> bool:
  """Whether the trainer evaluates (inline) or checkpoints for an evaluator at `step`."""
  return step == 0 or step % train.eval_every_steps == 0 or step == train.num_steps


def unevaluated(workdir: str, train: ml_collections.ConfigDict):
  """step → True while the checkpoint at an evaluation step awaits its evaluation
  (the trainer's Checkpointer keeps those)."""
  return lambda step: (is_evaluation_step(step, train)
                       and step not in metrics_log.evaluated_steps(workdir))


class _Follower:
  """One run's evaluations: its Run, checkpoints (read only) and writer."""

  def __init__(self, run: Run):
    self.run = run
    self.ckpt = checkpoints.Checkpointer(run.workdir, read_only=True)
    self.writer = metrics_log.MetricWriter(run.workdir, events_suffix='.evaluator')
    self.waiting_for = None

  def close(self) -> None:
    self.ckpt.close()
    self.writer.close()

  @property
  def final_step(self) -> int:
    return self.run.config.train.num_steps

  def finished(self) -> bool:
    return self.final_step in metrics_log.evaluated_steps(self.run.workdir)

  def evaluate_ready(self) -> bool:
    """Evaluates every saved, unrecorded evaluation checkpoint in step order (up to
    one that is missing or unreadable); True if it evaluated any."""
    self.ckpt.reload()
    done, any_done = metrics_log.evaluated_steps(self.run.workdir), False
    steps = [s for s in self.ckpt.all_steps()
             if is_evaluation_step(s, self.run.config.train) and s not in done]
    template = None  # a whole train state, made once a call, not held between calls
    for step in steps:
      if template is None:
        template = train_state.init_state(self.run.spec, self.run.config.seed)
      try:
        state = self.ckpt.restore(step, template)
      except WorkdirError as e:  # being replaced by a resumed trainer: try again later
        if self.waiting_for != step:
          logging.warning('%s%s; trying again', self.run.log_prefix, e)
          self.waiting_for = step
        return any_done
      logging.info('%sevaluating the checkpoint at step %d', self.run.log_prefix, step)
      evaluate_run.evaluate_and_write(self.run, state, step, self.writer,
                                      final=step == self.final_step)
      any_done = True
      guards.stop_if_signalled()
    return any_done

  def write_summary(self) -> dict:
    """summary.json from the final step's record (as the inline run writes it)."""
    record = next(r for r in reversed(metrics_log.read_metrics(self.run.workdir))
                  if r['split'] == 'eval' and r['step'] == self.final_step)
    metrics = {k: v for k, v in record.items() if k not in ('step', 'split', 'time')}
    evaluate_run.write_summary(self.run, self.final_step, metrics)
    return metrics


def follow_run(config: ml_collections.ConfigDict, workdir: str,
               poll_seconds: float = POLL_SECONDS) -> dict:
  """Evaluates the run in `workdir` until its final step; returns the final metrics."""
  lock = workdir_lib.WorkdirLock(workdir, LOCK)
  follower = None
  try:
    follower = _Follower(build_run(config, workdir))
    while not follower.finished():
      if not follower.evaluate_ready():
        time.sleep(poll_seconds)
        guards.stop_if_signalled()
    return follower.write_summary()
  finally:
    if follower is not None:
      follower.close()
    lock.release()


def is_sweep_directory(workdir: str) -> bool:
  return (os.path.isfile(os.path.join(workdir, 'sweep.json'))
          and not os.path.isfile(os.path.join(workdir, 'config.json')))


def _member_names(sweep_dir: str) -> list:
  with open(os.path.join(sweep_dir, 'sweep.json')) as f:
    return [m['name'] for m in json.load(f)['members']]


def follow_sweep(sweep_dir: str, poll_seconds: float = POLL_SECONDS) -> int:
  """Evaluates the members of a sweep directory (each while no other evaluator
  holds it) until every member's final step is evaluated; returns their number."""
  names, finished, followers = _member_names(sweep_dir), set(), {}
  try:
    while len(finished) < len(names):
      progressed = False
      for name in [n for n in names if n not in finished]:
        progressed |= _member_pass(sweep_dir, name, followers, finished)
        guards.stop_if_signalled()
      if not progressed and len(finished) < len(names):
        time.sleep(poll_seconds)
        guards.stop_if_signalled()
  finally:
    for follower in followers.values():
      follower.close()
  return len(names)


def _member_pass(sweep_dir: str, name: str, followers: dict, finished: set) -> bool:
  """Evaluates a member's ready checkpoints unless another evaluator holds it (or
  its trainer has not started); True if it evaluated any."""
  workdir = os.path.join(sweep_dir, name)
  if not os.path.isfile(os.path.join(workdir, 'config.json')):
    return False
  try:
    lock = workdir_lib.WorkdirLock(workdir, LOCK)
  except WorkdirError:
    return False  # another evaluator's
  try:
    if name not in followers:
      shares = next(iter(followers.values())).run if followers else None
      config = saved_config.load(workdir)
      if shares is not None and (config.data.to_dict() != shares.config.data.to_dict() or
                                 config.eval.factor_source != shares.config.eval.factor_source):
        shares = None
      followers[name] = _Follower(build_run(config, workdir, shares=shares, name=name))
    follower = followers[name]
    progressed = follower.evaluate_ready()
    if follower.finished():
      follower.write_summary()
      finished.add(name)
    return progressed
  finally:
    lock.release()
