"""A catalogue of faults: bad config, data, workdir, checkpoints, metrics files,
signals, divergence, resources, and the eval/sweep/report modes. Each case
checks the error (type or exit code, one line) and that nothing was lost."""

import hashlib
import gc
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from conftest import REPO, cli, final_state, load_experiment, state_digest, tree_digest
from vae_jax import evaluate_run, report, steps, train
from vae_jax import config_files
from vae_jax import train_state
from vae_jax.evaluation import evaluators
from vae_jax.run import checkpoints
from vae_jax.run import files
from vae_jax.run import guards
from vae_jax.sweeps import runner as sweep_runner
from vae_jax.run import workdir as workdir_lib
from vae_jax.run import metrics_log
from vae_jax.run import saved_config
from vae_jax.errors import (ConfigError, NonFiniteError, ResourceError, SignalInterrupt,
                            UserError, WorkdirError)


def _kept(workdir: str) -> dict:
  """What a refused command must leave as it was: checkpoints, metrics, summary."""
  digests = tree_digest(os.path.join(workdir, 'checkpoints'))
  for name in ('metrics.jsonl', 'summary.json'):
    path = os.path.join(workdir, name)
    if os.path.exists(path):
      digests[name] = hashlib.sha256(open(path, 'rb').read()).hexdigest()
  return digests


def _records(workdir: str) -> list:
  return [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]


def _keys(workdir: str) -> list:
  return [(r['step'], r['split']) for r in _records(workdir)]


def _corrupt(directory: str) -> None:
  for root, _, names in os.walk(directory):
    for name in names:
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'\x00garbage')


