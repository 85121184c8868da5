"""Train state and the jitted train and eval steps (the loop is in train.py).

Rules (see DESIGN.md):
1. Every random number comes from `fold_in(key(seed), step)`; nothing is
   split in the Python loop, so a resumed run draws what an uninterrupted one
   would.
2. The ELBO is written for ONE example and `jax.vmap`ped over the batch; the
   batch mean is taken once, in `batch_loss`.
3. `train_step` is compiled once per run: static shapes (the last partial batch
   of an epoch is never used) and every numeric hyperparameter (β, γ, C_max,
   learning rate, schedule lengths) enters as an array, so a population of runs
   can later be vmapped over them without recompiling.
"""

import dataclasses
import functools

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vae_jax import data as data_lib
from vae_jax import models, objectives

# fold_in streams of key(seed) that no train step (0 <= step < 2**31 - 3) uses.
INIT_STREAM, EVAL_STREAM, IMAGE_STREAM = 2**31 - 1, 2**31 - 2, 2**31 - 3


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: number of updates applied
  seed: jax.Array  # int32 scalar: keys are fold_in(key(seed), step)
  params: dict
  opt_state: optax.OptState


@dataclasses.dataclass(frozen=True)
class StepSpec:
  """Everything static the steps need: hashable, so jit keys its cache on it."""
  model: models.VAE
  data: data_lib.DataSpec
  objective: str
  likelihood: str
  lr_schedule: str
  optimizer: optax.GradientTransformation
  tc_estimator: str = 'mws'  # beta_tc only: see objectives.total_correlation


def make_optimizer(train_config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam's scaling (optionally after global-norm clipping); the step applies −lr."""
  return _optimizer(float(train_config.adam_b1), float(train_config.adam_b2),
                    float(train_config.adam_eps), float(train_config.grad_clip_norm))


@functools.lru_cache(maxsize=None)
def _optimizer(b1: float, b2: float, eps: float,
               clip_norm: float) -> optax.GradientTransformation:
  # Cached: equal settings give the same object, so equal StepSpecs reuse the
  # compiled steps (runs in one process, tests, sweep groups).
  scale = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)
  if clip_norm > 0:
    return optax.chain(optax.clip_by_global_norm(clip_norm), scale)
  return scale


def make_hparams(config: ml_collections.ConfigDict, dataset_size: int = 1) -> dict:
  """The numeric hyperparameters as float32 arrays (vmappable in sweeps).

  `dataset_size` (the number of training examples) enters the β-TCVAE
  total-correlation estimate only.
  """
  values = {
      'learning_rate': config.train.learning_rate,
      'warmup_steps': config.train.warmup_steps,
      'num_steps': config.train.num_steps,
      'beta': config.objective.beta,
      'gamma': config.objective.gamma,
      'capacity_max': config.objective.capacity_max,
      'capacity_steps': config.objective.capacity_steps,
      'dataset_size': dataset_size,
  }
  return {k: jnp.asarray(v, jnp.float32) for k, v in values.items()}


def make_spec(config: ml_collections.ConfigDict, dataset: data_lib.Dataset) -> StepSpec:
  model = models.build(config.model, dataset.spec.image_shape, dataset.spec.num_classes)
  return StepSpec(model=model, data=dataset.spec, objective=config.objective.name,
                  likelihood=config.model.likelihood,
                  lr_schedule=config.train.lr_schedule,
                  optimizer=make_optimizer(config.train),
                  tc_estimator=config.objective.tc_estimator)


@functools.partial(jax.jit, static_argnames='spec')
def init_state(spec: StepSpec, seed: int) -> TrainState:
  """Fresh parameters and optimizer state from `key(seed)` (jitted: one compile, not one per op)."""
  height, width, channels = spec.data.image_shape
  x = jnp.zeros((height, width, channels), jnp.float32)
  y = jnp.zeros((), jnp.int32)
  init_key = jax.random.fold_in(jax.random.key(seed), INIT_STREAM)
  params = spec.model.init(init_key, x, y)
  return TrainState(step=jnp.zeros((), jnp.int32), seed=jnp.asarray(seed, jnp.int32),
                    params=params, opt_state=spec.optimizer.init(params))


