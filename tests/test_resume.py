"""Runs survive interruption: SIGKILL and resume, unreadable checkpoints, eval mode."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, assert_same_state, final_state, load_experiment, tree_digest
from vae_jax import train


def _long_test_config():
  config = load_experiment('test')
  config.train.num_steps = 4000
  config.train.log_every_steps = 100
  config.train.eval_every_steps = 2000
  config.train.checkpoint_every_steps = 100
  return config


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
  config = _long_test_config()
  workdir = str(tmp_path / 'killed')
  flags = [f'--workdir={workdir}', '--config=experiments/test.py',
           '--config.train.num_steps=4000', '--config.train.log_every_steps=100',
           '--config.train.eval_every_steps=2000',
           '--config.train.checkpoint_every_steps=100']
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  proc = subprocess.Popen([sys.executable, '-m', 'vae_jax.main', *flags], cwd=REPO, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    saved = [d for d in os.listdir(ckpt_dir) if d.isdigit()] if os.path.isdir(ckpt_dir) else []
    if saved:
      break
    time.sleep(0.02)
  assert proc.poll() is None, 'the run ended before it could be killed'
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()]
  assert killed_at and max(killed_at) < 4000

  resumed = subprocess.run([sys.executable, '-m', 'vae_jax.main', *flags], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert 'resuming' in resumed.stderr

  reference = str(tmp_path / 'uninterrupted')
  train.train_and_evaluate(config, reference)
  assert_same_state(final_state(workdir, config), final_state(reference, config))
  records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  keys = [(r['step'], r['split']) for r in records]
  assert len(keys) == len(set(keys)) and keys[-1] == (4000, 'eval')


def _corrupt(directory: str) -> None:
  for root, _, files in os.walk(directory):
    for name in files:
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'\x00garbage')


@pytest.mark.slow
def test_unreadable_latest_checkpoint_falls_back_to_the_previous(tmp_path):
  config = load_experiment('test')  # checkpoints at steps 3 and 6
  reference = str(tmp_path / 'reference')
  train.train_and_evaluate(config, reference)

  workdir = str(tmp_path / 'corrupted')
  train.train_and_evaluate(config, workdir)
  _corrupt(os.path.join(workdir, 'checkpoints', '6'))
  train.train_and_evaluate(config, workdir)  # restores step 3, retrains 4..6

  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3', '6']
  kept = os.listdir(os.path.join(workdir, 'checkpoints_unreadable'))
  assert len(kept) == 1 and kept[0].startswith('6-')  # set aside, not deleted
  assert_same_state(final_state(workdir, config), final_state(reference, config))


def test_eval_mode_rewrites_summary_and_leaves_checkpoints_unchanged(tmp_path):
  config = load_experiment('test')
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  before = tree_digest(os.path.join(workdir, 'checkpoints'))
  os.remove(os.path.join(workdir, 'summary.json'))
  config.eval.iw_samples = 4  # evaluation settings may differ from training's
  metrics = train.evaluate_workdir(config, workdir)
  assert tree_digest(os.path.join(workdir, 'checkpoints')) == before
  summary = json.load(open(os.path.join(workdir, 'summary.json')))
  assert summary['step'] == 6 and summary['nelbo'] == metrics['nelbo']
  assert summary['iw_samples'] == 4
