"""Formulations of the conv β-VAE's 4×4 stride-2 'SAME' convolutions on CPU.

    python -m benchmarks.conv_formulations [--rounds=7] [--batch=64]

Contenders, each the same function with the same parameters:
- flax: nn.Conv / nn.ConvTranspose (lax convolutions, dilated ones included);
- vae_jax.models.strided_conv: StridedConv / StridedConvTranspose (what vae_jax.models uses);
- im2col: slices, concatenate and one matmul (`Im2col`), no conv at all.

For each layer of the conv β-VAE on 64×64 images, times jitted forward +
backward (value_and_grad of sum(out · r) w.r.t. the parameters and the
input) of one example vmapped over the batch, alternating the contenders
round after round, and prints the median over rounds of time(flax) /
time(contender) and each one's achieved GFLOP/s (useful flops: forward, input
and kernel gradients, 2 per multiply-add; zero taps not counted). Then the
same for the 8 layers chained (ReLU between) and for the whole network
(models.build of experiments/beta_vae.py, encode → decode of the mean,
Bernoulli loss, gradients w.r.t. the parameters; its GFLOP/s count the conv
flops only), and the rate of a 2048² fp32 matmul for reference.
"""

import argparse
import contextlib
import statistics
import types
from unittest import mock

import flax.linen as nn
import jax
import jax.numpy as jnp

from benchmarks import cases, timing
from vae_jax import models
from vae_jax.models import conv, reference_conv, strided_conv

# (transposed, input side, Cin, Cout): the conv β-VAE of Burgess et al. (2018).
LAYERS = [
    (False, 64, 1, 32), (False, 32, 32, 32), (False, 16, 32, 32), (False, 8, 32, 32),
    (True, 4, 32, 32), (True, 8, 32, 32), (True, 16, 32, 32), (True, 32, 32, 1),
]


class Im2col(nn.Module):
  """k=4, s=2 'SAME' conv or transposed conv of one example as slices + one matmul.

  Conv: the 16 strided slices x_pad[a::2, b::2] of the input padded by (1, 1)
  concatenated along channels, [H/2, W/2, 16·Cin] @ kernel [16·Cin, Cout].
  Transposed: the 3×3 stride-1 windows of the input padded by (1, 1),
  [H, W, 9·Cin] @ the sub-pixel kernel of all 4 output parities
  [9·Cin, 4·Cout] (zeros where a window misses a parity), depth-to-space.
  """
  features: int
  transposed: bool

  @nn.compact
  def __call__(self, x):
    h, w, c = x.shape
    kernel = self.param('kernel', nn.linear.default_kernel_init, (4, 4, c, self.features))
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,))
    xp = jnp.pad(x, ((1, 1), (1, 1), (0, 0)))
    if self.transposed:
      _, select = strided_conv._transpose_taps(4, 2)  # pylint: disable=protected-access
      weights = jnp.einsum('jpt,iqu,tuco->jicpqo', select, select, kernel)
      patches = jnp.concatenate([xp[a:a + h, b:b + w] for a in range(3) for b in range(3)], -1)
      y = patches @ weights.reshape(9 * c, 4 * self.features)
      y = y.reshape(h, w, 2, 2, -1).transpose(0, 2, 1, 3, 4).reshape(2 * h, 2 * w, -1)
    else:
      patches = jnp.concatenate(
          [xp[a:a + h - 1:2, b:b + w - 1:2] for a in range(4) for b in range(4)], -1)
      y = patches @ kernel.reshape(16 * c, self.features)
    return y + bias


# name: make(transposed, features, name) → the layer module.
CONTENDERS = {
    'flax': lambda transposed, features, name=None: (
        nn.ConvTranspose if transposed else nn.Conv)(
            features, (4, 4), strides=(2, 2), padding='SAME', name=name),
    'vae_jax.conv': lambda transposed, features, name=None: (
        strided_conv.StridedConvTranspose if transposed else strided_conv.StridedConv)(features, name=name),
    'im2col': lambda transposed, features, name=None: Im2col(features, transposed,
                                                             name=name),
}


class Stack(nn.Module):
  """The β-VAE's conv layers in a row: 64×64×1 → 4×4×32 → 64×64×1."""
  make: callable

  @nn.compact
  def __call__(self, x):
    for transposed, _, _, features in LAYERS:
      x = nn.relu(self.make(transposed, features)(x))
    return x