def learning_rate(schedule: str, step: jax.Array, hparams: dict) -> jax.Array:
  """Peak lr × linear warm-up × (cosine decay to 0 at num_steps | constant)."""
  step = step.astype(jnp.float32)
  warmup = jnp.where(hparams['warmup_steps'] > 0,
                     jnp.minimum(1.0, (step + 1.0) / jnp.maximum(hparams['warmup_steps'], 1.0)),
                     1.0)
  if schedule == 'cosine':
    frac = jnp.minimum(step / jnp.maximum(hparams['num_steps'], 1.0), 1.0)
    warmup = warmup * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
  return hparams['learning_rate'] * warmup


def step_keys(seed: jax.Array, step: jax.Array):
  """(data key, sampling key) of a step: fold_in(key(seed), step), split once."""
  data_key, sample_key = jax.random.split(jax.random.fold_in(jax.random.key(seed), step))
  return data_key, sample_key


def model_fns(spec: StepSpec, params, y: jax.Array):
  """(encode(x) -> (mu, logvar), decode(z) -> likelihood params) for ONE example, label y bound."""
  model = spec.model
  encode = lambda x: model.apply(params, x, y, method=models.VAE.encode)
  decode = lambda z: model.apply(params, z, y, method=models.VAE.decode)
  return encode, decode


def example_terms(params, x, y, key, spec: StepSpec) -> dict:
  """ELBO terms of ONE example (recon, kl, nelbo, kl_per_dim), in nats."""
  encode, decode = model_fns(spec, params, y)
  return objectives.example_terms(encode, decode, spec.likelihood, x, key,
                                  stochastic=spec.objective != 'ae')


def example_loss(params, x, y, key, hparams, step, spec: StepSpec):
  """(loss, terms) of ONE example, in nats."""
  terms = example_terms(params, x, y, key, spec)
  return objectives.objective_loss(spec.objective, terms, hparams, step), terms


def batch_loss(params, x, y, key, hparams, step, spec: StepSpec):
  """Batch mean of the per-example loss (vmapped), with the mean terms."""
  keys = jax.random.split(key, x.shape[0])
  per_example = jax.vmap(example_loss, in_axes=(None, 0, 0, 0, None, None, None))
  loss, terms = per_example(params, x, y, keys, hparams, step, spec)
  z, mu, logvar = terms.pop('z'), terms.pop('mu'), terms.pop('logvar')
  if spec.objective == 'beta_tc':
    tc = objectives.total_correlation(z, mu, logvar, hparams['dataset_size'],
                                      spec.tc_estimator)
    loss = loss + (hparams['beta'] - 1.0) * tc
    terms['tc'] = tc
  return jnp.mean(loss), jax.tree.map(lambda t: jnp.mean(t, axis=0), terms)


def _train_step(state: TrainState, arrays: dict, indices: jax.Array, hparams: dict,
                spec: StepSpec):
  """One Adam update on the batch `indices`; returns (state, metrics)."""
  data_key, sample_key = step_keys(state.seed, state.step)
  x, y = data_lib.get_batch(spec.data, arrays, 'train', indices, data_key)
  grad_fn = jax.value_and_grad(batch_loss, has_aux=True)
  (loss, terms), grads = grad_fn(state.params, x, y, sample_key, hparams, state.step, spec)
  updates, opt_state = spec.optimizer.update(grads, state.opt_state, state.params)
  lr = learning_rate(spec.lr_schedule, state.step, hparams)
  params = jax.tree.map(lambda p, u: p - lr * u, state.params, updates)
  metrics = {'loss': loss, 'recon': terms['recon'], 'kl': terms['kl'],
             'nelbo': terms['nelbo'], 'grad_norm': optax.tree.norm(grads),
             'learning_rate': lr}
  if spec.objective == 'beta_tc':
    metrics['tc'] = terms['tc']
  if spec.objective == 'capacity':
    metrics['capacity'] = objectives.capacity(
        state.step, hparams['capacity_max'], hparams['capacity_steps'])
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
  return new_state, metrics


