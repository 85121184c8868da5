"""Held-out evaluation: the inputs, ONE loop over the evaluation set, a run's metrics.

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
- `evaluate`: everything a run reports at an evaluation (see its docstring).
Reductions to means and the nats → bits/dim conversion happen here, once.
"""

import dataclasses
import functools
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vae_jax import models, objectives, steps
from vae_jax import train_state
from vae_jax import key_streams
from vae_jax.evaluation import diagnostics
from vae_jax.objectives import iw_bound
from vae_jax import data as data_lib

UNDEFINED_FOR_AE = ('kl', 'nelbo', 'bits_per_dim', 'kl_per_dim')  # null for the AE


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


def posterior_moments(params, spec: train_state.StepSpec, dataset: data_lib.Dataset, *,
                      seed: int,
                      batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(mu [N, D], logvar [N, D], labels [N]) of q(z|x) over the evaluation set."""
  out = elbo_terms(params, spec, dataset, seed=seed, batch_size=batch_size)
  return out['mu'], out['logvar'], out['labels']


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
    return np.asarray(models.encode(model, params, jnp.asarray(images, jnp.float32),
                                    labels)[0])
  return representation


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """What one evaluation of a run measured."""
  metrics: dict  # JSON-ready held-out metrics (`public`)
  mu: np.ndarray  # [N, D] posterior means of the evaluation examples
  logvar: np.ndarray  # [N, D]
  labels: np.ndarray  # [N]
  nll_iw: Optional[np.ndarray] = None  # [N] at final evaluations of stochastic models


def evaluate(params, config: ml_collections.ConfigDict, spec: train_state.StepSpec,
             dataset: data_lib.Dataset, *, final: bool, factor_source=None) -> Evaluation:
  """Every held-out metric of one evaluation.

  Always: nelbo, recon, kl (+ per dimension), bits/dim, active units,
  aggregate-posterior moments and, given a `factor_source`, the five
  disentanglement scores (periodic evaluations with ≥ 10× fewer samples).
  The final one (end of training, --mode=eval) adds the importance-weighted
  bound nll_iw with k = config.eval.iw_samples and, when classes were held
  out of training (data.exclude_classes with eval.anomaly), the AUROC of
  those classes against the rest, scored by nll_iw.
  """
  ev, seed = config.eval, config.seed
  stochastic = objectives.get(spec.objective).stochastic
  terms = elbo_terms(params, spec, dataset, seed=seed, batch_size=ev.batch_size)
  result = {k: float(np.mean(terms[k], dtype=np.float64)) for k in ('nelbo', 'recon', 'kl')}
  result['bits_per_dim'] = bits_per_dim(result['nelbo'], spec)
  result['kl_per_dim'] = np.mean(terms['kl_per_dim'], axis=0, dtype=np.float64)
  result['active_units'], result['unit_activity'] = diagnostics.active_units(terms['mu'])
  if stochastic:
    aggregate = diagnostics.aggregate_posterior_stats(terms['mu'], terms['logvar'])
    result['aggregate_kl_moment_matched'] = aggregate['kl_moment_matched']
    result['aggregate_variance'] = aggregate['variance']
  if factor_source is not None:
    divisor = ev.disentanglement_divisor if final else max(10, ev.disentanglement_divisor)
    from vae_jax.evaluation import disentanglement  # pylint: disable=g-import-not-at-top  (sklearn: slow import)
    result.update(disentanglement.all_scores(representation_fn(params, spec.model),
                                             factor_source, seed, divisor=divisor))
    result['disentanglement_sample_divisor'] = divisor  # 1 = the reference protocol
  nll = None
  if final and stochastic:
    nll = importance_weighted_nll(params, spec, dataset, ev.iw_samples, seed=seed,
                                  batch_size=ev.iw_batch_size, chunk_size=ev.iw_chunk_size)
    result['nll_iw'] = float(np.mean(nll, dtype=np.float64))
    result['iw_samples'] = ev.iw_samples
    if spec.likelihood == 'bernoulli':
      result['nll_iw_bits_per_dim'] = bits_per_dim(result['nll_iw'], spec)
    excluded = tuple(config.data.exclude_classes)
    if ev.anomaly and excluded:
      is_anomaly = np.isin(terms['labels'], np.asarray(excluded))
      result.update({'anomaly_classes': list(excluded),
                     'anomaly_auroc': diagnostics.auroc(nll, is_anomaly),
                     'anomaly_nll_iw': float(np.mean(nll[is_anomaly])),
                     'normal_nll_iw': float(np.mean(nll[~is_anomaly]))})
  return Evaluation(metrics=public(result, stochastic), mu=terms['mu'],
                    logvar=terms['logvar'], labels=terms['labels'], nll_iw=nll)


def public(metrics: dict, stochastic: bool = True) -> dict:
  """JSON-ready plain values; without q(z|x) (the autoencoder) the ELBO terms are null."""
  out = {k: _plain(v) for k, v in metrics.items()}
  if not stochastic:
    out.update({k: None for k in UNDEFINED_FOR_AE if k in out})
  return out


def _plain(value):
  """A JSON-ready copy: None, int, str, float or a list of floats."""
  if value is None or isinstance(value, (int, str)):
    return value
  if np.ndim(value) == 0:
    return float(value)
  return [float(v) for v in np.ravel(value)]
