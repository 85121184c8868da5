"""Sweep speed-up: 8 β-VAE members as one vmapped population vs one after another.

The members of experiments/sweeps/beta_sweep.py (β ∈ {1, 2, 4, 6, 8, 12, 16, 32}
here, 8 of them, one seed) train for the same number of steps either as ONE
population (`steps.population_train_steps`, what `--mode=sweep` runs) or as 8
separate runs of `steps.train_steps`, one after another, each dispatched as
the training loop does. Same total steps; alternating rounds; median speed-up.
Both the sweep's own network (1200-unit MLP on dSprites, batch 64) and the
Fashion-MNIST MLP VAE (batch 128) are measured.
"""

import jax
import numpy as np

from benchmarks import cases, timing
from benchmarks.train_step import JaxTrainer, calls
from vae_jax import parallel, steps

BETAS = (1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0)
SETUPS = {'sweep8': ('sweeps/beta_sweep', None, 64, 10),  # name, variant, batch, steps/round
          'sweep8_mlp': ('vae', None, 128, 60)}


class Population:
  """The members of a β sweep stacked into one vmapped train state."""

  def __init__(self, configs, dataset):
    self.configs, self.dataset = configs, dataset
    self.spec = steps.make_spec(configs[0], dataset)
    self.hparams = steps.stack([steps.make_hparams(c, dataset.num_train) for c in configs])
    self.state = steps.stack([steps.init_state(self.spec, c.seed) for c in configs])
    self.step_index = 0

  def steps(self, num: int) -> float:
    batch = self.configs[0].data.batch_size
    for k in calls(num):
      indices = np.stack([[self.dataset.train_indices(c.seed, s, batch) for c in self.configs]
                          for s in range(self.step_index, self.step_index + k)])
      self.state, metrics = steps.population_train_steps(
          self.state, self.dataset.arrays, parallel.shard_batch(indices, None),
          self.hparams, spec=self.spec)
      self.step_index += k
    return float(metrics['loss'][-1, -1])


def member_configs(name: str, variant, batch: int) -> list:
  base = cases.experiment(name, variant)
  base.data.batch_size = batch
  if base.objective.name != 'beta':
    base.objective.name = 'beta'
  members = []
  for beta in BETAS:
    config = base.copy_and_resolve_references()
    config.objective.beta = beta
    members.append(config)
  return members


def run(quick: bool, rounds: int = 5) -> tuple:
  rows, results = [], {}
  for setup, (name, variant, batch, num) in SETUPS.items():
    configs = member_configs(name, variant, batch)
    dataset = cases.dataset(configs[0])
    population = Population(configs, dataset)
    alone = [JaxTrainer(c, dataset) for c in configs]
    num = 2 if quick else num
    population.steps(num), [t.steps(num) for t in alone]  # compile
    times = timing.alternate({
        'population': lambda: population.steps(num),
        'sequential': lambda: [t.steps(num) for t in alone]}, 1 if quick else rounds)
    speedup = timing.median_ratio(times['sequential'], times['population'])
    member_steps = len(configs) * num
    rows.append([setup, len(configs), batch,
                 member_steps / float(np.median(times['population'])),
                 member_steps / float(np.median(times['sequential'])), speedup])
    results[f'{setup}_speedup'] = speedup
    jax.clear_caches()
  text = timing.table(['set-up', 'members', 'batch', 'population member-steps/s',
                       'one after another member-steps/s', 'speed-up'], rows)
  return text, results


if __name__ == '__main__':
  import sys  # pylint: disable=g-import-not-at-top
  print(run(quick='--quick' in sys.argv)[0])
