"""End to end: every experiment config trains and leaves a complete workdir;
resume continues exactly; bad input is one line and exit code 2."""

import glob
import json
import logging
import os

import numpy as np
import pytest
from PIL import Image

from conftest import (FakeTerminal, assert_same_state, cli as _cli, final_state,
                      hparams_data, load_experiment, read_events, scalar_tags, segments)
from vae_jax import evaluate_run, train
from vae_jax.evaluation import disentanglement
from vae_jax.run import saved_config
from vae_jax.errors import ConfigError, DataError, NonFiniteError, WorkdirError

pytestmark = pytest.mark.e2e  # every test here makes or reads a run

TRAIN_KEYS = {'loss', 'nelbo', 'recon', 'kl', 'steps_per_sec'}
EVAL_KEYS = {'nelbo', 'recon', 'kl'}


def _tiny(config, local_dir: str):
  """Shrinks an experiment to a few steps on tiny data; keeps its model and objective."""
  config.data.batch_size = 8
  config.data.eval_size = 12
  if config.data.name != 'dsprites':
    config.data.local_dir = local_dir
  config.train.num_steps = 4
  config.train.log_every_steps = 2
  config.train.eval_every_steps = 2
  config.train.checkpoint_every_steps = 2
  config.eval.batch_size = 8
  config.eval.num_images = 4
  config.eval.iw_samples = 16
  config.eval.disentanglement_divisor = 200  # 50 points instead of 10,000
  if config.model.architecture == 'conv':  # the fc run has the scores (DCI's trees are slow)
    config.eval.disentanglement = False
  elif config.eval.disentanglement:  # the scores at a periodic (0) and the final evaluation
    config.train.eval_every_steps = 4
  return config


# One experiment of each kind of run directory: MNIST-like data (ELBO, conditional,
# autoencoder, anomaly scores), dSprites with the disentanglement scores (fc and
# conv networks). Every objective trains in tests/test_golden.py.
EXPERIMENTS = [('vae', None), ('cvae', None), ('ae', None), ('anomaly', None),
               ('beta_vae', 'conv'), ('beta_vae', 'fc'), ('test', None)]


