"""Strided 'SAME' convolutions whose forward and backward passes are fast on CPU.

XLA's CPU backend runs a plain convolution (strided or not) and its kernel
gradient at a good fraction of matmul speed, but a convolution with a dilated
input (`lhs_dilation`) on a slow generic path: the forward pass of
`lax.conv_transpose`, the input gradient of a strided conv and the kernel
gradient of a transposed conv. On the conv β-VAE's layers (batch 64, 2-core
CPU) `nn.ConvTranspose(32, (4, 4), strides=(2, 2), padding='SAME')` runs its
forward + backward at 6-11 GFLOP/s and `nn.Conv`'s input gradient takes most
of its time (benchmarks/conv_formulations.py).

`StridedConv` and `StridedConvTranspose` compute the same functions as

  nn.Conv(features, (k, k), strides=(s, s), padding='SAME')
  nn.ConvTranspose(features, (k, k), strides=(s, s), padding='SAME')

with the same parameters ('kernel' [k, k, Cin, Cout], 'bias' [Cout]) and
initializers (the same key gives the same values), without a dilated conv in
any pass:

- A transposed conv is a stride-1 conv plus depth-to-space (sub-pixel form,
  `_conv_transpose`): output pixel (s·i + p, s·j + q) only sees a few input
  pixels around (i, j), through the kernel taps fixed by its parity (p, q)
  (`_transpose_taps`). So one stride-1 conv of the padded input with a
  [D, D, Cin, s·s·Cout] kernel holding every parity's taps (and zeros; D = 3
  for k=4, s=2, 2.25× the useful flops) gives all s·s parities at once.
  Its autodiff (kernel gradient) is a stride-1 conv's: fast.
- The strided conv is lax's (bit-identical forward to nn.Conv); autodiff
  gives the kernel gradient.
- Input gradients use that the two are each other's adjoint in x, with the
  kernel flipped and its in/out axes swapped (`_input_grad_by_adjoint`):
  dx of the strided conv = `_conv_transpose` of the output gradient, dx of
  the transposed conv = the strided conv of the output gradient.

A pure im2col + matmul formulation (slices, concatenate, one dot) was slower
here: materializing the patches is memory-bound and cost more than lax's
convolutions (see the benchmark's docstring).

The modules take ONE example [H, W, C] (`jax.vmap` it; the kernel gradient
is then one whole-batch op) or a batch [N, H, W, C]. StridedConv wants H and
W multiples of the stride; the transposed conv takes any size. Forward-mode
autodiff (jvp) is not supported (`jax.custom_vjp`); reverse mode is.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_DIMS = ('NHWC', 'HWIO', 'NHWC')


def _conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """lax's strided 'SAME' conv, x [N, H, W, Cin], kernel [k, k, Cin, Cout]."""
  return lax.conv_general_dilated(x, kernel, (stride, stride), 'SAME',
                                  dimension_numbers=_DIMS)


def _flip_swap(kernel: jax.Array) -> jax.Array:
  """Kernel [k, k, A, B] → [k, k, B, A], spatially flipped (its own inverse)."""
  return jnp.swapaxes(kernel[::-1, ::-1], 2, 3)


