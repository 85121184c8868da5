"""The ONE loop over the evaluation set and what runs over it.

Every held-out number goes through `over_eval_set`: the evaluation examples in
padded batches of a fixed size (the padding dropped, never an example), one
jitted call per batch returning per-example outputs. Every random draw in
it (the dynamic binarization of x, the posterior samples) is keyed by the
example's index (`eval_inputs`), so held-out numbers do not depend on the
batch size and every evaluation of a run sees the same binarized test set.

- `elbo_terms`: recon, kl (+ per dimension), nelbo and the posterior moments
  (mu, logvar) of every example, in one pass;
- `importance_weighted_nll`: the k-sample bound (vae_jax.iw_bound), with its
  own small batch (config.eval.iw_batch_size) so that batch × chunk decoder
  passes fit in memory even for conv decoders on 64×64 images;
- `marginal_iw_nll`: a conditional model's −log p(x) = −log Σ_y p(y) p(x|y),
  each p(x|y) by the k-sample bound;
- `bits_per_dim`: the nats → bits/dim conversion, done here once;
- `representation_fn`: the posterior means the disentanglement scores use.
What a run reports at an evaluation is in vae_jax/evaluation/evaluators.py.
"""

import functools
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import data as data_lib
from vae_jax import key_streams, models, objectives, steps, train_state
from vae_jax.objectives import iw_bound
from vae_jax.run import guards


def eval_key(seed: int) -> jax.Array:
  """The one key of every evaluation of a run: fold_in(key(seed), EVAL_STREAM)."""
  return jax.random.fold_in(jax.random.key(seed), key_streams.EVAL_STREAM)


def eval_inputs(spec: train_state.StepSpec, arrays: dict, indices: jax.Array, key: jax.Array,
                key_ids: Optional[jax.Array] = None):
  """(x, y, per-example sampling keys) of the evaluation examples `indices`, their
  draws keyed by `key_ids` (default: the indices themselves)."""
  key_ids = indices if key_ids is None else key_ids
  data_key, sample_key = jax.random.split(key)
  per_example = lambda k: jax.vmap(jax.random.fold_in, in_axes=(None, 0))(k, key_ids)
  x, y = data_lib.gather(spec.data, arrays, 'eval', indices)
  if spec.data.binarize == 'dynamic':
    bernoulli = lambda k, p: jax.random.bernoulli(k, p).astype(jnp.float32)
    x = jax.vmap(bernoulli)(per_example(data_key), x)
  return x, y, per_example(sample_key)


def _padded(ids: np.ndarray, start: int, batch_size: int) -> np.ndarray:
  chunk = ids[start:start + batch_size]
  out = np.zeros(batch_size, np.int32)
  out[:len(chunk)] = chunk
  return out


def eval_batches(dataset: data_lib.Dataset, batch_size: int):
  """Yields (indices [B], key ids [B], both padded with 0; number valid) over the
  evaluation set."""
  ids = dataset.eval_ids
  key_ids = ids if dataset.eval_key_ids is None else dataset.eval_key_ids
  batch_size = min(batch_size, len(ids))
  for start in range(0, len(ids), batch_size):
    yield (_padded(ids, start, batch_size), _padded(key_ids, start, batch_size),
           min(batch_size, len(ids) - start))


@functools.partial(jax.jit, static_argnames=('spec', 'fn', 'options'))
def _call(params, arrays: dict, indices: jax.Array, key_ids: jax.Array, key: jax.Array,
          spec: train_state.StepSpec, fn: Callable, options: tuple) -> dict:
  x, y, keys = eval_inputs(spec, arrays, indices, key, key_ids)
  return fn(params, x, y, keys, spec, *options)


def over_eval_set(fn: Callable, params, spec: train_state.StepSpec, dataset: data_lib.Dataset,
                  *, seed: int, batch_size: int, options: tuple = ()) -> dict:
  """THE loop: {name: per-example array [num_eval, ...]} of
  `fn(params, x, y, keys, spec, *options)` (a module-level function returning
  a dict of [B, ...] arrays; jitted once per fn, spec, options and batch shape)."""
  parts = []
  key = eval_key(seed)
  for indices, key_ids, valid in eval_batches(dataset, batch_size):
    out = jax.device_get(_call(params, dataset.arrays, indices, key_ids, key, spec, fn,
                               options))
    parts.append({k: np.asarray(v)[:valid] for k, v in out.items()})
    guards.stop_if_signalled()
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _elbo_terms_batch(params, x, y, keys, spec: train_state.StepSpec) -> dict:
  terms = jax.vmap(steps.example_terms, in_axes=(None, 0, 0, 0, None))(
      params, x, y, keys, spec)
  return {'recon': terms.recon, 'kl': terms.kl, 'nelbo': terms.nelbo,
          'kl_per_dim': terms.kl_per_dim, 'mu': terms.mu, 'logvar': terms.logvar,
          'labels': y}