def _one_line(out: subprocess.CompletedProcess, code: int, *words: str) -> str:
  """The one 'error:' line of a CLI run that exited with `code` (no traceback)."""
  assert out.returncode == code, out.stderr[-3000:]
  assert 'Traceback' not in out.stderr, out.stderr[-3000:]
  errors = [l for l in out.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1, out.stderr[-3000:]
  for word in words:
    assert word in errors[0], errors[0]
  return errors[0]


@pytest.fixture(scope='module')
def finished(tmp_path_factory) -> str:
  """A finished run of experiments/test.py (checkpoints at 3 and 6); copy before use."""
  workdir = str(tmp_path_factory.mktemp('finished') / 'run')
  train.train_and_evaluate(load_experiment('test'), workdir)
  return workdir


@pytest.fixture
def run_copy(finished, tmp_path) -> str:
  workdir = str(tmp_path / 'run')
  shutil.copytree(finished, workdir)
  return workdir


# --- config -----------------------------------------------------------------

BAD_VALUES = [
    ('seed', 1099511627776, 'seed'),
    ('seed', 2**31, 'seed'),
    ('seed', -1, 'seed'),
    ('data.batch_size', 0, 'data.batch_size'),
    ('data.eval_size', 0, 'data.eval_size'),
    ('model.latent_dim', 0, 'model.latent_dim'),
    ('objective.name', 'bogus', 'objective.name'),
    ('objective.beta', -1.0, 'objective.beta'),
    ('train.num_steps', -1, 'train.num_steps'),
    ('train.warmup_steps', -5, 'train.warmup_steps'),
    ('train.grad_clip_norm', -1.0, 'train.grad_clip_norm'),
    ('eval.iw_batch_size', 0, 'eval.iw_batch_size'),
    ('data.binarize', 'sometimes', 'data.binarize'),
]


@pytest.mark.e2e
@pytest.mark.parametrize('key,value,named', BAD_VALUES, ids=[f'{k}={v}' for k, v, _ in BAD_VALUES])
def test_bad_config_value_is_refused_before_the_workdir_is_made(key, value, named, tmp_path):
  config = load_experiment('test')
  section, _, leaf = key.rpartition('.')
  (config[section] if section else config)[leaf] = value
  workdir = tmp_path / 'never'
  with pytest.raises(ConfigError, match=named.replace('.', r'\.')):
    train.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


@pytest.mark.e2e
@pytest.mark.parametrize('batch_size', [737_257, 1_000_000])
def test_batch_larger_than_the_dataset_is_refused_before_anything_is_written(
    batch_size, tmp_path):
  config = load_experiment('test')  # dSprites: 737,280 images, 24 held out
  config.data.batch_size = batch_size
  workdir = tmp_path / 'never'
  with pytest.raises(ConfigError, match='data.batch_size.*larger than the 737256 training'):
    train.train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


@pytest.mark.e2e
def test_batch_larger_than_local_idx_data_is_refused(fake_mnist_dir, tmp_path):
  config = load_experiment('vae')
  config.data.local_dir = fake_mnist_dir
  config.data.batch_size = 512  # 256 training images
  with pytest.raises(UserError, match='fewer than config.data.batch_size=512'):
    train.train_and_evaluate(config, str(tmp_path / 'never'))
  assert not (tmp_path / 'never').exists()


CONFIG_FILES = [
    ('def get_config():\n  pass\n', 'returned None'),
    ('def get_config():\n  return {"a": 1}\n', 'returned a dict'),
    ('CONFIG = 1\n', 'has no get_config()'),
    ('get_config = 3\n', 'has no get_config()'),
]


@pytest.mark.parametrize('text,message', CONFIG_FILES, ids=['none', 'dict', 'absent', 'not-callable'])
def test_config_file_without_a_config_dict_is_named(text, message, tmp_path):
  path = tmp_path / 'exp.py'
  path.write_text(text)
  with pytest.raises(ConfigError, match=message):
    config_files.load_config(str(path))


def test_missing_config_file_is_a_config_error(tmp_path):
  with pytest.raises(ConfigError, match='not found'):
    config_files.load_config(str(tmp_path / 'nothing.py'))


# --- workdir ----------------------------------------------------------------

@pytest.mark.e2e
def test_workdir_that_is_a_regular_file_is_refused(tmp_path):
  path = tmp_path / 'file'
  path.write_text('not a directory')
  with pytest.raises(WorkdirError, match='cannot use --workdir'):
    train.train_and_evaluate(load_experiment('test'), str(path))
  assert path.read_text() == 'not a directory'


@pytest.mark.e2e
def test_workdir_under_a_regular_file_is_refused(tmp_path):
  path = tmp_path / 'file'
  path.write_text('x')
  with pytest.raises(WorkdirError, match='cannot use --workdir'):
    train.train_and_evaluate(load_experiment('test'), str(path / 'run'))


@pytest.mark.e2e
def test_unwritable_workdir_is_refused(tmp_path, monkeypatch):
  def refuse(*args, **kwargs):
    raise PermissionError(13, 'Permission denied')
  monkeypatch.setattr(workdir_lib.os, 'makedirs', refuse)
  with pytest.raises(WorkdirError, match='Permission denied'):
    train.train_and_evaluate(load_experiment('test'), str(tmp_path / 'run'))


@pytest.mark.e2e
def test_workdir_in_use_is_refused_naming_the_owner(run_copy):
  before = _kept(run_copy)
  lock = workdir_lib.WorkdirLock(run_copy)
  try:
    with pytest.raises(WorkdirError, match=f'in use by another process \\(pid {os.getpid()}\\)'):
      train.train_and_evaluate(load_experiment('test'), run_copy)
  finally:
    lock.release()
  assert _kept(run_copy) == before
  train.train_and_evaluate(load_experiment('test'), run_copy)  # free again


@pytest.mark.e2e
@pytest.mark.parametrize('text', ['{"model": ', '', '[1, 2]', 'null', '\x00\x01'],
                         ids=['torn', 'empty', 'list', 'null', 'binary'])
def test_unreadable_config_json_is_refused_and_the_run_kept(text, run_copy):
  path = os.path.join(run_copy, 'config.json')
  with open(path, 'w') as f:
    f.write(text)
  before = _kept(run_copy)
  with pytest.raises(WorkdirError, match='config.json'):
    train.train_and_evaluate(load_experiment('test'), run_copy)
  with pytest.raises(WorkdirError, match='config.json'):
    saved_config.load(run_copy)
  assert _kept(run_copy) == before


# --- checkpoints that do not fit the config -----------------------------------

MISFITS = [('model.latent_dim', 5), ('model.hidden_dims', (16, 16)),
           ('model.decoder_hidden_dims', (8,))]


@pytest.mark.e2e
@pytest.mark.parametrize('key,value', MISFITS, ids=[k for k, _ in MISFITS])
def test_without_config_json_a_checkpoint_of_another_model_is_refused(key, value, run_copy):
  os.remove(os.path.join(run_copy, 'config.json'))
  before = _kept(run_copy)
  config = load_experiment('test')
  section, leaf = key.split('.')
  config[section][leaf] = value
  config.train.num_steps = 9
  with pytest.raises(WorkdirError, match='holds another model'):
    train.train_and_evaluate(config, run_copy)
  assert _kept(run_copy) == before
  assert not os.path.exists(os.path.join(run_copy, 'checkpoints_unreadable'))


@pytest.mark.e2e
def test_without_config_json_the_same_config_resumes(run_copy):
  os.remove(os.path.join(run_copy, 'config.json'))
  config = load_experiment('test')
  config.train.num_steps = 9
  train.train_and_evaluate(config, run_copy)
  assert json.load(open(os.path.join(run_copy, 'summary.json')))['step'] == 9


@pytest.mark.e2e
def test_eval_of_another_model_is_refused(run_copy):
  os.remove(os.path.join(run_copy, 'config.json'))
  before = _kept(run_copy)
  config = load_experiment('test')
  config.model.latent_dim = 5
  with pytest.raises(WorkdirError, match='holds another model'):
    evaluate_run.evaluate_workdir(config, run_copy)
  assert _kept(run_copy) == before


@pytest.mark.e2e
def test_every_checkpoint_unreadable_restarts_with_a_warning_and_consistent_metrics(
    run_copy, caplog):
  for step in ('3', '6'):
    _corrupt(os.path.join(run_copy, 'checkpoints', step))
  with caplog.at_level('WARNING'):
    train.train_and_evaluate(load_experiment('test'), run_copy)
  assert 'starts again from step 0' in caplog.text
  keys = _keys(run_copy)
  # Rewritten from step 0: the step-0 evaluation (it follows the first train record).
  assert len(keys) == len(set(keys)) and keys[:2] == [(2, 'train'), (0, 'eval')]
  assert sorted(os.listdir(os.path.join(run_copy, 'checkpoints_unreadable'))) != []


@pytest.mark.e2e
def test_eval_mode_moves_nothing_and_falls_back_to_an_older_checkpoint(run_copy):
  _corrupt(os.path.join(run_copy, 'checkpoints', '6'))
  before = _kept(run_copy)
  metrics_before = open(os.path.join(run_copy, 'metrics.jsonl')).read()
  evaluate_run.evaluate_workdir(load_experiment('test'), run_copy)
  assert tree_digest(os.path.join(run_copy, 'checkpoints')) == {
      k: v for k, v in before.items() if k not in ('metrics.jsonl', 'summary.json')}
  assert not os.path.exists(os.path.join(run_copy, 'checkpoints_unreadable'))
  assert json.load(open(os.path.join(run_copy, 'summary.json')))['step'] == 3
  assert open(os.path.join(run_copy, 'metrics.jsonl')).read() == metrics_before


@pytest.mark.e2e
def test_eval_mode_with_every_checkpoint_unreadable_is_refused(run_copy):
  for step in ('3', '6'):
    _corrupt(os.path.join(run_copy, 'checkpoints', step))
  before = _kept(run_copy)
  with pytest.raises(WorkdirError, match='no readable checkpoint'):
    evaluate_run.evaluate_workdir(load_experiment('test'), run_copy)
  assert _kept(run_copy) == before


@pytest.mark.e2e
def test_eval_mode_without_checkpoints_is_refused(tmp_path):
  with pytest.raises(WorkdirError, match='no checkpoints'):
    evaluate_run.evaluate_workdir(load_experiment('test'), str(tmp_path))


# --- metrics.jsonl and summary.json -------------------------------------------

@pytest.mark.e2e
def test_torn_last_metrics_line_is_dropped_with_a_warning(run_copy, caplog):
  path = os.path.join(run_copy, 'metrics.jsonl')
  records = _records(run_copy)
  with open(path, 'a') as f:
    f.write('{"step": 6, "split": "tr')
  with caplog.at_level('WARNING'):
    assert metrics_log.read_metrics(run_copy) == records
  assert 'written only in part' in caplog.text
  config = load_experiment('test')
  config.train.num_steps = 9
  train.train_and_evaluate(config, run_copy)
  keys = _keys(run_copy)
  assert len(keys) == len(set(keys)) and keys[-1] == (9, 'eval')


@pytest.mark.e2e
@pytest.mark.parametrize('line', ['garbage\n', '[1, 2]\n', '{"no_step": 1}\n'],
                         ids=['text', 'list', 'no-step'])
def test_bad_metrics_line_in_the_middle_is_refused(line, run_copy):
  path = os.path.join(run_copy, 'metrics.jsonl')
  lines = open(path).readlines()
  with open(path, 'w') as f:
    f.writelines(lines[:2] + [line] + lines[2:])
  before = _kept(run_copy)
  with pytest.raises(WorkdirError, match='line 3 is not a metrics record'):
    train.train_and_evaluate(load_experiment('test'), run_copy)
  assert _kept(run_copy) == before


@pytest.mark.e2e
def test_blank_metrics_lines_are_ignored(run_copy):
  path = os.path.join(run_copy, 'metrics.jsonl')
  records = _records(run_copy)
  with open(path, 'a') as f:
    f.write('\n\n')
  assert metrics_log.read_metrics(run_copy) == records


def test_metrics_and_summary_are_strict_json(tmp_path):
  writer = metrics_log.MetricWriter(str(tmp_path))
  writer.write(1, 'eval', {'nelbo': float('nan'), 'kl': float('inf'), 'recon': 1.5,
                           'kl_per_dim': [float('-inf'), 2.0]})
  writer.close()
  line = open(tmp_path / 'metrics.jsonl').read()
  assert 'NaN' not in line and 'Infinity' not in line
  record = json.loads(line, parse_constant=lambda c: pytest.fail(f'bare {c}'))
  assert record['nelbo'] is None and record['kl'] is None and record['recon'] == 1.5
  assert record['kl_per_dim'] == [None, 2.0]
  workdir_lib.write_json(str(tmp_path / 'summary.json'), {'nll_iw': float('nan')})
  assert json.load(open(tmp_path / 'summary.json')) == {'nll_iw': None}


@pytest.mark.e2e
def test_finished_run_resumed_redoes_only_the_missing_summary(run_copy):
  os.remove(os.path.join(run_copy, 'summary.json'))
  records = _records(run_copy)
  train.train_and_evaluate(load_experiment('test'), run_copy)
  assert _records(run_copy) == records  # nothing trained or evaluated twice
  assert json.load(open(os.path.join(run_copy, 'summary.json')))['step'] == 6


@pytest.mark.e2e
def test_finished_run_with_a_garbage_summary_is_rewritten(run_copy):
  with open(os.path.join(run_copy, 'summary.json'), 'w') as f:
    f.write('{"step": ')
  train.train_and_evaluate(load_experiment('test'), run_copy)
  assert json.load(open(os.path.join(run_copy, 'summary.json')))['step'] == 6


def _fail_eval_at(monkeypatch, failing_step: int) -> None:
  real = evaluate_run.evaluate_and_write

  def evaluate(run, state, step, writer, **kwargs):
    if step == failing_step:
      raise RuntimeError('killed during the evaluation')
    return real(run, state, step, writer, **kwargs)
  monkeypatch.setattr(evaluate_run, 'evaluate_and_write', evaluate)


@pytest.mark.e2e
def test_final_checkpoint_is_saved_before_the_final_evaluation(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  _fail_eval_at(monkeypatch, 6)
  with pytest.raises(RuntimeError, match='killed'):
    train.train_and_evaluate(load_experiment('test'), workdir)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['3', '6']
  monkeypatch.undo()
  train_records = [r for r in _records(workdir) if r['split'] == 'train']
  train.train_and_evaluate(load_experiment('test'), workdir)  # evaluates only
  assert [r for r in _records(workdir) if r['split'] == 'train'] == train_records
  keys = _keys(workdir)
  assert len(keys) == len(set(keys)) and keys[-1] == (6, 'eval')
  assert json.load(open(os.path.join(workdir, 'summary.json')))['step'] == 6
  assert os.path.exists(os.path.join(workdir, 'images', 'traversals_6.gif'))


@pytest.mark.e2e
def test_a_stop_between_checkpoint_and_evaluation_redoes_the_evaluation(tmp_path,
                                                                          monkeypatch):
  workdir = str(tmp_path / 'run')
  _fail_eval_at(monkeypatch, 3)
  with pytest.raises(RuntimeError, match='killed'):
    train.train_and_evaluate(load_experiment('test'), workdir)
  monkeypatch.undo()
  train.train_and_evaluate(load_experiment('test'), workdir)
  evals = [s for s, split in _keys(workdir) if split == 'eval']
  assert evals == [0, 3, 6]


# --- stops outside the training loop, whole files, another model's tree -----------

def _main_thread_only() -> None:
  if threading.current_thread() is not threading.main_thread():
    pytest.skip('signal handlers can be set only in the main thread')


def test_a_signal_in_a_held_block_stops_at_its_end():
  _main_thread_only()
  before = signal.getsignal(signal.SIGTERM)
  reached = []
  with guards.StopAtOnce():
    with pytest.raises(SignalInterrupt) as stopped:
      with guards.signals_held():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler has run by now: it only noted the signal
        reached.append(True)
    assert reached == [True]
    assert (stopped.value.signum, stopped.value.exit_code) == (signal.SIGTERM, 143)
    with pytest.raises(SignalInterrupt) as stopped:  # outside a held block: at once
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(5)
      reached.append(False)
    assert reached == [True] and stopped.value.exit_code == 130
  assert signal.getsignal(signal.SIGTERM) == before


def test_a_held_block_that_raises_still_stops():
  _main_thread_only()
  with guards.StopAtOnce():
    with pytest.raises(SignalInterrupt):
      with guards.signals_held():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        raise ValueError('an unreadable checkpoint')


def test_a_stop_swallowed_where_it_landed_is_raised_at_the_next_check():
  # As when the handler runs inside a garbage-collection callback, which prints
  # the exception and carries on: the evaluation loops check between batches.
  _main_thread_only()
  with guards.StopAtOnce():
    guards.stop_if_signalled()  # nothing received: no stop
    try:
      os.kill(os.getpid(), signal.SIGTERM)
      time.sleep(5)
    except SignalInterrupt:
      pass  # swallowed
    with pytest.raises(SignalInterrupt) as stopped:
      guards.stop_if_signalled()
    assert stopped.value.exit_code == 143
  guards.stop_if_signalled()  # the guard's scope has ended


def test_a_stop_landing_in_a_gc_callback_prints_no_traceback(monkeypatch):
  """Python hands an exception it cannot propagate (from a GC callback, as JAX's,
  or a __del__) to sys.unraisablehook, which prints it with a traceback. While the
  guard is entered a SignalInterrupt does not reach that hook (it is raised again
  at the next check); any other exception still does, and outside the guard both."""
  _main_thread_only()
  printed = []
  monkeypatch.setattr(sys, 'unraisablehook', lambda u: printed.append(type(u.exc_value)))

  def collect_raising(exception):
    def callback(phase, info):  # pylint: disable=unused-argument
      if phase == 'start':
        raise exception
    gc.callbacks.append(callback)
    try:
      gc.collect()
    finally:
      gc.callbacks.remove(callback)

  with guards.StopAtOnce():
    collect_raising(SignalInterrupt(signal.SIGTERM))
    collect_raising(ValueError('a real fault'))
  collect_raising(SignalInterrupt(signal.SIGTERM))
  assert printed == [ValueError, SignalInterrupt]  # the hook is restored on exit


def test_atomic_file_is_whole_or_untouched(tmp_path):
  path = str(tmp_path / 'summary.json')
  with files.atomic(path) as tmp, open(tmp, 'w') as f:
    f.write('old')
  with pytest.raises(KeyboardInterrupt):
    with files.atomic(path) as tmp, open(tmp, 'w') as f:
      f.write('half of the new')
      raise KeyboardInterrupt
  assert open(path).read() == 'old' and os.listdir(tmp_path) == ['summary.json']


def test_misfit_names_the_first_difference_parameters_first():
  tree = {('params', 'w'): np.zeros((3, 2), np.float32),
          ('opt_state', 'mu', 'w'): np.zeros((3, 2), np.float32)}
  assert checkpoints.misfit(tree, dict(tree)) is None
  wider = {k: np.zeros((3, 5), np.float32) for k in tree}
  assert checkpoints.misfit(tree, wider) == (
      'params.w is stored as float32[3, 2], the config needs float32[3, 5]')
  assert checkpoints.misfit(tree, {('params', 'w'): np.zeros((3, 2), np.int32),
                                   ('opt_state', 'mu', 'w'): tree[('opt_state', 'mu', 'w')]}
                            ) == 'params.w is stored as float32[3, 2], the config needs int32[3, 2]'
  more = {**tree, ('params', 'b'): np.zeros(2), ('opt_state', 'mu', 'b'): np.zeros(2)}
  assert checkpoints.misfit(tree, more) == 'the stored tree lacks params.b and 1 more'
  assert checkpoints.misfit(more, tree) == (
      'the stored tree has an unexpected params.b and 1 more')


# --- divergence -----------------------------------------------------------------

def _assert_finite_checkpoints(workdir: str, config) -> list:
  ckpt = checkpoints.Checkpointer(workdir, read_only=True)
  saved = ckpt.all_steps()
  from vae_jax.run import build as runs  # pylint: disable=g-import-not-at-top
  template = train_state.init_state(runs.build_run(config, workdir).spec, config.seed)
  for step in saved:
    state = ckpt.restore(step, template)
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(state.params))
  ckpt.close()
  return saved


@pytest.mark.e2e
@pytest.mark.parametrize('log_every', [1, 100])
def test_a_diverged_state_is_never_checkpointed(log_every, tmp_path):
  config = load_experiment('test')
  config.train.learning_rate = 1e6
  config.train.log_every_steps = log_every
  config.train.checkpoint_every_steps = 1
  workdir = str(tmp_path / 'run')
  with pytest.raises(NonFiniteError, match=r'non-finite .* at step (\d)') as error:
    train.train_and_evaluate(config, workdir)
  message = str(error.value)
  assert 'new --workdir' in message and 'may not change on resume' in message
  bad_step = int(message.split(' at step ')[1].split()[0])
  saved = _assert_finite_checkpoints(workdir, config)
  assert all(s < bad_step for s in saved)
  assert all(np.isfinite(r['loss']) for r in _records(workdir) if r['split'] == 'train')


@pytest.mark.e2e
def test_divergence_in_a_sweep_names_the_member(tmp_path):
  base = load_experiment('test')
  base.train.checkpoint_every_steps = 1
  axes = {'train.learning_rate': [1e-3, 1e6]}
  with pytest.raises(NonFiniteError, match='in learning_rate=1e\\+06'):
    sweep_runner.run_sweep(base, axes, str(tmp_path / 'sweep'))
  for name in os.listdir(tmp_path / 'sweep'):
    if os.path.isdir(tmp_path / 'sweep' / name):
      config = load_experiment('test')
      config.train.checkpoint_every_steps = 1
      config.train.learning_rate = 1e-3 if '0.001' in name else 1e6
      _assert_finite_checkpoints(str(tmp_path / 'sweep' / name), config)


# --- resources ------------------------------------------------------------------

def _runtime_error(text: str) -> Exception:
  return jax.errors.JaxRuntimeError(text)


@pytest.mark.e2e
@pytest.mark.parametrize('where', ['train_steps', 'evaluate'])
def test_out_of_memory_names_the_settings_to_lower(where, tmp_path, monkeypatch):
  def exhausted(*args, **kwargs):
    raise _runtime_error('RESOURCE_EXHAUSTED: Out of memory while trying to allocate 9.9GiB')
  target = steps if where == 'train_steps' else evaluators
  monkeypatch.setattr(target, where, exhausted)
  with pytest.raises(ResourceError, match='data.batch_size .*eval.iw_chunk_size.*'
                     'eval.iw_batch_size'):
    train.train_and_evaluate(load_experiment('test'), str(tmp_path / 'run'))


@pytest.mark.e2e
def test_out_of_memory_in_eval_mode_names_the_settings(run_copy, monkeypatch):
  before = _kept(run_copy)

  def exhausted(*args, **kwargs):
    raise _runtime_error('RESOURCE_EXHAUSTED: Out of memory')
  monkeypatch.setattr(evaluators, 'evaluate', exhausted)
  with pytest.raises(ResourceError, match='eval.iw_chunk_size'):
    evaluate_run.evaluate_workdir(load_experiment('test'), run_copy)
  assert _kept(run_copy) == before


@pytest.mark.e2e
def test_other_runtime_errors_are_not_disguised(tmp_path, monkeypatch):
  def broken(*args, **kwargs):
    raise _runtime_error('INTERNAL: something else')
  monkeypatch.setattr(steps, 'train_steps', broken)
  with pytest.raises(jax.errors.JaxRuntimeError, match='INTERNAL'):
    train.train_and_evaluate(load_experiment('test'), str(tmp_path / 'run'))


# --- sweeps -------------------------------------------------------------------

@pytest.mark.e2e
def test_sweep_checks_every_member_before_training_any(tmp_path):
  axes = {'model.latent_dim': [3, 0]}  # two groups; the second is invalid
  with pytest.raises(ConfigError, match='model.latent_dim'):
    sweep_runner.run_sweep(load_experiment('test'), axes, str(tmp_path / 'sweep'))
  assert not (tmp_path / 'sweep').exists()


@pytest.mark.e2e
def test_sweep_with_a_member_of_another_config_trains_nothing(tmp_path):
  sweep_dir = tmp_path / 'sweep'
  other = load_experiment('test')
  other.train.num_steps = 2
  train.train_and_evaluate(other, str(sweep_dir / 'latent_dim=4'))
  other.objective.beta = 3.0
  with pytest.raises(WorkdirError, match='objective.beta'):
    sweep_runner.run_sweep(other, {'model.latent_dim': [3, 4]}, str(sweep_dir))
  assert not (sweep_dir / 'latent_dim=3').exists()


@pytest.mark.e2e
def test_sweep_axis_value_of_the_wrong_type_is_a_config_error(tmp_path):
  with pytest.raises(ConfigError, match='does not fit the field'):
    sweep_runner.run_sweep(load_experiment('test'), {'model.latent_dim': ['three']},
                    str(tmp_path / 'sweep'))


# --- report -------------------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.parametrize('name,text', [('summary.json', '{"step": '),
                                       ('summary.json', '[]'),
                                       ('config.json', None),
                                       ('config.json', 'garbage')],
                         ids=['torn-summary', 'list-summary', 'no-config', 'garbage-config'])
