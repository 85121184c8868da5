"""Disentanglement scores of a representation against ground-truth factors.

The five standard scores as defined in disentanglement_lib (Locatello et al.,
"Challenging Common Assumptions in the Unsupervised Learning of Disentangled
Representations", ICML 2019), with its default protocol as the defaults here:

* BetaVAE score (Higgins et al., 2017): accuracy of a logistic regression that
  predicts which factor was held fixed from mean |r1 − r2| over 64 pairs.
* FactorVAE score (Kim & Mnih, 2018): accuracy of a majority-vote classifier
  from the dimension of least normalised variance to the factor held fixed.
* MIG (Chen et al., 2018): mean over factors of the normalised gap between the
  two latents with the largest mutual information with the factor.
* DCI (Eastwood & Williams, 2018): disentanglement, completeness and
  informativeness from gradient-boosted-tree feature importances.
* SAP (Kumar et al., 2018): mean over factors of the gap in accuracy between
  the two best single-latent linear SVM classifiers.

Each score takes `representation_fn` (images float32 [B, H, W, C] -> codes
[B, D]; in the pipeline the encoder mean), a `FactorSource`
(vae_jax.data.factors) and a numpy Generator. The full protocol draws ~2.9 M
factor combinations (BetaVAE 1.9 M, FactorVAE 0.97 M); each distinct one is
rendered and encoded once (vae_jax.evaluation.factor_codes: ≤ 737,280 for
dSprites), in batches of factor_codes.ENCODE_BATCH. `all_scores(...,
divisor=10)` draws 10x fewer samples. DCI and SAP live in
vae_jax.evaluation.dci_sap (their per-factor fits run in parallel threads).
"""

import functools
from typing import Callable

import numpy as np
from sklearn import linear_model, metrics

from vae_jax.data.factors import FactorSource
from vae_jax.evaluation import factor_codes
from vae_jax.evaluation.dci_sap import dci, dci_from_importance, sap, top_two_gap

RepresentationFn = Callable[[np.ndarray], np.ndarray]

# Iterations of the BetaVAE logistic regression (sklearn's default 100 often
# stops short of convergence on these features).
_LOGISTIC_MAX_ITER = 1000

SCORE_KEYS = ('beta_vae_score', 'factor_vae_score', 'mig', 'dci_disentanglement',
              'dci_completeness', 'dci_informativeness', 'sap')

__all__ = ['SCORE_KEYS', 'all_scores', 'beta_vae_score', 'dci', 'dci_from_importance',
           'factor_vae_score', 'histogram_discretize', 'mig', 'mutual_information',
           'protocol', 'sap']


# --------------------------------------------------------------- sampling


