"""Training from Python: vae_jax.config, vae_jax.fit and vae_jax.sweep."""

import json
import os

import pytest

import vae_jax
from vae_jax.errors import ConfigError

pytestmark = pytest.mark.e2e  # makes runs


def test_config_overrides_are_checked():
  config = vae_jax.config('experiments/test.py', **{'train.num_steps': 4, 'seed': 3})
  assert (config.train.num_steps, config.seed) == (4, 3)
  with pytest.raises(ConfigError, match='unknown config key train.bogus'):
    vae_jax.config('experiments/test.py', **{'train.bogus': 1})
  with pytest.raises(ConfigError, match='config.model.latent_dim'):
    vae_jax.config('experiments/test.py', **{'model.latent_dim': 0})


def test_fit_trains_resumes_and_equals_the_command_line(tmp_path):
  workdir = str(tmp_path / 'run')
  summary = vae_jax.fit('experiments/test.py', workdir, **{'train.num_steps': 4})
  with open(os.path.join(workdir, 'summary.json')) as f:
    written = json.load(f)
  assert written['step'] == 4 and summary['nelbo'] == pytest.approx(written['nelbo'])
  # The same call on a finished run changes nothing; more steps resume it.
  vae_jax.fit(vae_jax.config('experiments/test.py'), workdir, **{'train.num_steps': 6})
  assert vae_jax.load(workdir).step == 6


def test_sweep_trains_every_member_with_the_overrides(tmp_path):
  sweep_dir = str(tmp_path / 'sweep')
  workdirs = vae_jax.sweep('experiments/sweeps/init_choice.py:fc,tiny', sweep_dir,
                           shard=(0, 2), **{'train.num_steps': 2,
                                            'eval.disentanglement': False})
  # The first of two shards: the three flax members, with the overrides.
  assert [os.path.basename(w) for w in workdirs] == [f'init=flax_seed={s}' for s in range(3)]
  assert all(vae_jax.load(w).step == 2 for w in workdirs)
  assert not os.path.exists(os.path.join(sweep_dir, 'results.md'))  # half of it trained
  # Axes of one's own instead of the file's.
  other = vae_jax.sweep('experiments/sweeps/init_choice.py:fc,tiny', str(tmp_path / 'other'),
                        axes={'objective.beta': [1.0, 2.0]},
                        **{'train.num_steps': 2, 'eval.disentanglement': False})
  assert [os.path.basename(w) for w in other] == ['beta=1', 'beta=2']
  assert os.path.isfile(os.path.join(tmp_path, 'other', 'results.md'))
