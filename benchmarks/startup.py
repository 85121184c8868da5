"""Start-up: launch → first evaluation and → first train steps of the command line.

    python -m benchmarks.startup [--rounds=3] [--compare=OTHER_CHECKOUT] [--timeline]

Fresh processes of `python -m vae_jax.main --config=experiments/vae.py`
(Fashion-MNIST; the first dispatch of 10 train steps and the step-0
evaluation of every run, its pictures included, in the order the code runs
them), each stopped once metrics.jsonl holds its first train record (step
10, logged every 10 steps) and its step-0 evaluation record. Times from
launch to the step-0 evaluation record and to that train record. Cold: an
empty compilation cache (VAE_JAX_COMPILATION_CACHE); warm: the cache that
the cold run of the same round and code left. With --compare=DIR the code of
another checkout (e.g. `git archive` of an older commit) runs the same way,
alternating with this one, round after round: before/after figures of a
change, as medians of per-round ratios.

--timeline runs this checkout once, cold, in this process's child with
timers around its phases (imports, config, data, checkpointer, metric
writer, evaluation, pictures, the first train call) and prints where the
time goes.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import cases, end_to_end, timing

FIRST_STEPS = 10  # the first dispatch of a run (train.MAX_STEPS_PER_CALL)

# Timers around the phases of a run, installed before vae_jax.main runs
# (module attributes that the code looks up at call time).
_TIMELINE = """
import atexit, functools, json, sys, time
T0 = time.perf_counter()
EVENTS = []
def record(name, start):
  EVENTS.append((name, round(start - T0, 3), round(time.perf_counter() - start, 3)))
