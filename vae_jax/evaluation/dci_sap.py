"""DCI and SAP: scores from classifiers fitted per factor, the fits run in parallel.

* DCI (Eastwood & Williams, 2018): disentanglement, completeness and
  informativeness from gradient-boosted-tree feature importances, one
  sklearn GradientBoostingClassifier (defaults) per factor.
* SAP (Kumar et al., 2018): mean over factors of the gap in accuracy between
  the two best single-latent linear SVM classifiers (one LinearSVC per latent
  and factor).

As in disentanglement_lib (see vae_jax.evaluation.disentanglement). The fits
are independent, so they run in `workers` threads (sklearn's tree and liblinear
fits release the GIL; 0 = one per CPU). Each fit's random_state is drawn from
the score's generator before any fit starts, in the order of a sequential
loop, so the scores do not depend on the number of workers.

DCI's cost is the exact trees: 100 stages × one tree per class, 113 classes
over dSprites' five factors (orientation's 40 and the positions' 32 dominate),
≈ 26 ms a tree on 10,000 codes of 10 latents: ≈ 5 CPU-minutes at the
reference protocol, which the workers divide at best by
min(CPUs, 113 / 40) (the largest factor's fit is one thread's work).
"""

import concurrent.futures
import math
import os
from typing import Callable

import numpy as np
from sklearn import ensemble, svm

from vae_jax.data.factors import FactorSource
from vae_jax.evaluation import factor_codes
from vae_jax.run import guards


def _num_workers(workers: int, num_tasks: int) -> int:
  cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  return max(1, min(num_tasks, workers if workers > 0 else cpus or 1))


def in_parallel(tasks: list[Callable[[], object]], workers: int = 0,
                cost: list[float] = None) -> list:
  """[task() for task in tasks], run in `workers` threads, costliest (by `cost`)
  first; results in the tasks' order."""
  order = sorted(range(len(tasks)), key=lambda i: -cost[i]) if cost else range(len(tasks))

  def run(i):
    guards.stop_if_signalled()
    return tasks[i]()

  num = _num_workers(workers, len(tasks))
  if num == 1:
    results = {i: run(i) for i in order}
  else:
    pool = concurrent.futures.ThreadPoolExecutor(num)
    try:
      futures = {i: pool.submit(run, i) for i in order}
      results = {i: future.result() for i, future in futures.items()}
    finally:  # a stop (or an error) does not wait for the fits still running
      pool.shutdown(wait=False, cancel_futures=True)
  return [results[i] for i in range(len(tasks))]


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


def _boosted_trees(x_train, y_train, x_test, y_test, seed: int) -> tuple:
  """(|importances| [D], train accuracy, test accuracy) of one factor's GBT."""
  model = ensemble.GradientBoostingClassifier(random_state=seed)
  model.fit(x_train, y_train)
  return (np.abs(model.feature_importances_), np.mean(model.predict(x_train) == y_train),
          np.mean(model.predict(x_test) == y_test))


def dci(representation_fn, source: FactorSource, rng: np.random.Generator,
        num_train: int = 10_000, num_test: int = 5_000, workers: int = 0) -> dict:
  """DCI: {'disentanglement', 'completeness', 'informativeness_train/_test'}.

  Completeness weights factors by their share of importance, as
  disentanglement_lib does; GBT importances sum to 1 per factor, so this is
  the plain mean over factors.
  """
  codes_of = factor_codes.factor_codes(representation_fn, source)
  x_train, y_train = factor_codes.sample_codes(codes_of, rng, num_train)
  x_test, y_test = factor_codes.sample_codes(codes_of, rng, num_test)
  seeds = [factor_codes.seed_from(rng) for _ in range(y_train.shape[1])]
  fits = in_parallel(
      [lambda k=k: _boosted_trees(x_train, y_train[:, k], x_test, y_test[:, k], seeds[k])
       for k in range(y_train.shape[1])],
      workers, cost=list(source.factor_sizes))
  importance = np.stack([fit[0] for fit in fits], axis=1)
  disentanglement, completeness = dci_from_importance(importance)
  return {'disentanglement': disentanglement, 'completeness': completeness,
          'informativeness_train': float(np.mean([fit[1] for fit in fits])),
          'informativeness_test': float(np.mean([fit[2] for fit in fits]))}


# -------------------------------------------------------------------- SAP


def top_two_gap(scores: np.ndarray) -> np.ndarray:
  """Per column of scores [D, F]: largest minus second largest (0 if D = 1)."""
  top = np.sort(scores, axis=0)[::-1]
  second = top[1] if len(top) > 1 else np.zeros_like(top[0])
  return top[0] - second


def _linear_svm_accuracy(x_train, y_train, x_test, y_test, seed: int) -> float:
  model = svm.LinearSVC(C=0.01, class_weight='balanced', random_state=seed)
  model.fit(x_train, y_train)
  return float(np.mean(model.predict(x_test) == y_test))


def sap(representation_fn, source: FactorSource, rng: np.random.Generator,
        num_train: int = 10_000, num_test: int = 5_000, workers: int = 0) -> dict:
  """SAP score: {'sap'}, from single-latent LinearSVC test accuracies."""
  codes_of = factor_codes.factor_codes(representation_fn, source)
  x_train, y_train = factor_codes.sample_codes(codes_of, rng, num_train)
  x_test, y_test = factor_codes.sample_codes(codes_of, rng, num_test)
  pairs = [(j, k) for j in range(x_train.shape[1]) for k in range(y_train.shape[1])]
  seeds = [factor_codes.seed_from(rng) for _ in pairs]
  accuracy = in_parallel(
      [lambda j=j, k=k, s=s: _linear_svm_accuracy(x_train[:, j:j + 1], y_train[:, k],
                                                  x_test[:, j:j + 1], y_test[:, k], s)
       for (j, k), s in zip(pairs, seeds)], workers)
  accuracy = np.reshape(accuracy, (x_train.shape[1], y_train.shape[1]))
  return {'sap': float(np.mean(top_two_gap(accuracy)))}