@pytest.mark.parametrize('name,arg', [  # all but the smoke-test config are slow
    pytest.param(n, a, marks=() if n == 'test' else pytest.mark.slow) for n, a in EXPERIMENTS
], ids=[f'{n}:{a}' for n, a in EXPERIMENTS])
def test_experiment_writes_every_workdir_file(name, arg, tmp_path, fake_mnist_dir,
                                              monkeypatch, caplog):
  config = _tiny(load_experiment(name, arg), fake_mnist_dir)
  workdir = str(tmp_path / 'run')
  terminal = FakeTerminal()  # on a terminal: a live bar, the log lines above it
  monkeypatch.setattr('sys.stderr', terminal)
  handler = logging.StreamHandler(terminal)
  caplog.set_level('INFO')
  logging.getLogger().addHandler(handler)
  try:
    final = train.train_and_evaluate(config, workdir)
  finally:
    logging.getLogger().removeHandler(handler)
  evals = list(range(0, 5, config.train.eval_every_steps))
  lines = segments(terminal.getvalue())
  assert any('4/4' in line for line in lines)  # the bar
  for logged in ['step 2/4', 'step 4/4'] + [f'eval at step {s}:' for s in evals[1:]]:
    (line,) = [line for line in lines if logged in line]  # one line each, not in the bar's
    assert line.startswith(logged.split()[0]) and '|' not in line, line

  saved = json.load(open(os.path.join(workdir, 'config.json')))
  assert saved['model']['latent_dim'] == config.model.latent_dim
  info = json.load(open(os.path.join(workdir, 'run.json')))
  assert {'python', 'jax', 'jaxlib', 'flax', 'optax', 'devices', 'seed'} <= set(info)
  records = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
  train_records = [r for r in records if r['split'] == 'train']
  eval_records = [r for r in records if r['split'] == 'eval']
  assert [r['step'] for r in train_records] == [2, 4]
  assert [r['step'] for r in eval_records] == evals
  assert all(TRAIN_KEYS <= set(r) for r in train_records)
  assert all(EVAL_KEYS <= set(r) for r in eval_records)
  (events_file,) = glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))
  events = read_events(events_file)
  tags = scalar_tags(events)
  latents = range(config.model.latent_dim)
  assert {f'eval/unit_activity/{i}' for i in latents} <= set(tags)
  assert 'eval/active_units' in tags and 'train/loss' in tags
  assert not any(t.startswith(('eval/iw_samples', 'eval/disentanglement_sample_divisor'))
                 for t in tags)  # settings, not metrics
  assert [s for s, _ in tags['eval/recon']] == evals
  session = hparams_data(events)['_hparams_/session_start_info'].session_start_info
  assert session.hparams['objective.name'].string_value == config.objective.name
  assert session.hparams['train.num_steps'].number_value == 4
  metric_tags = {m.name.tag for m in hparams_data(events)['_hparams_/experiment']
                 .experiment.metric_infos}
  assert {'eval/recon', 'eval/active_units'} <= metric_tags <= set(tags)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']

  images = sorted(os.listdir(os.path.join(workdir, 'images')))
  expected = {'reconstructions', 'traversals', 'interpolations', 'scatter'}
  if config.objective.name != 'ae':
    expected |= {'samples', 'rate_distortion'}
  if config.model.conditional:
    expected.add('conditional')
  finals = ['traversals_4.gif'] + (['factors_0.png'] if config.data.name == 'dsprites' else [])
  assert images == sorted([f'{k}_{s}.png' for k in expected for s in evals] + finals)
  gif = Image.open(os.path.join(workdir, 'images', 'traversals_4.gif'))
  assert gif.n_frames > 1
  for name in images:
    with Image.open(os.path.join(workdir, 'images', name)) as picture:
      assert min(picture.size) >= 56, name  # every cell is enlarged to be readable
  recon = Image.open(os.path.join(workdir, 'images', 'reconstructions_4.png'))
  assert recon.mode == 'RGB' and min(recon.size) >= 56

  summary = json.load(open(os.path.join(workdir, 'summary.json')))
  assert summary['step'] == 4 and summary['recon'] == final['recon']
  assert 0 <= summary['active_units'] <= config.model.latent_dim
  if config.objective.name == 'ae':
    assert not any(t.startswith('eval/kl_per_dim') for t in tags)
    assert summary['kl'] is None and summary['nelbo'] is None
    assert all(r['kl'] is None for r in records)
    assert 'nll_iw' not in summary
  else:
    assert summary['nelbo'] == pytest.approx(summary['recon'] + summary['kl'], rel=1e-5)
    for i in latents:  # per-latent KL at every evaluation
      assert [s for s, _ in tags[f'eval/kl_per_dim/{i}']] == evals
      assert tags[f'eval/kl_per_dim/{i}'][-1][1] == pytest.approx(summary['kl_per_dim'][i],
                                                                  rel=1e-5, abs=1e-6)
    assert 'eval/nll_iw' in metric_tags
    assert summary['kl'] >= 0 and summary['recon'] > 0
    # The importance-weighted bound is tighter than the ELBO (k=16 here).
    assert summary['iw_samples'] == 16 and 0 < summary['nll_iw'] <= summary['nelbo'] + 1e-3
    assert 'nll_iw' not in eval_records[0] and 'nll_iw' in eval_records[-1]
  if config.eval.disentanglement:
    for key in disentanglement.SCORE_KEYS:
      assert 0.0 <= summary[key] <= 1.0, key
      assert all(key in r for r in eval_records)
    assert summary['disentanglement_sample_divisor'] == 200
    assert eval_records[0]['disentanglement_sample_divisor'] == 200  # periodic: max(10, 200)
  if config.objective.name == 'beta_tc':
    assert all(np.isfinite(r['tc']) for r in train_records)
  if config.eval.anomaly:
    scores = np.load(os.path.join(workdir, 'anomaly_scores.npz'))
    assert scores['nll_iw'].shape == scores['labels'].shape == (64,)
    assert np.mean(scores['nll_iw']) == pytest.approx(summary['nll_iw'], rel=1e-5)
    assert summary['anomaly_classes'] == [1] and 0.0 <= summary['anomaly_auroc'] <= 1.0
    # The held-out metric is over the whole evaluation set, never a partial batch.
    assert summary['eval_examples'] == (12 if config.data.name == 'dsprites' else 64)


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
  config = load_experiment('test')
  full = str(tmp_path / 'full')
  train.train_and_evaluate(config, full)

  split = str(tmp_path / 'split')
  config.train.num_steps = 3
  train.train_and_evaluate(config, split)
  config.train.num_steps = 6  # only the run length may change on resume
  train.train_and_evaluate(config, split)

  a, b = final_state(full, config), final_state(split, config)
  assert int(a.step) == 6
  assert_same_state(a, b)
  steps_written = [(r['step'], r['split'])
                   for r in map(json.loads, open(os.path.join(split, 'metrics.jsonl')))]
  assert len(steps_written) == len(set(steps_written))  # nothing written twice
  full_records = [json.loads(l) for l in open(os.path.join(full, 'metrics.jsonl'))]
  split_records = [json.loads(l) for l in open(os.path.join(split, 'metrics.jsonl'))]
  last_eval = lambda rs: [r for r in rs if r['split'] == 'eval'][-1]
  assert last_eval(full_records)['nelbo'] == last_eval(split_records)['nelbo']