t = time.perf_counter()
from absl import app
from vae_jax import main as main_lib
record('import vae_jax.main (absl, ml_collections)', t)
t = time.perf_counter()
import jax
record('import jax', t)
t = time.perf_counter()
from vae_jax import evaluate_run, steps, train, train_state
from vae_jax.run import checkpoints
from vae_jax.pictures import eval_pictures
from vae_jax import data as data_lib
from vae_jax.run import metrics_log
record('import vae_jax.train and what it imports', t)
def wrap(owner, attr, name, block=False):
  fn = getattr(owner, attr)
  @functools.wraps(fn)
  def timed(*args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    if block:
      jax.block_until_ready(out)
    record(name, start)
    return out
  if hasattr(fn, 'lower'):  # a jitted function: compiling ahead stays possible
    timed.lower = fn.lower
  setattr(owner, attr, timed)
wrap(main_lib, 'parse_flags', 'flags and config')
wrap(train, 'build_run', 'build_run (checks, data, spec)')
wrap(data_lib, 'load', '  data load')
wrap(checkpoints, 'Checkpointer', 'Checkpointer (orbax)')
wrap(train_state, 'init_state', 'init_state (compile + run)', block=True)
wrap(metrics_log, 'MetricWriter', 'MetricWriter (tensorboardX)')
wrap(evaluate_run, '_evaluate', 'step-0 evaluation (metrics)')
wrap(evaluate_run, '_write_images', 'step-0 pictures (render, PNG, TensorBoard)')
wrap(eval_pictures, 'make_pictures', '  of which: render')
wrap(steps, 'train_steps', 'first train call (trace, compile, dispatch)')
wrap(train, '_log_train', 'first log (waits for the steps)')
atexit.register(lambda: print('TIMELINE ' + json.dumps(EVENTS), file=sys.stderr))
sys.argv = ['vae_jax.main'] + sys.argv[1:]
app.run(main_lib.main, flags_parser=main_lib.parse_flags)
"""


def launch(repo: str, workdir: str, cache_dir: str, local_dir: str = '',
           runner: str = end_to_end._WITHOUT_TORCH) -> tuple:  # pylint: disable=protected-access
  """(seconds to the step-0 evaluation record, to the first train record, stderr)."""
  args = [sys.executable, '-c', runner, '--config=experiments/vae.py',
          f'--workdir={workdir}', '--config.train.num_steps=1000',
          f'--config.train.log_every_steps={FIRST_STEPS}',
          '--config.train.eval_every_steps=1000', '--config.train.checkpoint_every_steps=1000']
  if local_dir:
    args.append(f'--config.data.local_dir={local_dir}')
  env = dict(os.environ, VAE_JAX_COMPILATION_CACHE=cache_dir, PYTHONPATH=repo)
  start = time.time()
  process = subprocess.Popen(args, cwd=repo, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=env)
  metrics = os.path.join(workdir, 'metrics.jsonl')
  records = []
  while process.poll() is None:
    time.sleep(0.05)
    records = _records(metrics)
    if {'train', 'eval'} <= {r['split'] for r in records}:
      # The timeline's child must exit through Python (SIGTERM: vae_jax saves a
      # checkpoint and exits 143) to print; a timed one is simply killed.
      process.terminate() if runner == _TIMELINE else process.kill()
      break
  _, stderr = process.communicate()
  records = _records(metrics)
  if process.returncode not in (0, -9, 143) or not records:
    raise RuntimeError(f'vae_jax run in {repo} failed:\n{stderr[-2000:]}')
  first = lambda split: next(r['time'] for r in records if r['split'] == split) - start
  return first('eval'), first('train'), stderr


def _records(path: str) -> list:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.endswith('\n')]


def timeline(repo: str, local_dir: str = '') -> tuple:
  """([(phase, start s, seconds)] from the interpreter's first line, launch →
  step-0 evaluation s, launch → first train record s) of one cold run of `repo`."""
  with tempfile.TemporaryDirectory() as tmp:
    to_eval, to_train, stderr = launch(repo, os.path.join(tmp, 'run'),
                                       os.path.join(tmp, 'cache'), local_dir, runner=_TIMELINE)
  line = next(l for l in stderr.splitlines() if l.startswith('TIMELINE '))
  return [list(event) for event in json.loads(line[len('TIMELINE '):])], to_eval, to_train


def run(quick: bool, rounds: int = 3, compare: str = '') -> tuple:
  """(table text, results dict): this checkout (and `compare`), cold and warm."""
  repos = {'this': cases.REPO}
  if compare:
    repos = {'other': os.path.abspath(compare), 'this': cases.REPO}
  rounds = 1 if quick else rounds
  times = {(name, cache, what): [] for name in repos for cache in ('cold', 'warm')
           for what in ('eval', 'train')}
  with tempfile.TemporaryDirectory() as tmp:
    local_dir = end_to_end._fake_fashion_mnist(tmp) if quick else ''  # pylint: disable=protected-access
    for i in range(rounds):
      for cache in ('cold', 'warm'):
        for name, repo in repos.items():
          cache_dir = os.path.join(tmp, f'cache-{name}-{i}')  # cold: new; warm: cold's
          workdir = os.path.join(tmp, f'run-{name}-{cache}-{i}')
          to_eval, to_train, _ = launch(repo, workdir, cache_dir, local_dir)
          times[name, cache, 'eval'].append(to_eval)
          times[name, cache, 'train'].append(to_train)
  rows, results = [], {}
  for cache in ('cold', 'warm'):
    for what, label in (('eval', 'launch → step-0 evaluation'),
                        ('train', f'launch → first {FIRST_STEPS} steps done')):
      row = [f'{label}, {cache} cache']
      for name in repos:
        row.append(float(np.median(times[name, cache, what])))
        results[f'startup_s: {name}, {cache}, {what}'] = row[-1]
      if compare:
        row.append(timing.median_ratio(times['this', cache, what], times['other', cache, what]))
      rows.append(row)
  header = ['measurement (fresh processes)'] + [
      f'{"this checkout" if n == "this" else compare} s' for n in repos]
  if compare:
    header.append('ratio this / other')
  text = timing.table(header, rows) + f'\n\nmedians over {rounds} rounds'
  return text, results


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--compare', default='', help='another checkout to alternate with')
  parser.add_argument('--timeline', action='store_true', help='where one cold run spends its time')
  parser.add_argument('--quick', action='store_true')
  args = parser.parse_args()
  if args.timeline:
    with tempfile.TemporaryDirectory() as tmp:
      local_dir = end_to_end._fake_fashion_mnist(tmp) if args.quick else ''  # pylint: disable=protected-access
      events, to_eval, to_train = timeline(cases.REPO, local_dir)
    print(timing.table(['phase', 'starts at s', 'seconds'], events))
    print(f'\nlaunch → step-0 evaluation {to_eval:.2f} s, → first train record {to_train:.2f} s '
          '(the timeline starts at the interpreter\'s first line)')
    return
  print(run(args.quick, args.rounds, args.compare)[0])


if __name__ == '__main__':
  main()
