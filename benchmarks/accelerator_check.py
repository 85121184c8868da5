"""Accelerator check: the benchmarks' tables on whatever device JAX runs on.

    python -m benchmarks.accelerator_check [--json=PATH]   # ≤ 8 min on a GPU or TPU
    python -m benchmarks.accelerator_check --quick         # every section at its smallest

Names the device (platform, device kind, count), then prints, as Markdown,
and writes to --json (default accelerator_check.json) after every section:
- `matmul`: the device's measured fp32 matmul rate (N×N, N = 8192 on an
  accelerator, 2048 on a CPU; best of 5), the denominator of every fraction;
- `train_step`: vae_jax's train step on the cases of benchmarks.cases
  (benchmarks.train_step.measure: examples/s, model GFLOP/s, fraction of the
  matmul rate), 10× the CPU's steps per round on an accelerator; next to the
  PyTorch reference where torch imports (on the GPU when torch sees one,
  else its CPU: then the ratio compares devices, not implementations);
- `sweep`: the 8-member β population vmapped vs looped vs the members one
  after another (benchmarks.sweep_speedup.measure);
- `conv`: the conv β-VAE's layers, flax vs vae_jax.conv vs im2col
  (benchmarks.conv_formulations.measure; no torch column);
- `memory`: peak device bytes (`memory_stats()['peak_bytes_in_use']`, where
  the device reports it) and peak host RSS of fresh processes
  (benchmarks.memory.probe), and this process's device peak at the end.

All timings alternate their contenders round after round in one process
(benchmarks/timing.py); ratios are medians over rounds. --quick runs one
case of each section for a step or two: it checks that the script runs
(tests/test_benchmarks.py runs it); its figures mean nothing.
"""

import argparse
import json
import os
import sys
import time

# Child processes (the memory probes) allocate next to this one; JAX's default
# GPU preallocation (75% of the memory to the first process) would starve them.
os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

from benchmarks import cases, conv_formulations, memory, sweep_speedup, timing, train_step  # pylint: disable=g-import-not-at-top,wrong-import-position

ACCELERATOR_STEP_SCALE = 10  # steps per round × this on an accelerator (shorter steps)


def device_info() -> dict:
  """The device JAX computes on: platform, kind, count, memory if it says."""
  device = jax.devices()[0]
  stats = device.memory_stats() or {}
  return {'platform': device.platform, 'device_kind': device.device_kind,
          'device_count': jax.device_count(),
          'memory_limit_gib': stats['bytes_limit'] / 2**30 if 'bytes_limit' in stats else None}


def _torch_device() -> str:
  import torch  # pylint: disable=g-import-not-at-top
  return 'cuda' if torch.cuda.is_available() else 'cpu'


def train_step_section(quick: bool, matmul: float, accelerator: bool) -> dict:
  case_names = cases.step_cases(quick)
  scale = ACCELERATOR_STEP_SCALE if accelerator else 1
  torch_device = _torch_device() if timing.has_torch() and not quick else None
  rows, results = [], {}
  for case in case_names:
    num = 2 if quick else train_step.STEPS_PER_ROUND[case] * scale
    row, figures = train_step.measure(case, num, 1 if quick else 7, matmul, torch_device)
    rows.append(row)
    results.update(figures)
  return {'header': train_step.HEADER, 'rows': rows, 'results': results,
          'torch_device': torch_device}


def sweep_section(quick: bool) -> dict:
  rows, results = [], {}
  setups = ('sweep8_mlp',) if quick else tuple(sweep_speedup.SETUPS)
  for setup in setups:
    num = 2 if quick else sweep_speedup.SETUPS[setup][3]
    betas = sweep_speedup.BETAS[:2] if quick else sweep_speedup.BETAS
    row, figures = sweep_speedup.measure(setup, num, 1 if quick else 5, betas)
    rows.append(row)
    results.update(figures)
  return {'header': sweep_speedup.HEADER, 'rows': rows, 'results': results}


def conv_section(quick: bool) -> dict:
  if quick:  # one small layer, a batch of 4
    header, rows, results = conv_formulations.measure(
        1, batch=4, layers=(conv_formulations.LAYERS[3],), whole=False, with_torch=False)
  else:
    header, rows, results = conv_formulations.measure(7, with_torch=False)
  return {'header': header, 'rows': rows, 'results': results}


def memory_section(quick: bool) -> dict:
  probes = dict(list(memory.QUICK_PROBES.items())[:1]) if quick else memory.PROBES
  rows = []
  for name, args in probes.items():
    out = memory.probe(args)
    rows.append([name, out.get('device_peak_mib'), out['peak_rss_mib']])
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get('peak_bytes_in_use')
  rows.append(['this process, all sections so far', peak / 2**20 if peak else None,
               timing.peak_rss_mib()])
  return {'header': ['measurement', 'device peak MiB', 'peak host RSS MiB'], 'rows': rows}


SECTIONS = (('train_step', 'Train step'), ('sweep', 'Sweep (8-member β population)'),
            ('conv', 'Convolutions (conv β-VAE layers, batch 64)'), ('memory', 'Memory'))


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true', help='every section at its smallest')
  parser.add_argument('--json', default='accelerator_check.json', help='output path')
  args = parser.parse_args(argv)
  start = time.perf_counter()
  device = device_info()
  accelerator = device['platform'] != 'cpu'
  report = {'device': device, 'machine': timing.machine(), 'quick': args.quick}
  print(f'# vae_jax accelerator check{" (quick: figures mean nothing)" if args.quick else ""}')
  print(f'device: {device["platform"]}: {device["device_kind"]} × {device["device_count"]}'
        f' (memory {device["memory_limit_gib"] and round(device["memory_limit_gib"], 1)} GiB)')
  size = 8192 if accelerator and not args.quick else (256 if args.quick else 2048)
  matmul = timing.matmul_gflops(size=size)
  report['matmul'] = {'size': size, 'gflops': matmul}
  print(f'\nfp32 matmul {size}×{size}, best of 5: {matmul:.0f} GFLOP/s', flush=True)
  runners = {'train_step': lambda: train_step_section(args.quick, matmul, accelerator),
             'sweep': lambda: sweep_section(args.quick),
             'conv': lambda: conv_section(args.quick),
             'memory': lambda: memory_section(args.quick)}
  for key, title in SECTIONS:
    section = runners[key]()
    report[key] = section
    report['seconds'] = time.perf_counter() - start
    print(f'\n## {title}\n\n{timing.table(section["header"], section["rows"])}', flush=True)
    _write(args.json, report)
  print(f'\n{report["seconds"]:.0f} s; wrote {args.json}')
  return report


def _write(path: str, report: dict) -> None:
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  with open(path, 'w') as f:
    json.dump(report, f, indent=2, default=str)
    f.write('\n')


if __name__ == '__main__':
  main(sys.argv[1:])
