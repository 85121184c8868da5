r"""Command line: python -m vae_jax.main --config=experiments/beta_vae.py [flags].

    --config=FILE[:ARG]   an experiment's get_config() module; ARG is a
                          comma-separated set of switches, e.g.
                          experiments/beta_vae.py:fc,tiny (tiny: a few steps of
                          a tiny network, configs.make_tiny); override any
                          field with --config.a.b=value
    --workdir=DIR         default runs/<experiment>-<UTC timestamp>; an existing
                          workdir is resumed from its latest checkpoint; alone
                          (no --config) it uses the run's saved config.json
    --mode=train|eval|sweep|score|evaluator
                          eval: re-evaluate the latest checkpoint of --workdir;
                          evaluator: follow the checkpoints of a run (or a
                          sweep directory) trained with eval.inline=False,
                          evaluating each evaluation step's once, until the
                          final one (vae_jax/evaluator.py);
                          sweep: --config is a sweep file (experiments/sweeps/),
                          every member is trained (vae_jax/sweeps/);
                          score: the run in --workdir scores --score_data
                          (a dataset name or an IDX directory; vae_jax/score.py)
    --sweep_shard=I/N     --mode=sweep: train only slice I (0 <= I < N) of the
                          members (one job of N, e.g. a Slurm array task), into
                          the same --workdir; the last slice to finish writes
                          the results; --sweep_shard=report writes them from
                          the finished members (docs/sweeps.md)

With VAE_JAX_DISTRIBUTED=1 (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
JAX_PROCESS_ID) every host of a TPU pod or GPU cluster joins one run
(vae_jax/run/parallel.py); with several devices the batch is split over them.

Compiled programs are cached on disk (a rerun, a resume or a sweep member
with a known shape skips XLA compilation): in VAE_JAX_COMPILATION_CACHE,
default ~/.cache/vae_jax/xla; set it to '' to turn the cache off.

A bad flag, config value, dataset or workdir exits with code 2 and one line
saying what is wrong; a non-finite loss exits with code 1 naming step and term;
SIGINT / SIGTERM while training save a checkpoint and exit with 130 / 143
(during an evaluation, the step-0, a periodic or the final one, they stop it
at once; a second Ctrl-C stops training at once); elsewhere (start-up,
--mode=eval, --mode=score) they stop the command at once with one line and
exit 130 / 143, leaving no half-written file
(docs/reliability.md). A finished mode prints one line on stdout saying where its
results are (docs/outputs.md).
"""

import os
import re
import signal
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

