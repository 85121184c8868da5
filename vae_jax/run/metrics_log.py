"""The one metrics path: metrics.jsonl (one JSON record per line) and TensorBoard events.

Writing (`MetricWriter`; `NoWriter` for the processes other than 0) and
reading back (`read_metrics`, which drops a line torn by a kill).
"""

import contextlib
import fcntl
import json
import os
import time

import numpy as np
from absl import logging

from vae_jax.errors import WorkdirError
from vae_jax.run import files
from vae_jax.run.workdir import strict

def read_metrics(workdir: str) -> list:
  """Every record of metrics.jsonl, in order.

  A torn last line (a run stopped while writing it) is dropped with a warning;
  any other line that is not a record is a WorkdirError.
  """
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = [(n, line) for n, line in enumerate(f, 1) if line.strip()]
  records = []
  for i, (number, line) in enumerate(lines):
    try:
      record = json.loads(line)
    except ValueError:
      record = None
    if isinstance(record, dict) and 'step' in record and 'split' in record:
      records.append(record)
    elif i == len(lines) - 1 and not line.endswith('\n'):
      logging.warning('%s: dropped its last line, written only in part (%d characters)',
                      path, len(line))
    else:
      raise WorkdirError(f'{path} line {number} is not a metrics record; repair or remove '
                         'that line (the checkpoints are unaffected)')
  return records


def evaluated_steps(workdir: str) -> set:
  """The steps with an evaluation record ('eval' split) in metrics.jsonl."""
  return {r['step'] for r in read_metrics(workdir) if r['split'] == 'eval'}


# Settings recorded beside the held-out metrics in metrics.jsonl and
# summary.json (they say how a number was measured) but not metrics: no
# TensorBoard scalar of their own.
SETTINGS_NOT_METRICS = ('iw_samples', 'marginal_iw_samples', 'disentanglement_sample_divisor')
# Per-latent metrics (lists [latent_dim]): TensorBoard scalars <split>/<name>/<i>.
PER_LATENT = ('kl_per_dim', 'unit_activity')


def hparam_value(value):
  """A config value as a TensorBoard hyperparameter: bool, int, float, str (lists
  as their JSON text) or None (left out)."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  return json.dumps(value)


@contextlib.contextmanager
def _exclusive(workdir: str):
  """Holds an exclusive lock on the workdir's directory (fcntl.flock): a trainer
  and an evaluator (vae_jax/evaluator.py) write metrics.jsonl one at a time."""
  fd = os.open(workdir, os.O_RDONLY)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)  # releases the lock


class MetricWriter:
  """The one metrics path: metrics.jsonl plus TensorBoard scalars, images and hparams.

  A trainer and an evaluator process may write one workdir's metrics.jsonl
  together (each record appended whole under a lock); each has its own
  TensorBoard events file (`events_suffix`).

  Each metrics.jsonl record is {step, split, time (Unix seconds), metrics...}.
  TensorBoard gets `<split>/<name>` for every number but SETTINGS_NOT_METRICS,
  `<split>/<name>/<i>` for latent i of the PER_LATENT lists, the pictures
  under their kind, and (`hparams`) the run's config with its final metrics.
  """

  def __init__(self, workdir: str, events_suffix: str = ''):
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._jsonl = os.path.join(workdir, 'metrics.jsonl')
    self._tb = SummaryWriter(logdir=workdir, flush_secs=30, filename_suffix=events_suffix)

  def truncate_after(self, step: int) -> None:
    """Drops records past `step` (left by a run killed after its last checkpoint);
    `step` -1 drops them all. The file is replaced atomically (`files.atomic`)."""
    with _exclusive(os.path.dirname(self._jsonl)):
      kept = [r for r in read_metrics(os.path.dirname(self._jsonl)) if r['step'] <= step]
      with files.atomic(self._jsonl) as tmp, open(tmp, 'w') as f:
        f.writelines(json.dumps(strict(r), allow_nan=False) + '\n' for r in kept)

  def write(self, step: int, split: str, metrics: dict) -> None:
    record = {'step': int(step), 'split': split, 'time': round(time.time(), 3), **metrics}
    with _exclusive(os.path.dirname(self._jsonl)), open(self._jsonl, 'a') as f:
      f.write(json.dumps(strict(record), allow_nan=False) + '\n')
    for name, value in metrics.items():
      if name in SETTINGS_NOT_METRICS:
        continue
      if isinstance(value, (int, float)) and not isinstance(value, bool):
        self._tb.add_scalar(f'{split}/{name}', value, step)
      elif name in PER_LATENT and isinstance(value, list):
        for i, v in enumerate(value):
          self._tb.add_scalar(f'{split}/{name}/{i}', v, step)

  def hparams(self, flat_config: dict, final_metrics: dict) -> None:
    """The HParams dashboard entry of this run: every config key of
    `flat_config` ({"a.b": value}) as a hyperparameter, and the final held-out
    scalars `eval/<name>` (already written by `write`) as its metrics."""
    from tensorboardX import summary  # pylint: disable=g-import-not-at-top
    hparams = {k: hparam_value(v) for k, v in flat_config.items()}
    metrics = {f'eval/{k}': v for k, v in final_metrics.items()
               if k not in SETTINGS_NOT_METRICS and isinstance(v, (int, float))
               and not isinstance(v, bool)}
    for part in summary.hparams(hparams, metrics):
      self._tb.file_writer.add_summary(part)

  def image(self, step: int, kind: str, image: np.ndarray) -> None:
    """An HWC uint8 picture to TensorBoard."""
    self._tb.add_image(kind, image, step, dataformats='HWC')

  def close(self) -> None:
    self._tb.close()


class NoWriter:
  """MetricWriter's interface, writing nothing (the processes other than 0 of a
  multi-process run: process 0 writes the run's files)."""

  def truncate_after(self, step: int) -> None:
    del step

  def write(self, step: int, split: str, metrics: dict) -> None:
    del step, split, metrics

  def image(self, step: int, kind: str, image: np.ndarray) -> None:
    del step, kind, image

  def close(self) -> None:
    pass
