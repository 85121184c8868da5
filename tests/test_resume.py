"""Runs survive interruption: unreadable checkpoints, eval mode (signals: test_faults.py)."""

import json
import os

import numpy as np
import pytest

from conftest import assert_same_state, final_state, load_experiment, tree_digest
from vae_jax import evaluate_run, steps, train, train_state
from vae_jax.run import build, checkpoints, parallel

pytestmark = pytest.mark.e2e  # every test here makes or reads a run


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
  metrics = evaluate_run.evaluate_workdir(config, workdir)
  assert tree_digest(os.path.join(workdir, 'checkpoints')) == before
  summary = json.load(open(os.path.join(workdir, 'summary.json')))
  assert summary['step'] == 6 and summary['nelbo'] == metrics['nelbo']
  assert summary['iw_samples'] == 4


def test_a_fresh_and_a_restored_state_train_with_one_compiled_program(tmp_path):
  """The loop places a fresh state as a restore places a checkpoint's arrays, so
  a resumed run reuses the fresh run's compiled train step (same lowered program)."""
  config = load_experiment('test')
  run = build.build_run(config, str(tmp_path))
  fresh = train_state.init_state(run.spec, config.seed)
  ckpt = checkpoints.Checkpointer(str(tmp_path))
  ckpt.save(0, fresh)
  ckpt.close()
  restored = checkpoints.Checkpointer(str(tmp_path), read_only=True).restore(0, fresh)
  indices = np.zeros((2, config.data.batch_size), np.int32)
  lowered = lambda state: steps.train_steps.lower(state, run.train_arrays, indices, run.hparams,
                                                  spec=run.spec).as_text()
  assert lowered(parallel.replicate(fresh, run.mesh)) == lowered(restored)
