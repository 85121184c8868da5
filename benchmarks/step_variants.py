"""Variants of the train step side by side: one part swapped, the rest as it is.

    python -m benchmarks.step_variants [--quick] [--cases=mlp_b128,mlp_b1024] [--likelihood_only]

Each variant is the real multi-step dispatch (`steps.train_steps`, driven as
`benchmarks.train_step.JaxTrainer` drives it) compiled with ONE part
replaced while it is traced; 'as is' is the code unchanged. All variants of
a case alternate round after round in one process; the figure is the median
over rounds of time(as is) / time(variant) (> 1: the variant is faster).
A second table times the Bernoulli log-likelihood and its gradient alone,
both formulas (`--likelihood_only`: that table only).

Variants (none but 'as is' is what vae_jax runs; each exists to measure a
choice, see benchmarks/README.md):
- `as is again (control)`: 'as is' compiled a second time, its ratio the
  noise floor of the table;
- `likelihood: written out, flattened`: the Bernoulli log-likelihood as
  x·l − (max(l, 0) + log1p(exp(−|l|))) on the flattened pixels instead of
  `likelihoods.bernoulli_log_prob`'s x·l − jax.nn.softplus(l) (equal values to
  rounding, one exp per pixel in the derivative; other rounding, so other
  training trajectories);
- `binarize: 16-bit draws`, `binarize: 8-bit draws`: the dynamic
  binarization x ~ Bernoulli(p) from 2 or 4 uniforms cut out of each 32-bit
  threefry word instead of one float uniform per pixel (p quantized to
  1/65536 or 1/256: other random streams, other probabilities);
- `binarize: rbg key`: the same Bernoulli draw from an 'rbg' key (XLA's
  RngBitGenerator) made from the step's data key (other random streams);
- `adam: one flattened update`: optax.flatten around the optimizer: every
  parameter in one vector, one Adam update (equal values, `tests/test_benchmarks.py`).
"""

import argparse
import contextlib
import functools
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import cases, timing
from benchmarks.train_step import STEPS_PER_ROUND, JaxTrainer
from vae_jax import data as data_lib
from vae_jax import steps
from vae_jax import train_state
from vae_jax.models import likelihoods

CASES = ('mlp_b128', 'mlp_b1024', 'fc_b64')


def written_out_bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
  """Σ_d x·l − softplus(l) with softplus(l) = max(l, 0) + log1p(exp(−|l|)) written
  out on the flattened pixels (|l| as max(l, −l): the derivative is x − σ(l)
  everywhere, x − ½ at the kink l = 0). Plain autodiff of it costs one exp per
  pixel where jax.nn.softplus's derivative rule adds two."""
  x, logits = jnp.ravel(x), jnp.ravel(logits)
  magnitude = jnp.maximum(logits, -logits)
  softplus = jnp.maximum(logits, 0.0) + jnp.log1p(jnp.exp(-magnitude))
  return jnp.sum(x * logits - softplus)