def _draw_groups(rng: np.random.Generator, num_points: int, images_per_point: int,
                 draw: Callable) -> list:
  """[draw(rng, n)] over groups of n points whose images fill one encoder batch:
  the order in which the points' factors are drawn (it fixes the scores' draws)."""
  group = max(1, factor_codes.ENCODE_BATCH // images_per_point)
  return [draw(rng, min(group, num_points - start))
          for start in range(0, num_points, group)]


def _fix_factor(factors: np.ndarray, fixed: np.ndarray,
                values: np.ndarray) -> np.ndarray:
  """factors [P, B, F] with factor fixed[p] set to values [P, B, F] at it."""
  mask = np.arange(factors.shape[-1]) == fixed[:, None, None]
  return np.where(mask, values, factors)


# ---------------------------------------------------------------- BetaVAE


def _beta_vae_points(codes_of: factor_codes.FactorCodes, rng: np.random.Generator,
                     batch_size: int, num_points: int) -> tuple[np.ndarray, np.ndarray]:
  """(features [num_points, D], fixed factor [num_points]) of BetaVAE points."""
  source = codes_of.source
  num_factors = len(source.factor_sizes)

  def draw(rng, num):
    fixed = rng.integers(num_factors, size=num)
    first = source.sample_factors(rng, num * batch_size).reshape(num, batch_size, -1)
    second = source.sample_factors(rng, num * batch_size).reshape(num, batch_size, -1)
    second = _fix_factor(second, fixed, first)
    return fixed, np.concatenate([first, second]).reshape(2 * num * batch_size, -1)

  groups = _draw_groups(rng, num_points, 2 * batch_size, draw)
  codes_of.prepare(np.concatenate([pairs for _, pairs in groups]))
  features = []
  for fixed, pairs in groups:
    codes = codes_of(pairs).reshape(2, len(fixed), batch_size, -1)
    features.append(np.mean(np.abs(codes[0] - codes[1]), axis=1))
  return np.concatenate(features), np.concatenate([fixed for fixed, _ in groups])


def beta_vae_score(representation_fn: RepresentationFn, source: FactorSource,
                   rng: np.random.Generator, batch_size: int = 64,
                   num_train: int = 10_000, num_eval: int = 5_000) -> dict:
  """BetaVAE score: {'train_accuracy', 'eval_accuracy'} (the score is eval)."""
  codes_of = factor_codes.factor_codes(representation_fn, source)
  x_train, y_train = _beta_vae_points(codes_of, rng, batch_size, num_train)
  x_eval, y_eval = _beta_vae_points(codes_of, rng, batch_size, num_eval)
  model = linear_model.LogisticRegression(max_iter=_LOGISTIC_MAX_ITER,
                                          random_state=factor_codes.seed_from(rng))
  model.fit(x_train, y_train)
  return {'train_accuracy': float(np.mean(model.predict(x_train) == y_train)),
          'eval_accuracy': float(np.mean(model.predict(x_eval) == y_eval))}


# -------------------------------------------------------------- FactorVAE


def _factor_vae_votes(codes_of: factor_codes.FactorCodes, rng: np.random.Generator,
                      batch_size: int, num_points: int, global_var: np.ndarray,
                      active: np.ndarray) -> np.ndarray:
  """Votes int [F, num active dims]: fixed factor vs argmin normalised variance."""
  source = codes_of.source
  num_factors = len(source.factor_sizes)

  def draw(rng, num):
    fixed = rng.integers(num_factors, size=num)
    factors = source.sample_factors(rng, num * batch_size).reshape(num, batch_size, -1)
    factors = _fix_factor(factors, fixed, factors[:, :1, :])
    return fixed, factors.reshape(num * batch_size, -1)

  groups = _draw_groups(rng, num_points, batch_size, draw)
  codes_of.prepare(np.concatenate([factors for _, factors in groups]))
  votes = np.zeros((num_factors, int(active.sum())), np.int64)
  for fixed, factors in groups:
    local_var = np.var(codes_of(factors).reshape(len(fixed), batch_size, -1), axis=1, ddof=1)
    dims = np.argmin(local_var[:, active] / global_var[active], axis=1)
    np.add.at(votes, (fixed, dims), 1)
  return votes


def _majority_accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
  """Fraction of votes [F, A] whose factor is classifier[dim]'s."""
  total = votes.sum()
  correct = votes[classifier, np.arange(votes.shape[1])].sum()
  return float(correct / total) if total else 0.0


def factor_vae_score(representation_fn: RepresentationFn, source: FactorSource,
                     rng: np.random.Generator, batch_size: int = 64,
                     num_train: int = 10_000, num_eval: int = 5_000,
                     num_variance_estimate: int = 10_000,
                     prune_threshold: float = 0.05) -> dict:
  """FactorVAE score: {'train_accuracy', 'eval_accuracy', 'num_active_dims'}.

  Dimensions whose global standard deviation is below `prune_threshold` are
  ignored (as in disentanglement_lib); with none active every score is 0.
  """
  if batch_size < 2:
    raise ValueError(f'batch_size must be at least 2, got {batch_size}')
  codes_of = factor_codes.factor_codes(representation_fn, source)
  codes, _ = factor_codes.sample_codes(codes_of, rng, num_variance_estimate)
  global_var = np.var(codes, axis=0, ddof=1)
  active = np.sqrt(global_var) >= prune_threshold
  if not active.any():
    return {'train_accuracy': 0.0, 'eval_accuracy': 0.0, 'num_active_dims': 0}
  train = _factor_vae_votes(codes_of, rng, batch_size, num_train, global_var, active)
  evaluation = _factor_vae_votes(codes_of, rng, batch_size, num_eval, global_var, active)
  classifier = np.argmax(train, axis=0)
  return {'train_accuracy': _majority_accuracy(train, classifier),
          'eval_accuracy': _majority_accuracy(evaluation, classifier),
          'num_active_dims': int(active.sum())}


# -------------------------------------------------------------------- MIG


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
  """Bin indices int [N, D]: each dimension cut into num_bins equal-width bins."""
  columns = []
  for column in codes.T:
    edges = np.histogram(column, num_bins)[1]
    columns.append(np.digitize(column, edges[:-1]))
  return np.stack(columns, axis=1)


def mutual_information(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
  """Discrete mutual information (nats) [D, F] of codes [N, D], factors [N, F]."""
  return np.array([[metrics.mutual_info_score(factor, code) for factor in factors.T]
                   for code in codes.T])


def mig(representation_fn: RepresentationFn, source: FactorSource,
        rng: np.random.Generator, num_train: int = 10_000,
        num_bins: int = 20) -> dict:
  """Mutual information gap: {'mig'} (factors with zero entropy are skipped)."""
  codes, factors = factor_codes.sample_codes(
      factor_codes.factor_codes(representation_fn, source), rng, num_train)
  info = mutual_information(histogram_discretize(codes, num_bins), factors)
  entropy = np.array([metrics.mutual_info_score(f, f) for f in factors.T])
  used = entropy > 0
  gaps = top_two_gap(info)[used] / entropy[used]
  return {'mig': float(np.mean(gaps)) if gaps.size else 0.0}


# -------------------------------------------------------------------- all


def protocol(divisor: int = 0, workers: int = 0) -> dict:
  """{estimator: fn(representation_fn, source, rng)} in all_scores' order, at the
  reference protocol's sample counts divided by `divisor` (if > 0); DCI's and
  SAP's fits in `workers` threads (0: one per CPU)."""
  n = divisor if divisor > 0 else 1
  train, test = 10_000 // n, 5_000 // n
  return {'beta_vae_score': functools.partial(beta_vae_score, num_train=train, num_eval=test),
          'factor_vae_score': functools.partial(factor_vae_score, num_train=train,
                                                num_eval=test, num_variance_estimate=train),
          'mig': functools.partial(mig, num_train=train),
          'dci': functools.partial(dci, num_train=train, num_test=test, workers=workers),
          'sap': functools.partial(sap, num_train=train, num_test=test, workers=workers)}


def all_scores(representation_fn: RepresentationFn, source: FactorSource,
               seed: int, *, divisor: int = 0, workers: int = 0,
               encode_once: bool = True) -> dict:
  """The seven headline scores (floats, keys SCORE_KEYS), seeded by `seed` only;
  `divisor` and `workers` as in `protocol` (the scores do not depend on
  `workers`). With `encode_once` the five estimators share one table of codes
  (vae_jax.evaluation.factor_codes): each image is encoded at most once."""
  estimators = protocol(divisor, workers).values()
  codes_of = factor_codes.FactorCodes(representation_fn, source, encode_once)
  beta, factor, gap, dci_scores, sap_scores = (
      fn(codes_of, source, np.random.default_rng(s))
      for fn, s in zip(estimators, np.random.SeedSequence(seed).spawn(len(estimators))))
  return {'beta_vae_score': beta['eval_accuracy'], 'factor_vae_score': factor['eval_accuracy'],
          'mig': gap['mig'], 'dci_disentanglement': dci_scores['disentanglement'],
          'dci_completeness': dci_scores['completeness'],
          'dci_informativeness': dci_scores['informativeness_test'], 'sap': sap_scores['sap']}
