"""Packaging: TensorFlow is the optional `tfds` extra, and the metadata agrees.

TensorFlow and tensorflow_datasets are imported only to read a TFDS dataset
(vae_jax/data/tfds_io.py); without them such a request is one line naming the
extra, and everything else (dSprites, IDX directories) never imports them.
"""

import os
import subprocess
import sys
import textwrap
import tomllib
import types

import pytest
import yaml

from conftest import REPO, write_fake_mnist
from vae_jax.data import factors, image_arrays
from vae_jax.errors import DataError

EXTRA_HINT = "pip install 'vae_jax[tfds]'"


def _pyproject() -> dict:
  with open(os.path.join(REPO, 'pyproject.toml'), 'rb') as f:
    return tomllib.load(f)


def _names(requirements: list) -> set:
  """Distribution names of PEP 508 requirement strings (no markers, extras)."""
  names = set()
  for requirement in requirements:
    name = requirement.split(';')[0]
    for stop in '<>=![ ':
      name = name.split(stop)[0]
    names.add(name.strip().lower())
  return names


# ------------------------------------------------------------------ metadata


def test_tensorflow_is_only_in_the_tfds_extra():
  project = _pyproject()['project']
  extras = project['optional-dependencies']
  assert not {'tensorflow', 'tensorflow-cpu', 'tensorflow-datasets'} & _names(
      project['dependencies'])
  assert _names(extras['tfds']) == {'tensorflow', 'tensorflow-cpu',
                                    'tensorflow-datasets'}
  # Exactly one TensorFlow build on every platform: the markers are complements.
  markers = {r.split('<')[0].split('>')[0]: r.split(';')[1].strip()
             for r in extras['tfds'] if r.startswith('tensorflow') and ';' in r}
  assert markers == {
      'tensorflow-cpu': "sys_platform == 'linux' and platform_machine == 'x86_64'",
      'tensorflow': "sys_platform != 'linux' or platform_machine != 'x86_64'"}
  assert 'vae_jax[tfds]' in extras['test']  # CI keeps testing the TFDS paths
  assert _names(extras['tensorboard']) == {'tensorboard'}
  # The accelerator extras ask for the base jax range.
  jax_range = next(r for r in project['dependencies'] if r.startswith('jax>='))
  assert extras['cuda12'] == [jax_range.replace('jax', 'jax[cuda12]', 1)]
  assert extras['tpu'] == [jax_range.replace('jax', 'jax[tpu]', 1)]


def test_license_and_citation_agree_with_pyproject():
  project = _pyproject()['project']
  assert project['license'] == 'Apache-2.0'
  assert project['license-files'] == ['LICENSE']
  with open(os.path.join(REPO, 'LICENSE')) as f:
    license_text = f.read()
  assert 'Apache License\n                           Version 2.0, January 2004' in license_text
  assert 'END OF TERMS AND CONDITIONS' in license_text
  assert 'Copyright 2026 The vae_jax Authors' in license_text
  with open(os.path.join(REPO, 'CITATION.cff')) as f:
    citation = yaml.safe_load(f)
  assert citation['cff-version'] == '1.2.0'
  assert citation['title'] == project['name']
  assert citation['version'] == project['version']
  assert citation['license'] == project['license']
  assert citation['authors'] == [{'name': project['authors'][0]['name']}]
  assert citation['date-released'] == '2026-12-02'


# --------------------------------------------------------- TensorFlow absent


def _without(monkeypatch, module: str) -> None:
  """Makes `module` unimportable (None in sys.modules); TensorFlow stays importable."""
  if module == 'tensorflow_datasets':  # a stand-in, so no real TensorFlow is imported
    monkeypatch.setitem(sys.modules, 'tensorflow', types.ModuleType('tensorflow'))
  monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize('missing,label', [('tensorflow', 'TensorFlow'),
                                           ('tensorflow_datasets', 'tensorflow_datasets')])
def test_tfds_image_dataset_without_the_extra_is_one_line(missing, label,
                                                          monkeypatch, tmp_path):
  _without(monkeypatch, missing)
  monkeypatch.setitem(image_arrays.DEBIAN_DIRS, 'fashion_mnist', str(tmp_path))
  for name in ('mnist', 'fashion_mnist'):
    with pytest.raises(DataError) as error:
      image_arrays.load_image_arrays(name)
    message = str(error.value)
    assert message.startswith(f'TFDS dataset {name!r} needs {label}, which is not '
                              f'installed: {EXTRA_HINT}, or use --config.data.local_dir=DIR')
    assert '\n' not in message
  assert 'apt-get install dataset-fashion-mnist' in message  # the Debian way too


def test_tfds_factor_source_without_tensorflow_is_one_line(monkeypatch):
  _without(monkeypatch, 'tensorflow')
  with pytest.raises(DataError) as error:
    factors.factor_source('tfds:shapes3d')
  assert str(error.value) == (
      f"TFDS dataset 'shapes3d' needs TensorFlow, which is not installed: "
      f"{EXTRA_HINT}, or use the procedural 'dsprites' instead.")


def test_local_idx_needs_no_tensorflow(monkeypatch, fake_mnist_dir):
  monkeypatch.setitem(sys.modules, 'tensorflow', None)
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
  data = image_arrays.load_image_arrays('mnist', local_dir=fake_mnist_dir)
  assert data.train_images.shape == (256, 28, 28, 1)
  assert data.source == fake_mnist_dir


