"""Experiment files: one loader, keyed arguments (FILE:fc,tiny), make_tiny, the rule table."""

import glob
import os
import textwrap

import pytest

from conftest import REPO, cli, load_experiment
from vae_jax import configs
from vae_jax import config_files
from vae_jax.sweeps import plan as sweep_plan
from vae_jax.run import workdir as workdir_lib
from vae_jax.errors import ConfigError

EXPERIMENT_FILES = sorted(
    os.path.relpath(path, REPO)
    for pattern in ('experiments/*.py', 'experiments/sweeps/*.py')
    for path in glob.glob(os.path.join(REPO, pattern)))
DSPRITES_FILES = ('experiments/beta_vae.py', 'experiments/beta_tcvae.py',
                  'experiments/dip_vae_i.py', 'experiments/dip_vae_ii.py',
                  'experiments/capacity_vae.py', 'experiments/factor_vae.py',
                  'experiments/sweeps/beta_sweep.py',
                  'experiments/sweeps/disentanglement_study.py')

# experiments/test.py as it was written out field by field: the base config plus these.
TEST_OVERRIDES = {
    'data.name': 'dsprites', 'data.batch_size': 8, 'data.eval_size': 24,
    'model.hidden_dims': [16], 'model.latent_dim': 3, 'train.num_steps': 6,
    'train.log_every_steps': 2, 'train.eval_every_steps': 3,
    'train.checkpoint_every_steps': 3, 'eval.batch_size': 16, 'eval.num_images': 4,
    'eval.iw_samples': 8, 'objective.discriminator_hidden_dims': [16] * 6,
}


def _flat(config) -> dict:
  return workdir_lib.flatten(workdir_lib.config_to_dict(config))


def _load(path_arg: str):
  return config_files.load_config(os.path.join(REPO, path_arg))


def _write(tmp_path, source: str) -> str:
  path = tmp_path / 'experiment.py'
  path.write_text(textwrap.dedent(source))
  return str(path)


def test_parse_arg_returns_the_switches():
  allowed = ('conv', 'fc', 'tiny')
  assert configs.parse_arg('', allowed) == set()
  assert configs.parse_arg('fc', allowed) == {'fc'}
  assert configs.parse_arg('fc,tiny', allowed) == {'fc', 'tiny'}
  assert configs.parse_arg(' tiny , fc ,', allowed) == {'fc', 'tiny'}


@pytest.mark.parametrize('arg', ['big', 'fc,big', 'FC'])
def test_parse_arg_refuses_an_unknown_switch_naming_the_allowed(arg):
  with pytest.raises(ConfigError, match=r"unknown config argument '(big|FC)'.*conv, fc, tiny"):
    configs.parse_arg(arg, ('conv', 'fc', 'tiny'))


def test_choose_picks_one_network():
  assert configs.choose(set(), ('conv', 'fc')) == 'conv'
  assert configs.choose({'fc', 'tiny'}, ('conv', 'fc')) == 'fc'
  with pytest.raises(ConfigError, match='conv and fc exclude each other'):
    configs.choose({'conv', 'fc'}, ('conv', 'fc'))


def test_test_experiment_is_the_base_config_made_tiny():
  expected = _flat(configs.get_config())
  expected.update(TEST_OVERRIDES)
  assert _flat(load_experiment('test')) == expected
  assert _flat(load_experiment('test', 'tiny')) == expected
  base = configs.get_config()
  base.data.name = 'dsprites'
  assert _flat(configs.make_tiny(base)) == expected


@pytest.mark.parametrize('path', EXPERIMENT_FILES)
def test_every_experiment_loads_and_validates(path):
  configs.validate(_load(path))
  configs.validate(_load(f'{path}:'))  # an empty argument: the defaults


@pytest.mark.parametrize('path', EXPERIMENT_FILES)
def test_tiny_shrinks_every_experiment(path):
  full, tiny = _load(path), _load(f'{path}:tiny')
  configs.validate(tiny)
  assert (tiny.data.batch_size, tiny.data.eval_size) == (8, 24)
  assert tiny.model.hidden_dims == (16,) and tiny.model.decoder_hidden_dims == ()
  assert tiny.model.latent_dim == 3
  assert tiny.objective.discriminator_hidden_dims == (16,) * 6
  assert (tiny.train.num_steps, tiny.train.log_every_steps, tiny.train.eval_every_steps,
          tiny.train.checkpoint_every_steps) == (6, 2, 3, 3)
  assert (tiny.eval.batch_size, tiny.eval.num_images, tiny.eval.iw_samples) == (16, 4, 8)
  if tiny.model.architecture == 'conv':
    assert tiny.model.conv_channels == (8, 8)
  if tiny.eval.disentanglement:
    assert tiny.eval.disentanglement_divisor == 200
  # The experiment itself is kept: data, network kind and objective.
  for key in ('data.name', 'data.exclude_classes', 'model.architecture', 'model.conditional',
              'model.likelihood', 'objective.name', 'objective.beta', 'eval.anomaly',
              'eval.disentanglement'):
    assert _flat(tiny)[key] == _flat(full)[key], key


