"""Sweep speed-up: 8 β-VAE members as one population vs one after another.

The members of experiments/sweeps/beta_sweep.py (β ∈ {1, 2, 4, 6, 8, 12, 16, 32}
here, 8 of them, one seed) train for the same number of steps either as ONE
population (`steps.population_train_steps`, what `--mode=sweep` runs), its
members vmapped or looped over inside the program, or as 8 separate runs of
`steps.train_steps`, one after another, each dispatched as the training loop
does. Same total steps; alternating rounds; median speed-up over the separate
runs. `sweep8_speedup` is the speed-up of what config.train.population='auto'
picks on this device (steps.loop_members). Both the sweep's own network
(1200-unit MLP on dSprites, batch 64) and the Fashion-MNIST MLP VAE (batch 128)
are measured.
"""

import jax
import numpy as np

from benchmarks import cases, timing
from benchmarks.train_step import JaxTrainer, calls
from vae_jax import steps
from vae_jax import train_state
from vae_jax.run import parallel

BETAS = (1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0)
SETUPS = {'sweep8': ('sweeps/beta_sweep', None, 64, 10),  # name, variant, batch, steps/round
          'sweep8_mlp': ('vae', None, 128, 60)}


class Population:
  """The members of a β sweep stacked into one train state (vmapped or looped over)."""

  def __init__(self, configs, dataset, loop_members: bool = False):
    self.configs, self.dataset, self.loop_members = configs, dataset, loop_members
    self.spec = train_state.make_spec(configs[0], dataset.spec)
    self.hparams = train_state.stack([train_state.make_hparams(c, dataset.num_train) for c in configs])
    self.state = train_state.stack([train_state.init_state(self.spec, c.seed) for c in configs])
    self.step_index = 0

  def steps(self, num: int) -> float:
    batch = self.configs[0].data.batch_size
    for k in calls(num):
      indices = np.stack([[self.dataset.train_indices(c.seed, s, batch) for c in self.configs]
                          for s in range(self.step_index, self.step_index + k)])
      self.state, metrics = steps.population_train_steps(
          self.state, self.dataset.arrays, parallel.shard_batch(indices, None),
          self.hparams, spec=self.spec, loop_members=self.loop_members)
      self.step_index += k
    return float(metrics['loss'][-1, -1])


def member_configs(name: str, variant, batch: int, betas: tuple = BETAS) -> list:
  base = cases.experiment(name, variant)
  base.data.batch_size = batch
  if base.objective.name != 'beta':
    base.objective.name = 'beta'
  members = []
  for beta in betas:
    config = base.copy_and_resolve_references()
    config.objective.beta = beta
    members.append(config)
  return members


def measure(setup: str, num: int, rounds: int, betas: tuple = BETAS) -> tuple:
  """(table row, results dict) of one set-up: `num` steps per round, alternating."""
  name, variant, batch, _ = SETUPS[setup]
  configs = member_configs(name, variant, batch, betas)
  dataset = cases.dataset(configs[0])
  contenders = {mode: Population(configs, dataset, loop_members=mode == 'loop')
                for mode in ('vmap', 'loop')}
  alone = [JaxTrainer(c, dataset) for c in configs]
  fns = {mode: (lambda p=p: p.steps(num)) for mode, p in contenders.items()}
  fns['sequential'] = lambda: [t.steps(num) for t in alone]
  for fn in fns.values():
    fn()  # compile
  times = timing.alternate(fns, rounds)
  speedup = {mode: timing.median_ratio(times['sequential'], times[mode]) for mode in contenders}
  auto = 'loop' if steps.loop_members('auto', contenders['vmap'].spec) else 'vmap'
  rate = lambda name: len(configs) * num / float(np.median(times[name]))
  row = [setup, len(configs), batch, rate('vmap'), rate('loop'), rate('sequential'),
         speedup['vmap'], speedup['loop'], f'{auto}: {speedup[auto]:.2f}']
  jax.clear_caches()
  return row, {f'{setup}_speedup': speedup[auto], f'{setup}_vmap_speedup': speedup['vmap'],
               f'{setup}_loop_speedup': speedup['loop']}


HEADER = ['set-up', 'members', 'batch', 'vmapped member-steps/s', 'looped member-steps/s',
          'one after another member-steps/s', 'speed-up vmapped', 'speed-up looped',
          "speed-up of 'auto'"]


def run(quick: bool, rounds: int = 5) -> tuple:
  """(table text, results dict); quick: the MLP set-up with 2 members, 2 steps."""
  rows, results = [], {}
  for setup, (_, _, _, num) in SETUPS.items():
    if quick and setup != 'sweep8_mlp':
      continue
    row, figures = measure(setup, 2 if quick else num, 1 if quick else rounds,
                           BETAS[:2] if quick else BETAS)
    rows.append(row)
    results.update(figures)
  return timing.table(HEADER, rows), results


if __name__ == '__main__':
  import sys  # pylint: disable=g-import-not-at-top
  print(run(quick='--quick' in sys.argv)[0])
