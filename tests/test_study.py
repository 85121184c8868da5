"""The disentanglement study: sweeps of several grids with tied values, the
study table (median and spread over seeds per method and setting) and its
plots, and the whole six-method study run end to end at CI size."""

import csv
import json
import os

import numpy as np
import pytest

from conftest import REPO, load_experiment
from vae_jax.evaluation import disentanglement
from vae_jax.pictures import eval_pictures
from vae_jax.sweeps import study
from vae_jax.sweeps import plan as sweep_plan
from vae_jax.sweeps import runner as sweep_runner
from vae_jax.errors import ConfigError

STUDY_FILE = os.path.join(REPO, 'experiments/sweeps/disentanglement_study.py')
METHODS = ['beta', 'capacity', 'factor_vae', 'dip_vae_i', 'dip_vae_ii', 'beta_tc']


def _base():
  config = load_experiment('test')
  config.train.num_steps = 2
  return config


def test_grids_with_tied_keys_name_and_set_every_member():
  axes = [{'objective.name': ['beta'], 'objective.beta': [1.0, 4.0], 'seed': [0, 1]},
          {('objective.name', 'objective.capacity_steps'): [('capacity', 7)],
           'objective.capacity_max': [5.0], 'seed': [0]},
          {'objective.name': ['dip_vae_i'],
           ('objective.lambda_od', 'objective.lambda_d'): [(1.0, 10.0), (2.0, 20.0)],
           'seed': [3]}]
  members = sweep_plan.members(_base(), axes)
  assert [name for name, _, _ in members] == [
      'beta_beta=1_seed=0', 'beta_beta=1_seed=1', 'beta_beta=4_seed=0',
      'beta_beta=4_seed=1', 'capacity_capacity_max=5_seed=0',
      'dip_vae_i_lambda_od=1_seed=3', 'dip_vae_i_lambda_od=2_seed=3']
  _, settings, config = members[-1]
  assert settings == {'objective.name': 'dip_vae_i', 'objective.lambda_od': 2.0,
                      'objective.lambda_d': 20.0, 'seed': 3}
  assert (config.objective.name, config.objective.lambda_od, config.objective.lambda_d,
          config.seed) == ('dip_vae_i', 2.0, 20.0, 3)
  assert members[4][2].objective.capacity_steps == 7
  assert members[4][2].objective.name == 'capacity'
  # One group per method: the members of a method differ only in vmapped keys.
  assert [len(g) for g in sweep_plan.groups(members)] == [4, 1, 2]
  assert sweep_plan.axis_keys(axes) == ['objective.name', 'objective.beta', 'seed',
                                   'objective.capacity_steps', 'objective.capacity_max',
                                   'objective.lambda_od', 'objective.lambda_d']


@pytest.mark.parametrize('axes, words', [
    ([{'seed': [0]}, {'seed': [0]}], "both named 'seed=0'"),
    ([{('objective.lambda_od', 'objective.lambda_d'): [(1.0,)]}], 'ties 2 keys'),
    ([{('objective.lambda_od', 'objective.bad'): [(1.0, 2.0)]}], "'objective.bad' is not"),
    ([{'seed': [0]}, {}], 'each grid must be'),
    ([], 'must return'),
])
def test_bad_grids_are_one_config_error(axes, words):
  with pytest.raises(ConfigError, match=words):
    sweep_plan.members(_base(), axes)


