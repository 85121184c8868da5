"""A sweep split into shards (--sweep_shard=I/N) trains exactly the unsharded
sweep's members, into one sweep directory, and the last shard writes its results."""

import copy
import csv
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO, cli, final_state, tiny_beta_sweep_base
from vae_jax.sweeps import plan as sweep_plan
from vae_jax.sweeps import runner as sweep_runner
from vae_jax.errors import ConfigError, WorkdirError

AXES = {'objective.beta': [1.0, 4.0], 'model.latent_dim': [2, 3]}  # 2 groups of 2


def _tiny_base():
  return tiny_beta_sweep_base(checkpoint_every_steps=4)


@pytest.mark.parametrize('text', ['3/2', '2/2', '0/0', 'a/b', '1', '-1/2', '1/2/3', 'all'])
def test_bad_shard_specs_are_config_errors(text):
  with pytest.raises(ConfigError, match=r'is not I/N with 0 <= I < N'):
    sweep_plan.parse_shard(text)


def test_shard_specs():
  assert sweep_plan.parse_shard('0/4') == (0, 4) and sweep_plan.parse_shard('3/4') == (3, 4)
  assert sweep_plan.parse_shard(' 1 / 2 ') == (1, 2) and sweep_plan.parse_shard('report') == 'report'
  assert sweep_plan.parse_shard(None) is None and sweep_plan.parse_shard('') is None


@pytest.mark.parametrize('num_seeds,count', [(2, 2), (2, 3), (3, 4), (1, 5), (9, 4)])
def test_shards_split_the_members_in_group_order(num_seeds, count):
  # seed × latent_dim: one group per latent size, seeds vmapped within it.
  axes = {'seed': list(range(num_seeds)), 'model.latent_dim': [2, 3]}
  member_groups = sweep_plan.groups(sweep_plan.members(_tiny_base(), axes))
  ordered = [name for group in member_groups for name, _, _ in group]
  shards = [sweep_plan.shard_members(member_groups, i, count) for i in range(count)]
  names = [[name for group in shard for name, _, _ in group] for shard in shards]
  # Disjoint, contiguous, in order, together every member; sizes differ by at most one.
  assert [n for shard in names for n in shard] == ordered
  sizes = [len(shard) for shard in names]
  assert max(sizes) - min(sizes) <= 1
  # A shard's members are regrouped: the vmappable ones still train together.
  for shard in shards:
    for group in shard:
      assert len({sweep_plan.group_key(config) for _, _, config in group}) == 1
    assert len({sweep_plan.group_key(g[0][2]) for g in shard}) == len(shard)


def _summary(workdir: str) -> dict:
  with open(os.path.join(workdir, 'summary.json')) as f:
    return json.load(f)


def _csv(path: str) -> list:
  with open(path) as f:
    return list(csv.reader(f))


SWEEP_FILE = """
from vae_jax import configs

def get_config():
  config = configs.make_tiny(configs.get_config())
  config.data.name = 'dsprites'
  config.objective.name = 'beta'
  config.train.num_steps = 4
  config.train.eval_every_steps = config.train.checkpoint_every_steps = 4
  return config

def get_sweep():
  return {'objective.beta': [1.0, 4.0], 'model.latent_dim': [2, 3]}
"""


