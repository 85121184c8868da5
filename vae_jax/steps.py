"""The jitted train steps: the batch loss, one Adam update, K updates per dispatch, populations.

The state and spec are in train_state.py, the keys in key_streams.py, the loop in
train.py. Rules (docs/design.md):
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

import functools

import jax
import jax.numpy as jnp
import optax

from vae_jax import data as data_lib
from vae_jax import key_streams, models, objectives
from vae_jax.models import gaussian
from vae_jax.train_state import StepSpec, TrainState, member, stack

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


def _model_fns(params, y, spec: StepSpec):
  """(encode, decode) of ONE example with label y (models.encode_one, decode_one)."""
  encode = lambda x_: models.encode_one(spec.model, params, x_, y)
  decode = lambda z: models.decode_one(spec.model, params, z, y)
  return encode, decode


def example_terms(params, x, y, key, spec: StepSpec) -> objectives.Terms:
  """ELBO terms of ONE example, in nats."""
  encode, decode = _model_fns(params, y, spec)
  objective = objectives.get(spec.objective)
  return objectives.example_terms(encode, decode, spec.likelihood, x, key,
                                  stochastic=objective.stochastic,
                                  sample=objective.samples_z(dict(spec.settings)))


def example_model_loss(params, x, y, key, hparams, step, spec: StepSpec) -> jax.Array:
  """The loss of ONE example of an objective with `example_loss_from_model` (IWAE)."""
  encode, decode = _model_fns(params, y, spec)
  return objectives.get(spec.objective).example_loss_from_model(
      encode, decode, spec.likelihood, x, key, hparams, step, dict(spec.settings))


def batch_loss(params, x, y, key, hparams, step, spec: StepSpec, aux_params=None,
               with_codes: bool = False):
  """(batch mean of the loss, batch means of the terms and the objective's metrics).

  The per-example loss (from the terms, or from the model for IWAE) is
  vmapped over the batch; an objective with a batch
  term (β-TC, DIP-VAE, WAE-MMD) or an auxiliary network's term (FactorVAE,
  the network's parameters `aux_params` held fixed) adds it per example
  before the one mean. `with_codes`: (loss, (metrics, the batch's codes z
  [B, D])), the codes the train step hands to the auxiliary network.
  """
  objective = objectives.get(spec.objective)
  keys = jax.random.split(key, x.shape[0])
  per_example = jax.vmap(example_terms, in_axes=(None, 0, 0, 0, None))
  terms = per_example(params, x, y, keys, spec)
  if objective.example_loss_from_model is None:
    loss = jax.vmap(objective.example_loss, in_axes=(0, None, None))(terms, hparams, step)
  else:  # the same per-example keys: the loss's own draws are fold_in(key, i)
    per_example_loss = jax.vmap(example_model_loss, in_axes=(None, 0, 0, 0, None, None, None))
    loss = per_example_loss(params, x, y, keys, hparams, step, spec)
  metrics = {'recon': terms.recon, 'kl': terms.kl, 'nelbo': terms.nelbo,
             'kl_per_dim': terms.kl_per_dim}
  metrics = {k: jnp.mean(v, axis=0) for k, v in metrics.items()}
  if objective.batch_term is not None:
    batch_key = jax.random.fold_in(key, key_streams.BATCH_STREAM) if objective.batch_key else None
    extra_loss, extra_metrics = objective.batch_term(terms, hparams, dict(spec.settings),
                                                     batch_key, step)
    loss = loss + extra_loss
    metrics.update(extra_metrics)
  if objective.auxiliary is not None:
    extra_loss, extra_metrics = objective.auxiliary.vae_term(aux_params, terms, hparams,
                                                             dict(spec.settings))
    loss = loss + extra_loss
    metrics.update(extra_metrics)
  return jnp.mean(loss), ((metrics, terms.z) if with_codes else metrics)


def second_batch_codes(params, arrays: dict, data_key: jax.Array, num: int,
                       spec: StepSpec) -> jax.Array:
  """Codes z ~ q(z|x) [num, D] of a second batch drawn uniformly (with replacement)
  from the training set, independently of the step's own: its indices, its
  binarization and its draws all from fold_in(data_key, SECOND_BATCH_STREAM)."""
  index_key, data_key, z_key = jax.random.split(
      jax.random.fold_in(data_key, key_streams.SECOND_BATCH_STREAM), 3)
  indices = data_lib.sample_train_indices(spec.data, arrays, index_key, num)
  x, y = data_lib.get_batch(spec.data, arrays, 'train', indices, data_key)
  mu, logvar = jax.vmap(lambda x_, y_: _model_fns(params, y_, spec)[0](x_))(x, y)
  return jax.vmap(gaussian.reparameterize)(jax.random.split(z_key, num), mu, logvar)


def _auxiliary_update(aux: dict, z: jax.Array, other: jax.Array, hparams: dict,
                      key: jax.Array, spec: StepSpec):
  """One Adam step of the auxiliary network on its loss of the codes z and `other`
  (held fixed); returns (new aux, its metrics, whether its loss and parameters are
  finite)."""
  auxiliary = objectives.get(spec.objective).auxiliary
  loss_fn = lambda p: auxiliary.loss(p, jax.lax.stop_gradient(z),
                                     jax.lax.stop_gradient(other), hparams,
                                     dict(spec.settings), key)
  (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(aux['params'])
  updates, opt_state = spec.aux_optimizer.update(grads, aux['opt_state'], aux['params'])
  lr = hparams[auxiliary.learning_rate]
  params = jax.tree.map(lambda p, u: p - lr * u, aux['params'], updates)
  finite = jnp.isfinite(loss) & _all_finite(params)
  return {'params': params, 'opt_state': opt_state}, metrics, finite


def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(tree)]))


def _train_step(state: TrainState, arrays: dict, indices: jax.Array, hparams: dict,
                spec: StepSpec):
  """One Adam update on the batch `indices`; returns (state, metrics)."""
  data_key, sample_key = key_streams.step_keys(state.seed, state.step)
  x, y = data_lib.get_batch(spec.data, arrays, 'train', indices, data_key)
  objective = objectives.get(spec.objective)
  aux_params = state.aux['params'] if objective.auxiliary is not None else None
  grad_fn = jax.value_and_grad(batch_loss, has_aux=True)
  (loss, (terms, z)), grads = grad_fn(state.params, x, y, sample_key, hparams, state.step,
                                      spec, aux_params, with_codes=True)
  updates, opt_state = spec.optimizer.update(grads, state.opt_state, state.params)
  lr = learning_rate(spec.lr_schedule, state.step, hparams)
  params = jax.tree.map(lambda p, u: p - lr * u, state.params, updates)
  grad_norm = optax.tree.norm(grads)
  # Checked on the host before any checkpoint or evaluation (guards.check_finite),
  # the auxiliary network's loss and parameters included.
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & _all_finite(params)
  metrics = {'loss': loss, 'grad_norm': grad_norm, 'learning_rate': lr,
             **{k: v for k, v in terms.items() if k != 'kl_per_dim'}}
  if objective.metrics is not None:
    metrics.update(objective.metrics(state.step, hparams))
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
  if objective.auxiliary is not None:  # from the state before the step, as the VAE's
    other = z  # the codes permuted for the auxiliary network's second class
    if objective.auxiliary.second_batch(dict(spec.settings)):
      other = second_batch_codes(state.params, arrays, data_key, z.shape[0], spec)
    aux, aux_metrics, aux_finite = _auxiliary_update(
        state.aux, z, other, hparams, jax.random.fold_in(sample_key, key_streams.AUX_STREAM),
        spec)
    finite = finite & aux_finite
    metrics.update(aux_metrics)
    new_state = new_state.replace(aux=aux)
  metrics['finite'] = finite
  return new_state, metrics


train_step = jax.jit(_train_step, static_argnames='spec', donate_argnames='state')


@functools.partial(jax.jit, static_argnames='spec', donate_argnames='state')
def train_steps(state: TrainState, arrays: dict, indices: jax.Array, hparams: dict,
                spec: StepSpec):
  """`train_step` for each row of indices [K, B]: K updates in one dispatch
  (no host round trip between them); metrics stacked [K]."""
  step = lambda s, i: _train_step(s, arrays, i, hparams, spec)
  return _scan(step, state, indices, spec)


@functools.partial(jax.jit, static_argnames=('spec', 'loop_members'),
                   donate_argnames='states')
def population_train_steps(states: TrainState, arrays: dict, indices: jax.Array,
                           hparams: dict, spec: StepSpec, loop_members: bool = False):
  """`train_steps` of M runs at once: states, indices [K, M, B] and hparams
  stacked on a member axis, the data shared; one compiled program (sweeps)
  makes K updates of the M runs in one dispatch; metrics stacked [K, M].

  loop_members=False vmaps the step over the members (the accelerator form);
  True writes the M members' steps one after another into the one program
  (see `loop_members`), each exactly a single run's step.
  """
  one = functools.partial(_train_step, spec=spec)
  if not loop_members:
    vmapped = jax.vmap(one, in_axes=(0, None, 0, 0))
    return _scan(lambda s, i: vmapped(s, arrays, i, hparams), states, indices, spec)
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

  'auto' loops on CPU for the architectures that ask for it
  (`Architecture.loop_population_on_cpu`: the dense ones). There XLA gives the
  vmapped step's weight gradients a transposed layout that it then copies, at
  every step, and the members, each already filling the cores, gain little
  from sharing a program (`python -m benchmarks.sweep_speedup` measures both
  forms). Conv models keep vmap (their unrolled steps would compile M times
  over); accelerators keep vmap (one member leaves them mostly idle).
  """
  if mode == 'auto':
    return (jax.default_backend() == 'cpu' and
            models.architecture(spec.model).loop_population_on_cpu)
  return mode == 'loop'


def _scan(step, state, indices: jax.Array, spec: StepSpec):
  """lax.scan of `step` over the rows of indices: a loop, unrolled for the
  architectures that ask for it (`Architecture.unroll_steps`: conv models).

  XLA's CPU backend runs a convolution inside a while loop far slower than
  the same convolution at top level, so conv models unroll (the compile time
  grows with K, hence a small K: train.MAX_STEPS_PER_CALL). Dense models
  keep the loop, two steps per iteration: fully unrolled code runs slower,
  and with one step per iteration XLA's copy insertion copies the weights
  the backward pass reads at every step; with two per iteration it does not
  (benchmarks/README.md has the measurements).
  """
  unroll = True if models.architecture(spec.model).unroll_steps else 2
  return jax.lax.scan(step, state, indices, unroll=unroll)
