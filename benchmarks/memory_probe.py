"""One memory measurement in a fresh process (see benchmarks/memory.py).

    python -m benchmarks.memory_probe train STEPS
    python -m benchmarks.memory_probe iw NUM_EXAMPLES [K]
    python -m benchmarks.memory_probe population STEPS vmap|loop [MEMBERS]  # the β sweep (8)

Prints one JSON line: {"peak_rss_mib", "device_peak_mib"}.
"""

import json
import sys

import jax

from benchmarks import cases, timing
from benchmarks.train_step import JaxTrainer
from vae_jax.evaluation import loop as eval_loop


def main(argv: list) -> None:
  kind, num = argv[1], int(argv[2])
  config = cases.step_config('mlp_b128')
  if kind == 'train':
    trainer = JaxTrainer(config, cases.synthetic_dataset(config))
    trainer.steps(num)
  elif kind == 'population':
    from benchmarks import sweep_speedup  # pylint: disable=g-import-not-at-top
    name, variant, batch, _ = sweep_speedup.SETUPS['sweep8']
    members = int(argv[4]) if len(argv) > 4 else len(sweep_speedup.BETAS)
    configs = sweep_speedup.member_configs(name, variant, batch, sweep_speedup.BETAS[:members])
    population = sweep_speedup.Population(configs, cases.dataset(configs[0]),
                                          loop_members=argv[3] == 'loop')
    population.steps(num)
  else:
    k = int(argv[3]) if len(argv) > 3 else 5000
    dataset = cases.synthetic_dataset(config, num_train=128, num_eval=num)
    trainer = JaxTrainer(config, dataset)
    eval_loop.importance_weighted_nll(trainer.state.params, trainer.spec, dataset, k, seed=0,
                                      batch_size=config.eval.iw_batch_size,
                                      chunk_size=config.eval.iw_chunk_size)
  stats = jax.devices()[0].memory_stats() or {}
  device_peak = stats.get('peak_bytes_in_use')
  print(json.dumps({'peak_rss_mib': timing.peak_rss_mib(),
                    'device_peak_mib': device_peak / 2**20 if device_peak else None}))


if __name__ == '__main__':
  main(sys.argv)