@pytest.mark.e2e
@pytest.mark.slow
def test_shards_one_after_another_and_in_parallel_equal_the_unsharded_sweep(tmp_path):
  base = _tiny_base()
  whole = str(tmp_path / 'whole')
  whole_dirs = sweep_runner.run_sweep(base, AXES, whole)
  sharded = str(tmp_path / 'sharded')
  with pytest.raises(WorkdirError, match='4 of the 4 members .* have not finished'):
    sweep_runner.run_sweep(base, AXES, sharded, shard='report')
  assert not os.path.exists(sharded)
  first = sweep_runner.run_sweep(base, AXES, sharded, shard=(0, 2))
  # Shard 0 of 2 is group 0 (latent_dim 2); the results wait for the other half.
  assert [os.path.basename(w) for w in first] == ['beta=1_latent_dim=2', 'beta=4_latent_dim=2']
  assert not os.path.exists(os.path.join(sharded, 'results.csv'))
  with pytest.raises(WorkdirError, match='2 of the 4 members .* have not finished '
                     r'\(beta=1_latent_dim=3, beta=4_latent_dim=3\)'):
    sweep_runner.run_sweep(base, AXES, sharded, shard='report')
  second = sweep_runner.run_sweep(base, AXES, sharded, shard=(1, 2))
  assert [os.path.basename(w) for w in first + second] == [
      os.path.basename(w) for w in whole_dirs]
  with open(os.path.join(whole, 'sweep.json')) as a, open(
      os.path.join(sharded, 'sweep.json')) as b:
    assert json.load(a) == json.load(b)
  # Each shard trained the unsharded sweep's populations: the same numbers, exactly.
  for workdir in whole_dirs:
    member = os.path.join(sharded, os.path.basename(workdir))
    assert _summary(member) == _summary(workdir)
  config = copy.deepcopy(base)
  config.objective.beta, config.model.latent_dim = 4.0, 3
  for a, b in zip(jax.tree.leaves(final_state(os.path.join(sharded, 'beta=4_latent_dim=3'),
                                              config)),
                  jax.tree.leaves(final_state(os.path.join(whole, 'beta=4_latent_dim=3'),
                                              config))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The last shard wrote the merged table and the plots.
  assert _csv(os.path.join(sharded, 'results.csv')) == _csv(os.path.join(whole, 'results.csv'))
  for name in ('results.md', 'metrics_vs_beta.png', 'metrics_vs_latent_dim.png',
               'rate_distortion.png'):
    assert os.path.getsize(os.path.join(sharded, name)) > 0, name
  # --sweep_shard=report writes the same table again.
  os.remove(os.path.join(sharded, 'results.csv'))
  assert sweep_runner.run_sweep(base, AXES, sharded, shard='report') == []
  assert _csv(os.path.join(sharded, 'results.csv')) == _csv(os.path.join(whole, 'results.csv'))

  # Both shards at once (an array job), one group each, into one sweep directory.
  parallel_dir = str(tmp_path / 'parallel')
  path = tmp_path / 'tiny_sweep.py'
  path.write_text(SWEEP_FILE)
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  shards = [subprocess.Popen(
      [sys.executable, '-m', 'vae_jax.main', '--mode=sweep', f'--config={path}',
       f'--workdir={parallel_dir}', f'--sweep_shard={i}/2'],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(2)]
  outputs = [p.communicate(timeout=600) for p in shards]
  assert [p.returncode for p in shards] == [0, 0], [e[-2000:] for _, e in outputs]
  assert sorted(os.listdir(parallel_dir)) == sorted(os.listdir(whole))
  # The same populations, trained in other processes: equal to float tolerance.
  for workdir in whole_dirs:
    member = os.path.join(parallel_dir, os.path.basename(workdir))
    with open(os.path.join(member, 'config.json')) as a, open(
        os.path.join(workdir, 'config.json')) as b:
      assert json.load(a) == json.load(b)
    alone, together = _summary(member), _summary(workdir)
    assert alone.keys() == together.keys() and alone['step'] == 4
    for key, value in together.items():
      if isinstance(value, float):
        np.testing.assert_allclose(alone[key], value, rtol=1e-5, err_msg=key)
  rows = _csv(os.path.join(parallel_dir, 'results.csv'))
  expected = _csv(os.path.join(whole, 'results.csv'))
  assert rows[0] == expected[0] and [r[0] for r in rows] == [r[0] for r in expected]


@pytest.mark.e2e
@pytest.mark.slow
def test_cli_bad_shard_specs_are_one_line(tmp_path):
  path = tmp_path / 'tiny_sweep.py'
  path.write_text(SWEEP_FILE)
  for spec in ('3/2', '0/0', 'a/b'):
    out = cli('--mode=sweep', f'--config={path}', f'--workdir={tmp_path}/bad',
              f'--sweep_shard={spec}')
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f'error: --sweep_shard={spec} is not I/N with 0 <= I < N (e.g. --sweep_shard=0/4 '
        '... 3/4) or report'], out.stderr
  assert not os.path.exists(tmp_path / 'bad')
  out = cli('--config=experiments/test.py', f'--workdir={tmp_path}/bad', '--sweep_shard=0/2')
  assert out.returncode == 2 and out.stderr.strip().splitlines() == [
      'error: --sweep_shard=0/2 needs --mode=sweep'], out.stderr
