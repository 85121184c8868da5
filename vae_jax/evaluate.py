"""Evaluation maths: the importance-weighted bound, latent diagnostics, AUROC.

Importance-weighted NLL (Burda et al. 2015). For one example x and
z_i ~ q(z|x), i = 1..k (reparameterized, z_i = mu + σ·eps_i):

    log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x)
    nll_iw  = −(logsumexp_i log w_i − log k)

E[nll_iw] is the negative ELBO at k = 1 (with a sampled KL), decreases with k
and tends to −log p(x) as k → ∞. Sample i of an example with key `key` is
drawn from `fold_in(key, i)`, so the samples do not depend on how the k
draws are split into chunks (and the first k of k' > k draws are shared).

Held-out loops follow `steps.evaluate`: inputs come from `steps.eval_inputs`,
whose random draws are keyed by each example's index (the same binarized
test set in every evaluation, whatever the batch size); the last batch is
padded and the padding dropped. The importance-weighted loop uses its own
small batch (config.eval.iw_batch_size) so that batch × chunk decoder passes
fit in memory even for conv decoders on 64×64 images.

Latent diagnostics: active units (Burda et al. 2015), A_u = Var_x(E_q[z_u|x]),
and the moments of the aggregate posterior q(z) = mean_x q(z|x).
"""

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import data as data_lib
from vae_jax import likelihoods, models, steps

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# ------------------------------------------------------------ one example


def standard_normal_log_density(z: jax.Array) -> jax.Array:
  """log N(z; 0, I) = Σ_d −½z_d² − ½log 2π, over the last axis."""
  return jnp.sum(-0.5 * z * z - _HALF_LOG_2PI, axis=-1)


def _flatten_like(params: dict, shape: tuple) -> dict:
  """Decoder outputs of x's shape reshaped to [-1]; others (a scalar log σ) kept."""
  return {name: v.reshape(-1) if v.shape == shape else v for name, v in params.items()}


def log_importance_weight(decode: Callable, likelihood: str, x: jax.Array,
                          mu: jax.Array, logvar: jax.Array, key: jax.Array) -> jax.Array:
  """log p(x|z) + log p(z) − log q(z|x) at z = mu + exp(logvar/2)·eps, eps ~ N(0, I).

  log q(z|x) = log N(eps; 0, I) − ½Σ logvar, evaluated from eps itself (exact,
  no division by σ). The likelihood is summed over flattened pixels: the same
  value, but XLA on CPU reduces a flat [H·W·C] about twice as fast as [H, W, C].
  """
  eps = jax.random.normal(key, mu.shape, mu.dtype)
  z = mu + jnp.exp(0.5 * logvar) * eps
  log_q = standard_normal_log_density(eps) - 0.5 * jnp.sum(logvar)
  log_lik = likelihoods.log_prob(likelihood, x.reshape(-1),
                                 _flatten_like(decode(z), x.shape))
  return log_lik + standard_normal_log_density(z) - log_q


def _log_weights_at(decode: Callable, likelihood: str, x: jax.Array, mu: jax.Array,
                    logvar: jax.Array, key: jax.Array, sample_ids: jax.Array) -> jax.Array:
  """log w_i for the samples i in `sample_ids`, sample i drawn from fold_in(key, i)."""
  keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, sample_ids)
  return jax.vmap(lambda k: log_importance_weight(decode, likelihood, x, mu, logvar, k))(keys)


def log_importance_weights(encode: Callable, decode: Callable, likelihood: str,
                           x: jax.Array, key: jax.Array, num_samples: int) -> jax.Array:
  """[num_samples] log w_i of ONE example (encode(x) → (mu, logvar), decode(z) → params)."""
  mu, logvar = encode(x)
  return _log_weights_at(decode, likelihood, x, mu, logvar, key, jnp.arange(num_samples))


def iw_nll_from_log_weights(log_w: jax.Array) -> jax.Array:
  """nll_iw = −(logsumexp_i log w_i − log k), over the last axis (k = its length)."""
  return -(jax.nn.logsumexp(log_w, axis=-1) - jnp.log(log_w.shape[-1]))


