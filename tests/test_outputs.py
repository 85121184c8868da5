"""What a researcher reads: the terminal (progress bar and log lines), the
closing lines, the TensorBoard event file, the sweep's plot helpers."""

import io
import logging

import numpy as np
import pytest
import tqdm
from absl import logging as absl_logging

from conftest import FakeTerminal, hparams_data, read_events, scalar_tags, segments
from vae_jax import evaluate_run, score
from vae_jax import terminal as terminal_lib
from vae_jax.pictures import eval_pictures
from vae_jax.pictures import plots
from vae_jax.sweeps import runner as sweep_runner
from vae_jax.pictures import sweep_plots
from vae_jax.run import metrics_log


@pytest.fixture
def terminal(monkeypatch):
  """A fake terminal, a root StreamHandler and absl's handler writing to it, INFO
  records passed. (The test sets sys.stderr: pytest's capture resets it after
  fixture set-up.)"""
  fake = FakeTerminal()
  root = logging.getLogger()
  handler = logging.StreamHandler(fake)
  handler.setFormatter(logging.Formatter('LOG %(message)s'))
  absl_handler = absl_logging.get_absl_handler()
  monkeypatch.setattr(absl_handler.python_handler, 'stream', fake)
  level = root.level
  root.setLevel(logging.INFO)  # setLevel, not an attribute: it clears the loggers' caches
  root.addHandler(handler)
  root.addHandler(absl_handler)
  yield fake, handler, absl_handler
  root.removeHandler(handler)
  root.removeHandler(absl_handler)
  root.setLevel(level)


def test_log_lines_start_on_their_own_line_above_the_bar(terminal, monkeypatch):
  fake, handler, absl_handler = terminal
  monkeypatch.setattr('sys.stderr', fake)
  with terminal_lib.progress_bar(total=10, unit='step') as bar:
    assert not bar.disable  # a live bar on the (fake) terminal
    bar.update(3)
    absl_logging.info('eval at step 3: nelbo 1.0')
    bar.update(3)
  parts = segments(fake.getvalue())
  # Each record (root handler 'LOG ...', absl's 'I.... eval ...') is a line of its own:
  # no segment holds both a bar ('3/10') and a log message.
  logged = [p for p in parts if 'eval at step 3' in p]
  assert len(logged) == 2 and all('/10' not in p for p in logged)
  assert any(p.startswith('LOG eval at step 3') for p in logged)
  assert any(p.startswith('I') and p.endswith('eval at step 3: nelbo 1.0') for p in logged)
  assert any('6/10' in p for p in parts)  # the bar is drawn again below them
  assert handler.stream is fake and absl_handler.python_handler.stream is fake
  import sys  # pylint: disable=g-import-not-at-top
  assert sys.stderr is fake  # restored


def test_without_the_redirection_a_log_line_lands_in_the_bar(terminal):
  # The failure the redirection prevents (so the test above can fail).
  fake, _, _ = terminal
  bar = tqdm.tqdm(total=10, file=fake)
  bar.update(3)
  bar.refresh()
  logging.getLogger('x').info('eval at step 3')
  bar.close()
  assert any('3/10' in p and 'LOG eval at step 3' in p for p in segments(fake.getvalue()))


def test_no_terminal_no_bar_and_nothing_redirected(monkeypatch):
  plain = io.StringIO()
  monkeypatch.setattr('sys.stderr', plain)
  with terminal_lib.progress_bar(total=4) as bar:
    import sys  # pylint: disable=g-import-not-at-top
    assert bar.disable and sys.stderr is plain
    bar.update(4)
  assert plain.getvalue() == ''


def test_results_lines(tmp_path, monkeypatch):
  # With TensorBoard installed the line names the command that shows the curves;
  # without it, it does not send the user there.
  real_find_spec = evaluate_run.importlib.util.find_spec
  for installed in (True, False):
    monkeypatch.setattr(evaluate_run.importlib.util, 'find_spec', lambda name: (
        (object() if installed else None) if name == 'tensorboard' else real_find_spec(name)))
    assert evaluate_run.results_line('runs/x') == (
        'results: runs/x/summary.json; images in runs/x/images/; curves in '
        'runs/x/metrics.jsonl' + (' and TensorBoard (tensorboard --logdir runs/x)'
                                  if installed else ''))
  monkeypatch.undo()
  assert evaluate_run.results_line('runs/x', mode='eval') == (
      'results: runs/x/summary.json; images in runs/x/images/')
  assert sweep_runner.results_line('runs/s') == (
      'results: runs/s/results.md (and results.csv, plots *.png beside it); members in '
      'runs/s/<member>/')
  assert score.results_line('runs/x', 'mnist') == (
      'results: runs/x/scores/mnist.json (per-example scores: runs/x/scores/mnist.npz)')
  idx_dir = tmp_path / 'my_idx'
  idx_dir.mkdir()
  assert score.results_line('runs/x', f'{idx_dir}/').startswith(
      'results: runs/x/scores/my_idx.json')


