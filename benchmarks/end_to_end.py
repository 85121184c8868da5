"""End to end: wall time to a held-out nelbo target on Fashion-MNIST, vs PyTorch.

Both sides start as fresh processes (start-up, data loading and compilation
included), train the MLP VAE of experiments/vae.py (784-500-20, Bernoulli,
dynamic binarization, Adam 1e-3, batch 128) and evaluate the held-out nelbo
on the 10,000 test images every EVAL_EVERY steps; the time to the first
evaluation at or below each of TARGETS counts (one pair of runs, stopped at
the lowest target). The first target is passed within ~1,500 steps, so
start-up, compilation and evaluation weigh heavily; the second needs about
twice the training. vae_jax is the real command line
(`python -m vae_jax.main`), whose evaluations also write image grids and
posterior statistics; its run is stopped once metrics.jsonl shows the target.
The two alternate, ROUNDS times; the median ratio ours / theirs is reported.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import cases, timing
from vae_jax.data import idx

TARGETS = (250.0, 245.0)  # nats of held-out nelbo
EVAL_EVERY = 250
MAX_STEPS = 6_000
ROUNDS = 3  # each: vae_jax cold cache, vae_jax warm cache, torch


# vae_jax as its users run it: without torch in the process (tensorboardX would
# import it when present; it is here only for the reference).
_WITHOUT_TORCH = """
import importlib.abc, runpy, sys
class NoTorch(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] == 'torch':
      raise ModuleNotFoundError(f'No module named {name!r}')
sys.meta_path.insert(0, NoTorch())
runpy.run_module('vae_jax.main', run_name='__main__')
"""


def _vae_jax(workdir: str, max_steps: int, eval_every: int, local_dir: str,
             cache_dir: str) -> list:
  """[(step, seconds since launch, nelbo)] of a run that stops at the target."""
  args = [sys.executable, '-c', _WITHOUT_TORCH, '--config=experiments/vae.py',
          f'--workdir={workdir}', f'--config.train.num_steps={max_steps}',
          f'--config.train.eval_every_steps={eval_every}',
          f'--config.train.checkpoint_every_steps={max_steps}',
          '--config.eval.iw_samples=1', '--config.eval.iw_chunk_size=1']
  if local_dir:
    args.append(f'--config.data.local_dir={local_dir}')
  start = time.time()
  env = dict(os.environ, VAE_JAX_COMPILATION_CACHE=cache_dir)
  process = subprocess.Popen(args, cwd=cases.REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=env)
  metrics = os.path.join(workdir, 'metrics.jsonl')
  evals = []
  while process.poll() is None:
    time.sleep(0.1)
    if os.path.exists(metrics):
      with open(metrics) as f:
        evals = [r for r in map(json.loads, f) if r['split'] == 'eval']
      if evals and evals[-1]['nelbo'] <= min(TARGETS):
        process.terminate()
        break
  _, stderr = process.communicate()
  if process.returncode not in (0, -15):
    raise RuntimeError(f'vae_jax run failed:\n{stderr[-2000:]}')
  with open(metrics) as f:
    evals = [r for r in map(json.loads, f) if r['split'] == 'eval']
  return [(r['step'], r['time'] - start, r['nelbo']) for r in evals]


def _torch(max_steps: int, eval_every: int, local_dir: str) -> list:
  args = [sys.executable, '-m', 'benchmarks.torch_train', f'--target={min(TARGETS)}',
          f'--max_steps={max_steps}', f'--eval_every={eval_every}', f'--local_dir={local_dir}']
  start = time.time()
  out = subprocess.run(args, cwd=cases.REPO, capture_output=True, text=True, check=True)
  return [(r['step'], r['time'] - start, r['nelbo'])
          for r in map(json.loads, out.stdout.splitlines())]


def _time_to_target(evals: list, target: float):
  """(seconds, step) of the first evaluation at or below the target, else (None, None)."""
  for step, seconds, nelbo in evals:
    if nelbo <= target:
      return seconds, step
  return None, None


def _fake_fashion_mnist(directory: str) -> str:
  rng = np.random.default_rng(0)
  for prefix, num in (('train', 512), ('t10k', 256)):
    idx.write_idx(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz'),
                  rng.integers(0, 256, (num, 28, 28), dtype=np.uint8))
    idx.write_idx(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz'),
                  (np.arange(num) % 10).astype(np.uint8))
  return directory


def run(quick: bool) -> tuple:
  """(table text, results dict); quick: a few steps on random images, no target."""
  with tempfile.TemporaryDirectory() as tmp:
    local_dir = _fake_fashion_mnist(tmp) if quick else ''
    max_steps, eval_every = (4, 2) if quick else (MAX_STEPS, EVAL_EVERY)
    rows, ratios = [], {(t, c): [] for t in TARGETS for c in ('cold', 'warm')}
    for i in range(1 if quick else ROUNDS):
      cache = os.path.join(tmp, f'cache{i}')  # empty: the first run compiles everything
      ours = _vae_jax(os.path.join(tmp, f'cold{i}'), max_steps, eval_every, local_dir, cache)
      warm = _vae_jax(os.path.join(tmp, f'warm{i}'), max_steps, eval_every, local_dir, cache)
      theirs = _torch(max_steps, eval_every, local_dir) if timing.has_torch() else []
      for target in TARGETS:
        (t_ours, s_ours), (t_warm, _), (t_theirs, s_theirs) = (
            _time_to_target(evals, target) for evals in (ours, warm, theirs))
        if quick:  # time to the last evaluation
          t_ours, t_warm, t_theirs = ours[-1][1], warm[-1][1], theirs[-1][1] if theirs else None
        cold_ratio = t_ours / t_theirs if t_ours and t_theirs else None
        warm_ratio = t_warm / t_theirs if t_warm and t_theirs else None
        rows.append([i, target, t_ours, t_warm, s_ours, t_theirs, s_theirs, cold_ratio,
                     warm_ratio])
        ratios[target, 'cold'].append(cold_ratio)
        ratios[target, 'warm'].append(warm_ratio)
  medians = {key: _median(values) for key, values in ratios.items()}
  text = timing.table(['round', 'target nats', 'vae_jax s (cold cache)',
                       'vae_jax s (warm cache)', 'vae_jax step', 'torch s', 'torch step',
                       'ratio cold (ours / torch)', 'ratio warm'], rows)
  text += (f'\n\nheld-out nelbo targets {TARGETS} nats on Fashion-MNIST, evaluated every '
           f'{EVAL_EVERY} steps; median time ratios ours / torch (cold compilation cache, '
           f'warm): ' + '; '.join(f'{t}: {medians[t, "cold"]}, {medians[t, "warm"]}'
                                  for t in TARGETS))
  first, second = TARGETS
  return text, {'end_to_end_time_ratio_vs_torch': medians[first, 'cold'],
                'end_to_end_time_ratio_vs_torch_warm_cache': medians[first, 'warm'],
                f'end_to_end_time_ratio_vs_torch_{second:g}': medians[second, 'cold'],
                f'end_to_end_time_ratio_vs_torch_{second:g}_warm_cache': medians[second, 'warm'],
                'end_to_end_targets_nelbo': list(TARGETS), 'end_to_end_rounds': rows}


def _median(values: list):
  """Median of the ratios, None if any is missing (a side missed the target)."""
  return float(np.median(values)) if values and None not in values else None


if __name__ == '__main__':
  print(run(quick='--quick' in sys.argv)[0])