def test_report_of_a_damaged_run_is_one_line(name, text, run_copy, capsys):
  path = os.path.join(run_copy, name)
  if text is None:
    os.remove(path)
  else:
    with open(path, 'w') as f:
      f.write(text)
  assert report.main([run_copy]) == 2
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and name in err


@pytest.mark.e2e
def test_report_of_a_good_run_works(run_copy, capsys):
  assert report.main([run_copy]) == 0
  assert '| run |' in capsys.readouterr().out


# --- command line: exit codes, signals, locks -----------------------------------

@pytest.mark.slow
@pytest.mark.parametrize('flag,code,words', [
    ('--config.seed=1099511627776', 2, ('seed',)),
    ('--config.data.batch_size=1000000', 2, ('data.batch_size',)),
], ids=['seed-overflow', 'batch-over-dataset'])
@pytest.mark.e2e
def test_cli_bad_input_is_one_line(flag, code, words, tmp_path):
  workdir = tmp_path / 'never'
  out = cli('--config=experiments/test.py', f'--workdir={workdir}', flag)
  _one_line(out, code, *words)
  assert not workdir.exists()


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize('text', ['def get_config():\n  pass\n', 'X = 1\n'],
                         ids=['none', 'absent'])
def test_cli_broken_config_file_is_one_line(text, tmp_path):
  path = tmp_path / 'exp.py'
  path.write_text(text)
  _one_line(cli(f'--config={path}', f'--workdir={tmp_path / "never"}'), 2, 'get_config()')


