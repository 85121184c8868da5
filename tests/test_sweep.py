"""Sweeps: a vmapped population equals its members trained alone; the sweep
directory holds per-member workdirs, the results table and the plots."""

import copy
import csv
import json
import os
import textwrap

import jax
import numpy as np
import pytest

from conftest import cli, final_state, load_experiment, tiny_beta_sweep_base
from vae_jax import data as data_lib
from vae_jax import configs, report, steps, train
from vae_jax import train_state
from vae_jax.sweeps import plan as sweep_plan
from vae_jax.sweeps import runner as sweep_runner
from vae_jax.errors import ConfigError, WorkdirError

# (β, seed, learning rate) of the members: every vmapped hyperparameter kind.
MEMBERS = [(1.0, 0, 1e-3), (4.0, 0, 1e-3), (4.0, 1, 3e-3), (16.0, 2, 5e-4)]
NUM_STEPS = 5


def _member_config(base, beta, seed, lr):
  config = copy.deepcopy(base)
  config.objective.name = 'beta'
  config.objective.beta, config.seed, config.train.learning_rate = beta, seed, lr
  return config


@pytest.fixture(scope='module')
def trained_alone():
  """(spec, dataset, member configs, hparams, each member's state after NUM_STEPS alone)."""
  base = load_experiment('test')
  dataset = data_lib.load(base.data)
  member_configs = [_member_config(base, *m) for m in MEMBERS]
  spec = train_state.make_spec(member_configs[0], dataset.spec)
  hparams = [train_state.make_hparams(c, dataset.num_train) for c in member_configs]
  alone = []
  for config, h in zip(member_configs, hparams):
    state = train_state.init_state(spec, config.seed)
    for step in range(NUM_STEPS):
      indices = dataset.train_indices(config.seed, step, base.data.batch_size)
      state, _ = steps.train_step(state, dataset.arrays, indices, h, spec=spec)
    alone.append(state)
  # The members really differ (the comparisons would be vacuous otherwise).
  first, last = (jax.tree.leaves(s.params)[0] for s in (alone[0], alone[-1]))
  assert not np.allclose(first, last)
  return spec, dataset, member_configs, hparams, alone


