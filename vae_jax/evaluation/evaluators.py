"""What a run reports at an evaluation: a table of evaluators, run by `evaluate`.

An evaluator is a function `(Context) -> {metric: value}` in one row of
EVALUATORS, with its period (PERIODS: at 'every' evaluation, or at the
'final' one only: end of training, --mode=eval) and the runs it applies to.
`evaluate` runs the applicable rows in table order and merges their dicts, so
the table's order is the order of the metrics in metrics.jsonl and
summary.json. The per-example outputs of the evaluation set (`Context.terms`,
`Context.nll_iw`, from vae_jax/evaluation/loop.py) are computed once, by the
first evaluator that reads them.

EVALUATORS today: the ELBO terms (nelbo, recon, kl + per dimension,
bits/dim), active units and, for stochastic objectives, the aggregate
posterior's moments (and the KL of their Gaussian to the prior, diagonal and
with the full covariance) at every evaluation; given a factor source
(eval.disentanglement), the five disentanglement scores at every evaluation,
periodic ones with ≥ 10× fewer samples; at the final one, for stochastic
objectives, the importance-weighted bound nll_iw (k = eval.iw_samples) and,
with eval.anomaly and data.exclude_classes, the AUROC of the held-out
classes against the rest, scored by nll_iw; for conditional models (CVAE),
whose nll_iw is −log p(x|y), also nll_iw_marginal = −log Σ_y p(y) p(x|y),
the likelihood of the image alone that an unconditional model's nll_iw is
compared with (p(y): the training labels' frequencies; k per label =
eval.marginal_iw_samples, by default iw_samples / classes, nll_iw's cost);
and, for stochastic objectives at the final one, mmd_to_prior: the MMD² of
the held-out codes (one draw each) to as many prior draws, with WAE-MMD's
kernel and U-statistic.

To add an evaluator, add one row: write `_my_metrics(context: Context) -> dict`
(reading `context.terms` or `context.nll_iw` costs no extra pass once another
row has read it) and append `Evaluator('my_metrics', _my_metrics,
period='final', applies=_stochastic)` to EVALUATORS; rows append their keys in
table order, so a new row goes last and the existing keys keep their order.
"""

import dataclasses
import functools
from typing import Any, Callable, Optional

import jax
import ml_collections
import numpy as np

from vae_jax import data as data_lib
from vae_jax import objectives, train_state
from vae_jax.data import factors
from vae_jax.evaluation import diagnostics, loop
from vae_jax.run import guards

UNDEFINED_FOR_AE = ('kl', 'nelbo', 'bits_per_dim', 'kl_per_dim')  # null for the AE
PERIODS = ('every', 'final')


@dataclasses.dataclass
class Context:
  """What evaluators read: the model, the data and the per-example outputs of the
  evaluation set (each computed once, on first use)."""
  params: Any
  config: ml_collections.ConfigDict
  spec: train_state.StepSpec
  dataset: data_lib.Dataset
  final: bool  # the final evaluation (end of training, --mode=eval)
  factor_source: Optional[factors.FactorSource]

  @property
  def stochastic(self) -> bool:
    """Whether the objective has a q(z|x) (not the autoencoder)."""
    return objectives.get(self.spec.objective).stochastic

  @functools.cached_property
  def terms(self) -> dict:
    """Per-example ELBO terms, posterior moments and labels (`loop.elbo_terms`)."""
    return loop.elbo_terms(self.params, self.spec, self.dataset, seed=self.config.seed,
                           batch_size=self.config.eval.batch_size)

  @functools.cached_property
  def nll_iw(self) -> np.ndarray:
    """Per-example importance-weighted bound [N] with k = eval.iw_samples."""
    ev = self.config.eval
    return loop.importance_weighted_nll(self.params, self.spec, self.dataset,
                                        ev.iw_samples, seed=self.config.seed,
                                        batch_size=ev.iw_batch_size,
                                        chunk_size=ev.iw_chunk_size)


def _always(context: Context) -> bool:
  del context
  return True


def _stochastic(context: Context) -> bool:
  return context.stochastic


def _has_factor_source(context: Context) -> bool:
  return context.factor_source is not None


def _conditional(context: Context) -> bool:
  return context.stochastic and context.spec.model.num_classes > 0


def _anomaly(context: Context) -> bool:
  return (context.stochastic and context.config.eval.anomaly
          and bool(tuple(context.config.data.exclude_classes)))


@dataclasses.dataclass(frozen=True)
class Evaluator:
  """One row of EVALUATORS: `fn` runs at evaluations of `period` where `applies`."""
  name: str
  fn: Callable[[Context], dict]
  period: str = 'every'  # one of PERIODS
  applies: Callable[[Context], bool] = _always

  def __post_init__(self):
    if self.period not in PERIODS:
      raise ValueError(f'evaluator {self.name!r}: period {self.period!r} is not one of '
                       f'{PERIODS}')


def _elbo(context: Context) -> dict:
  terms = context.terms
  result = {k: float(np.mean(terms[k], dtype=np.float64)) for k in ('nelbo', 'recon', 'kl')}
  result['bits_per_dim'] = loop.bits_per_dim(result['nelbo'], context.spec)
  result['kl_per_dim'] = np.mean(terms['kl_per_dim'], axis=0, dtype=np.float64)
  return result


def _active_units(context: Context) -> dict:
  active, activity = diagnostics.active_units(context.terms['mu'])
  return {'active_units': active, 'unit_activity': activity}


