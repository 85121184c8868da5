"""The registry of objectives, built from the per-example ELBO terms (terms.py), in nats.

Objectives (the `loss` actually minimized, chosen by config.objective.name):

    elbo      recon + kl                                (plain VAE)
    beta      recon + β·kl                              (Higgins et al. 2017)
    capacity  recon + γ·|mean_batch(kl) − C(t)|, C(t) = C_max·min(1, t/T)
              (Burgess et al. 2018, as disentanglement_lib); capacity_form=
              'per_example': recon + mean_batch γ·|kl − C(t)| (pythae's form)
    ae        −log p(x|z=mu): deterministic autoencoder, no sampling, no KL
    beta_tc   recon + kl + (β − 1)·TC                   (β-TCVAE, Chen et al. 2018)
    dip_vae_i   recon + kl + λ_od·Σ_{i≠j} Cov_ij² + λ_d·Σ_i (Cov_ii − 1)²,
                Cov = Cov[mu] over the batch            (DIP-VAE-I, Kumar et al. 2018)
    dip_vae_ii  the same with Cov = E[diag exp(logvar)] + Cov[mu]   (DIP-VAE-II)
    wae_mmd   recon + λ·MMD(q(z), p(z)), IMQ kernel, U-statistic on the batch
              (WAE-MMD, Tolstikhin et al. 2018); z ~ q(z|x) or z = mu
    iwae      −(logsumexp_i log w_i − log k), k samples of q(z|x)  (IWAE, Burda et al. 2016)
    elbo_k    −mean_i log w_i over the same k samples: the ELBO at the IWAE's cost
              (Burda et al.'s k-sample VAE, the IWAE's like-for-like baseline)
    factor_vae  recon + kl + γ·TC, TC ≈ mean_i [D(z_i)_0 − D(z_i)_1] from a
              discriminator D trained alongside     (FactorVAE, Kim & Mnih 2018)

Each objective is ONE `Objective` entry of `OBJECTIVES`: its per-example loss,
its batch term if it has one, the `config.objective` fields that enter the
train step as arrays, its static settings, and its extra train metrics. The
config's objective section, its validation, the step's hyperparameters and
the sweep's vmapped keys are all derived from this registry, so a new
objective is one entry here (and its fields in fields.py's `FIELDS`) plus an
experiment.
An objective that trains a network of its own next to the VAE (FactorVAE's
discriminator) declares it as an `Auxiliary`: its initialization, the term it
adds to the VAE's loss, its own loss and its own Adam's fields; the train step
(steps.py) updates both in one step and keeps its state in the train state.

Everything per example is `jax.vmap`ped over a batch by the caller, which
reduces once (mean over the batch).
"""

import dataclasses
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from vae_jax.objectives import discriminator, fields, iw_bound, penalties
from vae_jax.objectives.terms import Terms, capacity
from vae_jax.objectives.total_correlation import total_correlation


@dataclasses.dataclass(frozen=True)
class Auxiliary:
  """A network an objective trains next to the VAE with an Adam of its own.

  In one train step, from the state before it: the VAE's loss adds
  `vae_term` with the network held fixed, and the network takes one Adam
  step on `loss` of the batch's codes held fixed (stop-gradient). Its
  parameters and Adam state are `train_state.AuxTrainState.aux`; evaluation and
  pictures never use it.
  """
  # (key, latent_dim, settings dict) → the network's parameters.
  init: Callable[[jax.Array, int, dict], dict]
  # (its params, batched terms [B], hparams, settings) → (per-example loss
  # added [B], batch-mean metrics).
  vae_term: Callable[[dict, Terms, dict, dict], tuple]
  # (its params, codes z [B, D], other codes [B, D], hparams, settings, key) →
  # (its loss, metrics); the other codes are z itself, or with `second_batch`
  # the codes of a second batch the step draws.
  loss: Callable[[dict, jax.Array, jax.Array, dict, dict, jax.Array], tuple]
  learning_rate: str  # the hparams field of its Adam's learning rate
  adam_betas: tuple[str, str]  # the settings fields of its Adam's β1, β2
  # settings dict → whether the step draws a second, independent batch for it.
  second_batch: Callable[[dict], bool] = lambda settings: False