def example_iw_nll(encode: Callable, decode: Callable, likelihood: str, x: jax.Array,
                   key: jax.Array, num_samples: int, chunk_size: int) -> jax.Array:
  """nll_iw of ONE example with the k samples taken `chunk_size` at a time.

  A `lax.scan` over ⌈k / chunk_size⌉ chunks keeps the running
  L ← logaddexp(L, logsumexp(chunk)); draws past k in the last chunk get
  log w = −inf. Equals iw_nll_from_log_weights(log_importance_weights(...)).
  """
  mu, logvar = encode(x)
  chunk_size = min(chunk_size, num_samples)
  num_chunks = -(-num_samples // chunk_size)

  def body(total: jax.Array, chunk: jax.Array):
    ids = chunk * chunk_size + jnp.arange(chunk_size)
    log_w = _log_weights_at(decode, likelihood, x, mu, logvar, key, ids)
    log_w = jnp.where(ids < num_samples, log_w, -jnp.inf)
    return jnp.logaddexp(total, jax.nn.logsumexp(log_w).astype(total.dtype)), None

  start = jnp.full((), -jnp.inf, mu.dtype)
  total, _ = jax.lax.scan(body, start, jnp.arange(num_chunks))
  return -(total - jnp.log(jnp.asarray(num_samples, total.dtype)))


# ------------------------------------------------------------ held-out loops


@functools.partial(jax.jit, static_argnames=('spec', 'num_samples', 'chunk_size'))
def _iw_nll_batch(params, arrays: dict, indices: jax.Array, key: jax.Array,
                  spec: steps.StepSpec, num_samples: int, chunk_size: int) -> jax.Array:
  """[B] nll_iw of an eval batch (inputs and keys as in steps.eval_step)."""
  x, y, keys = steps.eval_inputs(spec, arrays, indices, key)

  def one(x_, y_, key_):
    encode, decode = steps.model_fns(spec, params, y_)
    return example_iw_nll(encode, decode, spec.likelihood, x_, key_, num_samples,
                          chunk_size)

  return jax.vmap(one)(x, y, keys)


def importance_weighted_nll(params, spec: steps.StepSpec, dataset: data_lib.Dataset,
                            num_samples: int, *, seed: int, batch_size: int,
                            chunk_size: int = 500) -> np.ndarray:
  """Per-example nll_iw [num_eval] (nats) over the evaluation set of `dataset`.

  Peak memory is about batch_size × chunk_size decoder passes (activations and
  likelihood parameters), whatever `num_samples` is.
  """
  if spec.objective == 'ae':
    raise ValueError("the importance-weighted NLL is undefined for objective 'ae' "
                     '(a deterministic autoencoder has no q(z|x)); skip it')
  if num_samples < 1 or chunk_size < 1:
    raise ValueError(f'num_samples and chunk_size must be positive, got '
                     f'{num_samples} and {chunk_size}')
  chunk_size = min(chunk_size, num_samples)
  out = []
  key = steps.eval_key(seed)
  for indices, valid in steps.eval_batches(dataset, batch_size):
    nll = _iw_nll_batch(params, dataset.arrays, indices, key, spec, num_samples,
                        chunk_size)
    out.append(np.asarray(nll)[:valid])
  return np.concatenate(out)


@functools.partial(jax.jit, static_argnames='spec')
def _moments_batch(params, arrays: dict, indices: jax.Array, key: jax.Array,
                   spec: steps.StepSpec):
  """(mu [B, D], logvar [B, D], y [B]) of q(z|x) for an eval batch."""
  x, y, _ = steps.eval_inputs(spec, arrays, indices, key)
  encode = lambda x_, y_: steps.model_fns(spec, params, y_)[0](x_)
  mu, logvar = jax.vmap(encode)(x, y)
  return mu, logvar, y


def posterior_moments(params, spec: steps.StepSpec, dataset: data_lib.Dataset, *,
                      seed: int,
                      batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(mu [N, D], logvar [N, D], labels [N]) of q(z|x) over the evaluation set."""
  parts = []
  key = steps.eval_key(seed)
  for indices, valid in steps.eval_batches(dataset, batch_size):
    batch = jax.device_get(_moments_batch(params, dataset.arrays, indices, key, spec))
    parts.append([np.asarray(a)[:valid] for a in batch])
  mu, logvar, labels = (np.concatenate(p) for p in zip(*parts))
  return mu, logvar, labels


# ------------------------------------------------------------ latent diagnostics


def active_units(mu: np.ndarray, threshold: float = 0.01) -> tuple[int, np.ndarray]:
  """(number of u with A_u > threshold, A [D]); A_u = Var_x(E_q[z_u|x]) = Var over N of mu[:, u]."""
  activity = np.var(np.asarray(mu, np.float64), axis=0)
  return int(np.sum(activity > threshold)), activity


def moment_matched_kl(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
  """Per-dim KL(N(m, v) || N(0, 1)) = ½(v + m² − 1 − log v)."""
  return 0.5 * (var + mean * mean - 1.0 - np.log(var))


def aggregate_posterior_stats(mu: np.ndarray, logvar: np.ndarray) -> dict:
  """Moments of q(z) = mean_x q(z|x): mean m = E[mu], Var = E[exp(logvar)] + Var(mu).

  `kl_moment_matched` = KL(N(m, diag(Var)) || N(0, I)), 0 when q(z) has the
  prior's first two moments. Plain floats / lists (JSON-ready).
  """
  mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
  mean = mu.mean(axis=0)
  posterior_var = np.exp(logvar).mean(axis=0)
  var = posterior_var + mu.var(axis=0)
  kl = moment_matched_kl(mean, var)
  return {'mean': mean.tolist(), 'variance': var.tolist(),
          'mean_posterior_variance': posterior_var.tolist(),
          'kl_moment_matched_per_dim': kl.tolist(),
          'kl_moment_matched': float(np.sum(kl))}


# ------------------------------------------------------------ anomaly detection


def auroc(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
  """Area under the ROC curve, higher score = more anomalous (sklearn roc_auc_score)."""
  from sklearn import metrics  # pylint: disable=g-import-not-at-top  (slow import: only here)
  return float(metrics.roc_auc_score(np.asarray(is_anomaly).astype(bool),
                                     np.asarray(scores)))


# ------------------------------------------------------------ representations


def encoder_mean_fn(params, spec: steps.StepSpec) -> Callable[[np.ndarray], np.ndarray]:
  """images float32 [B, H, W, C] → posterior means [B, D] (the representation
  the disentanglement scores use); compiled once per batch shape."""
  encode = jax.jit(jax.vmap(
      lambda x: spec.model.apply(params, x, None, method=models.VAE.encode)[0]))

  def representation(images: np.ndarray) -> np.ndarray:
    return np.asarray(encode(jnp.asarray(images, jnp.float32)))

  return representation