def narrow_uniform_bits(key: jax.Array, shape: tuple, bits: int) -> jax.Array:
  """Integers uniform in [0, 2^bits), `shape`, 32/bits of them per threefry word."""
  per_word = 32 // bits
  size = int(np.prod(shape))
  words = jax.random.bits(key, (-(-size // per_word),), jnp.uint32)
  mask = jnp.uint32(2**bits - 1)
  parts = [(words >> jnp.uint32(bits * i)) & mask for i in range(per_word)]
  return jnp.concatenate(parts)[:size].reshape(shape)


def narrow_bernoulli(key: jax.Array, p: jax.Array, bits: int) -> jax.Array:
  """x ~ Bernoulli(p) with p quantized to multiples of 2^−bits: u < p·2^bits."""
  u = narrow_uniform_bits(key, p.shape, bits).astype(jnp.float32)
  return u < p * float(2**bits)


def _binarize_with(draw):
  """A data_lib.get_batch whose dynamic binarization is draw(key, p) -> bool."""
  def get_batch(spec, arrays, split, indices, key):
    x, y = data_lib.gather(spec, arrays, split, indices)
    if spec.binarize == 'dynamic':
      x = draw(key, x).astype(jnp.float32)
    return x, y
  return get_batch


def _rbg_bernoulli(key: jax.Array, p: jax.Array) -> jax.Array:
  rbg = jax.random.wrap_key_data(jax.random.bits(key, (4,), jnp.uint32), impl='rbg')
  return jax.random.bernoulli(rbg, p)


def _flattened_optimizer(spec) -> optax.GradientTransformation:
  return optax.flatten(train_state.adam(*spec.adam))


VARIANTS = {  # name: (context manager factory applied while tracing, needs binarization)
    'as is': (contextlib.nullcontext, False),
    # The same code compiled again: its ratio to 'as is' is the noise of the
    # measurement (and any bias of its place in the round).
    'as is again (control)': (contextlib.nullcontext, False),
    'likelihood: written out, flattened': (
        lambda: mock.patch.object(likelihoods, 'bernoulli_log_prob',
                                  written_out_bernoulli_log_prob),
        False),
    'binarize: 16-bit draws': (
        lambda: mock.patch.object(data_lib, 'get_batch', _binarize_with(
            functools.partial(narrow_bernoulli, bits=16))), True),
    'binarize: 8-bit draws': (
        lambda: mock.patch.object(data_lib, 'get_batch', _binarize_with(
            functools.partial(narrow_bernoulli, bits=8))), True),
    'binarize: rbg key': (
        lambda: mock.patch.object(data_lib, 'get_batch', _binarize_with(_rbg_bernoulli)), True),
    'adam: one flattened update': (
        lambda: mock.patch.object(train_state.StepSpec, 'optimizer',
                                  property(_flattened_optimizer)), False),
}


def likelihood_alone(batch: int, rounds: int, calls: int = 20) -> list:
  """[(contender, time(softplus form) / time(contender))]: value and gradient
  of the batch mean Bernoulli log-likelihood over [batch, 28, 28, 1] logits alone,
  `calls` jitted calls per round; the softplus form (`likelihoods.bernoulli_log_prob`)
  twice (its second copy the control)."""
  x = (jax.random.uniform(jax.random.key(0), (batch, 28, 28, 1)) < 0.5).astype(jnp.float32)
  logits = jax.random.normal(jax.random.key(1), x.shape)
  forms = {'jax.nn.softplus form': likelihoods.bernoulli_log_prob,
           'jax.nn.softplus form again (control)': likelihoods.bernoulli_log_prob,
           'written out, flattened': written_out_bernoulli_log_prob}
  fns = {}
  for name, form in forms.items():
    grad = jax.jit(jax.value_and_grad(
        lambda l, form=form: jnp.mean(jax.vmap(form)(x, l))))  # a new function: own compile
    jax.block_until_ready(grad(logits))
    fns[name] = lambda grad=grad: [jax.block_until_ready(grad(logits)) for _ in range(calls)]
  times = timing.alternate(fns, rounds)
  return [(name, timing.median_ratio(times['jax.nn.softplus form'], times[name]))
          for name in forms]


class VariantTrainer(JaxTrainer):
  """JaxTrainer whose state init and steps are traced inside `patch()`.

  Its own jit objects (new functions, so no trace is shared with another
  variant), called inside the patch: each variant compiles its own programs.
  """

  def __init__(self, config, dataset, patch):
    self.patch = patch
    init_fn, steps_fn = train_state.init_state.__wrapped__, steps.train_steps.__wrapped__
    with patch():
      init = jax.jit(lambda spec, seed: init_fn(spec, seed), static_argnames='spec')
      self._train_steps = jax.jit(
          lambda state, arrays, indices, hparams, spec: steps_fn(
              state, arrays, indices, hparams, spec),
          static_argnames='spec', donate_argnames='state')
      with mock.patch.object(train_state, 'init_state', init):
        super().__init__(config, dataset)

  def steps(self, num: int) -> float:
    # In the patch: a dispatch of a new length traces (and compiles) again.
    with self.patch(), mock.patch.object(steps, 'train_steps', self._train_steps):
      return super().steps(num)


def run(quick: bool, rounds: int = 9, case_names=CASES, variants=tuple(VARIANTS)) -> tuple:
  """(table text, results dict) of `variants` ('as is' always) on `case_names`."""
  rows, results = [], {}
  for case in case_names:
    config = cases.step_config(case)
    dataset = cases.dataset(config)
    num = 2 if quick else STEPS_PER_ROUND[case]
    binarizes = dataset.spec.binarize == 'dynamic'
    trainers = {name: VariantTrainer(config, dataset, patch)
                for name, (patch, needs_binarization) in VARIANTS.items()
                if (name == 'as is' or name in variants) and
                (binarizes or not needs_binarization)}
    fns = {name: (lambda t=t: t.steps(num)) for name, t in trainers.items()}
    for fn in fns.values():
      fn()  # compile
    times = timing.alternate(fns, 1 if quick else rounds)
    base = float(np.median(times['as is'])) / num
    for name in trainers:
      speed = timing.median_ratio(times['as is'], times[name])
      rows.append([case, name, speed, 1.0 / speed - 1.0])
      results[f'{case}_variant_speed: {name}'] = speed
    results[f'{case}_variant_base_ms'] = base * 1e3
    jax.clear_caches()
  text = timing.table(['case', 'variant', 'speed vs as is (time as is / variant)',
                       'step time change'], rows)
  rows = []
  for batch in (128, 1024):
    for name, speed in likelihood_alone(batch, 3 if quick else 4 * rounds, 2 if quick else 20):
      rows.append([batch, name, speed])
      results[f'likelihood_alone_b{batch}_speed: {name}'] = speed
  text += ('\n\nBernoulli log-likelihood and its gradient alone ([batch, 28, 28, 1] logits, '
           'the layout of the model):\n\n')
  text += timing.table(['batch', 'formula', 'speed vs the softplus form'], rows)
  return text, results


if __name__ == '__main__':
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('--cases', default=','.join(CASES))
  parser.add_argument('--variants', default=','.join(VARIANTS),
                      help="comma-separated subset ('as is' is always run)")
  parser.add_argument('--rounds', type=int, default=9)
  parser.add_argument('--likelihood_only', action='store_true',
                      help='only the likelihood-alone table')
  args = parser.parse_args()
  if args.likelihood_only:
    for batch_ in (128, 1024):
      print(timing.table(['batch', 'formula', 'speed vs the softplus form'],
                         [[batch_, n, v] for n, v in likelihood_alone(batch_, 4 * args.rounds)]))
    raise SystemExit(0)
  unknown = set(args.variants.split(',')) - set(VARIANTS)
  if unknown:
    parser.error(f'unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}')
  print(run(args.quick, args.rounds, tuple(args.cases.split(',')),
            tuple(args.variants.split(',')))[0])