@dataclasses.dataclass(frozen=True)
class Objective:
  """One objective: everything the step, the config and the sweeps need to know."""
  name: str
  # (terms of ONE example, hparams, step) → that example's loss; None when
  # example_loss_from_model gives it.
  example_loss: Optional[Callable[[Terms, dict, jax.Array], jax.Array]]
  # config.objective fields entering the step as float32 arrays (vmappable).
  hparams: tuple[str, ...] = ()
  # config.objective fields fixed at compile time (StepSpec.settings).
  settings: tuple[str, ...] = ()
  # (batched terms [B], hparams, settings dict, key, step) → (per-example loss
  # added [B], batch-mean metrics): for a term that couples the examples of a
  # batch. key: the step's batch key if batch_key (steps.batch_loss), else None.
  batch_term: Optional[Callable[[Terms, dict, dict, Optional[jax.Array], jax.Array],
                                tuple]] = None
  batch_key: bool = False
  # settings dict → whether z is sampled from q(z|x) (False: z = mu, KL still computed).
  samples_z: Callable[[dict], bool] = lambda settings: True
  # (step, hparams) → extra train metrics (scalars).
  metrics: Optional[Callable[[jax.Array, dict], dict]] = None
  # (encode, decode, likelihood, x, key, hparams, step, settings) → the loss of
  # ONE example, for a loss that calls the model itself (IWAE's k samples); the
  # Terms are still computed, for the metrics.
  example_loss_from_model: Optional[Callable[..., jax.Array]] = None
  stochastic: bool = True  # False: z = mu, no KL (no ELBO, no nll_iw)
  min_batch_size: int = 1
  auxiliary: Optional[Auxiliary] = None  # a network trained alongside (FactorVAE)


def _beta_tc_term(terms: Terms, hparams: dict, settings: dict,
                  key: Optional[jax.Array], step: jax.Array) -> tuple:
  tc = total_correlation(terms.z, terms.mu, terms.logvar, hparams['dataset_size'],
                         settings['tc_estimator'])
  return (hparams['beta'] - 1.0) * tc, {'tc': jnp.mean(tc)}


def _dip_term(variant: str):
  """The batch term λ_od·Σ_{i≠j} Cov_ij² + λ_d·Σ_i (Cov_ii − 1)² of DIP-VAE-`variant`."""
  def term(terms: Terms, hparams: dict, settings: dict,
           key: Optional[jax.Array], step: jax.Array) -> tuple:
    cov = penalties.dip_covariance(terms.mu, terms.logvar, variant)
    off_diagonal, diagonal = penalties.dip_penalties(cov)
    penalty = hparams['lambda_od'] * off_diagonal + hparams['lambda_d'] * diagonal
    return (jnp.broadcast_to(penalty, terms.recon.shape),
            {'dip_off_diagonal': off_diagonal, 'dip_diagonal': diagonal})
  return term


def _wae_term(terms: Terms, hparams: dict, settings: dict, key: jax.Array,
              step: jax.Array) -> tuple:
  """λ·MMD(q(z), p(z)) on the batch's z and as many prior draws N(0, I) from `key`."""
  prior_z = jax.random.normal(key, terms.z.shape, terms.z.dtype)
  mmd = penalties.mmd_imq(terms.z, prior_z)
  return jnp.broadcast_to(hparams['wae_lambda'] * mmd, terms.recon.shape), {'mmd': mmd}


def _iwae_loss(encode: Callable, decode: Callable, likelihood: str, x: jax.Array,
               key: jax.Array, hparams: dict, step: jax.Array, settings: dict) -> jax.Array:
  """−(logsumexp_i log w_i − log k), z_i ~ q(z|x) from fold_in(key, i), k = iw_k."""
  log_w = iw_bound.log_importance_weights(encode, decode, likelihood, x, key,
                                          settings['iw_k'])
  return iw_bound.iw_nll_from_log_weights(log_w)


def _elbo_k_loss(encode: Callable, decode: Callable, likelihood: str, x: jax.Array,
                 key: jax.Array, hparams: dict, step: jax.Array, settings: dict) -> jax.Array:
  """−mean_i log w_i, z_i ~ q(z|x) from fold_in(key, i), k = iw_k: the k-sample ELBO."""
  log_w = iw_bound.log_importance_weights(encode, decode, likelihood, x, key,
                                          settings['iw_k'])
  return -jnp.mean(log_w)


def _capacity_term(terms: Terms, hparams: dict, settings: dict, key: Optional[jax.Array],
                   step: jax.Array) -> tuple:
  """γ·|KL − C(step)| per example: of the batch-mean KL ('batch_mean', every example
  the same), or of each example's KL ('per_example')."""
  target = capacity(step, hparams['capacity_max'], hparams['capacity_steps'])
  kl = terms.kl if settings['capacity_form'] == 'per_example' else jnp.mean(terms.kl)
  penalty = hparams['gamma'] * jnp.abs(kl - target)
  return jnp.broadcast_to(penalty, terms.recon.shape), {}