def elbo_terms(params, spec: train_state.StepSpec, dataset: data_lib.Dataset, *, seed: int,
               batch_size: int) -> dict:
  """Per-example recon, kl, nelbo [N], kl_per_dim, mu, logvar [N, D], labels [N]."""
  return over_eval_set(_elbo_terms_batch, params, spec, dataset, seed=seed,
                       batch_size=batch_size)


def _iw_nll_batch(params, x, y, keys, spec: train_state.StepSpec, num_samples: int,
                  chunk_size: int) -> dict:
  def one(x_, y_, key_):
    encode = lambda v: models.encode_one(spec.model, params, v, y_)
    decode = lambda z: models.decode_one(spec.model, params, z, y_)
    return iw_bound.example_iw_nll(encode, decode, spec.likelihood, x_, key_, num_samples,
                                   chunk_size)
  return {'nll_iw': jax.vmap(one)(x, y, keys)}


def importance_weighted_nll(params, spec: train_state.StepSpec, dataset: data_lib.Dataset,
                            num_samples: int, *, seed: int, batch_size: int,
                            chunk_size: int = 500) -> np.ndarray:
  """Per-example nll_iw [num_eval] (nats) over the evaluation set of `dataset`.

  Peak memory is about batch_size × chunk_size decoder passes (activations and
  likelihood parameters), whatever `num_samples` is.
  """
  if not objectives.get(spec.objective).stochastic:
    raise ValueError(f'the importance-weighted NLL is undefined for objective '
                     f'{spec.objective!r} (no q(z|x)); skip it')
  if num_samples < 1 or chunk_size < 1:
    raise ValueError(f'num_samples and chunk_size must be positive, got '
                     f'{num_samples} and {chunk_size}')
  options = (num_samples, min(chunk_size, num_samples))
  return over_eval_set(_iw_nll_batch, params, spec, dataset, seed=seed,
                       batch_size=batch_size, options=options)['nll_iw']


def _marginal_iw_nll_batch(params, x, y, keys, spec: train_state.StepSpec, num_samples: int,
                           chunk_size: int, log_prior: tuple) -> dict:
  del y  # the label is summed out
  labels = jnp.arange(len(log_prior))

  def one(x_, key_):
    def given(label):  # log p̂(x|y = label) from the k-sample bound, its own draws
      encode = lambda v: models.encode_one(spec.model, params, v, label)
      decode = lambda z: models.decode_one(spec.model, params, z, label)
      return -iw_bound.example_iw_nll(encode, decode, spec.likelihood, x_,
                                      jax.random.fold_in(key_, label), num_samples,
                                      chunk_size)
    log_px_given_y = jax.lax.map(given, labels)  # one label at a time: k-sample memory
    return -jax.nn.logsumexp(jnp.asarray(log_prior, log_px_given_y.dtype) + log_px_given_y)
  return {'nll_iw_marginal': jax.vmap(one)(x, keys)}


def marginal_iw_nll(params, spec: train_state.StepSpec, dataset: data_lib.Dataset,
                    num_samples: int, log_prior: np.ndarray, *, seed: int, batch_size: int,
                    chunk_size: int = 500) -> np.ndarray:
  """Per-example −log Σ_y p(y) p̂(x|y) [num_eval] (nats) of a conditional model:
  its likelihood of the image alone, comparable with an unconditional model's
  nll_iw. p̂(x|y) is the k-sample bound with `num_samples` draws of q(z|x, y)
  for each label y; `log_prior` [C] is log p(y). An upper bound on −log p(x) in
  expectation (Jensen, as nll_iw), tighter as k grows.
  """
  options = (num_samples, min(chunk_size, num_samples),
             tuple(float(v) for v in log_prior))
  return over_eval_set(_marginal_iw_nll_batch, params, spec, dataset, seed=seed,
                       batch_size=batch_size, options=options)['nll_iw_marginal']


def bits_per_dim(nats: float, spec: train_state.StepSpec) -> Optional[float]:
  """nats per image → bits per pixel; None unless the pixels are binary (Bernoulli):
  a Gaussian density on [0, 1] intensities is not comparable to published bits/dim."""
  if spec.likelihood != 'bernoulli':
    return None
  return nats / (int(np.prod(spec.data.image_shape)) * np.log(2.0))


def representation_fn(params, model: models.VAE) -> Callable[[np.ndarray], np.ndarray]:
  """images float32 [B, H, W, C] → posterior means [B, D]: the representation
  the disentanglement scores use."""
  def representation(images: np.ndarray) -> np.ndarray:
    labels = jnp.zeros((len(images),), jnp.int32)
    guards.stop_if_signalled()
    return np.asarray(models.encode(model, params, jnp.asarray(images, jnp.float32),
                                    labels)[0])
  return representation
