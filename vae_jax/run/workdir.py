"""The run's directory: config.json, run.json, metrics.jsonl, events, summary.json.

Layout (a public contract, docs/design.md):
    config.json      the fully resolved config
    run.json         versions, devices, git commit, command line, seed
    metrics.jsonl    {"step": int, "split": "train"|"eval", ...} one per line
    events.*         TensorBoard scalars, images and hparams (tensorboardX)
    checkpoints/     Orbax checkpoints (vae_jax.checkpoints)
    images/          <kind>_<step>.png (vae_jax.pictures)
    summary.json     final held-out metrics

In a multi-process run only process 0 writes these files (vae_jax.train);
Orbax coordinates the processes' checkpoint saves (vae_jax.checkpoints).
"""

import datetime
import fcntl
import json
import math
import os
import platform
import subprocess
import sys
import time
from typing import Optional

import jax
import ml_collections
import numpy as np
from absl import logging

from vae_jax import configs
from vae_jax.run import files
from vae_jax.errors import WorkdirError

# Settings that do not change the function a run trains: a resumed run (and
# --mode=eval) may change them; run.json records the change. Exact keys, or
# prefixes ending in '.'.
FREE_ON_RESUME = ('train.num_steps', 'train.log_every_steps', 'train.eval_every_steps',
                  'train.checkpoint_every_steps', 'eval.')


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


def load_config(workdir: str) -> ml_collections.ConfigDict:
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


class WorkdirLock:
  """An exclusive lock on <workdir>/.lock (fcntl.flock) holding the owner's pid;
  WorkdirError if another process holds it or the workdir cannot be written."""

  def __init__(self, workdir: str):
    path = os.path.join(workdir, '.lock')
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
      raise WorkdirError(f'workdir {workdir} is in use by another process (pid {owner}); '
                         'wait for it to finish or pass a new --workdir') from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write(f'{os.getpid()}\n')
    self._file.flush()

  def release(self) -> None:
    fcntl.flock(self._file, fcntl.LOCK_UN)
    self._file.close()


# Settings recorded beside the held-out metrics in metrics.jsonl and
# summary.json (they say how a number was measured) but not metrics: no
# TensorBoard scalar of their own.
SETTINGS_NOT_METRICS = ('iw_samples', 'disentanglement_sample_divisor')
# Per-latent metrics (lists [latent_dim]): TensorBoard scalars <split>/<name>/<i>.
PER_LATENT = ('kl_per_dim', 'unit_activity')


def hparam_value(value):
  """A config value as a TensorBoard hyperparameter: bool, int, float, str (lists
  as their JSON text) or None (left out)."""
  if value is None or isinstance(value, (bool, int, float, str)):
    return value
  return json.dumps(value)


class MetricWriter:
  """The one metrics path: metrics.jsonl plus TensorBoard scalars, images and hparams.

  Each metrics.jsonl record is {step, split, time (Unix seconds), metrics...}.
  TensorBoard gets `<split>/<name>` for every number but SETTINGS_NOT_METRICS,
  `<split>/<name>/<i>` for latent i of the PER_LATENT lists, the pictures
  under their kind, and (`hparams`) the run's config with its final metrics.
  """

  def __init__(self, workdir: str):
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._jsonl = os.path.join(workdir, 'metrics.jsonl')
    self._tb = SummaryWriter(logdir=workdir, flush_secs=30)

  def truncate_after(self, step: int) -> None:
    """Drops records past `step` (left by a run killed after its last checkpoint);
    `step` -1 drops them all. The file is replaced atomically (`files.atomic`)."""
    kept = [r for r in read_metrics(os.path.dirname(self._jsonl)) if r['step'] <= step]
    with files.atomic(self._jsonl) as tmp, open(tmp, 'w') as f:
      f.writelines(json.dumps(strict(r), allow_nan=False) + '\n' for r in kept)

  def write(self, step: int, split: str, metrics: dict) -> None:
    record = {'step': int(step), 'split': split, 'time': round(time.time(), 3), **metrics}
    with open(self._jsonl, 'a') as f:
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
