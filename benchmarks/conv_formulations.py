"""Flax nn.Conv / nn.ConvTranspose vs vae_jax.conv's matmul formulation on CPU.

    python -m benchmarks.conv_formulations [--rounds=7] [--batch=64]

For each 4×4 stride-2 'SAME' layer of the conv β-VAE on 64×64 images, times
jitted forward + backward (value_and_grad of sum(out · r) w.r.t. the
parameters and the input) of one example vmapped over the batch, alternating
the two contenders round after round, and prints the median over rounds of
time(flax) / time(matmul) with each one's achieved GFLOP/s (useful flops: the
zero taps of the transposed conv are not counted). Then the same for the two
conv stacks chained (encoder convs and decoder transposed convs, ReLU
between) and a 2048² fp32 matmul's rate for reference.
"""

import argparse
import statistics

import flax.linen as nn
import jax
import jax.numpy as jnp

from benchmarks import timing
from vae_jax import conv

# (transposed, input side, Cin, Cout): the conv β-VAE of Burgess et al. (2018).
LAYERS = [
    (False, 64, 1, 32), (False, 32, 32, 32), (False, 16, 32, 32), (False, 8, 32, 32),
    (True, 4, 32, 32), (True, 8, 32, 32), (True, 16, 32, 32), (True, 32, 32, 1),
]


def reference(transposed: bool, features: int) -> nn.Module:
  cls = nn.ConvTranspose if transposed else nn.Conv
  return cls(features, (4, 4), strides=(2, 2), padding='SAME')


def fast(transposed: bool, features: int) -> nn.Module:
  cls = conv.StridedConvTranspose if transposed else conv.StridedConv
  return cls(features)


class Stack(nn.Module):
  """The β-VAE's conv layers in a row: 64×64×1 → 4×4×32 → 64×64×1."""
  make: callable

  @nn.compact
  def __call__(self, x):
    for transposed, _, _, features in LAYERS:
      x = nn.relu(self.make(transposed, features)(x))
    return x


def layer_flops(transposed: bool, side: int, cin: int, cout: int) -> float:
  """Forward + both gradients of one example: 3 × 2 × 16 MACs per (pixel, Cin, Cout)."""
  pixels = (2 * side) ** 2 if transposed else (side // 2) ** 2
  taps = 4 if transposed else 16  # useful taps per output pixel
  return 3 * 2 * pixels * taps * cin * cout


def fwd_bwd(module: nn.Module, x: jax.Array):
  """A jitted fn() → blocked (loss, grads) of the vmapped module on batch x."""
  params = module.init(jax.random.key(0), x[0])
  out = jax.eval_shape(jax.vmap(lambda e: module.apply(params, e)), x)
  r = jax.random.normal(jax.random.key(2), out.shape, out.dtype)

  def loss(p, xs):
    return jnp.sum(jax.vmap(lambda e: module.apply(p, e))(xs) * r)

  step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  jax.block_until_ready(step(params, x))
  return lambda: jax.block_until_ready(step(params, x))


def compare(make_ref, make_new, x, flops: float, rounds: int) -> list:
  """[ratio flax/matmul, flax GFLOP/s, matmul GFLOP/s] (medians over rounds)."""
  times = timing.alternate({'flax': fwd_bwd(make_ref, x), 'matmul': fwd_bwd(make_new, x)},
                           rounds)
  return [timing.median_ratio(times['flax'], times['matmul']),
          flops / statistics.median(times['flax']) / 1e9,
          flops / statistics.median(times['matmul']) / 1e9]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=7)
  parser.add_argument('--batch', type=int, default=64)
  args = parser.parse_args()
  rows = []
  for transposed, side, cin, cout in LAYERS:
    x = jax.random.normal(jax.random.key(1), (args.batch, side, side, cin))
    flops = args.batch * layer_flops(transposed, side, cin, cout)
    name = f'{"convT" if transposed else "conv"} {cin}->{cout} {side}x{side}'
    rows.append([name] + compare(reference(transposed, cout), fast(transposed, cout), x,
                                 flops, args.rounds))
  x = jax.random.normal(jax.random.key(1), (args.batch, 64, 64, 1))
  flops = args.batch * sum(layer_flops(*layer) for layer in LAYERS)
  rows.append(['all 8 layers'] + compare(Stack(reference), Stack(fast), x, flops,
                                         args.rounds))
  print(f'batch {args.batch}, {args.rounds} rounds, jitted fwd+bwd of vmap(one example)')
  print(timing.table(['layer', 'flax/matmul time', 'flax GFLOP/s', 'matmul GFLOP/s'], rows))
  print(f'2048x2048 fp32 matmul: {timing.matmul_gflops():.0f} GFLOP/s')


if __name__ == '__main__':
  main()
