"""The run's directory: its layout and default name, run.json, JSON files written whole, its lock.

The saved config and the resume check: saved_config.py; metrics.jsonl and
the TensorBoard events: metrics_log.py.

Layout (a public contract, docs/design.md):
    config.json      the fully resolved config
    run.json         versions, devices, git commit, command line, seed
    metrics.jsonl    {"step": int, "split": "train"|"eval", ...} one per line
    events.*         TensorBoard scalars, images and hparams (tensorboardX)
    checkpoints/     Orbax checkpoints (vae_jax.run.checkpoints)
    images/          <kind>_<step>.png (vae_jax.pictures.eval_pictures)
    summary.json     final held-out metrics

In a multi-process run only process 0 writes these files (vae_jax.train);
Orbax coordinates the processes' checkpoint saves (vae_jax.run.checkpoints).
"""

import datetime
import fcntl
import json
import math
import os
import platform
import subprocess
import sys
from typing import Optional

import ml_collections
import numpy as np

from vae_jax.run import files
from vae_jax.errors import WorkdirError

def default_workdir(config_path: str) -> str:
  """runs/<experiment>-<UTC timestamp> for a config file path."""
  stem = os.path.splitext(os.path.basename(config_path.split(':')[0]))[0] or 'run'
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%d-%H%M%S')
  return os.path.join('runs', f'{stem}-{stamp}')


def flatten(tree: dict, prefix: str = '') -> dict:
  """{"a.b": value} of a nested dict (tuples as lists, as JSON reads them)."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = list(value) if isinstance(value, tuple) else value
  return flat


def config_to_dict(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json())


def _git_commit() -> Optional[str]:
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=here, capture_output=True,
                         text=True, timeout=10, check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout.strip() or None


def run_info(config: ml_collections.ConfigDict, start_step: int, data_spec=None,
             changed: Optional[dict] = None) -> dict:
  """Everything needed to reproduce the run besides the config: versions, the
  data's shape (what `vae_jax.load` needs without the data) and the settings
  changed on resume ({key: [saved, now]})."""
  import flax  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  return {
      'python': platform.python_version(),
      'jax': jax.__version__, 'jaxlib': jaxlib.__version__,
      'flax': flax.__version__, 'optax': optax.__version__, 'numpy': np.__version__,
      'devices': [str(d) for d in jax.devices()],
      'platform': platform.platform(),
      'git_commit': _git_commit(),
      'command_line': sys.argv,
      'seed': config.seed,
      'start_step': start_step,
      'started_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(),
      'data': None if data_spec is None else {
          'name': data_spec.name, 'image_shape': list(data_spec.image_shape),
          'num_classes': data_spec.num_classes, 'binarize': data_spec.binarize},
      'changed_on_resume': changed or {},
  }


def write_run_info(workdir: str, info: dict) -> None:
  """Writes run.json: `info` (this start's), with the earlier starts' records, oldest
  first, under 'earlier_starts' (what each changed on resume, its versions and
  command line): a resume never loses the record of an earlier one."""
  path = os.path.join(workdir, 'run.json')
  earlier = []
  try:
    with open(path) as f:
      previous = json.load(f)
    if isinstance(previous, dict):
      earlier = list(previous.pop('earlier_starts', [])) + [previous]
  except (OSError, ValueError):
    pass  # the first start, or an unreadable record (replaced)
  write_json(path, {**info, 'earlier_starts': earlier})


def strict(obj):
  """`obj` with every NaN or infinite float replaced by None (strict JSON)."""
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  if isinstance(obj, dict):
    return {k: strict(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [strict(v) for v in obj]
  return obj


def write_json(path: str, obj) -> None:
  """Writes JSON atomically (`files.atomic`: a temporary file of this process, then a
  rename), so a stop never leaves half a file and processes writing the same file
  never mix their bytes; NaN and infinities are written as null."""
  with files.atomic(path) as tmp, open(tmp, 'w') as f:
    json.dump(strict(obj), f, indent=2, sort_keys=True, allow_nan=False)
    f.write('\n')


class WorkdirLock:
  """An exclusive lock on <workdir>/<name> (fcntl.flock) holding the owner's pid;
  WorkdirError if another process holds it or the workdir cannot be written.
  The trainer holds '.lock', an evaluator (vae_jax/evaluator.py) '.evaluator.lock'."""

  def __init__(self, workdir: str, name: str = '.lock'):
    path = os.path.join(workdir, name)
    try:
      os.makedirs(workdir, exist_ok=True)
      self._file = open(path, 'a+')
    except OSError as e:
      raise WorkdirError(f'cannot use --workdir={workdir} ({e.strerror or type(e).__name__}'
                         '); pass a writable directory') from None
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      self._file.seek(0)
      owner = self._file.read().strip() or 'unknown'
      self._file.close()
      role = 'an evaluator' if name != '.lock' else 'another process'
      raise WorkdirError(f'workdir {workdir} is in use by {role} (pid {owner}); '
                         'wait for it to finish or pass a new --workdir') from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write(f'{os.getpid()}\n')
    self._file.flush()

  def release(self) -> None:
    fcntl.flock(self._file, fcntl.LOCK_UN)
    self._file.close()
