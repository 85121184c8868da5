r"""Command line: python -m vae_jax.main --config=experiments/beta_vae.py [flags].

    --config=FILE[:ARG]   an experiment's get_config() module; override any
                          field with --config.a.b=value
    --workdir=DIR         default runs/<experiment>-<UTC timestamp>; an existing
                          workdir is resumed from its latest checkpoint
    --mode=train|eval     eval: re-evaluate the latest checkpoint of --workdir

A bad flag, config value, dataset or workdir exits with code 2 and one line
saying what is wrong; a non-finite loss exits with code 1 naming step and term.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from vae_jax.errors import UserError

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (experiments/*.py).', lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Run directory (default runs/<experiment>-<UTC timestamp>).')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval'],
                          'train: train or resume; eval: evaluate the latest checkpoint.')


class _QuietLibraries:
  """absl-handler filter: drops INFO chatter of checkpointing and XLA start-up."""
  NOISY = ('/orbax/', '/tensorstore/', 'xla_bridge.py', 'signaling_client.py')

  def filter(self, record) -> bool:
    return record.levelno >= logging.converter.STANDARD_WARNING or not any(
        part in record.pathname for part in self.NOISY)


def _fail(message: str, code: int = 2) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(code)


def parse_flags(argv: list) -> list:
  """Parses flags; any flag or config-override error is one line and exit 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(' '.join(str(e).split()))
  except Exception as e:  # pylint: disable=broad-except  (config_flags' own errors)
    _fail(f'{type(e).__name__}: ' + ' '.join(str(e).split()))


def main(argv: list) -> None:
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}; flags look like --config.a.b=value')
  if _CONFIG.value is None:
    _fail('--config is required, e.g. --config=experiments/beta_vae.py')
  from vae_jax import train, workdir  # pylint: disable=g-import-not-at-top
  logging.get_absl_handler().addFilter(_QuietLibraries())
  config_path = flags.FLAGS['config'].config_filename
  workdir_path = _WORKDIR.value or workdir.default_workdir(config_path)
  logging.info('workdir: %s', workdir_path)
  try:
    if _MODE.value == 'eval':
      train.evaluate_workdir(_CONFIG.value, workdir_path)
    else:
      train.train_and_evaluate(_CONFIG.value, workdir_path)
  except UserError as e:
    _fail(' '.join(str(e).split()), e.exit_code)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