def test_study_file_builds_its_grid_from_the_overridden_config():
  base, _ = sweep_plan.load(f'{STUDY_FILE}:tiny')
  base.train.num_steps = 300
  _, axes = sweep_plan.load(f'{STUDY_FILE}:tiny,seeds=2', base=base)
  members = sweep_plan.members(base, axes)
  assert len(members) == 6 * 6 * 2
  assert [s['objective.name'] for _, s, _ in members[::12]] == METHODS
  capacity = [c for _, s, c in members if s['objective.name'] == 'capacity']
  assert {c.objective.capacity_steps for c in capacity} == {100}  # a third of the run
  assert {c.objective.gamma for c in capacity} == {1000.0}
  assert sorted({c.objective.capacity_max for c in capacity}) == [5, 10, 25, 50, 75, 100]
  for method, factor in (('dip_vae_i', 10.0), ('dip_vae_ii', 1.0)):
    tied = {(c.objective.lambda_od, c.objective.lambda_d)
            for _, s, c in members if s['objective.name'] == method}
    assert tied == {(v, factor * v) for v in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)}
  assert sorted({c.objective.factor_gamma for _, s, c in members
                 if s['objective.name'] == 'factor_vae'}) == [10, 20, 30, 40, 50, 100]
  assert [len(g) for g in sweep_plan.groups(members)] == [12] * 6
  assert sweep_plan.load(STUDY_FILE)[1][0]['seed'] == [0, 1, 2]  # three seeds by default
  with pytest.raises(ConfigError, match='number of seeds'):
    sweep_plan.load(f'{STUDY_FILE}:seeds=0')


def _record(method: str, run: str, value: float) -> dict:
  record = {k: value + i for i, k in enumerate(disentanglement.SCORE_KEYS)}
  return {**record, 'objective.name': method, 'run': run, 'recon': 10 * value, 'kl': None}


def test_study_table_holds_median_and_quartiles_over_seeds(tmp_path):
  rng = np.random.default_rng(0)
  records, settings, values = [], [], {}
  for beta in (1.0, 4.0):
    values[beta] = rng.uniform(size=5)
    for seed, value in enumerate(values[beta]):
      records.append(_record('beta', f'b{beta}s{seed}', value))
      settings.append({'objective.name': 'beta', 'objective.beta': beta, 'seed': seed})
  for seed in range(3):  # a method with one setting and a constant key
    records.append(_record('factor_vae', f'f{seed}', 0.5 + seed))
    settings.append({'objective.name': 'factor_vae', 'objective.gamma': 1000.0, 'seed': seed})
  paths = study.write_study(str(tmp_path), records, settings)
  assert [os.path.basename(p) for p in paths] == ['study.csv', 'study.md'] + [
      f'study_{k}.png' for k in disentanglement.SCORE_KEYS]
  rows = list(csv.DictReader(open(tmp_path / 'study.csv')))
  assert [(r['method'], r['setting'], r['seeds']) for r in rows] == [
      ('β-VAE', 'beta=1', '5'), ('β-VAE', 'beta=4', '5'), ('FactorVAE', '', '3')]
  for row, seeds in zip(rows, (values[1.0], values[4.0], 0.5 + np.arange(3))):
    for i, key in enumerate(disentanglement.SCORE_KEYS):
      q50, q25, q75 = np.percentile(seeds + i, [50, 25, 75])
      assert [float(row[f'{key}_{q}']) for q in ('median', 'q25', 'q75')] == [q50, q25, q75]
    assert float(row['recon_median']) == pytest.approx(np.median(10 * seeds))
    assert 'kl_median' not in row  # no member has it
  markdown = open(tmp_path / 'study.md').read()
  assert f'{np.median(values[4.0]):.3f} ({np.percentile(values[4.0], 25):.3f}–' in markdown
  for path in paths[2:]:
    assert os.path.getsize(path) > 5000
  # Without scores nothing is written.
  assert study.write_study(str(tmp_path / 'none'), [{'objective.name': 'beta', 'mig': None}],
                           [{'seed': 0}]) == []


def _stand_in_scores(representation_fn, source, seed, *, divisor=0):
  """Seven numbers of the member's codes of fixed images (the protocol's sklearn
  fits would take minutes for 72 evaluations): they differ between members."""
  factors = source.sample_factors(np.random.default_rng(seed), 16)
  codes = np.asarray(representation_fn(source.images(factors)), np.float64)
  return {k: float(np.tanh(codes[:, i % codes.shape[1]].mean() + 0.1 * i))
          for i, k in enumerate(disentanglement.SCORE_KEYS)}


def _first_values(axes: list, count: int) -> list:
  """The study's grids with each method's swept values cut to the first `count`."""
  return [{axis: values[:count] for axis, values in grid.items()} for grid in axes]


