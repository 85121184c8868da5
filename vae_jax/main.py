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
import signal
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from vae_jax import cli_args
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


def parse_flags(argv: list) -> list:
  """Parses flags and loads the config; any error is one line and exit code 2."""
  if cli_args.help_requested(argv):
    print(__doc__.strip())
    sys.exit(0)
  try:
    argv = cli_args.with_saved_config(argv)
    cli_args.check_config_file(argv)
    rest = flags.FLAGS(argv)
    if _MODE.value == 'evaluator' and _CONFIG.value is None and _WORKDIR.value:
      return rest  # a sweep directory
    if _CONFIG.value is None:
      cli_args.fail('--config is required, e.g. --config=experiments/beta_vae.py '
            '(--workdir=DIR alone resumes or, with --mode=eval, re-evaluates a run with '
            'its saved config)')
    _CONFIG.value.to_dict()  # surfaces a deferred config-file error here
    return rest
  except UserError as e:
    cli_args.fail(' '.join(str(e).split()), e.exit_code)
  except (AttributeError, KeyError) as e:
    cli_args.fail(cli_args.unknown_key_message(e, argv))
  except Exception as e:  # pylint: disable=broad-except  (flag and config-file errors)
    cli_args.fail(cli_args.one_line(e))


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
    cli_args.fail(f'unexpected arguments {argv[1:]}; flags look like --config.a.b=value')
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
    cli_args.fail(' '.join(str(e).split()), e.exit_code)
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
    cli_args.fail('interrupted; the checkpoints saved so far are kept (run the same command to '
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
    cli_args.fail(f'--sweep_shard={_SWEEP_SHARD.value} needs --mode=sweep')
  parallel.initialize_distributed()
  if _MODE.value == 'sweep':
    if _CONFIG.value is None:
      cli_args.fail('--mode=sweep needs --config=experiments/sweeps/<name>.py')
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
      cli_args.fail('--mode=score needs --workdir=RUN and --score_data=NAME_OR_IDX_DIR')
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
    cli_args.fail('--mode=evaluator needs --workdir=RUN_OR_SWEEP_DIR')
  if evaluator.is_sweep_directory(_WORKDIR.value):
    evaluator.follow_sweep(_WORKDIR.value)
    print(f'evaluated every member of {_WORKDIR.value}; their results: '
          f'{os.path.join(_WORKDIR.value, "<member>", "summary.json")}', flush=True)
    return
  evaluator.follow_run(_CONFIG.value, _WORKDIR.value)
  print(evaluate_run.results_line(_WORKDIR.value), flush=True)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