def _transpose_taps(kernel_size: int, stride: int) -> tuple:
  """Sub-pixel structure of lax.conv_transpose(…, 'SAME') along one axis.

  conv_transpose dilates the input by s and runs a stride-1 conv with
  padding (pad_lo, pad_hi), kernel unflipped: out[o] = Σ_t xd[o + t - pad_lo]·w[t]
  with xd[s·i] = x[i] and zero elsewhere. For o = s·i + p only the taps
  t ≡ pad_lo - p (mod s) hit a non-zero, namely x[i + d], d = (p + t - pad_lo) / s.

  Returns:
    (lo, select): after padding x by lo in front, window j reads x[i + j - lo];
    select [D, s, k] is 1 where window j feeds output parity p through tap t.
  """
  pad_len = kernel_size + stride - 2
  pad_lo = kernel_size - 1 if stride > kernel_size - 1 else -(-pad_len // 2)
  offsets = {(p, t): (p + t - pad_lo) // stride
             for p in range(stride) for t in range(kernel_size)
             if (p + t - pad_lo) % stride == 0}
  lo = -min(offsets.values())
  select = np.zeros((lo + max(offsets.values()) + 1, stride, kernel_size), np.float32)
  for (p, t), d in offsets.items():
    select[d + lo, p, t] = 1.0
  return lo, select


def _conv_transpose(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """lax.conv_transpose(x, kernel, (s, s), 'SAME') as a stride-1 conv + depth-to-space.

  Args:
    x: [N, H, W, Cin].
    kernel: [k, k, Cin, Cout] (not flipped, as flax's transpose_kernel=False).
    stride: s.

  Returns:
    [N, s·H, s·W, Cout].
  """
  n, height, width, _ = x.shape
  features = kernel.shape[-1]
  lo, select = _transpose_taps(kernel.shape[0], stride)
  hi = select.shape[0] - 1 - lo
  select = jnp.asarray(select, kernel.dtype)
  # weights[j, i, c, p, q, o] = kernel[tap(j, p), tap(i, q), c, o], or 0.
  weights = jnp.einsum('jpt,iqu,tuco->jicpqo', select, select, kernel)
  weights = weights.reshape(weights.shape[:3] + (-1,))
  y = lax.conv_general_dilated(x, weights, (1, 1), ((lo, hi), (lo, hi)),
                               dimension_numbers=_DIMS)
  y = y.reshape(n, height, width, stride, stride, features)
  return jnp.transpose(y, (0, 1, 3, 2, 4, 5)).reshape(
      n, stride * height, stride * width, features)


def _input_grad_by_adjoint(forward, adjoint):
  """forward(x, kernel, stride), its input gradient computed by `adjoint`.

  Autodiff gives the kernel gradient (batched over the whole batch under
  `jax.vmap`, as for lax itself); a `jax.custom_vjp` that sees only x gives
  dx = adjoint(g, _flip_swap(kernel), stride). The two forward passes are the
  same computation (XLA computes it once) and the second enters as
  `y - stop_gradient(y)`, exactly zero.
  """

  @functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
  def input_path(x, kernel, stride):
    return forward(x, kernel, stride)

  def input_path_fwd(x, kernel, stride):
    return forward(x, kernel, stride), kernel

  def input_path_bwd(stride, kernel, g):
    return adjoint(g, _flip_swap(kernel), stride), None

  input_path.defvjp(input_path_fwd, input_path_bwd)

  def fn(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    by_kernel = forward(lax.stop_gradient(x), kernel, stride)
    by_input = input_path(x, lax.stop_gradient(kernel), stride)
    return by_kernel + (by_input - lax.stop_gradient(by_input))

  fn.__doc__ = forward.__doc__
  return fn


# The strided conv and the transposed conv are each other's adjoint in x
# (with the kernel flipped and its in/out axes swapped).
strided_conv = _input_grad_by_adjoint(_conv, _conv_transpose)
strided_conv_transpose = _input_grad_by_adjoint(_conv_transpose, _conv)


class _Strided(nn.Module):
  """Shared parameters and batching of the two modules below."""
  features: int
  kernel_size: int = 4
  strides: int = 2
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

  def _apply(self, fn, x: jax.Array) -> jax.Array:
    if x.ndim not in (3, 4):
      raise ValueError(f'{type(self).__name__}: want [H, W, C] or [N, H, W, C], '
                       f'got shape {x.shape}')
    k = self.kernel_size
    kernel = self.param('kernel', self.kernel_init, (k, k, x.shape[-1], self.features),
                        jnp.float32)
    bias = self.param('bias', self.bias_init, (self.features,), jnp.float32)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias)
    y = fn(x if x.ndim == 4 else x[None], kernel, self.strides)
    y = y if x.ndim == 4 else y[0]
    return y + jnp.reshape(bias, (1,) * (y.ndim - 1) + bias.shape)


class StridedConv(_Strided):
  """nn.Conv(features, (k, k), strides=(s, s), padding='SAME'), fast backward on CPU."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    height, width = x.shape[-3:-1]
    if height % self.strides or width % self.strides:
      raise ValueError(f'StridedConv: input sides {(height, width)} must be multiples '
                       f'of the stride {self.strides}')
    return self._apply(strided_conv, x)


class StridedConvTranspose(_Strided):
  """nn.ConvTranspose(features, (k, k), strides=(s, s), padding='SAME'), fast on CPU."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return self._apply(strided_conv_transpose, x)
