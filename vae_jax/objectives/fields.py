"""The config.objective fields: default, the rule a value must satisfy, and what it means.

The base config's objective section and its validation are derived from
`FIELDS`; an objective names the fields it reads in its registry entry.
"""

import dataclasses
from typing import Callable

WAE_ENCODERS = ('gaussian', 'deterministic')
CAPACITY_FORMS = ('batch_mean', 'per_example')  # where AnnealedVAE's |KL − C| is taken
TC_ESTIMATORS = ('mws', 'mss')  # β-TCVAE's minibatch estimators (total_correlation.py)
FACTOR_PERMUTED_CODES = ('same_batch', 'second_batch')  # FactorVAE's class-1 codes
DISCRIMINATOR_HIDDEN_DIMS = (1000,) * 6  # FactorVAE's discriminator (discriminator.py)


@dataclasses.dataclass(frozen=True)
class Field:
  """A config.objective field: default, the rule its value must satisfy, a comment;
  `array`: it enters the train step as an array (an objective's `hparams`: sweep
  members differing only in such fields train as one population), else it is a
  static setting (an objective's `settings`)."""
  default: object
  rule: Callable[[object], bool]
  requirement: str
  comment: str
  array: bool = False


def _non_negative(value) -> bool:
  return isinstance(value, (int, float)) and value >= 0


def _positive(value) -> bool:
  return isinstance(value, (int, float)) and value > 0


def _positive_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_ints(value) -> bool:
  return isinstance(value, (tuple, list)) and len(value) > 0 and all(
      _positive_int(v) for v in value)


def _adam_beta(value) -> bool:
  return isinstance(value, (int, float)) and 0 <= value < 1


FIELDS = {
    'beta': Field(1.0, _non_negative, 'non-negative',
                  "'beta': recon + β·kl; 'beta_tc': recon + kl + (β−1)·TC", array=True),
    'tc_estimator': Field('mws', lambda v: v in TC_ESTIMATORS, f'one of {TC_ESTIMATORS}',
                          "'beta_tc': 'mws' (as published) | 'mss'"),
    'gamma': Field(1000.0, _non_negative, 'non-negative',
                   "'capacity': loss = recon + γ·|kl − C(step)| (capacity_form)", array=True),
    'capacity_max': Field(25.0, _non_negative, 'non-negative',
                          "'capacity': C_max in nats", array=True),
    'capacity_steps': Field(100_000, _non_negative, 'non-negative',
                            "'capacity': steps over which C ramps 0 → C_max", array=True),
    'capacity_form': Field('batch_mean', lambda v: v in CAPACITY_FORMS,
                           f'one of {CAPACITY_FORMS}',
                           "'capacity': 'batch_mean' γ·|mean_i KL_i − C| (Burgess et al., "
                           "disentanglement_lib) | 'per_example' mean_i γ·|KL_i − C| (pythae)"),
    'lambda_od': Field(10.0, _non_negative, 'non-negative',
                       "'dip_vae_i', 'dip_vae_ii': weight of Σ_{i≠j} Cov_ij² (study grid "
                       "{1, 2, 5, 10, 20, 50})", array=True),
    'lambda_d': Field(100.0, _non_negative, 'non-negative',
                      "'dip_vae_i', 'dip_vae_ii': weight of Σ_i (Cov_ii − 1)²; the study "
                      "sets λ_d = 10·λ_od (DIP-I, this default) and λ_d = λ_od (DIP-II)",
                      array=True),
    'wae_lambda': Field(10.0, _non_negative, 'non-negative',
                        "'wae_mmd': loss = recon + λ·MMD(q(z), p(z))", array=True),
    'wae_encoder': Field('gaussian', lambda v: v in WAE_ENCODERS, f'one of {WAE_ENCODERS}',
                         "'wae_mmd': 'gaussian' (z ~ q(z|x)) | 'deterministic' (z = mu; "
                         "kl, nelbo, nll_iw still reported for N(mu, exp(logvar)), whose "
                         "logvar the loss does not train)"),
    'iw_k': Field(5, _positive_int, 'a positive integer',
                  "'iwae', 'elbo_k': samples of q(z|x) per example (static: sets shapes)"),
    'factor_gamma': Field(10.0, _non_negative, 'non-negative',
                          "'factor_vae': loss = recon + kl + γ·TC (study grid {10, 20, 30, "
                          "40, 50, 100}; 10, its smallest, by default)", array=True),
    'factor_permuted_codes': Field(
        'same_batch', lambda v: v in FACTOR_PERMUTED_CODES, f'one of {FACTOR_PERMUTED_CODES}',
        "'factor_vae': the codes the discriminator sees permuted: 'same_batch' (the batch's "
        "own, as disentanglement_lib) | 'second_batch' (those of a second batch drawn "
        "independently, Kim & Mnih's Algorithm 1)"),
    'discriminator_lr': Field(1e-4, _positive, 'positive',
                              "'factor_vae': the discriminator's Adam learning rate", array=True),
    'discriminator_b1': Field(0.5, _adam_beta, 'in [0, 1)',
                              "'factor_vae': the discriminator's Adam β1 (static)"),
    'discriminator_b2': Field(0.9, _adam_beta, 'in [0, 1)',
                              "'factor_vae': the discriminator's Adam β2 (static)"),
    'discriminator_hidden_dims': Field(
        DISCRIMINATOR_HIDDEN_DIMS, _positive_ints, 'a non-empty tuple of positive integers',
        "'factor_vae': the discriminator's dense widths, leaky ReLU 0.2 (static)"),
}

# The fields that enter a step as arrays (the registry checks its objectives agree).
ARRAY_FIELDS = tuple(sorted(k for k, f in FIELDS.items() if f.array))
