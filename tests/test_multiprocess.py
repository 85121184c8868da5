"""Several processes joined by `jax.distributed`: one run over all their devices.

Two processes of 4 CPU devices each (gloo collectives over localhost TCP)
train the run that one process with 8 devices trains; a SIGTERM to either
process stops both at the same step with a checkpoint, the same command
resumes both, and only process 0 writes the run's files.
"""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import REPO, final_state, load_experiment
from vae_jax import train
from vae_jax.run import parallel

pytestmark = pytest.mark.e2e  # every test here makes or reads a run

# Tiny run, a train record at every step; eval and periodic checkpoints only at the end.
FLAGS = ('--config=experiments/test.py', '--config.train.log_every_steps=1',
         '--config.train.eval_every_steps=100000',
         '--config.train.checkpoint_every_steps=100000')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _env(devices: int, **extra) -> dict:
  env = {k: v for k, v in os.environ.items() if k not in (
      'JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID', 'VAE_JAX_DISTRIBUTED')}
  return dict(env, JAX_PLATFORMS='cpu',
              XLA_FLAGS=os.environ.get('XLA_FLAGS', '') +
              f' --xla_force_host_platform_device_count={devices}', **extra)


def _start_two(workdir: str, *flags: str) -> list:
  """Processes 0 and 1 of one run (4 CPU devices each), their output in files."""
  address = f'localhost:{_free_port()}'
  processes = []
  for i in range(2):
    log = open(os.path.join(os.path.dirname(workdir), f'process{i}.log'), 'w')
    env = _env(4, JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES='2',
               JAX_PROCESS_ID=str(i))
    processes.append(subprocess.Popen(
        [sys.executable, '-m', 'vae_jax.main', f'--workdir={workdir}', *FLAGS, *flags],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True))
  return processes


def _wait(processes: list, timeout: float = 600) -> list:
  """Exit codes of the processes (both killed if they outlive `timeout` seconds)."""
  deadline = time.monotonic() + timeout
  codes = []
  for p in processes:
    try:
      codes.append(p.wait(timeout=max(deadline - time.monotonic(), 1)))
    except subprocess.TimeoutExpired:
      for q in processes:
        q.kill()
      raise
  return codes


def _log(tmp_path, i: int) -> str:
  with open(tmp_path / f'process{i}.log') as f:
    return f.read()


def _records(workdir: str) -> list:
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def _train_records(workdir: str) -> int:
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    return sum('"train"' in line for line in f)


def _files(workdir: str) -> set:
  """The run's files by name (events files by kind, checkpoint contents left out)."""
  names = set()
  for path in glob.glob(os.path.join(workdir, '**'), recursive=True):
    relative = os.path.relpath(path, workdir)
    if os.path.isfile(path) and not relative.startswith('checkpoints'):
      names.add('events' if relative.startswith('events.') else relative)
  return names


@pytest.mark.slow
def test_two_processes_stop_resume_and_equal_one_process_of_8_devices(tmp_path):
  workdir = str(tmp_path / 'two')
  # 1. Two processes train; a SIGTERM to process 1 alone (once both are in the
  #    loop: process 0 has logged a step) stops both at the same step.
  processes = _start_two(workdir, '--config.train.num_steps=100000')
  deadline = time.monotonic() + 400
  while _train_records(workdir) == 0:
    assert all(p.poll() is None for p in processes), _log(tmp_path, 0)[-3000:]
    assert time.monotonic() < deadline, 'no train step within 400 s'
    time.sleep(0.2)
  processes[1].send_signal(signal.SIGTERM)
  assert _wait(processes) == [143, 143], _log(tmp_path, 0)[-3000:] + _log(tmp_path, 1)[-3000:]
  stopped_at = [int(line.split('stopped by SIGTERM at step ')[1].split(';')[0])
                for i in range(2) for line in _log(tmp_path, i).splitlines()
                if 'stopped by SIGTERM at step' in line]
  assert len(stopped_at) == 2 and stopped_at[0] == stopped_at[1], stopped_at
  stop_step = stopped_at[0]
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', str(stop_step)))
  # Process 0 alone wrote: one events file, one record per step (none twice).
  assert len(glob.glob(os.path.join(workdir, 'events.*'))) == 1
  steps_logged = [r['step'] for r in _records(workdir) if r['split'] == 'train']
  assert steps_logged == list(range(1, stop_step + 1))
  # 2. The same command resumes both (here to two steps past the stop).
  num_steps = stop_step + 2
  processes = _start_two(workdir, f'--config.train.num_steps={num_steps}')
  assert _wait(processes) == [0, 0], _log(tmp_path, 0)[-3000:] + _log(tmp_path, 1)[-3000:]
  assert f'resuming {workdir} from step {stop_step}' in _log(tmp_path, 1)
  # 3. One process with 8 devices, uninterrupted: the reference.
  reference = str(tmp_path / 'one')
  out = subprocess.run([sys.executable, '-m', 'vae_jax.main', f'--workdir={reference}', *FLAGS,
                        f'--config.train.num_steps={num_steps}'],
                       cwd=REPO, env=_env(8), capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]

  # Same parameters and optimizer state. The two differ only in the order in
  # which the 8 per-device gradients are summed (gloo across processes vs XLA
  # within one), about 1e-7 relative in float32, which Adam's few steps carry
  # into the parameters: the tolerance of the 8-vs-1 device test.
  config = load_experiment('test')
  config.train.num_steps = num_steps
  two, one = final_state(workdir, config), final_state(reference, config)
  assert int(two.step) == int(one.step) == num_steps
  for a, b in zip(jax.tree.leaves(two), jax.tree.leaves(one)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
  # The same records (each once) and the same files; events: one per start.
  records_two, records_one = _records(workdir), _records(reference)
  assert [(r['step'], r['split']) for r in records_two] == [
      (r['step'], r['split']) for r in records_one]
  for a, b in zip(records_two, records_one):
    for key in ('nelbo', 'kl'):
      np.testing.assert_allclose(a[key], b[key], rtol=1e-4)
  assert _files(workdir) == _files(reference)
  assert len(glob.glob(os.path.join(workdir, 'events.*'))) == 2
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == sorted(
      {str(stop_step), str(num_steps)})


def test_a_process_other_than_0_writes_only_checkpoints(tmp_path, monkeypatch):
  # What process 1 of a run does, in one process: train, save checkpoints, write no file.
  monkeypatch.setattr(parallel, 'is_primary', lambda: False)
  config = load_experiment('test')
  config.train.num_steps = 4
  workdir = str(tmp_path / 'run')
  assert train.train_and_evaluate(config, workdir) is None
  assert os.listdir(workdir) == ['checkpoints']
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3', '4']
  assert int(final_state(workdir, config).step) == 4