# --- TensorBoard ---------------------------------------------------------------

def test_metric_writer_tensorboard_tags(tmp_path):
  writer = metrics_log.MetricWriter(str(tmp_path))
  writer.write(0, 'eval', {'nelbo': 9.0, 'kl_per_dim': [0.5, 0.0, 2.0],
                           'unit_activity': [0.3, 0.001, 1.2], 'active_units': 2,
                           'iw_samples': 16, 'disentanglement_sample_divisor': 10,
                           'anomaly_classes': [1], 'aggregate_variance': [1.0, 1.0, 1.0]})
  writer.hparams({'objective.name': 'beta', 'objective.beta': 4.0, 'seed': 1,
                  'model.conv_channels': [32, 64], 'data.local_dir': None,
                  'train.grad_clip_norm': False}, {'nelbo': 9.0, 'iw_samples': 16})
  writer.close()
  (path,) = tmp_path.glob('events.out.tfevents.*')
  events = read_events(str(path))
  tags = scalar_tags(events)
  assert tags == {'eval/nelbo': [(0, 9.0)], 'eval/active_units': [(0, 2.0)],
                  **{f'eval/kl_per_dim/{i}': [(0, v)] for i, v in enumerate([0.5, 0.0, 2.0])},
                  **{f'eval/unit_activity/{i}': [(0, pytest.approx(v))]
                     for i, v in enumerate([0.3, 0.001, 1.2])}}
  hparams = hparams_data(events)
  assert set(hparams) == {'_hparams_/experiment', '_hparams_/session_start_info',
                          '_hparams_/session_end_info'}
  start = hparams['_hparams_/session_start_info'].session_start_info.hparams
  assert start['objective.name'].string_value == 'beta'
  assert start['objective.beta'].number_value == 4.0 and start['seed'].number_value == 1
  assert start['model.conv_channels'].string_value == '[32, 64]'
  assert start['train.grad_clip_norm'].bool_value is False
  assert 'data.local_dir' not in start  # None: no value to show
  experiment = hparams['_hparams_/experiment'].experiment
  assert [m.name.tag for m in experiment.metric_infos] == ['eval/nelbo']


# --- sweep plots and the run's rate–distortion curve -----------------------------

def test_natural_key_orders_numbers_as_numbers():
  assert sorted(['10', '2', '20', '50', '0.5'], key=sweep_plots.natural_key) == [
      '0.5', '2', '10', '20', '50']
  assert sorted(['mlp', '1e-3', 'conv', '3'], key=sweep_plots.natural_key) == [
      '1e-3', '3', 'conv', 'mlp']
  lines = [('10', 'b'), ('2', 'b'), ('2', 'a')]
  assert sorted(lines, key=sweep_plots.natural_key) == [('2', 'a'), ('2', 'b'), ('10', 'b')]


def test_rate_distortion_cells_in_numeric_order_with_seed_statistics():
  records = [{'objective.beta': beta, 'seed': seed, 'kl': beta + seed, 'recon': 100.0 - beta}
             for beta in (10.0, 2.0, 20.0) for seed in (0, 1)]
  records.append({'objective.beta': 50.0, 'seed': 0, 'kl': None, 'recon': 1.0})
  cells = sweep_plots.rate_distortion_cells(records, ['objective.beta'])
  assert list(cells) == [('2',), ('10',), ('20',)]
  np.testing.assert_array_equal(cells[('10',)][0], [10.0, 11.0])
  np.testing.assert_array_equal(cells[('10',)][1], [90.0, 90.0])
  stats = sweep_plots.seed_statistics(records, 'objective.beta', 'kl', [])
  assert stats[()][0] == [2.0, 10.0, 20.0]


def test_rate_distortion_history_starts_at_step_0():
  records = [{'step': 0, 'split': 'eval', 'kl': 0.1, 'recon': 500.0},
             {'step': 2, 'split': 'train', 'kl': 3.0, 'recon': 300.0},
             {'step': 3, 'split': 'eval', 'kl': 4.0, 'recon': 250.0},
             {'step': 6, 'split': 'eval', 'kl': 5.0, 'recon': 200.0}]
  assert [r['step'] for r in eval_pictures.rate_distortion_history(records, 6)] == [0, 3]
  assert eval_pictures.rate_distortion_history(records, 0) == []
  ae = [{'step': 0, 'split': 'eval', 'kl': None, 'recon': 500.0}]
  assert eval_pictures.rate_distortion_history(ae, 3) == []


def test_uncrowded_keeps_the_last_label_and_spaced_ones():
  xy = np.array([[0.0, 0.0], [0.5, 0.5], [0.52, 0.5], [0.9, 0.9], [0.91, 0.9]])
  assert plots.uncrowded(xy, 0.05) == [True, False, True, False, True]  # later ones win
  assert plots.uncrowded(xy, 0.001) == [True] * 5
