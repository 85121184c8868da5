"""vae_jax.conv computes exactly flax's nn.Conv / nn.ConvTranspose (stride 2, SAME)."""

import functools

import flax.linen as nn
import jax

jax.config.update('jax_numpy_rank_promotion', 'raise')

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np
import pytest

from vae_jax.models import strided_conv

# (transposed, input side, Cin, Cout, kernel size, stride)
CASES = [
    (False, 8, 32, 1, 4, 2), (False, 64, 1, 32, 4, 2), (False, 64, 32, 32, 4, 2),
    (True, 8, 3, 32, 4, 2), (True, 32, 32, 1, 4, 2),
    (True, 7, 32, 32, 4, 2),  # the 28×28 conv model's decoder starts at 7×7
    (False, 6, 3, 5, 3, 2), (True, 5, 2, 3, 6, 3),  # other kernel sizes and strides
]
BATCH = 2
# XLA's CPU compiler spends seconds on conv graphs at its default level; the
# convolutions themselves are library calls, computed the same either way.
FAST_COMPILE = {'xla_backend_optimization_level': 0}


def _modules(transposed, features, kernel_size, stride):
  """(flax reference, vae_jax.conv module) computing the same function."""
  args = (features, (kernel_size, kernel_size))
  kwargs = dict(strides=(stride, stride), padding='SAME')
  if transposed:
    return (nn.ConvTranspose(*args, **kwargs),
            strided_conv.StridedConvTranspose(features, kernel_size, stride))
  return nn.Conv(*args, **kwargs), strided_conv.StridedConv(features, kernel_size, stride)


def _close(actual, expected, tol):
  """max |actual - expected| <= tol · max |expected|, leaf by leaf."""
  for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
    a, e = np.asarray(a), np.asarray(e)
    assert a.shape == e.shape
    assert np.max(np.abs(a - e)) <= tol * max(np.max(np.abs(e)), 1e-30)


@pytest.mark.parametrize('transposed, side, cin, cout, kernel_size, stride', CASES)
def test_same_params_outputs_and_gradients(transposed, side, cin, cout, kernel_size,
                                           stride):
  reference, module = _modules(transposed, cout, kernel_size, stride)
  rng = np.random.default_rng(0)  # numpy, not jax.random: no eager compilations
  xs = rng.standard_normal((BATCH, side, side, cin), np.float32)
  out_shape = jax.eval_shape(lambda x: reference.init_with_output(jax.random.key(0), x)[0],
                             xs[0]).shape
  r = rng.standard_normal((BATCH,) + out_shape, np.float32)

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)  # one compilation per case
  def run(xs):
    """Both modules: init, and the vmapped outputs and gradients."""
    results = []
    for m in (reference, module):
      def loss(p, x, m=m):
        out = jax.vmap(lambda e: m.apply(p, e))(x)
        return jnp.sum(out * r), out
      params = m.init(jax.random.key(0), xs[0])
      shifted = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
      (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(shifted, xs)
      results.append((params, out, grads))
    return results

  (params_ref, out_ref, grads_ref), (params, out, grads) = run(xs)
  assert jax.tree.structure(params) == jax.tree.structure(params_ref)
  jax.tree.map(np.testing.assert_array_equal, params, params_ref)
  np.testing.assert_allclose(out, out_ref, rtol=1e-5, atol=1e-5)
  _close(grads, grads_ref, 1e-4)


@pytest.mark.parametrize('transposed', [False, True])
def test_one_example_and_batch_without_vmap(transposed):
  reference, module = _modules(transposed, 4, 4, 2)
  xs = np.random.default_rng(0).standard_normal((3, 8, 8, 2), np.float32)

  @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
  def run(xs):
    params = reference.init(jax.random.key(0), xs)
    return [(m.apply(params, xs[0]), m.apply(params, xs)) for m in (reference, module)]

  expected, actual = run(xs)  # [H, W, C] and [N, H, W, C]
  jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5),
               actual, expected)


def test_strided_conv_rejects_sides_not_multiple_of_stride():
  with pytest.raises(ValueError, match='multiples of the stride'):
    strided_conv.StridedConv(4).init(jax.random.key(0), jnp.zeros((7, 8, 1)))
