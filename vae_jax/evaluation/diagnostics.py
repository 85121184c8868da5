"""Latent diagnostics and anomaly scoring on per-example outputs (numpy, host side).

Active units (Burda et al. 2015): A_u = Var_x(E_q[z_u|x]). The aggregate
posterior q(z) = mean_x q(z|x) and its first two moments. AUROC of an
anomaly score.
"""

import numpy as np

from vae_jax.models import gaussian


ACTIVE_UNIT_THRESHOLD = 0.01  # A_u above it: an active unit (Burda et al.'s 10^-2)


def active_units(mu: np.ndarray,
                 threshold: float = ACTIVE_UNIT_THRESHOLD) -> tuple[int, np.ndarray]:
  """(number of u with A_u > threshold, A [D]); A_u = Var over N of mu[:, u]."""
  activity = np.var(np.asarray(mu, np.float64), axis=0)
  return int(np.sum(activity > threshold)), activity


def aggregate_posterior_stats(mu: np.ndarray, logvar: np.ndarray) -> dict:
  """Moments of q(z) = mean_x q(z|x): mean m = E[mu], Var = E[exp(logvar)] + Var(mu).

  `kl_moment_matched` = KL(N(m, diag(Var)) || N(0, I)), 0 when q(z) has the
  prior's first two moments. Plain floats / lists (JSON-ready).
  """
  mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
  mean = mu.mean(axis=0)
  posterior_var = np.exp(logvar).mean(axis=0)
  var = posterior_var + mu.var(axis=0)
  kl = gaussian.kl_to_standard(mean, np.log(var))
  return {'mean': mean.tolist(), 'variance': var.tolist(),
          'mean_posterior_variance': posterior_var.tolist(),
          'kl_moment_matched_per_dim': kl.tolist(),
          'kl_moment_matched': float(np.sum(kl))}


def auroc(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
  """Area under the ROC curve, higher score = more anomalous (sklearn roc_auc_score)."""
  from sklearn import metrics  # pylint: disable=g-import-not-at-top  (slow import: only here)
  return float(metrics.roc_auc_score(np.asarray(is_anomaly).astype(bool),
                                     np.asarray(scores)))