def test_resume_refuses_a_different_config(tmp_path):
  config = load_experiment('test')
  workdir = str(tmp_path / 'run')
  config.train.num_steps = 2
  train.train_and_evaluate(config, workdir)
  config.objective.beta = 8.0
  with pytest.raises(WorkdirError, match='objective.beta'):
    train.train_and_evaluate(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2']  # untouched


def test_non_finite_loss_names_the_step_and_term(tmp_path):
  config = load_experiment('test')
  config.train.learning_rate = 1e30
  config.train.checkpoint_every_steps = 100
  with pytest.raises(NonFiniteError, match=r'non-finite (loss|recon|kl) .* at step \d'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))


def test_conditional_without_labels_is_a_config_error(tmp_path, monkeypatch):
  config = load_experiment('test')
  config.model.conditional = True
  from vae_jax import data as data_lib  # pylint: disable=g-import-not-at-top
  real_load = data_lib.load

  def unlabelled(data_config):
    dataset = real_load(data_config)
    spec = dataset.spec.__class__(**{**dataset.spec.__dict__, 'num_classes': 0})
    return dataset.__class__(**{**dataset.__dict__, 'spec': spec})

  monkeypatch.setattr(data_lib, 'load', unlabelled)
  with pytest.raises(ConfigError, match='conditional'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))


def test_missing_local_data_is_a_data_error(tmp_path):
  config = load_experiment('vae')
  config.data.local_dir = str(tmp_path / 'empty')
  os.makedirs(config.data.local_dir)
  with pytest.raises(DataError, match='local_dir'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))


@pytest.mark.slow
def test_cli_trains_and_resumes(tmp_path):
  workdir = str(tmp_path / 'cli')
  out = _cli('--config=experiments/test.py', f'--workdir={workdir}',
             '--config.train.num_steps=4')
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.splitlines()[-1] == evaluate_run.results_line(workdir)  # where the results are
  summary = json.load(open(os.path.join(workdir, 'summary.json')))
  assert summary['step'] == 4
  out = _cli('--config=experiments/test.py', f'--workdir={workdir}',
             '--config.train.num_steps=6')
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'resuming' in out.stderr and 'from step 4' in out.stderr
  assert json.load(open(os.path.join(workdir, 'summary.json')))['step'] == 6
  # --mode=eval with the workdir alone re-evaluates with the run's saved config.
  os.remove(os.path.join(workdir, 'summary.json'))
  out = _cli('--mode=eval', f'--workdir={workdir}')
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.splitlines()[-1] == evaluate_run.results_line(workdir, mode='eval')
  assert json.load(open(os.path.join(workdir, 'summary.json')))['step'] == 6
  # A different config on resume is refused in one line, and the run is kept.
  before = sorted(os.listdir(os.path.join(workdir, 'checkpoints')))
  out = _cli('--config=experiments/test.py', f'--workdir={workdir}',
             '--config.model.latent_dim=5')
  assert out.returncode == 2 and 'model.latent_dim' in out.stderr
  assert 'Traceback' not in out.stderr
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == before


BAD_FLAGS = [
    ('--config.model.latent_dim=0', 'config.model.latent_dim'),
    ('--config.objective.beta=-1', 'config.objective.beta'),
    ('--config.objective.name=bogus', 'config.objective.name'),
    ('--config.model.no_such_key=3', 'config.model.no_such_key'),
    ('--config.model.latent_dim=abc', 'config.model.latent_dim'),
    ('--config.data.name=no_such_dataset', 'no_such_dataset'),
]


@pytest.mark.parametrize('flag,key', BAD_FLAGS)
def test_bad_config_is_one_line_and_exit_2(flag, key, tmp_path):
  workdir = tmp_path / 'never'
  out = _cli('--config=experiments/test.py', f'--workdir={workdir}', flag)
  assert out.returncode == 2
  errors = [l for l in out.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1 and key in errors[0], out.stderr[-2000:]
  assert 'Traceback' not in out.stderr
  assert not workdir.exists()  # rejected before anything was written or compiled


@pytest.mark.slow
def test_saved_config_from_an_older_version_still_loads(tmp_path):
  config = load_experiment('test')
  workdir = str(tmp_path / 'run')
  config.train.num_steps = 2
  train.train_and_evaluate(config, workdir)
  path = os.path.join(workdir, 'config.json')
  saved = json.load(open(path))
  del saved['train']['grad_clip_norm']  # as if written before that field existed
  json.dump(saved, open(path, 'w'))
  restored = saved_config.load(workdir)
  assert restored.train.grad_clip_norm == 0.0 and restored.model.hidden_dims == (16,)
  # No error: the new field has its default.
  assert saved_config.check_config_matches(workdir, restored) == {}
  restored.eval.anomaly = True  # an evaluation setting may change (and is reported)
  assert saved_config.check_config_matches(workdir, restored) == {
      'eval.anomaly': [False, True]}
  restored.train.grad_clip_norm = 1.0
  with pytest.raises(WorkdirError, match='train.grad_clip_norm'):
    saved_config.check_config_matches(workdir, restored)
