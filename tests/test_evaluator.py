"""eval.inline=False and --mode=evaluator: training and evaluation as two processes.

A trainer and an evaluator, each killed at seeded random moments and started
again by the same command, end with the evaluation records of an inline run:
every evaluation step once, with the same numbers, and the same summary.json.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, load_experiment
from vae_jax import evaluator, train
from vae_jax.run import metrics_log

pytestmark = pytest.mark.e2e

_STEPS, _EVAL_EVERY = 60, 10
_SETTINGS = {'train.num_steps': _STEPS, 'train.log_every_steps': 5,
             'train.eval_every_steps': _EVAL_EVERY, 'train.checkpoint_every_steps': 20}
_TRAIN_FLAGS = ['--config=experiments/test.py', '--config.eval.inline=False',
                *[f'--config.{k}={v}' for k, v in _SETTINGS.items()]]


def _config():
  config = load_experiment('test')
  for key, value in _SETTINGS.items():
    section, name = key.split('.')
    config[section][name] = value
  return config


def _eval_records(workdir: str) -> list:
  records = [r for r in metrics_log.read_metrics(workdir) if r['split'] == 'eval']
  return sorted(({k: v for k, v in r.items() if k != 'time'} for r in records),
                key=lambda r: r['step'])


def _summary(workdir: str) -> dict:
  with open(os.path.join(workdir, 'summary.json')) as f:
    return json.load(f)


@pytest.fixture(scope='module')
def inline_run(tmp_path_factory) -> str:
  workdir = str(tmp_path_factory.mktemp('inline') / 'run')
  train.train_and_evaluate(_config(), workdir)
  return workdir


def _launch(flags: list, log_path: str) -> subprocess.Popen:
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  with open(log_path, 'a') as log:
    return subprocess.Popen([sys.executable, '-m', 'vae_jax.main', *flags], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=log)


def test_evaluation_steps_and_the_checkpoints_kept_for_them(tmp_path):
  config = _config()
  steps = [s for s in range(_STEPS + 1) if evaluator.is_evaluation_step(s, config.train)]
  assert steps == [0, 10, 20, 30, 40, 50, 60]
  workdir = str(tmp_path)
  writer = metrics_log.MetricWriter(workdir)
  writer.write(10, 'eval', {'nelbo': 1.0})
  writer.write(20, 'train', {'loss': 1.0})
  writer.close()
  keep = evaluator.unevaluated(workdir, config.train)
  assert [s for s in (0, 5, 10, 20, 60) if keep(s)] == [0, 20, 60]


def _records_since(workdir: str, split: str, since: float) -> list:
  """Steps of the `split` records of metrics.jsonl written after `since` (Unix s)."""
  try:
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      lines = f.readlines()
  except OSError:
    return []
  records = [json.loads(line) for line in lines if line.endswith('\n')]
  return [r['step'] for r in records if r['split'] == split and r['time'] >= since]


def _signal_when(proc: subprocess.Popen, ready, signum) -> bool:
  """Sends `signum` once `ready()` holds; False if the process ended first."""
  deadline = time.time() + 240
  while proc.poll() is None and time.time() < deadline:
    if ready():
      proc.send_signal(signum)
      proc.wait(timeout=120)
      return True
    time.sleep(0.01)
  return False


def test_trainer_and_evaluator_killed_at_random_points_record_what_inline_does(
    inline_run, tmp_path):
  workdir = str(tmp_path / 'run')
  commands = {'evaluator': ['--mode=evaluator', f'--workdir={workdir}'],
              'trainer': [f'--workdir={workdir}', *_TRAIN_FLAGS]}
  logs = {name: str(tmp_path / f'{name}.txt') for name in commands}
  # The evaluator starts first: it waits for the run to appear.
  procs, started = {}, {}
  for name in commands:
    started[name], procs[name] = time.time(), _launch(commands[name], logs[name])
  rng = np.random.default_rng(20261203)
  signums = [signal.SIGKILL, signal.SIGTERM]
  # The trainer stopped past three drawn steps, the evaluator three times a drawn
  # moment (0–1.5 s) after its next record; a stop whose process has already
  # finished is skipped.
  trainer_steps = sorted(rng.choice(np.arange(3, _STEPS - 3), 3, replace=False))
  trainer_stops = [('trainer', lambda s=step: max(
      _records_since(workdir, 'train', started['trainer']), default=-1) >= s)
                   for step in trainer_steps]
  evaluator_stops = [('evaluator', lambda d=delay: bool(_records_since(
      workdir, 'eval', started['evaluator'])) and (time.sleep(d) or True))
                     for delay in rng.uniform(0.0, 1.5, 3)]
  # The trainer's stops first (it outpaces the evaluator), one of the evaluator's
  # while the trainer still runs.
  stops = [trainer_stops[0], evaluator_stops[0], *trainer_stops[1:], *evaluator_stops[1:]]
  kills = {name: 0 for name in commands}
  for name, ready in stops:
    if _signal_when(procs[name], ready, signal.Signals(rng.choice(signums))):
      kills[name] += 1
      started[name], procs[name] = time.time(), _launch(commands[name], logs[name])
  for name, proc in procs.items():
    assert proc.wait(timeout=300) == 0, open(logs[name]).read()[-3000:]
  assert kills['trainer'] >= 1 and kills['evaluator'] >= 1 and sum(kills.values()) >= 3, kills
  assert _eval_records(workdir) == _eval_records(inline_run)
  assert [r['step'] for r in _eval_records(workdir)] == list(range(0, _STEPS + 1, _EVAL_EVERY))
  assert _summary(workdir) == _summary(inline_run)
  with open(logs['evaluator']) as f:
    assert 'Traceback' not in f.read()


_SWEEP_FILE = """
from vae_jax import configs

def get_config():
  config = configs.make_tiny(configs.get_config())
  config.data.name = 'dsprites'
  config.train.num_steps = 4
  config.train.eval_every_steps = config.train.checkpoint_every_steps = 2
  config.eval.inline = False
  config.eval.workers = 2
  return config

def get_sweep():
  return {'seed': [0, 1, 2]}
"""


@pytest.mark.slow
def test_a_sweep_scores_its_members_in_evaluator_processes(tmp_path):
  path, sweep_dir = tmp_path / 'sweep.py', str(tmp_path / 'sweep')
  path.write_text(_SWEEP_FILE)
  out = subprocess.run([sys.executable, '-m', 'vae_jax.main', '--mode=sweep',
                        f'--config={path}', f'--workdir={sweep_dir}'], cwd=REPO,
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert out.returncode == 0, out.stderr[-3000:]
  assert os.path.isfile(os.path.join(sweep_dir, 'results.md'))
  assert 'evaluator processes score the members' in out.stderr
  for seed in range(3):
    member = os.path.join(sweep_dir, f'seed={seed}')
    assert [r['step'] for r in _eval_records(member)] == [0, 2, 4]
    assert _summary(member)['step'] == 4
