"""Side-by-side timing: alternate the contenders, report medians and ratios.

The machines this runs on are shared and noisy, so a lone absolute time means
little. Every comparison here runs its contenders in turn, round after round,
in one process, and reports the median over rounds of the per-round ratio.
"""

import datetime
import os
import platform
import resource
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def alternate(contenders: dict, rounds: int) -> dict:
  """{name: [seconds per round]}: each `fn()` called once per round, in turn.

  Every fn must block until its work is done (jax.block_until_ready).
  """
  times = {name: [] for name in contenders}
  for _ in range(rounds):
    for name, fn in contenders.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return times


def median_ratio(numerator: list, denominator: list) -> float:
  """Median over rounds of numerator[i] / denominator[i]."""
  return statistics.median(n / d for n, d in zip(numerator, denominator))


def has_torch() -> bool:
  """Whether the PyTorch reference can run (`./launch.sh bench` installs it)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    return True
  except ImportError:
    return False


def matmul_gflops(size: int = 2048, rounds: int = 5) -> float:
  """Measured dense fp32 matmul rate of the default JAX device, GFLOP/s (best round)."""
  a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
  dot = jax.jit(jnp.dot)
  jax.block_until_ready(dot(a, b))
  best = min(alternate({'dot': lambda: jax.block_until_ready(dot(a, b))}, rounds)['dot'])
  return 2.0 * size ** 3 / best / 1e9


def peak_rss_mib() -> float:
  """Peak resident set size of this process image so far, MiB.

  /proc/self/status VmHWM where it exists: ru_maxrss would carry over the
  parent's peak into a freshly exec'd child (Linux keeps it across fork +
  exec), so a small probe started by a big benchmark would report the
  benchmark's memory.
  """
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1]) / 1024.0  # kB
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def machine() -> dict:
  """The machine, the versions and the date, for results.json and the tables."""
  import flax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  try:
    import torch  # pylint: disable=g-import-not-at-top
    torch_version = torch.__version__
  except ImportError:
    torch_version = None
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      names = [l.split(':', 1)[1].strip() for l in f if l.startswith('model name')]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  device = jax.devices()[0]
  return {
      'date': datetime.date.today().isoformat(),
      'cpu': cpu,
      'cpu_cores': len(os.sched_getaffinity(0)),
      'jax_device': f'{device.platform}: {getattr(device, "device_kind", "")}',
      'python': platform.python_version(),
      'jax': jax.__version__, 'flax': flax.__version__, 'optax': optax.__version__,
      'numpy': np.__version__, 'torch': torch_version,
  }


def table(header: list, rows: list) -> str:
  """A Markdown table (pipes), right-aligned numbers."""
  def cell(v):
    if isinstance(v, float):
      return f'{v:.3g}' if abs(v) < 100 else f'{v:.0f}'
    return str(v)
  cells = [[cell(v) for v in row] for row in rows]
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join('---' if i == 0 else '---:' for i in range(len(header))) + '|']
  lines += ['| ' + ' | '.join(row) + ' |' for row in cells]
  return '\n'.join(lines)


def timed(fn: Callable) -> tuple:
  """(result, seconds) of fn()."""
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start