def layer_flops(transposed: bool, side: int, cin: int, cout: int) -> float:
  """Forward + input and kernel gradients of one example (3 × 2 flops per MAC)."""
  pixels = (2 * side) ** 2 if transposed else (side // 2) ** 2  # output pixels
  taps = 4 if transposed else 16  # useful taps per output pixel
  return 3 * 2 * pixels * taps * cin * cout


def layer_step(module: nn.Module, x: jax.Array):
  """A blocking fn() running jitted value_and_grad of the vmapped module on x."""
  params = module.init(jax.random.key(0), x[0])
  out = jax.eval_shape(jax.vmap(lambda e: module.apply(params, e)), x)
  r = jax.random.normal(jax.random.key(2), out.shape, out.dtype)

  def loss(p, xs):
    return jnp.sum(jax.vmap(lambda e: module.apply(p, e))(xs) * r)

  step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
  jax.block_until_ready(step(params, x))
  return lambda: jax.block_until_ready(step(params, x))


@contextlib.contextmanager
def models_convolutions(make):
  """Within it, the conv architectures of vae_jax.models build their convolutions with
  make(transposed, features, name) (one of CONTENDERS) instead of strided_conv's
  (kernel 4; initializers as the contender's own): trace and lower in there."""
  layers = types.SimpleNamespace(
      StridedConv=lambda features, name=None, **_: make(False, features, name),
      StridedConvTranspose=lambda features, name=None, **_: make(True, features, name))
  with contextlib.ExitStack() as stack:
    for module in (conv, reference_conv):
      stack.enter_context(mock.patch.object(module, 'strided_conv', layers))
    yield


def network_step(make, x: jax.Array):
  """A blocking fn() running the whole β-VAE's jitted loss and parameter gradients."""
  config = cases.experiment('beta_vae', 'conv')
  with models_convolutions(make):
    model = models.build(config.model, x.shape[1:], num_classes=0)
    params = model.init(jax.random.key(0), x[0])

    def loss(p):
      logits = jax.vmap(lambda e: model.apply(p, e)['logits'])(x)
      return jnp.sum(jax.nn.softplus(logits) - x * logits)

    step = jax.jit(jax.value_and_grad(loss))
    jax.block_until_ready(step(params))
  return lambda: jax.block_until_ready(step(params))


def compare(steps: dict, flops: float, rounds: int, names: list) -> list:
  """time(flax) / time(c) for the contenders after flax, then each one's GFLOP/s
  (medians over rounds), in the order of `names`; None for one not in `steps`."""
  times = timing.alternate(steps, rounds)
  ratio = lambda n: timing.median_ratio(times['flax'], times[n]) if n in times else None
  rate = lambda n: flops / statistics.median(times[n]) / 1e9 if n in times else None
  return [ratio(n) for n in names[1:]] + [rate(n) for n in names]


def torch_layer_step(transposed: bool, side: int, cin: int, cout: int, batch: int):
  """A fn() running PyTorch eager forward + backward of the same layer (k=4, s=2, pad 1)."""
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  cls = torch.nn.ConvTranspose2d if transposed else torch.nn.Conv2d
  layer = cls(cin, cout, 4, stride=2, padding=1)
  x = torch.randn(batch, cin, side, side, requires_grad=True)
  r = torch.randn(layer(x).shape)

  def step():
    layer.zero_grad(set_to_none=True)
    x.grad = None
    (layer(x) * r).sum().backward()
  return step


def measure(rounds: int, batch: int = 64, layers: tuple = tuple(LAYERS), whole: bool = True,
            with_torch: bool = None) -> tuple:
  """(header, rows, results): `layers` one by one, then (whole) the 8 layers
  chained and the whole network; with_torch adds PyTorch's CPU layers (default:
  where torch is installed)."""
  with_torch = timing.has_torch() if with_torch is None else with_torch
  names = list(CONTENDERS) + ['torch'] * with_torch
  rows, results = [], {}
  for transposed, side, cin, cout in layers:
    x = jax.random.normal(jax.random.key(1), (batch, side, side, cin))
    flops = batch * layer_flops(transposed, side, cin, cout)
    steps = {name: layer_step(make(transposed, cout), x) for name, make in CONTENDERS.items()}
    if with_torch:
      steps['torch'] = torch_layer_step(transposed, side, cin, cout, batch)
      steps['torch']()
    name = f'{"convT" if transposed else "conv"} {cin}->{cout} from {side}x{side}'
    rows.append([name] + compare(steps, flops, rounds, names))
  others = names[1:]
  if whole:
    x = jnp.round(jax.random.uniform(jax.random.key(1), (batch, 64, 64, 1)))
    flops = batch * sum(layer_flops(*layer) for layer in LAYERS)
    steps = {name: layer_step(Stack(make), x) for name, make in CONTENDERS.items()}
    rows.append(['8 layers chained'] + compare(steps, flops, rounds, names))
    steps = {name: network_step(make, x) for name, make in CONTENDERS.items()}
    rows.append(['whole beta-VAE'] + compare(steps, flops, rounds, names))
    results['conv_whole_net_speedup_vs_flax'] = rows[-1][1 + others.index('vae_jax.conv')]
  header = (['layer'] + [f'flax / {name} time' for name in others] +
            [f'{name} GFLOP/s' for name in names])
  return header, rows, results


def run(quick: bool, rounds: int = 7, batch: int = 64) -> tuple:
  """(table text, results dict)."""
  rounds, batch = (1, 4) if quick else (rounds, batch)
  # quick: one layer (as the accelerator check's) and the whole network
  header, rows, results = measure(rounds, batch, LAYERS[3:4] if quick else tuple(LAYERS))
  text = (f'batch {batch}, {rounds} rounds, jitted fwd+bwd of vmap(one example) '
          f'(torch: eager, NCHW); time ratios are medians over rounds\n\n')
  text += timing.table(header, rows)
  return text + f'\n\n2048x2048 fp32 matmul: {timing.matmul_gflops():.0f} GFLOP/s', results


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rounds', type=int, default=7)
  parser.add_argument('--batch', type=int, default=64)
  args = parser.parse_args()
  print(run(False, args.rounds, args.batch)[0])


if __name__ == '__main__':
  main()