from vae_jax.errors import Interrupted, SignalInterrupt, UserError

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (experiments/*.py).', lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Run directory (default runs/<experiment>-<UTC timestamp>).')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'sweep', 'score', 'evaluator'],
                          'train: train or resume; eval: evaluate the latest checkpoint; '
                          'sweep: train every member of a sweep file; score: score '
                          '--score_data with a trained run; evaluator: evaluate the '
                          'checkpoints of a run (or sweep) trained with eval.inline=False.')
_SWEEP_SHARD = flags.DEFINE_string(
    'sweep_shard', None, '--mode=sweep: I/N trains only slice I (0 <= I < N) of the '
    "sweep's members into the same --workdir; report: write the results of the finished "
    'members.')
_SCORE_DATA = flags.DEFINE_string(
    'score_data', None, '--mode=score: a dataset name or a directory of MNIST-format IDX '
    'files whose test split the run in --workdir scores.')

# A config file whose get_config(WORKDIR) is the config saved in WORKDIR: with
# --workdir=DIR and no --config, main loads it, so --config.a.b overrides apply.
SAVED_CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 'run', 'saved_config.py')


class _QuietLibraries:
  """absl-handler filter: drops INFO chatter of checkpointing and XLA start-up."""
  NOISY = ('/orbax/', '/tensorstore/', 'xla_bridge.py', 'signaling_client.py')

  def filter(self, record) -> bool:
    return record.levelno >= logging.converter.STANDARD_WARNING or not any(
        part in record.pathname for part in self.NOISY)


def _enable_compilation_cache() -> None:
  """JAX's persistent compilation cache (see the module docstring)."""
  import jax  # pylint: disable=g-import-not-at-top
  default = os.path.join(os.path.expanduser('~'), '.cache', 'vae_jax', 'xla')
  path = os.environ.get('VAE_JAX_COMPILATION_CACHE', default)
  if not path:
    return
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.3)
  jax.config.update('jax_compilation_cache_max_size', 2 * 1024**3)  # bytes, LRU eviction


def _fail(message: str, code: int = 2) -> None:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(code)


def _one_line(error: Exception) -> str:
  """The useful line of a flag/config error (the last line of an embedded traceback)."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if any(line.startswith('Traceback') for line in lines):
    return lines[-1]
  return ' '.join(lines)


def _unknown_key_message(error: Exception, argv: list) -> str:
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


def _flag_arg(argv: list, flag: str):
  """The last --flag value in argv (None if absent), read before absl parses it."""
  value = None
  for i, arg in enumerate(argv[1:], 1):
    if arg == '--':
      break
    name, equals, rest = arg.partition('=')
    if name in (f'--{flag}', f'-{flag}'):
      value = rest if equals else (argv[i + 1] if i + 1 < len(argv) else None)
  return value


def _config_arg(argv: list):
  """The last --config value in argv (None if absent), read before absl loads the file."""
  return _flag_arg(argv, 'config')


def _with_saved_config(argv: list) -> list:
  """argv with --config=SAVED_CONFIG_FILE:DIR added when --workdir=DIR comes
  without --config (resume, --mode=eval, --mode=score with the saved config)."""
  workdir = _flag_arg(argv, 'workdir')
  mode = _flag_arg(argv, 'mode')
  if _config_arg(argv) is not None or not workdir or mode == 'sweep':
    return argv
  if mode == 'evaluator':
    _wait_for_run(workdir)
    if os.path.isfile(os.path.join(workdir, 'sweep.json')):
      return argv  # each member's saved config is loaded by the evaluator
  if not os.path.isfile(os.path.join(workdir, 'config.json')):
    _fail(f'--workdir={workdir} holds no run (no config.json); pass --config=FILE to '
          'start one there, e.g. --config=experiments/vae.py')
  if ':' in workdir:
    _fail(f'--workdir={workdir}: without --config the workdir may not contain ":"; '
          'pass --config=FILE as well')
  return [argv[0], f'--config={SAVED_CONFIG_FILE}:{workdir}', *argv[1:]]


def _wait_for_run(workdir: str, poll_seconds: float = 2.0) -> None:
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


def _check_config_file(argv: list) -> None:
  """ConfigError if the --config file is missing, is not a Python file, lacks
  get_config(), returns no ConfigDict, adds a key, or is a sweep file outside
  --mode=sweep (it would train its base config alone)."""
  config_arg = _config_arg(argv)
  if not config_arg or config_arg.startswith(SAVED_CONFIG_FILE):
    return
  from vae_jax import config_files  # pylint: disable=g-import-not-at-top
  module = config_files.load_module(config_arg.partition(':')[0])
  mode = _flag_arg(argv, 'mode') or 'train'
  if mode not in ('sweep', 'evaluator') and hasattr(module, 'get_sweep'):
    raise UserError(f'{config_arg.partition(":")[0]} is a sweep file (it defines '
                    f'get_sweep()); run it with --mode=sweep, or pass an experiment file '
                    'such as experiments/beta_vae.py')
  config_files.module_config(module, config_arg)


def _help_requested(argv: list) -> bool:
  return any(arg in ('--help', '-h', '-?', '--helpfull', '--helpshort')
             for arg in argv[1:])


def parse_flags(argv: list) -> list:
  """Parses flags and loads the config; any error is one line and exit code 2."""
  if _help_requested(argv):
    print(__doc__.strip())
    sys.exit(0)
  try:
    argv = _with_saved_config(argv)
    _check_config_file(argv)
    rest = flags.FLAGS(argv)
    if _MODE.value == 'evaluator' and _CONFIG.value is None and _WORKDIR.value:
      return rest  # a sweep directory
    if _CONFIG.value is None:
      _fail('--config is required, e.g. --config=experiments/beta_vae.py '
            '(--workdir=DIR alone resumes or, with --mode=eval, re-evaluates a run with '
            'its saved config)')
    _CONFIG.value.to_dict()  # surfaces a deferred config-file error here
    return rest
  except UserError as e:
    _fail(' '.join(str(e).split()), e.exit_code)
  except (AttributeError, KeyError) as e:
    _fail(_unknown_key_message(e, argv))
  except Exception as e:  # pylint: disable=broad-except  (flag and config-file errors)
    _fail(_one_line(e))


# What a SignalInterrupt (a stop at once, outside the training loop) leaves, by --mode.
_STOPPED = {
    'train': 'the checkpoints saved so far are kept; run the same command to resume',
    'sweep': 'the checkpoints saved so far are kept; run the same command to resume',
    'eval': ('the checkpoints and metrics.jsonl are untouched and no file is left '
             'half-written; run the same command to evaluate again'),
    'score': 'no file is left half-written; run the same command to score again',
    'evaluator': ('every evaluation recorded so far is kept; run the same command to go '
                  'on from the first checkpoint not evaluated'),
}


def main(argv: list) -> None:
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}; flags look like --config.a.b=value')
  from vae_jax.run import guards  # pylint: disable=g-import-not-at-top
  logging.get_absl_handler().addFilter(_QuietLibraries())
  _enable_compilation_cache()
  try:
    with guards.StopAtOnce():
      _run_mode()
  except Interrupted as e:
    # The loop saved its checkpoint and closed its files. A scikit-learn fit of a
    # stopped evaluation may still run in a worker thread; the exit does not wait.
    print(f'error: {" ".join(str(e).split())}', file=sys.stderr, flush=True)
    sys.stdout.flush()
    logging.flush()
    os._exit(e.exit_code)  # pylint: disable=protected-access
  except UserError as e:
    _fail(' '.join(str(e).split()), e.exit_code)
  except SignalInterrupt as e:
    # The stop has unwound every open file and writer. The interpreter's own
    # teardown is skipped: a stop that landed in the middle of XLA's work (a
    # compilation, a compilation-cache write) can crash it.
    print(f'error: stopped by {signal.Signals(e.signum).name} during --mode={_MODE.value}; '
          f'{_STOPPED[_MODE.value]}', file=sys.stderr, flush=True)
    sys.stdout.flush()
    logging.flush()
    os._exit(e.exit_code)  # pylint: disable=protected-access
  except KeyboardInterrupt:  # a second Ctrl-C while the training loop stops
    _fail('interrupted; the checkpoints saved so far are kept (run the same command to '
          'resume)', 130)


def _run_mode() -> None:
  """Runs --mode (train, eval, sweep or score) with the parsed flags."""
  from vae_jax import evaluate_run  # pylint: disable=g-import-not-at-top
  from vae_jax import train  # pylint: disable=g-import-not-at-top
  from vae_jax.run import parallel  # pylint: disable=g-import-not-at-top
  from vae_jax.run import workdir  # pylint: disable=g-import-not-at-top
  if _MODE.value == 'sweep':
    from vae_jax.sweeps import plan as sweep_plan  # pylint: disable=g-import-not-at-top
    from vae_jax.sweeps import runner as sweep_runner  # pylint: disable=g-import-not-at-top
    shard = sweep_plan.parse_shard(_SWEEP_SHARD.value)
  elif _SWEEP_SHARD.value is not None:
    _fail(f'--sweep_shard={_SWEEP_SHARD.value} needs --mode=sweep')
  parallel.initialize_distributed()
  if _MODE.value == 'sweep':
    if _CONFIG.value is None:
      _fail('--mode=sweep needs --config=experiments/sweeps/<name>.py')
    config_arg = flags.FLAGS['config'].config_filename
    sweep_dir = _WORKDIR.value or workdir.default_workdir(config_arg)
    logging.info('sweep directory: %s', sweep_dir)
    _, axes = sweep_plan.load(config_arg, base=_CONFIG.value)  # the base config comes with the overrides applied
    sweep_runner.run_sweep(_CONFIG.value, axes, sweep_dir, shard=shard)
    if os.path.exists(os.path.join(sweep_dir, 'results.md')) and parallel.is_primary():
      print(sweep_runner.results_line(sweep_dir), flush=True)
    return
  if _MODE.value == 'evaluator':
    _run_evaluator()
    return
  config = _CONFIG.value
  workdir_path = _WORKDIR.value or workdir.default_workdir(
      flags.FLAGS['config'].config_filename)
  logging.info('workdir: %s', workdir_path)
  if _MODE.value == 'score':
    if not (_WORKDIR.value and _SCORE_DATA.value):
      _fail('--mode=score needs --workdir=RUN and --score_data=NAME_OR_IDX_DIR')
    from vae_jax import score  # pylint: disable=g-import-not-at-top
    score.score_workdir(config, workdir_path, _SCORE_DATA.value)
    print(score.results_line(workdir_path, _SCORE_DATA.value), flush=True)
  elif _MODE.value == 'eval':
    evaluate_run.evaluate_workdir(config, workdir_path)
    print(evaluate_run.results_line(workdir_path, mode='eval'), flush=True)
  else:
    train.train_and_evaluate(config, workdir_path)
    if config.eval.inline:
      print(evaluate_run.results_line(workdir_path), flush=True)
    else:
      print(f'trained; the evaluations are left to python -m vae_jax.main --mode=evaluator '
            f'--workdir={workdir_path}', flush=True)


def _run_evaluator() -> None:
  """--mode=evaluator: follows --workdir's run or sweep to its final evaluation."""
  from vae_jax import evaluate_run, evaluator  # pylint: disable=g-import-not-at-top
  if not _WORKDIR.value:
    _fail('--mode=evaluator needs --workdir=RUN_OR_SWEEP_DIR')
  if evaluator.is_sweep_directory(_WORKDIR.value):
    evaluator.follow_sweep(_WORKDIR.value)
    print(f'evaluated every member of {_WORKDIR.value}; their results: '
          f'{os.path.join(_WORKDIR.value, "<member>", "summary.json")}', flush=True)
    return
  evaluator.follow_run(_CONFIG.value, _WORKDIR.value)
  print(evaluate_run.results_line(_WORKDIR.value), flush=True)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
