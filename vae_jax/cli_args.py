"""The command line read before absl parses it: the --config and --workdir flags,
a run's saved config, the config file's checks, --help; and one-line messages.

vae_jax/main.py parses the flags; what it must know first (which config file,
whether to load a run's saved config, whether the file is a sweep file) is
read here from argv.
"""

import os
import re
import sys
import time

from vae_jax.errors import UserError

# A config file whose get_config(WORKDIR) is the config saved in WORKDIR: with
# --workdir=DIR and no --config, main loads it, so --config.a.b overrides apply.
SAVED_CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 'run', 'saved_config.py')



def fail(message: str, code: int = 2) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(code)


def one_line(error: Exception) -> str:
  """The useful line of a flag/config error (the last line of an embedded traceback)."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if any(line.startswith('Traceback') for line in lines):
    return lines[-1]
  return ' '.join(lines)


def unknown_key_message(error: Exception, argv: list) -> str:
  """Names the override that used a key the config does not have."""
  text = str(error).replace('\\', '')
  found = re.search(r"'([A-Za-z0-9_]+)'", text)
  key = found.group(1) if found else text
  hint = re.search(r'Did you mean "([^"]+)"', text)
  hint = f' (did you mean {hint.group(1)!r}?)' if hint else ''
  for arg in argv:
    name = arg.split('=', 1)[0]
    if name.startswith('--config.') and key in name[2:].split('.'):
      return (f'unknown config key {name[2:]}{hint} (from {arg}); the fields are '
              'listed in vae_jax/configs.py')
  return f'unknown config key {key!r}{hint}; the fields are listed in vae_jax/configs.py'


def flag_arg(argv: list, flag: str):
  """The last --flag value in argv (None if absent), read before absl parses it."""
  value = None
  for i, arg in enumerate(argv[1:], 1):
    if arg == '--':
      break
    name, equals, rest = arg.partition('=')
    if name in (f'--{flag}', f'-{flag}'):
      value = rest if equals else (argv[i + 1] if i + 1 < len(argv) else None)
  return value


def config_arg(argv: list):
  """The last --config value in argv (None if absent), read before absl loads the file."""
  return flag_arg(argv, 'config')


def with_saved_config(argv: list) -> list:
  """argv with --config=SAVED_CONFIG_FILE:DIR added when --workdir=DIR comes
  without --config (resume, --mode=eval, --mode=score with the saved config)."""
  workdir = flag_arg(argv, 'workdir')
  mode = flag_arg(argv, 'mode')
  if config_arg(argv) is not None or not workdir or mode == 'sweep':
    return argv
  if mode == 'evaluator':
    wait_for_run(workdir)
    if os.path.isfile(os.path.join(workdir, 'sweep.json')):
      return argv  # each member's saved config is loaded by the evaluator
  if not os.path.isfile(os.path.join(workdir, 'config.json')):
    fail(f'--workdir={workdir} holds no run (no config.json); pass --config=FILE to '
          'start one there, e.g. --config=experiments/vae.py')
  if ':' in workdir:
    fail(f'--workdir={workdir}: without --config the workdir may not contain ":"; '
          'pass --config=FILE as well')
  return [argv[0], f'--config={SAVED_CONFIG_FILE}:{workdir}', *argv[1:]]


def wait_for_run(workdir: str, poll_seconds: float = 2.0) -> None:
  """--mode=evaluator started before its trainer: waits for the run's config.json
  (or a sweep's sweep.json)."""
  said = False
  while not any(os.path.isfile(os.path.join(workdir, name))
                for name in ('config.json', 'sweep.json')):
    if not said:
      print(f'waiting for a run in {workdir} (its config.json or sweep.json)',
            file=sys.stderr, flush=True)
      said = True
    time.sleep(poll_seconds)


def check_config_file(argv: list) -> None:
  """ConfigError if the --config file is missing, is not a Python file, lacks
  get_config(), returns no ConfigDict, adds a key, or is a sweep file outside
  --mode=sweep (it would train its base config alone)."""
  path_arg = config_arg(argv)
  if not path_arg or path_arg.startswith(SAVED_CONFIG_FILE):
    return
  from vae_jax import config_files  # pylint: disable=g-import-not-at-top
  module = config_files.load_module(path_arg.partition(':')[0])
  mode = flag_arg(argv, 'mode') or 'train'
  if mode not in ('sweep', 'evaluator') and hasattr(module, 'get_sweep'):
    raise UserError(f'{path_arg.partition(":")[0]} is a sweep file (it defines '
                    f'get_sweep()); run it with --mode=sweep, or pass an experiment file '
                    'such as experiments/beta_vae.py')
  config_files.module_config(module, path_arg)


def help_requested(argv: list) -> bool:
  return any(arg in ('--help', '-h', '-?', '--helpfull', '--helpshort')
             for arg in argv[1:])
