"""Peak memory of training and of the k=5000 importance-weighted evaluation,
plus the input pipeline's and the IWAE evaluation's throughput.

Memory: each measurement runs in a fresh process (benchmarks.memory_probe) and
reports its peak host RSS (VmHWM). On a CPU the device memory IS host
memory; on a GPU the probe also reports the device's peak bytes in use. The
k=5000 evaluation is run on two evaluation-set sizes: chunking
(config.eval.iw_batch_size × iw_chunk_size decoder passes at once) keeps its
peak independent of the number of examples. The 8 members of the sweep
benchmark (benchmarks.sweep_speedup) are trained vmapped and looped: a looped
population holds one more copy of the members' states.

Throughput (in this process): the input pipeline is what the loop does per
step before the update — host batch indices (a pure function of seed and step)
and the on-device gather + dynamic binarization — timed alone and compared
with the full train step; and nll_iw examples/s at k=5000.
"""

import json
import subprocess
import sys

import jax
import numpy as np

from benchmarks import cases, timing
from benchmarks.train_step import JaxTrainer
from vae_jax import data as data_lib
from vae_jax.evaluation import loop as eval_loop
from vae_jax.run import parallel

PROBES = {  # name: probe arguments
    'train MLP VAE, batch 128, 500 steps': ['train', '500'],
    'nll_iw k=5000, 100 examples': ['iw', '100'],
    'nll_iw k=5000, 400 examples': ['iw', '400'],
    'train 8 x 1200-unit MLP population, vmapped, 20 steps': ['population', '20', 'vmap'],
    'train 8 x 1200-unit MLP population, looped, 20 steps': ['population', '20', 'loop'],
}
QUICK_PROBES = {'train MLP VAE, batch 128, 5 steps': ['train', '5'],
                'nll_iw k=50, 4 examples': ['iw', '4', '50'],
                'train 2 x 1200-unit MLP population, looped, 2 steps': ['population', '2', 'loop',
                                                                        '2']}


def probe(args: list) -> dict:
  """{'peak_rss_mib', 'device_peak_mib'} of benchmarks.memory_probe `args` in a fresh process."""
  out = subprocess.run([sys.executable, '-m', 'benchmarks.memory_probe', *args],
                       cwd=cases.REPO, capture_output=True, text=True, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def _pipeline(quick: bool, rounds: int = 5) -> tuple:
  """(pipeline examples/s, train-step examples/s) of the MLP VAE at batch 128."""
  config = cases.step_config('mlp_b128')
  dataset = cases.dataset(config)
  trainer = JaxTrainer(config, dataset)
  batch, seed = config.data.batch_size, config.seed
  get_batch = jax.jit(data_lib.get_batch, static_argnums=(0, 2))
  key = jax.random.key(0)
  num = 2 if quick else 200

  def pipeline():
    for step in range(num):
      indices = parallel.shard_batch(dataset.train_indices(seed, step, batch), None)
      x, _ = get_batch(dataset.spec, dataset.arrays, 'train', indices, key)
    x.block_until_ready()

  pipeline(), trainer.steps(num)  # compile
  times = timing.alternate({'pipeline': pipeline, 'step': lambda: trainer.steps(num)},
                           1 if quick else rounds)
  return tuple(batch * num / float(np.median(times[k])) for k in ('pipeline', 'step'))


def _iw_throughput(quick: bool) -> float:
  """nll_iw examples/s at k=5000 (chunks of 100 samples, 20 examples per call)."""
  config = cases.step_config('mlp_b128')
  dataset = cases.synthetic_dataset(config, num_train=128, num_eval=4 if quick else 100)
  trainer = JaxTrainer(config, dataset)
  k = 50 if quick else config.eval.iw_samples
  run = lambda: eval_loop.importance_weighted_nll(
      trainer.state.params, trainer.spec, dataset, k, seed=0,
      batch_size=config.eval.iw_batch_size, chunk_size=config.eval.iw_chunk_size)
  run()  # compile
  _, seconds = timing.timed(run)
  return dataset.num_eval / seconds


def run(quick: bool) -> tuple:
  rows = []
  results = {}
  for name, args in (QUICK_PROBES if quick else PROBES).items():
    probe_ = probe(args)
    rows.append([name, probe_['peak_rss_mib'], probe_.get('device_peak_mib')])
    results[f'peak_rss_mib: {name}'] = probe_['peak_rss_mib']
  text = timing.table(['measurement (fresh process)', 'peak host RSS MiB',
                       'device peak MiB (GPU only)'], rows)
  pipeline, step = _pipeline(quick)
  iw = _iw_throughput(quick)
  results.update({'input_pipeline_examples_per_sec': pipeline,
                  'train_step_examples_per_sec_mlp_b128': step,
                  'input_pipeline_to_step_ratio': pipeline / step,
                  'iw_k5000_examples_per_sec': iw})
  text += '\n\n' + timing.table(
      ['throughput (MLP VAE)', 'examples/s'],
      [['input pipeline (host indices + device gather/binarize), batch 128', pipeline],
       ['train step, batch 128', step],
       [f'nll_iw, k={50 if quick else 5000}', iw]])
  return text, results


if __name__ == '__main__':
  print(run(quick='--quick' in sys.argv)[0])