train_step = jax.jit(_train_step, static_argnames='spec', donate_argnames='state')


@functools.partial(jax.jit, static_argnames='spec', donate_argnames='state')
def train_steps(state: TrainState, arrays: dict, indices: jax.Array, hparams: dict,
                spec: StepSpec):
  """`train_step` for each row of indices [K, B]: K updates in one dispatch
  (no host round trip between them); metrics stacked [K]."""
  step = lambda s, i: _train_step(s, arrays, i, hparams, spec)
  return _scan(step, state, indices, spec)


@functools.partial(jax.jit, static_argnames='spec', donate_argnames='states')
def population_train_step(states: TrainState, arrays: dict, indices: jax.Array,
                          hparams: dict, spec: StepSpec):
  """`train_step` of M runs at once: states, indices [M, B] and hparams stacked
  on a leading member axis, the data shared; one compiled program (sweeps)."""
  step = functools.partial(_train_step, spec=spec)
  return jax.vmap(step, in_axes=(0, None, 0, 0))(states, arrays, indices, hparams)


@functools.partial(jax.jit, static_argnames=('spec', 'loop_members'),
                   donate_argnames='states')
def population_train_steps(states: TrainState, arrays: dict, indices: jax.Array,
                           hparams: dict, spec: StepSpec, loop_members: bool = False):
  """`population_train_step` for each row of indices [K, M, B]: K updates of
  the M runs in one dispatch; metrics stacked [K, M].

  loop_members=False vmaps the step over the members (the accelerator form);
  True writes the M members' steps one after another into the one program
  (see `loop_members`), each exactly a single run's step.
  """
  one = functools.partial(_train_step, spec=spec)
  if not loop_members:
    step = jax.vmap(one, in_axes=(0, None, 0, 0))
    return _scan(lambda s, i: step(s, arrays, i, hparams), states, indices, spec)
  num = indices.shape[1]
  each = [member(hparams, m) for m in range(num)]

  def step(carry, i):
    out = [one(s, arrays, i[m], h) for m, (s, h) in enumerate(zip(carry, each))]
    return tuple(o[0] for o in out), stack([o[1] for o in out])

  carry = tuple(member(states, m) for m in range(num))  # unstacked once per call
  carry, metrics = _scan(step, carry, indices, spec)
  return stack(list(carry)), metrics


def loop_members(mode: str, spec: StepSpec) -> bool:
  """Whether a population (config.train.population = `mode`) loops over its members.

  'auto' loops for dense models on CPU. There XLA gives the vmapped step's
  weight gradients a transposed layout that it then copies, at every step
  (a population of ONE 1200-unit MLP runs at half a single run's speed), and
  the members, each already filling the cores, gain little from sharing a
  program: looped, 8 members of the β sweep run at 0.96–1.01× the speed of 8
  runs one after another, vmapped at 0.49–0.55× (`python -m
  benchmarks.sweep_speedup`, two runs);
  the 18-member beta_sweep.py trains ~2× faster looped than vmapped.
  Conv models keep vmap (their unrolled steps would compile M times over);
  accelerators keep vmap (one member leaves them mostly idle).
  """
  if mode == 'auto':
    return jax.default_backend() == 'cpu' and not spec.model.encoder.conv_channels
  return mode == 'loop'


def _scan(step, state, indices: jax.Array, spec: StepSpec):
  """lax.scan of `step` over the rows of indices: a loop, unrolled for conv models.

  XLA's CPU backend runs a convolution inside a while loop ~40× slower than
  the same convolution at top level (conv β-VAE, batch 64, 2 cores: 0.4 vs
  15.7 steps/s; 10 steps unrolled: 20 steps/s), so conv models unroll (the
  compile time grows with K, hence a small K: train.MAX_STEPS_PER_CALL).
  Dense models keep the loop, two steps per iteration: fully unrolled code
  runs slower (the 1200-unit MLP: 22 vs 30 steps/s), and with one step per
  iteration XLA's copy insertion copies the weights the backward pass reads
  (four weight-sized copies per step, 37 MB, in the 1200-unit MLP); two steps
  per iteration have none: +6% steps/s (1200-unit MLP), +12% (MLP VAE,
  batch 128), ±0 (batch 1024), measured side by side.
  """
  unroll = True if spec.model.encoder.conv_channels else 2
  return jax.lax.scan(step, state, indices, unroll=unroll)