@pytest.mark.parametrize('path', DSPRITES_FILES)
def test_dsprites_experiments_take_a_network_switch(path):
  default = 'fc' if 'sweeps' in path else 'conv'
  assert _load(path).model.architecture == {'fc': 'mlp', 'conv': 'conv'}[default]
  assert _load(f'{path}:fc').model.hidden_dims == (1200, 1200)
  assert _load(f'{path}:conv,tiny').model.architecture == 'conv'
  assert _load(f'{path}:tiny,fc').model.architecture == 'mlp'
  with pytest.raises(ConfigError, match="unknown config argument 'big'"):
    _load(f'{path}:big')


def test_capacity_ramp_spans_the_tiny_run():
  assert _load('experiments/capacity_vae.py:fc').objective.capacity_steps == 10_000
  assert _load('experiments/capacity_vae.py:tiny').objective.capacity_steps == 6


def test_loader_refuses_a_missing_file(tmp_path):
  with pytest.raises(ConfigError, match=r'^config file .*nope\.py not found'):
    config_files.load_config(f'{tmp_path}/nope.py:tiny')


def test_loader_refuses_a_file_without_get_config(tmp_path):
  path = _write(tmp_path, 'CONFIG = None\n')
  with pytest.raises(ConfigError) as error:
    config_files.load_config(path)
  assert str(error.value) == (f'{path} has no get_config(); an experiment file defines '
                              'get_config() returning a ConfigDict')


@pytest.mark.parametrize('result,what', [('None', 'None'), ('{}', 'a dict')])
def test_loader_refuses_a_get_config_without_a_config_dict(tmp_path, result, what):
  path = _write(tmp_path, f'def get_config():\n  return {result}\n')
  with pytest.raises(ConfigError, match=rf'get_config\(\) returned {what}, not a ConfigDict'):
    config_files.load_config(path)


def test_loader_refuses_an_added_key(tmp_path):
  path = _write(tmp_path, '''
      from vae_jax import configs

      def get_config():
        config = configs.get_config()
        config.train.num_step = 5  # a typo of num_steps
        return config
      ''')
  with pytest.raises(ConfigError) as error:
    config_files.load_config(path)
  assert str(error.value) == (f'unknown config key train.num_step (set in {path}); the '
                              'fields are listed in vae_jax/configs.py')


def test_sweep_load_refuses_an_added_key(tmp_path):
  path = _write(tmp_path, '''
      from vae_jax import configs

      def get_config():
        config = configs.get_config()
        config.objective.bta = 4.0
        return config

      def get_sweep():
        return {'seed': [0, 1]}
      ''')
  with pytest.raises(ConfigError, match='unknown config key objective.bta'):
    sweep_plan.load(path)
  base, axes = sweep_plan.load(os.path.join(REPO, 'experiments/sweeps/beta_sweep.py:conv,tiny'))
  assert base.model.conv_channels == (8, 8) and axes['seed'] == [0, 1, 2]


@pytest.mark.parametrize('source,words', [
    ('X = 1\n', ('has no get_config()',)),
    ('def get_config():\n  pass\n', ('get_config() returned None',)),
    ('from vae_jax import configs\n\ndef get_config():\n  config = configs.get_config()\n'
     '  config.model.hidden_dim = (8,)\n  return config\n',
     ('unknown config key model.hidden_dim', 'vae_jax/configs.py')),
], ids=['no_get_config', 'returns_none', 'added_key'])
@pytest.mark.e2e
def test_cli_refuses_a_bad_config_file_in_one_line(tmp_path, source, words):
  path = _write(tmp_path, source)
  out = cli(f'--config={path}', f'--workdir={tmp_path}/never')
  assert out.returncode == 2, out.stderr[-2000:]
  errors = [line for line in out.stderr.splitlines() if line.startswith('error:')]
  assert len(errors) == 1 and all(w in errors[0] for w in words), out.stderr[-2000:]
  assert 'get_config' in errors[0] or 'config key' in errors[0]
  assert 'Traceback' not in out.stderr
  assert not (tmp_path / 'never').exists()


def test_rules_name_config_keys_and_keep_the_objective_block_together():
  keys = set(config_files.flat_keys(configs.get_config()))
  assert all(key in keys for key, _, _ in configs.RULES)
  start = configs.RULES.index(configs.OBJECTIVE_RULES[0])
  assert configs.RULES[start:start + len(configs.OBJECTIVE_RULES)] == configs.OBJECTIVE_RULES
  assert not any(key.startswith('objective.') for key, _, _ in configs.RULES[:start])
  assert not any(key.startswith('objective.') for key, _, _ in
                 configs.RULES[start + len(configs.OBJECTIVE_RULES):])