@pytest.mark.e2e
@pytest.mark.slow
def test_training_and_local_data_never_import_tensorflow(tmp_path):
  # TensorFlow is importable here (the test extra installs it): had anything
  # imported it, even under try/except, it would be in sys.modules.
  idx_dir = write_fake_mnist(str(tmp_path / 'idx'), num_train=16, num_test=8)
  script = textwrap.dedent('''
      import sys
      import vae_jax
      from vae_jax import configs, train
      from vae_jax import config_files  # pylint: disable=g-import-not-at-top
      from vae_jax.data import image_arrays

      workdir, idx_dir = sys.argv[1:]
      train.train_and_evaluate(config_files.load_config('experiments/test.py'), workdir)
      print('samples', vae_jax.load(workdir).sample(2, seed=0).shape)
      print('idx', image_arrays.load_image_arrays('mnist', local_dir=idx_dir).train_images.shape)
      debian = image_arrays.DEBIAN_DIRS['fashion_mnist']
      if image_arrays._has_idx_files(debian):  # Debian's Fashion-MNIST, where installed
        print('debian', image_arrays.load_image_arrays('fashion_mnist').source)
      print('loaded', sorted(m for m in sys.modules if m.startswith('tensorflow')))
  ''')
  out = subprocess.run(
      [sys.executable, '-c', script, str(tmp_path / 'run'), idx_dir], cwd=REPO,
      capture_output=True, text=True, timeout=600,
      env=dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=REPO))
  assert out.returncode == 0, out.stderr[-3000:]
  lines = out.stdout.splitlines()
  assert 'samples (2, 64, 64, 1)' in lines
  assert 'idx (16, 28, 28, 1)' in lines
  assert 'loaded []' in lines, out.stdout


@pytest.mark.e2e
def test_a_sweep_plan_imports_no_jax():
  # Reading a sweep file, its members, groups, shards and record is pure Python:
  # it runs where JAX is not installed (a login node) and starts fast.
  script = textwrap.dedent('''
      import sys
      from vae_jax.sweeps import plan
      base, axes = plan.load('experiments/sweeps/disentanglement_study.py')
      groups = plan.groups(plan.members(base, axes))
      shard = plan.shard_members(groups, 0, 4)
      record = plan.record(axes, groups)
      print('members', sum(len(g) for g in groups), 'shard', sum(len(g) for g in shard))
      print('loaded', sorted(m for m in sys.modules if m.split('.')[0] in
                             ('jax', 'jaxlib', 'flax', 'optax', 'orbax')))
  ''')
  out = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'loaded []' in out.stdout.splitlines(), out.stdout
  members, shard = int(out.stdout.split()[1]), int(out.stdout.split()[3])
  assert members > 4 and members // 4 <= shard <= -(-members // 4), out.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_cli_tfds_dataset_without_tensorflow_is_one_line(tmp_path):
  # As if neither were installed: `import tensorflow` raises ImportError.
  script = textwrap.dedent('''
      import runpy
      import sys
      sys.modules['tensorflow'] = sys.modules['tensorflow_datasets'] = None
      sys.argv = ['vae_jax.main'] + sys.argv[1:]
      runpy.run_module('vae_jax.main', run_name='__main__', alter_sys=True)
  ''')
  workdir = tmp_path / 'never'
  out = subprocess.run(
      [sys.executable, '-c', script, '--config=experiments/test.py',
       '--config.data.name=mnist', f'--workdir={workdir}'], cwd=REPO,
      capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=REPO))
  assert out.returncode == 2, out.stderr[-3000:]
  errors = [l for l in out.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1, out.stderr[-3000:]
  assert errors[0].startswith(f"error: TFDS dataset 'mnist' needs TensorFlow, which "
                              f"is not installed: {EXTRA_HINT}")
  assert 'Traceback' not in out.stderr
  assert not workdir.exists()


@pytest.mark.e2e
def test_launch_installs_what_each_command_needs(tmp_path):
  # A stand-in python in the environment records each call: the package alone for
  # train, the test extras once test needs them, nothing more after that.
  venv, calls = tmp_path / 'venv', tmp_path / 'calls.txt'
  (venv / 'bin').mkdir(parents=True)
  python = venv / 'bin' / 'python'
  python.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
  python.chmod(0o755)
  env = dict(os.environ, VAE_JAX_VENV=str(venv))
  run = lambda *args: subprocess.run(['bash', os.path.join(REPO, 'launch.sh'), *args],
                                     cwd=REPO, env=env, capture_output=True, text=True,
                                     timeout=60, check=True)
  said = lambda: calls.read_text().splitlines()
  run('train', 'experiments/test.py')
  assert said()[-2:] == ['-m pip install -q -e .', '-m vae_jax.main --config=experiments/test.py']
  count = len(said())
  run('eval', 'runs/x')  # installed: straight to the command
  assert said()[count:] == ['-m vae_jax.main --mode=eval --workdir=runs/x']
  run('test', '-k', 'nothing')
  assert '-m pip install -q -e .[test]' in said()
  count = len(said())
  run('train', 'experiments/test.py')  # the test install serves every command
  run('setup', 'test')
  assert said()[count:] == ['-m vae_jax.main --config=experiments/test.py']
  assert [p.name.rsplit('-', 1)[-1] for p in venv.glob('.vae_jax-installed-*')] == ['test']
