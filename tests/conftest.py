"""Shared fixtures: strict numpy semantics, tiny local datasets, config loading,
a fake terminal and the reading of TensorBoard event files."""

import contextlib
import hashlib
import importlib.metadata
import io
import os
import platform
import re
import struct
import subprocess
import sys
import tempfile
from unittest import mock

# The tests compile hundreds of small programs, each run a few times: XLA's
# cheap compile mode (the same maths: the golden values hold under it) and one
# persistent compilation cache for the test processes and the command-line runs
# they launch (they inherit this environment; a program is compiled once).
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')
# XLA's CPU compiler without its fusion emitters compiles ≈ 1.6× faster (the
# golden values hold); the flag is known to the tested jaxlib (0.10), and an
# unknown XLA flag would abort every process, so it is set for that one alone.
if importlib.metadata.version('jaxlib').startswith('0.10.'):
  os.environ['XLA_FLAGS'] = ' '.join(
      [os.environ.get('XLA_FLAGS', ''), '--xla_cpu_use_fusion_emitters=false']).strip()
os.environ.setdefault('VAE_JAX_COMPILATION_CACHE',
                      os.path.join(tempfile.gettempdir(), 'vae_jax-tests-xla'))
if os.environ['VAE_JAX_COMPILATION_CACHE']:  # also for the Python processes tests start
  os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.environ['VAE_JAX_COMPILATION_CACHE'])
  os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import pytest

from vae_jax import config_files
from vae_jax import train_state
from vae_jax.run import checkpoints
from vae_jax.run import build
from vae_jax.data import idx

jax.config.update('jax_numpy_rank_promotion', 'raise')
jax.config.update('jax_disable_most_optimizations',
                  os.environ['JAX_DISABLE_MOST_OPTIMIZATIONS'].lower() in ('1', 'true'))
if os.environ['VAE_JAX_COMPILATION_CACHE']:
  jax.config.update('jax_compilation_cache_dir', os.environ['VAE_JAX_COMPILATION_CACHE'])
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_experiment(name: str, arg=None):
  """get_config() of experiments/<name>.py (with its optional argument, e.g. 'fc,tiny')."""
  path = os.path.join(REPO, 'experiments', f'{name}.py')
  return config_files.load_config(path if arg is None else f'{path}:{arg}')


def tiny_beta_sweep_base(checkpoint_every_steps: int):
  """The tiny test config as a β-VAE base for sweeps: 4 steps, evaluated at the end."""
  config = load_experiment('test')
  config.objective.name = 'beta'
  config.train.num_steps = 4
  config.train.eval_every_steps = 4
  config.train.checkpoint_every_steps = checkpoint_every_steps
  return config


def cli(*args: str, cwd: str = REPO, env: dict = None):
  """`python -m vae_jax.main ARGS` in a subprocess (CPU), its output captured."""
  env = dict(os.environ, JAX_PLATFORMS='cpu', **(env or {}))
  return subprocess.run([sys.executable, '-m', 'vae_jax.main', *args], cwd=cwd,
                        capture_output=True, text=True, timeout=300, env=env)