def stack(trees: list):
  """Stacks equally shaped pytrees (train states, hparams) on a new leading axis."""
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def member(stacked, index: int):
  """The `index`-th pytree of a `stack`ed one."""
  return jax.tree.map(lambda leaf: leaf[index], stacked)


@functools.partial(jax.jit, static_argnames='spec')
def eval_step(params, arrays: dict, indices: jax.Array, mask: jax.Array,
              key: jax.Array, spec: StepSpec) -> dict:
  """Sums over the unmasked examples of recon, kl, nelbo and per-dim KL."""
  x, y, keys = eval_inputs(spec, arrays, indices, key)
  terms = jax.vmap(example_terms, in_axes=(None, 0, 0, 0, None))(params, x, y, keys, spec)
  weights = mask.astype(jnp.float32)
  return {name: jnp.tensordot(weights, terms[name], axes=1)
          for name in ('recon', 'kl', 'nelbo', 'kl_per_dim')}


def eval_key(seed: int) -> jax.Array:
  """The one key of every evaluation of a run: fold_in(key(seed), EVAL_STREAM)."""
  return jax.random.fold_in(jax.random.key(seed), EVAL_STREAM)


def eval_inputs(spec: StepSpec, arrays: dict, indices: jax.Array, key: jax.Array):
  """(x, y, per-example sampling keys) of the evaluation examples `indices`.

  Every random draw (the dynamic binarization of x, the posterior samples) is
  keyed by the example's index, so held-out numbers do not depend on the
  batch size and every evaluation of a run sees the same binarized test set.
  """
  data_key, sample_key = jax.random.split(key)
  per_example = lambda k: jax.vmap(jax.random.fold_in, in_axes=(None, 0))(k, indices)
  x, y = data_lib.gather(spec.data, arrays, 'eval', indices)
  if spec.data.binarize == 'dynamic':
    bernoulli = lambda k, p: jax.random.bernoulli(k, p).astype(jnp.float32)
    x = jax.vmap(bernoulli)(per_example(data_key), x)
  return x, y, per_example(sample_key)


def eval_batches(dataset: data_lib.Dataset, batch_size: int):
  """Yields (indices [B] padded with 0, number valid) over the evaluation set."""
  ids = dataset.eval_ids
  batch_size = min(batch_size, len(ids))
  for start in range(0, len(ids), batch_size):
    chunk = ids[start:start + batch_size]
    indices = np.zeros(batch_size, np.int32)
    indices[:len(chunk)] = chunk
    yield indices, len(chunk)


def evaluate(state: TrainState, dataset: data_lib.Dataset, spec: StepSpec,
             batch_size: int) -> dict:
  """Held-out per-example means (nats) over the whole evaluation set.

  The last batch is padded and masked, never dropped.
  """
  sums = None
  key = eval_key(int(state.seed))
  for indices, valid in eval_batches(dataset, batch_size):
    mask = np.arange(len(indices)) < valid
    out = eval_step(state.params, dataset.arrays, indices, mask, key, spec)
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  num_eval = dataset.num_eval
  means = {k: np.asarray(v) / num_eval for k, v in jax.device_get(sums).items()}
  num_pixels = int(np.prod(spec.data.image_shape))
  result = {k: float(means[k]) for k in ('nelbo', 'recon', 'kl')}
  # Bits per dimension are defined for discrete (binary) pixels only; a Gaussian
  # density on [0, 1] intensities is not comparable to published bits/dim.
  result['bits_per_dim'] = (result['nelbo'] / (num_pixels * np.log(2.0))
                            if spec.likelihood == 'bernoulli' else None)
  result['kl_per_dim'] = [float(v) for v in means['kl_per_dim']]
  return result
