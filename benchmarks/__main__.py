"""Runs the benchmarks, prints their tables, writes benchmarks/results.json.

    python -m benchmarks            # everything (≈ 30 min on 2 CPU cores)
    python -m benchmarks --quick    # a few steps of each: checks they still run
    python -m benchmarks --only=train_step,sweep_speedup

`./launch.sh bench [--quick]` installs the PyTorch reference first. Only a
full run of every benchmark writes results.json (machine, versions, date,
every figure); benchmarks/README.md shows its tables.
"""

import argparse
import importlib
import json
import os

from benchmarks import timing

BENCHMARKS = ('train_step', 'step_profile', 'conv_formulations', 'end_to_end', 'startup',
              'sweep_speedup', 'memory', 'api_scoring', 'evaluation')
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results.json')


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true', help='a few steps each, no results.json')
  parser.add_argument('--only', default=','.join(BENCHMARKS),
                      help=f'comma-separated subset of {",".join(BENCHMARKS)}')
  args = parser.parse_args(argv)
  names = [n for n in args.only.split(',') if n]
  unknown = sorted(set(names) - set(BENCHMARKS))
  if unknown:
    parser.error(f'unknown benchmark(s) {", ".join(unknown)}; choose from {", ".join(BENCHMARKS)}')
  machine = timing.machine()
  print(f'# vae_jax benchmarks{" (quick: checks only, figures mean nothing)" if args.quick else ""}')
  print(', '.join(f'{k}: {v}' for k, v in machine.items()))
  results = {'machine': machine}
  for name in names:
    module = importlib.import_module(f'benchmarks.{name}')
    print(f'\n## {name}\n\n{module.__doc__.splitlines()[0]}\n', flush=True)
    text, figures = module.run(args.quick)
    print(text, flush=True)
    results.update(figures)
  if not args.quick and names == list(BENCHMARKS):
    with open(RESULTS, 'w') as f:
      json.dump(results, f, indent=2, sort_keys=True)
      f.write('\n')
    print(f'\nwrote {RESULTS}')


if __name__ == '__main__':
  main()