def _discriminator(settings: dict) -> discriminator.Discriminator:
  return discriminator.Discriminator(tuple(settings['discriminator_hidden_dims']))


def _factor_vae_term(params: dict, terms: Terms, hparams: dict, settings: dict) -> tuple:
  """γ·(D(z)_0 − D(z)_1) per example: γ times the density-ratio TC estimate."""
  tc = discriminator.tc_estimate(_discriminator(settings).apply(params, terms.z))
  return hparams['factor_gamma'] * tc, {'tc_estimate': jnp.mean(tc)}


def _discriminator_loss(params: dict, z: jax.Array, other: jax.Array, hparams: dict,
                        settings: dict, key: jax.Array) -> tuple:
  """Cross-entropy of the codes z (class 0) against the codes `other` (z's own, or a
  second batch's) permuted dimension-wise (class 1)."""
  network = _discriminator(settings)
  loss, accuracy = discriminator.loss_and_accuracy(
      network.apply(params, z), network.apply(params, discriminator.permute_dims(key, other)))
  return loss, {'discriminator_loss': loss, 'discriminator_accuracy': accuracy}


FACTOR_DISCRIMINATOR = Auxiliary(
    init=lambda key, latent_dim, settings: _discriminator(settings).init(
        key, jnp.zeros((latent_dim,), jnp.float32)),
    vae_term=_factor_vae_term, loss=_discriminator_loss,
    learning_rate='discriminator_lr', adam_betas=('discriminator_b1', 'discriminator_b2'),
    second_batch=lambda settings: settings['factor_permuted_codes'] == 'second_batch')


OBJECTIVES = {o.name: o for o in (
    Objective('elbo', lambda t, h, s: t.recon + t.kl),
    Objective('beta', lambda t, h, s: t.recon + h['beta'] * t.kl, hparams=('beta',)),
    Objective('capacity', lambda t, h, s: t.recon,
              hparams=('gamma', 'capacity_max', 'capacity_steps'), settings=('capacity_form',),
              batch_term=_capacity_term,
              metrics=lambda step, h: {'capacity': capacity(step, h['capacity_max'],
                                                            h['capacity_steps'])}),
    Objective('ae', lambda t, h, s: t.recon, stochastic=False),
    Objective('beta_tc', lambda t, h, s: t.recon + t.kl, hparams=('beta',),
              settings=('tc_estimator',), batch_term=_beta_tc_term, min_batch_size=2),
    *(Objective(f'dip_vae_{variant}', lambda t, h, s: t.recon + t.kl,
                hparams=('lambda_od', 'lambda_d'), batch_term=_dip_term(variant),
                min_batch_size=2) for variant in penalties.DIP_VARIANTS),
    Objective('wae_mmd', lambda t, h, s: t.recon, hparams=('wae_lambda',),
              settings=('wae_encoder',), batch_term=_wae_term, batch_key=True,
              samples_z=lambda settings: settings['wae_encoder'] == 'gaussian',
              min_batch_size=2),
    Objective('iwae', None, settings=('iw_k',), example_loss_from_model=_iwae_loss),
    Objective('elbo_k', None, settings=('iw_k',), example_loss_from_model=_elbo_k_loss),
    Objective('factor_vae', lambda t, h, s: t.recon + t.kl,
              hparams=('factor_gamma', 'discriminator_lr'),
              settings=('discriminator_hidden_dims', 'discriminator_b1', 'discriminator_b2',
                        'factor_permuted_codes'),
              auxiliary=FACTOR_DISCRIMINATOR, min_batch_size=2),
)}

# Every config.objective field that enters a step as an array is some objective's
# hparams, and no objective reads a static setting as an array, or the reverse.
ARRAY_FIELDS = fields.ARRAY_FIELDS


def check_array_fields(objectives: dict, array_fields: tuple) -> None:
  """ValueError unless the objectives' hparams are exactly the array fields and
  none of their settings is one."""
  for o in objectives.values():
    if set(o.hparams) - set(array_fields) or set(o.settings) & set(array_fields):
      raise ValueError(f'objective {o.name!r}: its hparams must be the fields marked '
                       'array=True in objectives/fields.py, its settings the others')
  if {k for o in objectives.values() for k in o.hparams} != set(array_fields):
    raise ValueError('a field marked array=True in objectives/fields.py is no objective\'s '
                     'hparams')


check_array_fields(OBJECTIVES, ARRAY_FIELDS)


def get(name: str) -> Objective:
  """The registered objective `name`; ValueError naming the choices otherwise."""
  if name not in OBJECTIVES:
    raise ValueError(f'unknown objective {name!r}; choose one of {tuple(OBJECTIVES)}')
  return OBJECTIVES[name]