def write_fake_mnist(directory: str, num_train: int = 256, num_test: int = 64,
                     seed: int = 0) -> str:
  """MNIST-format IDX files of random 28×28 images with labels 0..9."""
  rng = np.random.default_rng(seed)
  os.makedirs(directory, exist_ok=True)
  for prefix, n in (('train', num_train), ('t10k', num_test)):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    idx.write_idx(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz'), images)
    idx.write_idx(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz'), labels)
  return directory


def final_state(workdir: str, config):
  """The newest checkpointed TrainState of the run in `workdir`."""
  run = build.build_run(config, workdir)
  ckpt = checkpoints.Checkpointer(workdir)
  state = ckpt.restore_latest(train_state.init_state(run.spec, config.seed))
  ckpt.close()
  return state


def tree_digest(directory: str) -> dict:
  """{relative path: sha256} of every file under `directory` (to show nothing changed)."""
  digests = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        digests[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
  return digests


def state_digest(state) -> str:
  """sha256 over every leaf of a TrainState (tree path, dtype, shape, bytes): equal
  digests mean bit-identical states (checkpoint files themselves are not
  byte-stable: Orbax names data files randomly and records timestamps)."""
  digest = hashlib.sha256()
  for path, leaf in jax.tree.flatten_with_path(state)[0]:
    array = np.asarray(leaf)
    digest.update(f'{jax.tree_util.keystr(path)} {array.dtype} {array.shape}'.encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


def assert_same_state(a, b) -> None:
  """Bit-identical train states (step, parameters, optimizer state)."""
  assert int(a.step) == int(b.step)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


class FakeTerminal(io.StringIO):
  """A text stream that says it is a terminal (so tqdm draws a live bar)."""

  def isatty(self) -> bool:
    return True


def segments(text: str) -> list:
  """The text between carriage returns and newlines: what a terminal line starts with."""
  return [s for s in re.split(r'[\r\n]', text) if s.strip()]


def read_events(path: str) -> list:
  """The Event protos of a TensorBoard event file (TFRecord framing, CRCs unchecked)."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  events = []
  with open(path, 'rb') as f:
    while header := f.read(12):
      (length,) = struct.unpack('<Q', header[:8])
      events.append(event_pb2.Event.FromString(f.read(length)))
      f.read(4)
  return events


def scalar_tags(events: list) -> dict:
  """{tag: [(step, value)]} of the scalar summaries."""
  tags = {}
  for event in events:
    for value in event.summary.value:
      if value.HasField('simple_value'):
        tags.setdefault(value.tag, []).append((event.step, value.simple_value))
  return tags


def hparams_data(events: list) -> dict:
  """{tag: HParamsPluginData} of the hparams plugin's summaries."""
  from tensorboardX.proto import plugin_hparams_pb2  # pylint: disable=g-import-not-at-top
  found = {}
  for event in events:
    for value in event.summary.value:
      if value.metadata.plugin_data.plugin_name == 'hparams':
        found[value.tag] = plugin_hparams_pb2.HParamsPluginData.FromString(
            value.metadata.plugin_data.content)
  return found


@pytest.fixture(scope='session')
def fake_mnist_dir(tmp_path_factory) -> str:
  return write_fake_mnist(str(tmp_path_factory.mktemp('fake_mnist')))


# --- the unit tier: tests not marked e2e make no run and start no process ------

# The processor's name is cached before any test: a library's first import
# (TensorFlow's, through h5py) asks for it by running `uname -p`, which the
# unit tier's no-process rule would refuse in whichever test imports it first.
platform.processor()


def _refuse(what: str):
  def refuse(*args, **kwargs):
    raise AssertionError(f'{what} in a test not marked e2e: mark it @pytest.mark.e2e '
                         '(the unit tier, -m "not e2e", makes no run and starts no process)')
  return refuse


def _run_entry_points() -> list:
  """(object, attribute) of everything that trains, evaluates or reads a run directory."""
  import vae_jax  # pylint: disable=g-import-not-at-top
  from vae_jax import api, evaluate_run, score, train  # pylint: disable=g-import-not-at-top
  from vae_jax.sweeps import runner  # pylint: disable=g-import-not-at-top
  return [(train, 'train_and_evaluate'), (train, 'train_group'),
          (evaluate_run, 'evaluate_workdir'), (score, 'score_workdir'),
          (runner, 'run_sweep'), (api, 'load'), (vae_jax, 'load'),
          (subprocess.Popen, '__init__')]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
  with _unit_guard(item):
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
  with _unit_guard(item):
    yield


def _unit_guard(item):
  """Within it, a test not marked e2e (and its fixtures) cannot make a run or a process."""
  stack = contextlib.ExitStack()
  if item.get_closest_marker('e2e') is None:
    for owner, name in _run_entry_points():
      what = 'a subprocess' if owner is subprocess.Popen else f'{owner.__name__}.{name}'
      stack.enter_context(mock.patch.object(owner, name, _refuse(what)))
  return stack
