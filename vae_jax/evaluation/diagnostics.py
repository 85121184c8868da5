"""Latent diagnostics and anomaly scoring on per-example outputs (numpy, host side).

Active units (Burda et al. 2015): A_u = Var_x(E_q[z_u|x]). The aggregate
posterior q(z) = mean_x q(z|x): its first two moments, the KL to the prior
of the Gaussian that matches them (diagonal, and with the full covariance),
and the MMD² of its codes to prior draws with WAE's kernel. AUROC of an
anomaly score.
"""

import numpy as np

from vae_jax.models import gaussian
from vae_jax.objectives.penalties import IMQ_SCALES

MMD_BLOCK = 1024  # rows of the kernel matrix held at once by `mmd_to_prior`


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
  # With the cross-covariances: Cov = E[diag exp(logvar)] + Cov(mu), full [D, D].
  cov = np.diag(posterior_var) + np.cov(mu, rowvar=False, bias=True).reshape(len(mean), -1)
  log_det = np.linalg.slogdet(cov)[1]
  kl_full = 0.5 * (np.trace(cov) + mean @ mean - len(mean) - log_det)
  return {'mean': mean.tolist(), 'variance': var.tolist(),
          'mean_posterior_variance': posterior_var.tolist(),
          'kl_moment_matched_per_dim': kl.tolist(),
          'kl_moment_matched': float(np.sum(kl)),
          'kl_moment_matched_full_cov': float(kl_full)}


def _imq_sum(a: np.ndarray, b: np.ndarray, c: float) -> float:
  """Σ_ij Σ_s sC / (sC + ‖a_i − b_j‖²), MMD_BLOCK rows of a at a time."""
  total, b_sq = 0.0, np.sum(b * b, axis=1)
  for start in range(0, len(a), MMD_BLOCK):
    rows = a[start:start + MMD_BLOCK]
    sq = np.maximum(np.sum(rows * rows, axis=1)[:, None] + b_sq[None, :] - 2.0 * rows @ b.T,
                    0.0)
    total += sum(float(np.sum(s * c / (s * c + sq))) for s in IMQ_SCALES)
  return total


def mmd_to_prior(codes: np.ndarray, prior_codes: np.ndarray, prior_var: float = 1.0) -> float:
  """The unbiased MMD² of codes [N, D] ~ q(z) and prior_codes [N, D] ~ p(z) with
  WAE's inverse multiquadratic kernel (objectives.penalties.mmd_imq, the same
  U-statistic) in float64, for N too large for one N × N kernel matrix."""
  codes, prior_codes = np.asarray(codes, np.float64), np.asarray(prior_codes, np.float64)
  num = len(codes)
  c = 2.0 * codes.shape[1] * prior_var
  diagonal = num * len(IMQ_SCALES)  # k(z, z) = Σ_s 1
  within = lambda a: (_imq_sum(a, a, c) - diagonal) / (num * (num - 1))
  return within(codes) + within(prior_codes) - 2.0 * _imq_sum(codes, prior_codes, c) / num**2


def auroc(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
  """Area under the ROC curve, higher score = more anomalous (sklearn roc_auc_score)."""
  from sklearn import metrics  # pylint: disable=g-import-not-at-top  (slow import: only here)
  return float(metrics.roc_auc_score(np.asarray(is_anomaly).astype(bool),
                                     np.asarray(scores)))
