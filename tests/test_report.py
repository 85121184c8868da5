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
  # The settings both runs share are stated once; every header is the key itself.
  assert lines[0] == ('all rows: objective.name = beta, objective.beta = 4, '
                      'data.name = dsprites, model.architecture = mlp')
  assert lines[1] == ''
  assert lines[2] == '| run | step | nelbo | recon | kl | mig |'
  assert lines[4] == '| a | 10 | 90.12 | 80.00 | 10.12 | 0.250 |'
  assert lines[5] == '| b | 20 | 95.00 | 85.00 | 10.00 |  |'
  assert 'c has no summary.json' in out.err
  rows = open(f'{tmp_path}/t.csv').read().splitlines()  # the CSV keeps every column
  assert rows[0] == ('run,objective.name,objective.beta,data.name,model.architecture,step,'
                     'nelbo,recon,kl,mig')
  assert rows[1].startswith('a,beta,4,dsprites,mlp,10,90.12')


def test_constant_columns_are_stated_once_above_the_table():
  headers = ['run', 'seed', 'objective.beta', 'iw_samples', 'nelbo']
  rows = [['s0', '0', '4', '10', '90.00'], ['s1', '1', '4', '10', '91.00'],
          ['s2', '2', '4', '10', '90.00']]
  assert report.constant_columns(headers, rows) == [2, 3]
  assert report.markdown(headers, rows).splitlines() == [
      'all rows: objective.beta = 4, iw_samples = 10', '',
      '| run | seed | nelbo |', '|---|---|---|', '| s0 | 0 | 90.00 |', '| s1 | 1 | 91.00 |',
      '| s2 | 2 | 90.00 |']
  # One row: nothing to fold, the whole row is the table.
  assert report.constant_columns(headers, rows[:1]) == []
  assert report.markdown(headers, rows[:1]).splitlines()[0] == (
      '| run | seed | objective.beta | iw_samples | nelbo |')
  # The run column stays even when (as in a one-member sweep) the names agree.
  assert report.constant_columns(['run', 'kl'], [['x', '1'], ['x', '2']]) == []


def test_no_usable_run_is_an_error(tmp_path, capsys):
  assert report.main([str(tmp_path)]) == 2
  assert 'no run directory' in capsys.readouterr().err


def _seeded_run(root, name, seed, init, summary, nelbos):
  path = os.path.join(root, name)
  os.makedirs(path)
  json.dump({'seed': seed, 'model': {'init': init}, 'objective': {'name': 'elbo'}},
            open(os.path.join(path, 'config.json'), 'w'))
  json.dump(summary, open(os.path.join(path, 'summary.json'), 'w'))
  with open(os.path.join(path, 'metrics.jsonl'), 'w') as f:
    for step, nelbo in nelbos:  # a train record between, which --steps_to ignores
      f.write(json.dumps({'step': step, 'split': 'train', 'nelbo': 0.0}) + '\n')
      f.write(json.dumps({'step': step, 'split': 'eval', 'nelbo': nelbo}) + '\n')
  return path


def test_steps_to_a_target_and_seeds_folded_into_mean_and_sd(tmp_path, capsys):
  curve = [(0, 600.0), (250, 250.0), (500, 245.0), (750, 243.0)]
  runs = [_seeded_run(tmp_path, 'a0', 0, 'flax', {'step': 750, 'nelbo': 243.0}, curve),
          _seeded_run(tmp_path, 'a1', 1, 'flax', {'step': 750, 'nelbo': 245.0}, curve[:3]),
          _seeded_run(tmp_path, 'b0', 0, 'torch', {'step': 750, 'nelbo': 241.0}, curve),
          _seeded_run(tmp_path, 'b1', 1, 'torch', {'step': 750, 'nelbo': 242.0}, curve)]
  # The first evaluated step at or below the target; '>S' when none reached it.
  assert report.steps_to(runs[0], 'nelbo', 245.0) == 500
  assert report.steps_to(runs[0], 'nelbo', 250.0) == 250
  assert report.steps_to(runs[1], 'nelbo', 243.5) == '>500'
  assert report.steps_to(runs[0], 'kl', 1.0) is None
  assert report.main(['--over_seeds', '--steps_to=nelbo:245,243.5', *runs]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  # Every seed of both inits reached 245 at step 500: stated once above the table.
  assert lines[0] == ('all rows: seeds = 0, 1, objective.name = elbo, step = 750, '
                      'steps_to_nelbo<=245 = 500')
  assert lines[2] == '| model.init | nelbo | steps_to_nelbo<=243.5 |'
  # mean ± sample sd of 243 and 245 is 244 ± 1.414; a seed that never got there is listed.
  assert lines[4] == '| flax | 244.00 ± 1.41 | 750, >500 |'
  assert lines[5] == '| torch | 241.50 ± 0.71 | 750 |'


def test_report_help_and_bad_options(capsys):
  assert report.main(['--help']) == 0
  assert '--over_seeds' in capsys.readouterr().out
  assert report.main(['--steps_to=nelbo']) == 2
  assert 'METRIC:VALUE' in capsys.readouterr().err
  assert report.main(['--bogus']) == 2
  assert 'unknown option --bogus' in capsys.readouterr().err


def test_a_setting_is_blank_where_the_row_objective_does_not_read_it(tmp_path, capsys):
  runs = []
  for name, objective, lambda_d in (('b', 'beta', 100.0), ('d', 'dip_vae_ii', 10.0)):
    path = _fake_run(tmp_path, name, {'step': 5, 'nelbo': 90.0}, objective=objective)
    config = json.load(open(os.path.join(path, 'config.json')))
    config['objective']['lambda_d'] = lambda_d
    json.dump(config, open(os.path.join(path, 'config.json'), 'w'))
    runs.append(path)
  assert report.main(runs) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  cells = lambda line: [cell.strip() for cell in line.split('|')[1:-1]]
  rows = [dict(zip(cells(lines[2]), cells(line))) for line in lines[4:]]
  # β-VAE reads β, not λ_d; DIP-VAE-II reads λ_d, not β (its config's 4 is not shown).
  assert (rows[0]['objective.beta'], rows[0]['objective.lambda_d']) == ('4', '')
  assert (rows[1]['objective.beta'], rows[1]['objective.lambda_d']) == ('', '10')
