"""Where a train step's time goes: its parts timed alone, next to the whole step.

For each case of cases.STEP_CASES, alternating round after round in one
process (medians over rounds, milliseconds per step):
- `train step`: the real step as the loop runs it (benchmarks.train_step);
- `data`: the batch gather (+ dSprites rendering) and dynamic binarization;
- `loss + gradients`: jitted value_and_grad of steps.batch_loss on a fixed
  batch (model, likelihood, KL, the reparameterization draws);
- `optimizer`: the Adam update and its application to the parameters;
- `network alone`: forward and backward of the encoder and decoder only
  (x → posterior mean → decoder output, a fixed random cotangent on the
  output): no sampling, no likelihood, no KL;
- `likelihood + gradient`: the Bernoulli log-likelihood of the batch and its
  gradient with respect to the logits, alone (784 or 4096 pixels per example);
- `dense matmuls alone` (MLP cases): the step's GEMMs, forward, input and
  weight gradients of every Dense layer, on random arrays of their shapes;
  their GFLOP/s are the most the step's matmul work can reach on this
  device. The parts overlap a little when run as one program (XLA fuses
  across them), so their sum differs from the whole step.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import cases, timing
from benchmarks.train_step import JaxTrainer, STEPS_PER_ROUND
from vae_jax import data as data_lib
from vae_jax import models, steps
from vae_jax import train_state
from vae_jax.models import likelihoods
from vae_jax.run import parallel


def _dense_sizes(config, image_shape: tuple) -> list:
  """[(inputs, outputs)] of the MLP's Dense layers, input layer first."""
  model = config.model
  pixels = int(np.prod(image_shape))
  hidden = list(model.hidden_dims)
  decoder_hidden = list(model.decoder_hidden_dims or hidden[::-1])
  encoder = [pixels] + hidden + [2 * model.latent_dim]
  decoder = [model.latent_dim] + decoder_hidden + [pixels]
  return list(zip(encoder[:-1], encoder[1:])) + list(zip(decoder[:-1], decoder[1:]))


def _matmuls_alone(config, image_shape: tuple, repeats: int):
  """(fn() running the step's GEMMs `repeats` times, their FLOPs per step)."""
  batch = config.data.batch_size
  sizes = _dense_sizes(config, image_shape)
  rng = np.random.default_rng(0)
  arrays = [(jnp.asarray(rng.standard_normal((batch, i), np.float32)),
             jnp.asarray(rng.standard_normal((i, o), np.float32)),
             jnp.asarray(rng.standard_normal((batch, o), np.float32))) for i, o in sizes]

  @jax.jit
  def gemms(arrays):
    out = []
    for layer, (x, w, g) in enumerate(arrays):
      out += [x @ w, x.T @ g]  # forward, weight gradient
      if layer:  # the input layer's input gradient is never needed
        out.append(g @ w.T)
    return out

  def run():
    for _ in range(repeats):
      result = gemms(arrays)
    jax.block_until_ready(result)

  flops = sum(2 * batch * i * o * (3 if layer else 2) for layer, (i, o) in enumerate(sizes))
  return run, flops


def _parts(case: str, num: int) -> tuple:
  """({part: fn() doing `num` steps' worth of it}, {part: FLOPs per step}, batch)."""
  config = cases.step_config(case)
  dataset = cases.dataset(config)
  trainer = JaxTrainer(config, dataset)
  spec, hparams, batch = trainer.spec, trainer.hparams, config.data.batch_size
  key = jax.random.key(0)
  indices = parallel.shard_batch(dataset.train_indices(config.seed, 0, batch), None)
  get_batch = jax.jit(data_lib.get_batch, static_argnums=(0, 2))
  x, y = get_batch(dataset.spec, dataset.arrays, 'train', indices, key)
  fixed = train_state.init_state(spec, config.seed)  # the trainer donates (consumes) its own
  params = fixed.params
  grad_fn = jax.jit(jax.value_and_grad(
      lambda p: steps.batch_loss(p, x, y, key, hparams, jnp.int32(0), spec)[0]))
  grads = grad_fn(params)[1]

  @functools.partial(jax.jit, donate_argnums=(0, 1))  # in place, as in the train step
  def update(params, opt_state, grads):
    updates, opt_state = spec.optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, jax.tree.map(lambda u: -1e-3 * u, updates)), opt_state

  updated = [train_state.init_state(spec, config.seed)]

  def optimizer():
    state = updated.pop()
    params_, opt_state_ = update(state.params, state.opt_state, grads)
    updated.append(state.replace(params=params_, opt_state=opt_state_))
    return params_

  cotangent = jax.random.normal(jax.random.key(1), x.shape[1:])

  def network_loss(p):
    def one(x_, y_):
      mu, _ = models.encode_one(spec.model, p, x_, y_)
      out = models.decode_one(spec.model, p, mu, y_)
      return jnp.vdot(next(iter(out.values())), cotangent)
    return jnp.mean(jax.vmap(one)(x, y))

  network = jax.jit(jax.value_and_grad(network_loss))
  logits = jax.random.normal(jax.random.key(2), x.shape)
  likelihood = jax.jit(jax.value_and_grad(
      lambda l: jnp.mean(jax.vmap(likelihoods.bernoulli_log_prob)(x, l))))

  def repeat(fn):
    def run():
      for _ in range(num):
        out = fn()
      jax.block_until_ready(out)
    return run

  parts = {
      'train step': lambda: trainer.steps(num),
      'data': repeat(lambda: get_batch(dataset.spec, dataset.arrays, 'train', indices, key)),
      'loss + gradients': repeat(lambda: grad_fn(params)),
      'optimizer': repeat(optimizer),
      'network alone': repeat(lambda: network(params)),
  }
  if config.model.likelihood == 'bernoulli':
    parts['likelihood + gradient'] = repeat(lambda: likelihood(logits))
  model_flops = cases.train_flops(config, dataset.spec.image_shape)
  flops = {'train step': model_flops, 'loss + gradients': model_flops,
           'network alone': model_flops}
  if config.model.architecture == 'mlp':
    parts['dense matmuls alone'], flops['dense matmuls alone'] = _matmuls_alone(
        config, dataset.spec.image_shape, num)
  return parts, flops


def run(quick: bool, rounds: int = 7) -> tuple:
  """(table text, results dict)."""
  matmul = timing.matmul_gflops()
  rows, results = [], {}
  for case in cases.step_cases(quick):
    num = 2 if quick else STEPS_PER_ROUND[case]
    parts, flops = _parts(case, num)
    for fn in parts.values():
      fn()  # compile / warm up
    times = timing.alternate(parts, 1 if quick else rounds)
    step_seconds = float(np.median(times['train step'])) / num
    for part, seconds in times.items():
      per_step = float(np.median(seconds)) / num
      gflops = flops[part] / per_step / 1e9 if part in flops else None
      rows.append([case, part, per_step * 1e3, per_step / step_seconds, gflops,
                   gflops and gflops / matmul])
      results[f'{case}_profile_ms: {part}'] = per_step * 1e3
    jax.clear_caches()
  text = timing.table(['case', 'part', 'ms per step', 'share of the step', 'GFLOP/s',
                       'fraction of matmul rate'], rows)
  return text + f'\n\nmatmul rate (2048² fp32, best of 5): {matmul:.0f} GFLOP/s', results


if __name__ == '__main__':
  import sys  # pylint: disable=g-import-not-at-top
  print(run(quick='--quick' in sys.argv)[0])