@pytest.mark.e2e
def test_cli_refuses_what_is_not_an_experiment_file(tmp_path):
  never = f'--workdir={tmp_path / "never"}'
  # A sweep file outside --mode=sweep would train its base config alone.
  _one_line(cli('--config=experiments/sweeps/beta_sweep.py', never), 2,
            'is a sweep file', '--mode=sweep')
  _one_line(cli('--config=README.md', never), 2, 'not a Python file', 'experiments/vae.py')
  # Outside the repository root: where it looked, and the file it probably meant.
  out = cli('--config=experiments/test.py', never, cwd=str(tmp_path))
  line = _one_line(out, 2, 'not found', str(tmp_path / 'experiments' / 'test.py'))
  assert os.path.join(REPO, 'experiments', 'test.py') in line
  assert not (tmp_path / 'never').exists()


@pytest.mark.e2e
def test_cli_help_is_the_usage_and_exit_0():
  for flag in ('--help', '-h', '--helpfull'):
    out = cli(flag)
    assert out.returncode == 0, out.stderr[-500:]
    assert '--config=FILE[:ARG]' in out.stdout and '--mode=' in out.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_cli_workdir_that_is_a_file_is_one_line(tmp_path):
  path = tmp_path / 'file'
  path.write_text('x')
  _one_line(cli('--config=experiments/test.py', f'--workdir={path}'), 2, 'cannot use')


