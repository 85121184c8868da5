"""Evaluating a run's state and recording it: metrics.jsonl, pictures, summary.json,
anomaly scores; --mode=eval (`evaluate_workdir`).

The training loop (vae_jax/train.py) calls `evaluate_and_write` at each
evaluation step, `evaluate_missing` when it resumes and `write_summary` at its
end; only the primary process calls them. The metrics themselves are
vae_jax/evaluation/evaluators.py's.
"""

import importlib.util
import json
import os

import ml_collections
import numpy as np
from absl import logging

from vae_jax import train_state
from vae_jax.run import checkpoints
from vae_jax.pictures import eval_pictures
from vae_jax.pictures import figures
from vae_jax.run import files
from vae_jax.run import guards
from vae_jax.run import parallel
from vae_jax.evaluation import evaluators
from vae_jax.run import workdir as workdir_lib
from vae_jax.run import metrics_log
from vae_jax.errors import WorkdirError
from vae_jax.run.build import Run, build_run


def _local(run: Run, state):
  """The state on this process's first device (evaluation runs unsharded)."""
  return state if run.mesh is None else parallel.to_one_device(state)


def _evaluate(run: Run, state, *, final: bool) -> evaluators.Evaluation:
  """`evaluators.evaluate` of the run's state (`_local`); writes anomaly_scores.npz
  (per-example nll_iw) when eval.anomaly asks for it."""
  result = evaluators.evaluate(state.params, run.config, run.spec, run.dataset,
                               final=final, factor_source=run.factor_source)
  if run.config.eval.anomaly and result.nll_iw is not None:
    with files.atomic(os.path.join(run.workdir, 'anomaly_scores.npz')) as tmp, \
        open(tmp, 'wb') as f:
      np.savez(f, nll_iw=result.nll_iw, labels=result.labels, eval_ids=run.dataset.eval_ids)
  return result


def _write_images(run: Run, state, step: int, result: evaluators.Evaluation,
                  writer) -> None:
  """Every picture of `eval_pictures.make_pictures`, to images/ and TensorBoard."""
  history = eval_pictures.rate_distortion_history(metrics_log.read_metrics(run.workdir),
                                                  step)
  made = eval_pictures.make_pictures(
      run.spec.model, state.params, run.dataset, seed=run.config.seed,
      num_images=run.config.eval.num_images, stochastic=run.stochastic, step=step,
      metrics=result.metrics, moments=(result.mu, result.logvar, result.labels),
      history=history)
  for kind, picture in made.items():
    figures.save_png(run.images_dir, kind, step, picture)
    writer.image(step, kind, picture)


def evaluate_and_write(run: Run, state, step: int, writer, *, final: bool,
                       record: bool = True) -> dict:
  """Held-out metrics (to metrics.jsonl unless `record` is False) and pictures."""
  state = _local(run, state)
  result = _evaluate(run, state, final=final)
  metrics = result.metrics
  _write_images(run, state, step, result, writer)
  if final:
    eval_pictures.write_final_animations(
        run.spec.model, state.params, run.dataset, seed=run.config.seed,
        stochastic=run.stochastic, step=step, metrics=metrics,
        moments=(result.mu, result.logvar, result.labels), images_dir=run.images_dir)
  guards.stop_if_signalled()
  if record:
    writer.write(step, 'eval', metrics)
    if final:
      writer.hparams(workdir_lib.flatten(workdir_lib.config_to_dict(run.config)), metrics)
  logging.info('%seval at step %d: %s', run.log_prefix, step, '  '.join(
      f'{k} {v:.3f}' for k, v in metrics.items() if isinstance(v, float)))
  return metrics


def evaluate_missing(run: Run, state, step: int, writer) -> dict:
  """At a resumed run's first step: the evaluation that step owes if metrics.jsonl
  lacks it (a run stopped between its checkpoint and its evaluation); the
  final metrics of a finished run (from summary.json if it has them)."""
  cfg = run.config.train
  final = step >= cfg.num_steps
  recorded = step in metrics_log.evaluated_steps(run.workdir)
  if not recorded and (final or step % cfg.eval_every_steps == 0):
    return evaluate_and_write(run, state, step, writer, final=final)
  if not final:
    return None
  summary = _read_summary(run.workdir)
  if summary is not None and summary.get('step') == step:
    return {k: v for k, v in summary.items()
            if k not in ('step', 'dataset', 'eval_examples', 'data_source')}
  return _evaluate(run, _local(run, state), final=True).metrics


def _read_summary(workdir: str):
  """summary.json's dict, or None if it is missing or unreadable."""
  try:
    with open(os.path.join(workdir, 'summary.json')) as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return None
  return summary if isinstance(summary, dict) else None


def write_summary(run: Run, step: int, metrics: dict) -> None:
  """summary.json: the step, the data and the held-out metrics `metrics`."""
  summary = {'step': step, 'dataset': run.dataset.spec.name,
             'eval_examples': run.dataset.num_eval, 'data_source': run.dataset.source,
             **metrics}
  workdir_lib.write_json(os.path.join(run.workdir, 'summary.json'), summary)


def results_line(workdir: str, mode: str = 'train') -> str:
  """The closing line of --mode=train (or eval): where the results are."""
  line = (f'results: {os.path.join(workdir, "summary.json")}; images in '
          f'{os.path.join(workdir, "images", "")}')
  if mode == 'train':
    line += f'; curves in {os.path.join(workdir, "metrics.jsonl")}'
    if importlib.util.find_spec('tensorboard') is not None:
      line += f' and TensorBoard (tensorboard --logdir {workdir})'
  return line


def evaluate_workdir(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """--mode=eval: restores the newest checkpoint, writes images and summary.json.

  The checkpoints, metrics.jsonl and the TensorBoard events are left as they
  are (an unreadable checkpoint stays in place; the newest readable one is
  evaluated; no second events file shows a second picture at the step);
  images and summary.json are each written whole (`files.atomic`),
  summary.json last.
  Evaluation settings (config.eval.*, e.g. iw_samples) may differ from the
  training run's.
  """
  if not os.path.isdir(os.path.join(workdir, 'checkpoints')):
    raise WorkdirError(f'no checkpoints in {workdir}; train first or pass the workdir '
                       'of a trained run')
  run = build_run(config, workdir)
  ckpt = checkpoints.Checkpointer(workdir, read_only=True)
  writer = metrics_log.NoWriter()  # the pictures go to images/ only
  try:
    with guards.out_of_memory_is_a_user_error(config):
      state = ckpt.restore_latest(train_state.init_state(run.spec, config.seed),
                                  move_unreadable=False)
      if state is None:
        raise WorkdirError(f'no readable checkpoint in {workdir}/checkpoints')
      logging.info('evaluating the checkpoint at step %d', int(state.step))
      metrics = evaluate_and_write(run, state, int(state.step), writer, final=True,
                                   record=False)
      write_summary(run, int(state.step), metrics)
      return metrics
  finally:
    ckpt.close()
    writer.close()