def _assert_members_equal_alone(population, alone):
  for i, state in enumerate(alone):
    member = train_state.member(population, i)
    assert int(member.step) == NUM_STEPS
    for a, b in zip(jax.tree.leaves(member.params), jax.tree.leaves(state.params)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def _population_indices(dataset, member_configs, step):
  batch = member_configs[0].data.batch_size
  return np.stack([dataset.train_indices(c.seed, step, batch) for c in member_configs])


def test_population_step_equals_each_member_trained_alone(trained_alone):
  spec, dataset, member_configs, hparams, alone = trained_alone
  population = train_state.stack([train_state.init_state(spec, c.seed) for c in member_configs])
  for step in range(NUM_STEPS):
    population, metrics = steps.population_train_steps(
        population, dataset.arrays, _population_indices(dataset, member_configs, step)[None],
        train_state.stack(hparams), spec=spec)
  assert metrics['loss'].shape == (1, len(MEMBERS))
  _assert_members_equal_alone(population, alone)


@pytest.mark.parametrize('loop_members', [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=['vmap', 'loop'])
def test_population_train_steps_equal_each_member_trained_alone(trained_alone, loop_members):
  # All NUM_STEPS steps in one dispatch, the members vmapped or looped over.
  spec, dataset, member_configs, hparams, alone = trained_alone
  population = train_state.stack([train_state.init_state(spec, c.seed) for c in member_configs])
  indices = np.stack([_population_indices(dataset, member_configs, step)
                      for step in range(NUM_STEPS)])
  population, metrics = steps.population_train_steps(
      population, dataset.arrays, indices, train_state.stack(hparams), spec=spec,
      loop_members=loop_members)
  assert metrics['loss'].shape == (NUM_STEPS, len(MEMBERS))
  _assert_members_equal_alone(population, alone)


def test_loop_members_auto_loops_dense_models_on_cpu(trained_alone):
  spec = trained_alone[0]
  assert spec.model.architecture == 'mlp'
  assert steps.loop_members('auto', spec) == (jax.default_backend() == 'cpu')
  assert steps.loop_members('loop', spec) and not steps.loop_members('vmap', spec)
  config = load_experiment('test')
  config.train.population = 'looped'
  with pytest.raises(ConfigError, match=r"train.population.*\('auto', 'vmap', 'loop'\)"):
    configs.validate(config)


def _tiny_base():
  return tiny_beta_sweep_base(checkpoint_every_steps=2)


AXES = {'objective.beta': [1.0, 4.0], 'model.latent_dim': [2, 3]}


def test_members_and_groups():
  members = sweep_plan.members(_tiny_base(), AXES)
  assert [name for name, _, _ in members] == [
      'beta=1_latent_dim=2', 'beta=1_latent_dim=3', 'beta=4_latent_dim=2',
      'beta=4_latent_dim=3']
  groups = sweep_plan.groups(members)  # latent_dim changes shapes: one group per size
  assert [[name for name, _, _ in g] for g in groups] == [
      ['beta=1_latent_dim=2', 'beta=4_latent_dim=2'],
      ['beta=1_latent_dim=3', 'beta=4_latent_dim=3']]
  with pytest.raises(ConfigError, match='objective.bta'):
    sweep_plan.members(_tiny_base(), {'objective.bta': [1.0]})
  with pytest.raises(ConfigError, match='non-empty list'):
    sweep_plan.members(_tiny_base(), {'objective.beta': []})


@pytest.mark.e2e
@pytest.mark.slow
def test_sweep_writes_member_workdirs_table_and_plots(tmp_path, caplog):
  base, sweep_dir = _tiny_base(), str(tmp_path / 'sweep')
  with caplog.at_level('INFO'):
    workdirs = sweep_runner.run_sweep(base, AXES, sweep_dir)
  assert len(workdirs) == 4
  # Every log line of a member's training and evaluation names the member.
  names = [os.path.basename(w) for w in workdirs]
  messages = [r.getMessage() for r in caplog.records]
  for marker in ('eval at step', 'step 4/4'):
    lines = [m for m in messages if marker in m]
    assert sorted(lines) == sorted(
        [line for line in lines if any(line.startswith(f'[{n}] ') for n in names)])
    assert {line.split(']')[0][1:] for line in lines} == set(names)
  assert sum(m.startswith(f'[{names[0]}] eval at step') for m in messages) == 2  # 0 and 4
  for workdir in workdirs:  # every member's workdir is a complete run's
    for name in ('config.json', 'run.json', 'metrics.jsonl', 'summary.json', 'checkpoints',
                 'images'):
      assert os.path.exists(os.path.join(workdir, name)), (workdir, name)
  # A member equals the single run with its settings (same files, same numbers).
  member_config = copy.deepcopy(base)
  member_config.objective.beta, member_config.model.latent_dim = 4.0, 3
  single_dir = str(tmp_path / 'single')
  single = train.train_and_evaluate(member_config, single_dir)
  member_dir = os.path.join(sweep_dir, 'beta=4_latent_dim=3')
  member = json.load(open(os.path.join(member_dir, 'summary.json')))
  assert member['step'] == 4
  np.testing.assert_allclose(member['nelbo'], single['nelbo'], rtol=1e-4)
  np.testing.assert_allclose(member['nll_iw'], single['nll_iw'], rtol=1e-4)
  for a, b in zip(jax.tree.leaves(final_state(member_dir, member_config)),
                  jax.tree.leaves(final_state(single_dir, member_config))):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
  # A member's workdir loads as a model like any run's.
  import vae_jax  # pylint: disable=g-import-not-at-top
  model = vae_jax.load(member_dir)
  assert model.step == 4 and model.latent_dim == 3
  assert model.sample(2).shape == (2, *model.image_shape)

  rows = list(csv.reader(open(os.path.join(sweep_dir, 'results.csv'))))
  assert rows[0][:4] == ['run', 'model.latent_dim', 'objective.name', 'objective.beta']
  assert [r[0] for r in rows[1:]] == [os.path.basename(w) for w in workdirs]
  assert float(rows[4][rows[0].index('nelbo')]) == pytest.approx(member['nelbo'], abs=0.01)
  table = open(os.path.join(sweep_dir, 'results.md')).read().splitlines()
  assert table[0].startswith('all rows: objective.name = beta, data.name = dsprites, ')
  assert 'step = 4' in table[0] and table[1] == ''
  assert table[2].startswith('| run | model.latent_dim | objective.beta | nelbo |')
  for plot in ('metrics_vs_beta.png', 'metrics_vs_latent_dim.png', 'rate_distortion.png'):
    assert os.path.getsize(os.path.join(sweep_dir, plot)) > 1000
  plan = json.load(open(os.path.join(sweep_dir, 'sweep.json')))
  assert [m['group'] for m in plan['members']] == [0, 0, 1, 1]

  # The report command builds the same table from the workdirs.
  headers, report_rows = report.table_rows(workdirs)
  assert headers[:2] == ['run', 'model.latent_dim'] and report_rows[3][1] == '3'

  # Re-running resumes every member at its last step (nothing trains again).
  before = open(os.path.join(member_dir, 'metrics.jsonl')).read()
  sweep_runner.run_sweep(base, AXES, sweep_dir)
  assert open(os.path.join(member_dir, 'metrics.jsonl')).read() == before
  with pytest.raises(WorkdirError, match='resume it with the same sweep file'):
    sweep_runner.run_sweep(base, {'objective.beta': [1.0, 2.0]}, sweep_dir)


@pytest.mark.e2e
@pytest.mark.slow
def test_resume_after_members_stopped_at_different_steps(tmp_path):
  """A kill between members' checkpoint saves: all resume from the common step."""
  base, sweep_dir = _tiny_base(), str(tmp_path / 'sweep')
  axes = {'objective.beta': [1.0, 4.0]}
  short = copy.deepcopy(base)
  short.train.num_steps = 2
  sweep_runner.run_sweep(short, axes, sweep_dir)
  sweep_runner.run_sweep(base, axes, sweep_dir)
  member_dir = os.path.join(sweep_dir, 'beta=1')
  reference = final_state(member_dir, base)
  # beta=1 loses its step-4 checkpoint: both members redo steps 2..4.
  os.rename(os.path.join(member_dir, 'checkpoints', '4'), str(tmp_path / 'gone'))
  os.remove(os.path.join(member_dir, 'summary.json'))
  sweep_runner.run_sweep(base, axes, sweep_dir)
  resumed = final_state(member_dir, base)
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(reference)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert json.load(open(os.path.join(member_dir, 'summary.json')))['step'] == 4


SWEEP_FILE = '''
from vae_jax import configs

def get_config():
  config = configs.make_tiny(configs.get_config())
  config.data.name = 'dsprites'
  config.train.num_steps = config.train.eval_every_steps = 2
  config.train.checkpoint_every_steps = 2
  return config

def get_sweep():
  return {'seed': [0, 1]}
'''


@pytest.mark.e2e
@pytest.mark.slow
def test_cli_sweep_and_its_errors(tmp_path):
  path = tmp_path / 'tiny_sweep.py'
  path.write_text(textwrap.dedent(SWEEP_FILE))
  out = cli('--mode=sweep', f'--config={path}', f'--workdir={tmp_path}/s')
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.splitlines()[-1] == sweep_runner.results_line(f'{tmp_path}/s')
  assert '[seed=1] eval at step 2:' in out.stderr
  assert sorted(os.listdir(tmp_path / 's')) == [
      'metrics_vs_seed.png', 'rate_distortion.png', 'results.csv', 'results.md', 'seed=0',
      'seed=1', 'sweep.json']
  out = cli('--mode=sweep', '--config=experiments/test.py', f'--workdir={tmp_path}/x')
  assert out.returncode == 2 and 'has no get_sweep()' in out.stderr
  assert 'Traceback' not in out.stderr