@pytest.mark.e2e
@pytest.mark.slow
def test_cli_garbage_config_json_is_one_line(run_copy):
  with open(os.path.join(run_copy, 'config.json'), 'w') as f:
    f.write('{')
  before = _kept(run_copy)
  _one_line(cli(f'--workdir={run_copy}'), 2, 'config.json')
  _one_line(cli('--mode=eval', f'--workdir={run_copy}'), 2, 'config.json')
  assert _kept(run_copy) == before


@pytest.mark.e2e
@pytest.mark.slow
def test_cli_deleted_config_json_with_another_model_is_refused(run_copy):
  os.remove(os.path.join(run_copy, 'config.json'))
  before = _kept(run_copy)
  out = cli('--config=experiments/test.py', f'--workdir={run_copy}',
            '--config.model.latent_dim=5')
  # The stored tree is compared with the config's before any restore starts, so
  # no Orbax thread is left to print a traceback at exit.
  _one_line(out, 2, 'another model',
            'params.decoder.Dense_0.kernel is stored as float32[3, 16], the config needs '
            'float32[5, 16]')
  assert 'Traceback' not in out.stderr and 'Event loop is closed' not in out.stderr
  assert _kept(run_copy) == before
  assert not os.path.exists(os.path.join(run_copy, 'checkpoints_unreadable'))