def _aggregate_posterior(context: Context) -> dict:
  aggregate = diagnostics.aggregate_posterior_stats(context.terms['mu'],
                                                    context.terms['logvar'])
  return {'aggregate_kl_moment_matched': aggregate['kl_moment_matched'],
          'aggregate_kl_moment_matched_full_cov': aggregate['kl_moment_matched_full_cov'],
          'aggregate_variance': aggregate['variance']}


# fold_in streams of the evaluation key for the held-out codes and prior draws of
# `_mmd_to_prior` (the evaluation's own per-example draws fold in example indices,
# which stay below these).
MMD_CODES_STREAM, MMD_PRIOR_STREAM = 2**31 - 1, 2**31 - 2


def _mmd_to_prior(context: Context) -> dict:
  """MMD² (WAE's kernel) of the held-out codes to as many prior draws: the codes the
  objective's z is (z ~ q(z|x), or z = mu for a deterministic encoder)."""
  terms, key = context.terms, loop.eval_key(context.config.seed)
  mu = np.asarray(terms['mu'], np.float64)
  draw = lambda stream: np.asarray(jax.random.normal(jax.random.fold_in(key, stream),
                                                     mu.shape), np.float64)
  settings = dict(context.spec.settings)
  codes = mu
  if objectives.get(context.spec.objective).samples_z(settings):
    codes = mu + np.exp(0.5 * np.asarray(terms['logvar'], np.float64)) * draw(MMD_CODES_STREAM)
  return {'mmd_to_prior': diagnostics.mmd_to_prior(codes, draw(MMD_PRIOR_STREAM))}


def _disentanglement(context: Context) -> dict:
  """The five scores; periodic evaluations with ≥ 10× fewer samples than the final one."""
  ev = context.config.eval
  divisor = (ev.disentanglement_divisor if context.final
             else max(10, ev.disentanglement_divisor))
  from vae_jax.evaluation import disentanglement  # pylint: disable=g-import-not-at-top  (sklearn: slow import)
  representation = loop.representation_fn(context.params, context.spec.model)
  scores = disentanglement.all_scores(representation, context.factor_source,
                                      context.config.seed, divisor=divisor)
  return {**scores, 'disentanglement_sample_divisor': divisor}  # 1 = the reference protocol


def _importance_weighted(context: Context) -> dict:
  result = {'nll_iw': float(np.mean(context.nll_iw, dtype=np.float64)),
            'iw_samples': context.config.eval.iw_samples}
  if context.spec.likelihood == 'bernoulli':
    result['nll_iw_bits_per_dim'] = loop.bits_per_dim(result['nll_iw'], context.spec)
  return result


def class_log_prior(dataset: data_lib.Dataset) -> np.ndarray:
  """log p(y) [C]: the training labels' frequencies (uniform for a procedural
  dataset, whose labels are a factor every combination of which is present)."""
  num = dataset.spec.num_classes
  if 'train_y' not in dataset.arrays:
    return np.full(num, -np.log(num))
  counts = np.bincount(np.asarray(dataset.arrays['train_y']), minlength=num)
  with np.errstate(divide='ignore'):  # a class left out of training: p(y) = 0
    return np.log(counts / counts.sum())


def _marginal_likelihood(context: Context) -> dict:
  """nll_iw_marginal = mean −log Σ_y p(y) p̂(x|y) of a conditional model."""
  ev = context.config.eval
  num_classes = context.spec.model.num_classes
  k = ev.marginal_iw_samples or max(1, ev.iw_samples // num_classes)
  nll = loop.marginal_iw_nll(context.params, context.spec, context.dataset, k,
                             class_log_prior(context.dataset), seed=context.config.seed,
                             batch_size=ev.iw_batch_size, chunk_size=ev.iw_chunk_size)
  return {'nll_iw_marginal': float(np.mean(nll, dtype=np.float64)),
          'marginal_iw_samples': k}


def _anomaly_auroc(context: Context) -> dict:
  """AUROC of the classes held out of training against the rest, scored by nll_iw."""
  excluded = tuple(context.config.data.exclude_classes)
  nll = context.nll_iw
  is_anomaly = np.isin(context.terms['labels'], np.asarray(excluded))
  return {'anomaly_classes': list(excluded),
          'anomaly_auroc': diagnostics.auroc(nll, is_anomaly),
          'anomaly_nll_iw': float(np.mean(nll[is_anomaly])),
          'normal_nll_iw': float(np.mean(nll[~is_anomaly]))}


EVALUATORS = (
    Evaluator('elbo', _elbo),  # nelbo, recon, kl (+ per dimension), bits/dim
    Evaluator('active_units', _active_units),
    Evaluator('aggregate_posterior', _aggregate_posterior, applies=_stochastic),
    Evaluator('disentanglement', _disentanglement, applies=_has_factor_source),
    Evaluator('importance_weighted', _importance_weighted, period='final',
              applies=_stochastic),
    Evaluator('anomaly', _anomaly_auroc, period='final', applies=_anomaly),
    Evaluator('marginal_likelihood', _marginal_likelihood, period='final',
              applies=_conditional),
    Evaluator('mmd_to_prior', _mmd_to_prior, period='final', applies=_stochastic),
)


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
  """Every held-out metric of one evaluation: the applicable EVALUATORS of its period."""
  context = Context(params=params, config=config, spec=spec, dataset=dataset, final=final,
                    factor_source=factor_source)
  result = {}
  for evaluator in EVALUATORS:
    if (evaluator.period == 'every' or final) and evaluator.applies(context):
      result.update(evaluator.fn(context))
      guards.stop_if_signalled()
  terms = context.terms
  nll = vars(context).get('nll_iw')  # computed only if an evaluator read it
  return Evaluation(metrics=public(result, context.stochastic), mu=terms['mu'],
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
