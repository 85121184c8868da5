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
(vae_jax.data.factors) and a numpy Generator. Images are rendered and encoded
at most _IMAGES_PER_CALL at a time. The full protocol encodes ~2.9 M images
(BetaVAE 1.9 M, FactorVAE 0.97 M); `all_scores(..., divisor=10)` uses 10x
fewer samples.
"""

import functools
import math
from typing import Callable

import numpy as np
from sklearn import ensemble, linear_model, metrics, svm

from vae_jax.data.factors import FactorSource

RepresentationFn = Callable[[np.ndarray], np.ndarray]

# Images per source.images / representation_fn call (bounds host memory).
_IMAGES_PER_CALL = 1000

# Iterations of the BetaVAE logistic regression (sklearn's default 100 often
# stops short of convergence on these features).
_LOGISTIC_MAX_ITER = 1000

SCORE_KEYS = ('beta_vae_score', 'factor_vae_score', 'mig', 'dci_disentanglement',
              'dci_completeness', 'dci_informativeness', 'sap')


# --------------------------------------------------------------- sampling


def encode_factors(representation_fn: RepresentationFn, source: FactorSource,
                   factors: np.ndarray) -> np.ndarray:
  """Codes float64 [N, D] of the images of factor classes [N, F]."""
  codes = []
  for start in range(0, len(factors), _IMAGES_PER_CALL):
    chunk = factors[start:start + _IMAGES_PER_CALL]
    code = np.asarray(representation_fn(source.images(chunk)), np.float64)
    if code.ndim != 2 or len(code) != len(chunk):
      raise ValueError(f'representation_fn must map {len(chunk)} images to '
                       f'codes [{len(chunk)}, D], got shape {code.shape}')
    codes.append(code)
  return np.concatenate(codes)


def sample_codes(representation_fn: RepresentationFn, source: FactorSource,
                 rng: np.random.Generator, num: int) -> tuple[np.ndarray, np.ndarray]:
  """(codes float64 [num, D], factor classes int32 [num, F]) of uniform samples."""
  factors = source.sample_factors(rng, num)
  return encode_factors(representation_fn, source, factors), factors


def _seed(rng: np.random.Generator) -> int:
  """A random_state for sklearn estimators drawn from `rng`."""
  return int(rng.integers(2**31 - 1))


def _points_per_call(images_per_point: int) -> int:
  """Points whose images fit in one _IMAGES_PER_CALL call (at least one)."""
  return max(1, _IMAGES_PER_CALL // images_per_point)


def _fix_factor(factors: np.ndarray, fixed: np.ndarray,
                values: np.ndarray) -> np.ndarray:
  """factors [P, B, F] with factor fixed[p] set to values [P, B, F] at it."""
  mask = np.arange(factors.shape[-1]) == fixed[:, None, None]
  return np.where(mask, values, factors)


# ---------------------------------------------------------------- BetaVAE


def _beta_vae_points(representation_fn: RepresentationFn, source: FactorSource,
                     rng: np.random.Generator, batch_size: int,
                     num_points: int) -> tuple[np.ndarray, np.ndarray]:
  """(features [num_points, D], fixed factor [num_points]) of BetaVAE points."""
  num_factors = len(source.factor_sizes)
  features, labels = [], []
  group = _points_per_call(2 * batch_size)
  for start in range(0, num_points, group):
    num = min(group, num_points - start)
    fixed = rng.integers(num_factors, size=num)
    first = source.sample_factors(rng, num * batch_size).reshape(num, batch_size, -1)
    second = source.sample_factors(rng, num * batch_size).reshape(num, batch_size, -1)
    second = _fix_factor(second, fixed, first)
    both = np.concatenate([first, second]).reshape(2 * num * batch_size, -1)
    codes = encode_factors(representation_fn, source, both)
    codes = codes.reshape(2, num, batch_size, -1)
    features.append(np.mean(np.abs(codes[0] - codes[1]), axis=1))
    labels.append(fixed)
  return np.concatenate(features), np.concatenate(labels)


def beta_vae_score(representation_fn: RepresentationFn, source: FactorSource,
                   rng: np.random.Generator, batch_size: int = 64,
                   num_train: int = 10_000, num_eval: int = 5_000) -> dict:
  """BetaVAE score: {'train_accuracy', 'eval_accuracy'} (the score is eval)."""
  x_train, y_train = _beta_vae_points(representation_fn, source, rng,
                                      batch_size, num_train)
  x_eval, y_eval = _beta_vae_points(representation_fn, source, rng,
                                    batch_size, num_eval)
  model = linear_model.LogisticRegression(max_iter=_LOGISTIC_MAX_ITER,
                                          random_state=_seed(rng))
  model.fit(x_train, y_train)
  return {'train_accuracy': float(np.mean(model.predict(x_train) == y_train)),
          'eval_accuracy': float(np.mean(model.predict(x_eval) == y_eval))}


# -------------------------------------------------------------- FactorVAE


def _factor_vae_votes(representation_fn: RepresentationFn, source: FactorSource,
                      rng: np.random.Generator, batch_size: int, num_points: int,
                      global_var: np.ndarray, active: np.ndarray) -> np.ndarray:
  """Votes int [F, num active dims]: fixed factor vs argmin normalised variance."""
  num_factors = len(source.factor_sizes)
  votes = np.zeros((num_factors, int(active.sum())), np.int64)
  group = _points_per_call(batch_size)
  for start in range(0, num_points, group):
    num = min(group, num_points - start)
    fixed = rng.integers(num_factors, size=num)
    factors = source.sample_factors(rng, num * batch_size).reshape(num, batch_size, -1)
    factors = _fix_factor(factors, fixed, factors[:, :1, :])
    codes = encode_factors(representation_fn, source,
                           factors.reshape(num * batch_size, -1))
    local_var = np.var(codes.reshape(num, batch_size, -1), axis=1, ddof=1)
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
  codes, _ = sample_codes(representation_fn, source, rng, num_variance_estimate)
  global_var = np.var(codes, axis=0, ddof=1)
  active = np.sqrt(global_var) >= prune_threshold
  if not active.any():
    return {'train_accuracy': 0.0, 'eval_accuracy': 0.0, 'num_active_dims': 0}
  train = _factor_vae_votes(representation_fn, source, rng, batch_size,
                            num_train, global_var, active)
  evaluation = _factor_vae_votes(representation_fn, source, rng, batch_size,
                                 num_eval, global_var, active)
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


def _top_two_gap(scores: np.ndarray) -> np.ndarray:
  """Per column of scores [D, F]: largest minus second largest (0 if D = 1)."""
  top = np.sort(scores, axis=0)[::-1]
  second = top[1] if len(top) > 1 else np.zeros_like(top[0])
  return top[0] - second


def mig(representation_fn: RepresentationFn, source: FactorSource,
        rng: np.random.Generator, num_train: int = 10_000,
        num_bins: int = 20) -> dict:
  """Mutual information gap: {'mig'} (factors with zero entropy are skipped)."""
  codes, factors = sample_codes(representation_fn, source, rng, num_train)
  info = mutual_information(histogram_discretize(codes, num_bins), factors)
  entropy = np.array([metrics.mutual_info_score(f, f) for f in factors.T])
  used = entropy > 0
  gaps = _top_two_gap(info)[used] / entropy[used]
  return {'mig': float(np.mean(gaps)) if gaps.size else 0.0}


# -------------------------------------------------------------------- DCI


def _normalized_entropy(weights: np.ndarray) -> np.ndarray:
  """Entropy (base = length) of each column of weights [n, m] normalised to sum 1."""
  if len(weights) < 2:
    return np.zeros(weights.shape[1])
  p = weights + 1e-11  # as disentanglement_lib: an all-zero column is uniform
  p = p / p.sum(axis=0, keepdims=True)
  return -np.sum(p * np.log(p), axis=0) / math.log(len(weights))


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
  """(disentanglement, completeness) of an importance matrix [D latents, F]."""
  weights = importance if importance.sum() > 0 else np.ones_like(importance)
  code_weight = weights.sum(axis=1) / weights.sum()
  factor_weight = weights.sum(axis=0) / weights.sum()
  disentanglement = np.sum((1 - _normalized_entropy(importance.T)) * code_weight)
  completeness = np.sum((1 - _normalized_entropy(importance)) * factor_weight)
  return float(disentanglement), float(completeness)


def dci(representation_fn: RepresentationFn, source: FactorSource,
        rng: np.random.Generator, num_train: int = 10_000,
        num_test: int = 5_000) -> dict:
  """DCI: {'disentanglement', 'completeness', 'informativeness_train/_test'}.

  One sklearn GradientBoostingClassifier (defaults) per factor. Completeness
  weights factors by their share of importance, as disentanglement_lib does;
  GBT importances sum to 1 per factor, so this is the plain mean over factors.
  Slow (sklearn's GBT is single-threaded and fits one tree per class and
  stage): the full protocol on procedural dSprites with 10 latents took 375 s
  on a shared 2-core CPU (113 classes over the 5 factors; orientation's 40 and
  the positions' 32 dominate), of 448 s for all_scores.
  """
  x_train, y_train = sample_codes(representation_fn, source, rng, num_train)
  x_test, y_test = sample_codes(representation_fn, source, rng, num_test)
  importance = np.zeros((x_train.shape[1], y_train.shape[1]))
  train_accuracy, test_accuracy = [], []
  for k in range(y_train.shape[1]):
    model = ensemble.GradientBoostingClassifier(random_state=_seed(rng))
    model.fit(x_train, y_train[:, k])
    importance[:, k] = np.abs(model.feature_importances_)
    train_accuracy.append(np.mean(model.predict(x_train) == y_train[:, k]))
    test_accuracy.append(np.mean(model.predict(x_test) == y_test[:, k]))
  disentanglement, completeness = dci_from_importance(importance)
  return {'disentanglement': disentanglement, 'completeness': completeness,
          'informativeness_train': float(np.mean(train_accuracy)),
          'informativeness_test': float(np.mean(test_accuracy))}


# -------------------------------------------------------------------- SAP


def sap(representation_fn: RepresentationFn, source: FactorSource,
        rng: np.random.Generator, num_train: int = 10_000,
        num_test: int = 5_000) -> dict:
  """SAP score: {'sap'}, from single-latent LinearSVC test accuracies."""
  x_train, y_train = sample_codes(representation_fn, source, rng, num_train)
  x_test, y_test = sample_codes(representation_fn, source, rng, num_test)
  accuracy = np.zeros((x_train.shape[1], y_train.shape[1]))
  for j in range(x_train.shape[1]):
    for k in range(y_train.shape[1]):
      model = svm.LinearSVC(C=0.01, class_weight='balanced',
                            random_state=_seed(rng))
      model.fit(x_train[:, j:j + 1], y_train[:, k])
      accuracy[j, k] = np.mean(model.predict(x_test[:, j:j + 1]) == y_test[:, k])
  return {'sap': float(np.mean(_top_two_gap(accuracy)))}


# -------------------------------------------------------------------- all


def protocol(divisor: int = 0) -> dict:
  """{estimator: fn(representation_fn, source, rng)} in all_scores' order, at the
  reference protocol's sample counts divided by `divisor` (if > 0)."""
  n = divisor if divisor > 0 else 1
  train, test = 10_000 // n, 5_000 // n
  return {'beta_vae_score': functools.partial(beta_vae_score, num_train=train, num_eval=test),
          'factor_vae_score': functools.partial(factor_vae_score, num_train=train,
                                                num_eval=test, num_variance_estimate=train),
          'mig': functools.partial(mig, num_train=train),
          'dci': functools.partial(dci, num_train=train, num_test=test),
          'sap': functools.partial(sap, num_train=train, num_test=test)}


def all_scores(representation_fn: RepresentationFn, source: FactorSource,
               seed: int, *, divisor: int = 0) -> dict:
  """The seven headline scores (floats, keys SCORE_KEYS), seeded by `seed` only;
  `divisor` as in `protocol` (periodic evaluations, tests)."""
  estimators = protocol(divisor).values()
  beta, factor, gap, dci_scores, sap_scores = (
      fn(representation_fn, source, np.random.default_rng(s))
      for fn, s in zip(estimators, np.random.SeedSequence(seed).spawn(len(estimators))))
  return {'beta_vae_score': beta['eval_accuracy'], 'factor_vae_score': factor['eval_accuracy'],
          'mig': gap['mig'], 'dci_disentanglement': dci_scores['disentanglement'],
          'dci_completeness': dci_scores['completeness'],
          'dci_informativeness': dci_scores['informativeness_test'], 'sap': sap_scores['sap']}
