"""Train-step throughput: vae_jax's real step vs PyTorch eager, alternating.

For each case (cases.STEP_CASES) both sides run the same number of steps per
round, round after round; the ratio is the median over rounds of
torch seconds / vae_jax seconds (> 1: vae_jax is faster). vae_jax runs what
`train._loop` runs (host batch indices, then `steps.train_steps`: up to
train.MAX_STEPS_PER_CALL jitted steps per dispatch that gather, binarize and
update on the device); torch gathers from a uint8 tensor in memory. GFLOP/s counts the model FLOPs (cases.train_flops).
"""

import numpy as np

from benchmarks import cases, timing
from vae_jax import steps, train
from vae_jax import train_state
from vae_jax.run import parallel

# steps per round: about a second of work each on 2 CPU cores
STEPS_PER_ROUND = {'mlp_b128': 200, 'mlp_b1024': 30, 'fc_b64': 30, 'conv_b64': 20}


def calls(num: int) -> list:
  """Steps per dispatch of `num` steps, as the training loop groups them."""
  full, rest = divmod(num, train.MAX_STEPS_PER_CALL)
  return [train.MAX_STEPS_PER_CALL] * full + ([rest] if rest else [])


class JaxTrainer:
  """vae_jax's train steps on `config`, dispatched as the training loop does."""

  def __init__(self, config, dataset):
    self.config, self.dataset = config, dataset
    self.spec = train_state.make_spec(config, dataset.spec)
    self.hparams = train_state.make_hparams(config, dataset.num_train)
    self.state = train_state.init_state(self.spec, config.seed)
    self.step_index = 0

  def steps(self, num: int) -> float:
    batch = self.config.data.batch_size
    for k in calls(num):
      indices = np.stack([self.dataset.train_indices(self.config.seed, s, batch)
                          for s in range(self.step_index, self.step_index + k)])
      self.state, metrics = steps.train_steps(
          self.state, self.dataset.arrays, parallel.shard_batch(indices, None),
          self.hparams, spec=self.spec)
      self.step_index += k
    return float(metrics['loss'][-1])  # waits for the last step


def contenders(case: str, torch_device=None):
  """(config, dataset, vae_jax trainer, torch trainer on `torch_device` or None)."""
  config = cases.step_config(case)
  dataset = cases.dataset(config)
  ours, theirs = JaxTrainer(config, dataset), None
  if torch_device is not None:
    from benchmarks import torch_vae  # pylint: disable=g-import-not-at-top
    theirs = torch_vae.TorchTrainer(config, cases.host_images(config, dataset),
                                    device=torch_device)
  return config, dataset, ours, theirs


def measure(case: str, num: int, rounds: int, matmul: float, torch_device=None):
  """(table row, results dict) of `case`: `num` steps per round, alternating with
  the PyTorch reference on `torch_device` ('cpu', 'cuda'; None: vae_jax alone)."""
  config, dataset, ours, theirs = contenders(case, torch_device)
  contenders_ = {'vae_jax': lambda: ours.steps(num)}
  if theirs is not None:
    contenders_['torch'] = lambda: theirs.steps(num)
  for fn in contenders_.values():
    fn()  # compile / warm up
  times = timing.alternate(contenders_, rounds)
  batch = config.data.batch_size
  ours_eps = batch * num / float(np.median(times['vae_jax']))
  ratio = theirs_eps = None
  if theirs is not None:
    ratio = timing.median_ratio(times['torch'], times['vae_jax'])
    theirs_eps = batch * num / float(np.median(times['torch']))
  flops = cases.train_flops(config, dataset.spec.image_shape)
  gflops = flops * num / float(np.median(times['vae_jax'])) / 1e9
  row = [case, round(ours_eps), theirs_eps and round(theirs_eps), ratio, gflops,
         gflops / matmul]
  return row, {f'{case}_ratio_vs_torch': ratio, f'{case}_matmul_fraction': gflops / matmul,
               f'{case}_examples_per_sec': ours_eps,
               f'{case}_torch_examples_per_sec': theirs_eps}


HEADER = ['case', 'vae_jax ex/s', 'torch ex/s', 'speed ratio (torch t / ours)',
          'vae_jax GFLOP/s', 'fraction of matmul rate']


def run(quick: bool, rounds: int = 7) -> tuple:
  """(table text, results dict)."""
  matmul = timing.matmul_gflops()
  rows, results = [], {'matmul_gflops': matmul}
  torch_device = 'cpu' if timing.has_torch() else None
  for case in cases.step_cases(quick):
    num = 2 if quick else STEPS_PER_ROUND[case]
    row, figures = measure(case, num, 1 if quick else rounds, matmul, torch_device)
    rows.append(row)
    results.update(figures)
  text = timing.table(HEADER, rows)
  return text + f'\n\nmatmul rate (2048² fp32, best of 5): {matmul:.0f} GFLOP/s', results


if __name__ == '__main__':
  import sys  # pylint: disable=g-import-not-at-top
  print(run(quick='--quick' in sys.argv)[0])
