"""The results table built from run directories."""

import json
import os

from vae_jax import report


def _fake_run(root, name, summary, objective='beta'):
  path = os.path.join(root, name)
  os.makedirs(path)
  config = {'objective': {'name': objective, 'beta': 4.0}, 'data': {'name': 'dsprites'},
            'model': {'architecture': 'mlp'}}
  json.dump(config, open(os.path.join(path, 'config.json'), 'w'))
  json.dump(summary, open(os.path.join(path, 'summary.json'), 'w'))
  return path


def test_table_has_one_row_per_run_and_only_columns_some_run_has(tmp_path, capsys):
  a = _fake_run(tmp_path, 'a', {'step': 10, 'nelbo': 90.123, 'recon': 80.0, 'kl': 10.123,
                                'mig': 0.25})
  b = _fake_run(tmp_path, 'b', {'step': 20, 'nelbo': 95.0, 'recon': 85.0, 'kl': 10.0})
  unfinished = os.path.join(tmp_path, 'c')
  os.makedirs(unfinished)
  assert report.main([a, b, unfinished, f'--csv={tmp_path}/t.csv']) == 0
  out = capsys.readouterr()
  lines = out.out.strip().splitlines()
  assert lines[0] == '| run | objective | β | data | model | steps | nelbo | recon | kl | MIG |'
  assert lines[2] == '| a | beta | 4 | dsprites | mlp | 10 | 90.12 | 80.00 | 10.12 | 0.250 |'
  assert lines[3] == '| b | beta | 4 | dsprites | mlp | 20 | 95.00 | 85.00 | 10.00 |  |'
  assert 'c has no summary.json' in out.err
  assert open(f'{tmp_path}/t.csv').read().splitlines()[1].startswith('a,beta,4,dsprites')


def test_no_usable_run_is_an_error(tmp_path, capsys):
  assert report.main([str(tmp_path)]) == 2
  assert 'no run directory' in capsys.readouterr().err