@pytest.mark.e2e
@pytest.mark.slow
def test_study_runs_every_method_end_to_end(tmp_path, monkeypatch):
  # All six methods, two settings each (the full 36-setting grid is checked
  # above without training), one seed, two steps of the tiny network. The
  # scores' sklearn fits and the pictures (tests/test_pictures.py) are left
  # out for time: they would take most of the run.
  monkeypatch.setattr(disentanglement, 'all_scores', _stand_in_scores)
  monkeypatch.setattr(eval_pictures, 'make_pictures', lambda *args, **kwargs: {})
  monkeypatch.setattr(eval_pictures, 'write_final_animations', lambda *args, **kwargs: None)
  base, axes = sweep_plan.load(f'{STUDY_FILE}:tiny,seeds=1')
  base.train.num_steps = base.train.eval_every_steps = base.train.log_every_steps = 2
  base.train.checkpoint_every_steps = 2
  base.train.population = 'vmap'  # one member's program per method: the fastest compile
  axes = _first_values(axes, 2)
  sweep_dir = str(tmp_path / 'study')
  workdirs = sweep_runner.run_sweep(base, axes, sweep_dir)
  assert len(workdirs) == 12
  plan = json.load(open(os.path.join(sweep_dir, 'sweep.json')))
  assert [m['group'] for m in plan['members']] == [g for g in range(6) for _ in range(2)]
  assert plan['axes'][3]['objective.lambda_od+objective.lambda_d'][1] == [2.0, 20.0]
  summaries = {os.path.basename(w): json.load(open(os.path.join(w, 'summary.json')))
               for w in workdirs}
  assert all(s['step'] == 2 for s in summaries.values())

  rows = list(csv.DictReader(open(os.path.join(sweep_dir, 'study.csv'))))
  assert [(r['objective'], r['setting']) for r in rows] == [
      ('beta', 'beta=1'), ('beta', 'beta=2'), ('capacity', 'capacity_max=5'),
      ('capacity', 'capacity_max=10'), ('factor_vae', 'factor_gamma=10'),
      ('factor_vae', 'factor_gamma=20'), ('dip_vae_i', 'lambda_od=1, lambda_d=10'),
      ('dip_vae_i', 'lambda_od=2, lambda_d=20'), ('dip_vae_ii', 'lambda_od=1, lambda_d=1'),
      ('dip_vae_ii', 'lambda_od=2, lambda_d=2'), ('beta_tc', 'beta=1'),
      ('beta_tc', 'beta=2')]
  names = [os.path.basename(w) for w in workdirs]
  assert names[:3] == ['beta_beta=1_seed=0', 'beta_beta=2_seed=0',
                       'capacity_capacity_max=5_seed=0']
  for row, name in zip(rows, names):  # one seed: each cell is one member
    assert row['seeds'] == '1' and name.startswith(row['objective'])
    for key in disentanglement.SCORE_KEYS + ('recon', 'kl'):
      value = summaries[name][key]
      assert [float(row[f'{key}_{q}']) for q in ('median', 'q25', 'q75')] == [value] * 3
  mig = {name: summaries[name]['mig'] for name in names}
  assert mig['beta_beta=1_seed=0'] == mig['beta_tc_beta=1_seed=0']  # β = 1: both the ELBO
  # C(t) above the KL: |kl − C| = C − kl, whose gradient does not depend on C_max.
  assert mig['capacity_capacity_max=5_seed=0'] == mig['capacity_capacity_max=10_seed=0']
  assert len(set(mig.values())) == len(names) - 2  # every other member differs
  for key in disentanglement.SCORE_KEYS:
    assert os.path.getsize(os.path.join(sweep_dir, f'study_{key}.png')) > 5000
  study_md = open(os.path.join(sweep_dir, 'study.md')).read().splitlines()
  # Title, blank, the constant column stated once, blank, header, rule, 12 settings.
  assert study_md[2] == 'all rows: seeds = 1' and len(study_md) == 2 + 2 + 2 + 12
  assert study_md[4].startswith('| method |') and 'seeds' not in study_md[4]
  results = list(csv.reader(open(os.path.join(sweep_dir, 'results.csv'))))
  assert [r[0] for r in results[1:]] == names
  assert not any(f.startswith('metrics_vs_') for f in os.listdir(sweep_dir))