@pytest.mark.e2e
@pytest.mark.slow
def test_cli_divergence_exits_1_naming_the_step(tmp_path):
  workdir = str(tmp_path / 'run')
  out = cli('--config=experiments/test.py', f'--workdir={workdir}',
            '--config.train.learning_rate=1e6', '--config.train.log_every_steps=1',
            '--config.train.checkpoint_every_steps=1')
  _one_line(out, 1, 'non-finite', 'new --workdir')


@pytest.mark.e2e
@pytest.mark.slow
def test_cli_report_of_a_damaged_run_is_one_line(run_copy):
  with open(os.path.join(run_copy, 'summary.json'), 'w') as f:
    f.write('{')
  out = subprocess.run([sys.executable, '-m', 'vae_jax.report', run_copy], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
  _one_line(out, 2, 'summary.json')


_LONG = ['--config=experiments/test.py', '--config.train.num_steps=60',
         '--config.train.log_every_steps=1', '--config.train.eval_every_steps=30',
         '--config.train.checkpoint_every_steps=30']


def _start(workdir: str, flags: tuple = tuple(_LONG)) -> subprocess.Popen:
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.Popen([sys.executable, '-m', 'vae_jax.main', f'--workdir={workdir}',
                           *flags], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)


def _launch(flags: list, log_path: str) -> subprocess.Popen:
  """`python -m vae_jax.main FLAGS` in the background, stderr to `log_path` (a
  file, not a pipe: a run that logs every step would fill a pipe nobody reads)."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  with open(log_path, 'w') as log:
    return subprocess.Popen([sys.executable, '-m', 'vae_jax.main', *flags], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=log)


def _finish(proc: subprocess.Popen, log_path: str) -> subprocess.CompletedProcess:
  proc.wait(timeout=300)
  with open(log_path) as f:
    return subprocess.CompletedProcess(proc.args, proc.returncode, '', f.read())


def _wait_until(proc: subprocess.Popen, log_path: str, ready, what: str) -> None:
  """Polls `ready()` every 5 ms while `proc` runs; fails (with its log) if it ends first."""
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if ready():
      return
    time.sleep(0.005)
  proc.kill()
  pytest.fail(f'the run ended or stalled before {what}: {_finish(proc, log_path).stderr[-2000:]}')


def _trained_past(workdir: str, step: int, since: float):
  """Whether metrics.jsonl has a train record at `step` or later written after `since`
  (Unix seconds): by the process started then, inside its training loop."""
  def ready() -> bool:
    try:
      with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        lines = f.readlines()
    except OSError:
      return False
    for line in reversed(lines):
      try:
        record = json.loads(line)
      except ValueError:  # a line being written
        continue
      if record['split'] == 'train' and record['time'] >= since:
        return record['step'] >= step
    return False
  return ready


def _without_times(records: list) -> list:
  return [{k: v for k, v in r.items() if k not in ('time', 'steps_per_sec')} for r in records]


# A few dozen steps of the tiny run, a train record every step (the test waits
# for them) and checkpoints every 7 steps (odd, so stops fall between them).
_STOPS_STEPS = 150
_STOPS = ['--config=experiments/test.py', f'--config.train.num_steps={_STOPS_STEPS}',
          '--config.train.log_every_steps=1', '--config.train.checkpoint_every_steps=7',
          f'--config.train.eval_every_steps={_STOPS_STEPS}']


def _stops_config():
  config = load_experiment('test')
  config.train.num_steps = _STOPS_STEPS
  config.train.log_every_steps = 1
  config.train.checkpoint_every_steps = 7
  config.train.eval_every_steps = _STOPS_STEPS
  return config


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory) -> tuple:
  """(state digest, metrics records without times) of one uninterrupted run of _STOPS."""
  workdir = str(tmp_path_factory.mktemp('uninterrupted') / 'run')
  train.train_and_evaluate(_stops_config(), workdir)
  return state_digest(final_state(workdir, _stops_config())), _without_times(_records(workdir))


# One run stopped five times, each resumed by the same command: SIGINT on a
# checkpoint step (14), SIGTERM one step before one (20), SIGKILL right after
# one (28: while its asynchronous save may be in flight), then two of the three,
# drawn, at seeded random points later in the run.
_CHOSEN_STOPS = ((signal.SIGINT, 14), (signal.SIGTERM, 20), (signal.SIGKILL, 28))


@pytest.mark.e2e
@pytest.mark.slow
def test_signals_at_chosen_and_random_points_then_the_same_command_ends_bit_identical(
    uninterrupted, tmp_path):
  workdir, log = str(tmp_path / 'run'), str(tmp_path / 'stderr.txt')
  flags = [f'--workdir={workdir}', *_STOPS]
  rng = np.random.default_rng(20261203)
  signums = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
  random_stops = zip(rng.permutation(signums)[:2],
                     sorted(rng.choice(np.arange(40, _STOPS_STEPS - 40), 2, replace=False)))
  stopped = None
  for signum, point in [*_CHOSEN_STOPS, *random_stops]:
    signum = signal.Signals(signum)
    since = time.time()
    proc = _launch(flags, log)
    _wait_until(proc, log, _trained_past(workdir, point, since), f'step {point}')
    proc.send_signal(signum)
    out = _finish(proc, log)
    if stopped is not None:  # the previous stop's checkpoint was resumed
      assert f'from step {stopped}' in out.stderr, out.stderr[-2000:]
    if signum == signal.SIGKILL:
      assert out.returncode == -signal.SIGKILL
      stopped = None
      continue
    assert out.returncode == 128 + signum and 'Traceback' not in out.stderr, out.stderr[-2000:]
    saved = [l for l in out.stderr.splitlines() if 'saved a checkpoint at step' in l]
    assert len(saved) == 1 and signum.name in saved[0], out.stderr[-2000:]
    stopped = int(re.search(r'saved a checkpoint at step (\d+)', saved[0]).group(1))
    assert point <= stopped < _STOPS_STEPS
    assert str(stopped) in os.listdir(os.path.join(workdir, 'checkpoints'))
  out = _finish(_launch(flags, log), log)
  assert out.returncode == 0, out.stderr[-2000:]
  digest, records = uninterrupted
  assert state_digest(final_state(workdir, _stops_config())) == digest
  assert _without_times(_records(workdir)) == records


# Evaluations long enough to land a signal in: the disentanglement scores at
# every evaluation (1/10 of the protocol) and a k = 500 bound at the end.
_EVALS = ['--config=experiments/test.py', '--config.train.num_steps=8',
          '--config.train.log_every_steps=2', '--config.train.eval_every_steps=4',
          '--config.train.checkpoint_every_steps=4']
_SLOW_EVAL = ['--config.eval.disentanglement=True', '--config.eval.disentanglement_divisor=10',
              '--config.eval.iw_samples=500']
_QUICK_EVAL = ['--config.eval.disentanglement=False', '--config.eval.iw_samples=8']


def _stop_within_an_evaluation(flags: list, log: str, workdir: str, step: int, signum,
                               what: str) -> None:
  """Launches, signals a moment after the train record of `step` (its evaluation then
  runs), and checks the stop: quick, one line naming the evaluation, the checkpoint
  of `step` on disk, exit 128 + signal."""
  since = time.time()
  proc = _launch(flags, log)
  _wait_until(proc, log, _trained_past(workdir, step, since), f'step {step}')
  time.sleep(0.5)  # into the evaluation
  signalled = time.time()
  proc.send_signal(signum)
  out = _finish(proc, log)
  assert time.time() - signalled < 15, 'the stop waited for the evaluation'
  _one_line(out, 128 + signum, f'stopped by {signal.Signals(signum).name} during {what}',
            f'the checkpoint at step {step} is saved', 'run the same command to resume')
  assert str(step) in os.listdir(os.path.join(workdir, 'checkpoints'))


@pytest.mark.e2e
@pytest.mark.slow
def test_a_signal_during_each_evaluation_stops_it_and_the_resumed_run_ends_the_same(tmp_path):
  # The step-0, a periodic and the final evaluation, each stopped by a signal; every
  # stop resumed by the same command. Settings that keep the trained function
  # (eval.*) may change on resume: the last resume evaluates quickly, as the reference.
  workdir, log = str(tmp_path / 'run'), str(tmp_path / 'stderr.txt')
  flags = [f'--workdir={workdir}', *_EVALS]
  _stop_within_an_evaluation(flags + _SLOW_EVAL, log, workdir, 2, signal.SIGTERM,
                             'the step-0 evaluation')
  _stop_within_an_evaluation(flags + _SLOW_EVAL, log, workdir, 4, signal.SIGINT,
                             'the evaluation at step 4')
  _stop_within_an_evaluation(flags + _SLOW_EVAL, log, workdir, 8, signal.SIGTERM,
                             'the final evaluation')
  out = _finish(_launch(flags + _QUICK_EVAL, log), log)
  assert out.returncode == 0, out.stderr[-2000:]
  reference = str(tmp_path / 'reference')
  out = cli(f'--workdir={reference}', *_EVALS, *_QUICK_EVAL)
  assert out.returncode == 0, out.stderr[-2000:]
  config = load_experiment('test')
  config.train.num_steps = 8
  assert state_digest(final_state(workdir, config)) == state_digest(
      final_state(reference, config))
  train = lambda w: [r for r in _without_times(_records(w)) if r['split'] == 'train']
  assert train(workdir) == train(reference)
  assert sorted(r['step'] for r in _records(workdir) if r['split'] == 'eval') == [0, 4, 8]
  summary = lambda w: json.load(open(os.path.join(w, 'summary.json')))
  assert summary(workdir) == summary(reference)


def _score_data(directory: str) -> str:
  """MNIST-format IDX files of 32 random 64×64 test images (the dSprites model's shape)."""
  from vae_jax.data import idx  # pylint: disable=g-import-not-at-top
  os.makedirs(directory)
  images = np.random.default_rng(0).integers(0, 256, (32, 64, 64), dtype=np.uint8)
  idx.write_idx(os.path.join(directory, 't10k-images-idx3-ubyte.gz'), images)
  idx.write_idx(os.path.join(directory, 't10k-labels-idx1-ubyte.gz'),
                np.zeros(32, np.uint8))
  return directory


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize('mode', ['eval', 'score'])
def test_signal_during_eval_or_score_stops_at_once_and_leaves_the_run_whole(
    mode, run_copy, tmp_path):
  flags = [f'--mode={mode}', f'--workdir={run_copy}', '--config.eval.iw_samples=500']
  if mode == 'score':
    flags.append(f'--score_data={_score_data(str(tmp_path / "other"))}')
  started = 'evaluating the checkpoint at step' if mode == 'eval' else 'scoring 32 images'
  log = str(tmp_path / 'stderr.txt')
  before = tree_digest(run_copy)
  rng = np.random.default_rng(7)
  for signum in (signal.SIGINT, signal.SIGTERM):
    proc = _launch(flags, log)
    _wait_until(proc, log, lambda: started in open(log).read(), f'"{started}"')
    time.sleep(rng.uniform(0.0, 0.5))  # seconds into the evaluation or scoring
    proc.send_signal(signum)
    out = _finish(proc, log)
    _one_line(out, 128 + signum, f'stopped by {signal.Signals(signum).name} during '
              f'--mode={mode}', 'no file is left half-written')
    after = tree_digest(run_copy)
    assert not [p for p in after if p.endswith('.tmp')]
    # Kept: checkpoints, metrics.jsonl, summary.json and nothing new under scores/.
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert all(p.startswith(('images/', 'events.')) or p == '.lock' for p in changed), changed
  out = _finish(_launch(flags, log), log)  # the same command, uninterrupted
  assert out.returncode == 0, out.stderr[-2000:]
  if mode == 'eval':
    assert json.load(open(os.path.join(run_copy, 'summary.json')))['iw_samples'] == 500
  else:
    assert json.load(open(os.path.join(run_copy, 'scores', 'other.json')))['examples'] == 32




def _wait_for_train_records(workdir: str, proc: subprocess.Popen, count: int) -> None:
  path = os.path.join(workdir, 'metrics.jsonl')
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(path) and sum('"train"' in l for l in open(path)) >= count:
      return
    time.sleep(0.01)
  pytest.fail('the run ended before it could be signalled')


@pytest.mark.e2e
@pytest.mark.slow
def test_second_process_on_one_workdir_exits_2_naming_the_first(tmp_path):
  workdir = str(tmp_path / 'run')
  endless = [f if 'num_steps' not in f else '--config.train.num_steps=1000000' for f in _LONG]
  proc = _start(workdir, tuple(endless))
  try:
    _wait_for_train_records(workdir, proc, 1)
    out = cli(f'--workdir={workdir}', *endless)
    _one_line(out, 2, f'pid {proc.pid}')
  finally:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=240)
  assert proc.returncode == 143
