"""The pictures a run writes at each evaluation, as `images/<kind>_<step>.png`.

kinds: samples (prior; not for the autoencoder), reconstructions (inputs,
decoded posterior means, then posterior samples), conditional (CVAE: row k =
class k), traversals (one row per latent, ±3 prior σ around an encoded input,
rows sorted by KL), interpolations (between encoded test inputs), scatter
(first two latent dims of the posterior means, coloured by label) and
rate_distortion (the run's held-out (kl, recon) at each evaluation so far).
At the final evaluation also `traversals_<step>.gif` (every shown latent
swept back and forth, sorted by KL) and, for dSprites, `factors.png`: the
ground-truth factor traversals to compare the learned ones with.
"""

import math
import os

import jax
import numpy as np

from vae_jax import data as data_lib
from vae_jax import animate, steps, visualize

RECON_SAMPLES = 3  # posterior samples per input in the reconstruction pictures
MAX_TRAVERSAL_ROWS = 10  # latents shown in a traversal (those with most KL)
INTERPOLATION_PAIRS = 4
SCATTER_POINTS = 5_000


# Gathers (and binarizes) a few evaluation examples in one compiled call.
_eval_batch = jax.jit(data_lib.get_batch, static_argnums=(0, 2))


def _traversal_order(metrics: dict, mu: np.ndarray, stochastic: bool):
  """(latents to show, most informative first; their KL or None)."""
  kl_per_dim = metrics.get('kl_per_dim') if stochastic else None
  ranking = np.asarray(kl_per_dim) if kl_per_dim is not None else np.var(mu, axis=0)
  kl = None if kl_per_dim is None else np.asarray(kl_per_dim)
  return np.argsort(-ranking)[:MAX_TRAVERSAL_ROWS], kl


def write_final_animations(run, state: steps.TrainState, step: int, metrics: dict,
                           moments, images_dir: str) -> list:
  """The traversal GIF of the final model (and dSprites' factors.png); their paths."""
  spec, dataset = run.spec, run.dataset
  key = jax.random.fold_in(jax.random.key(run.config.seed), steps.IMAGE_STREAM)
  data_key = jax.random.split(key, 3)[2]
  x, y = _eval_batch(spec.data, dataset.arrays, 'eval', dataset.eval_ids[:1],
                            data_key)
  order, kl = _traversal_order(metrics, moments[0], run.config.objective.name != 'ae')
  os.makedirs(images_dir, exist_ok=True)
  paths = [animate.traversal_gif(spec.model, state.params, spec.likelihood, x[0], y[0],
                                 run.config.model.latent_dim,
                                 os.path.join(images_dir, f'traversals_{step}.gif'),
                                 order=order, kl_per_dim=kl)]
  if spec.data.name == 'dsprites':
    paths.append(visualize.save_png(images_dir, 'factors', 0,
                                    animate.factor_traversal_picture()))
  return paths


def make_pictures(run, state: steps.TrainState, step: int, metrics: dict,
                  moments, history: list) -> dict:
  """{kind: uint8 HWC picture} for one evaluation of `run` (see module doc)."""
  cfg, spec, dataset = run.config, run.spec, run.dataset
  params, likelihood, model = state.params, spec.likelihood, spec.model
  key = jax.random.fold_in(jax.random.key(cfg.seed), steps.IMAGE_STREAM)
  sample_key, recon_key, data_key = jax.random.split(key, 3)
  latent_dim, n = cfg.model.latent_dim, cfg.eval.num_images
  cols = max(1, min(int(math.sqrt(n)), dataset.num_eval))
  stochastic = cfg.objective.name != 'ae'
  names = data_lib.class_names(spec.data)
  where = f'{spec.data.name}, step {step}'
  pictures = {}

  if stochastic:
    grid = visualize.prior_samples(model, params, likelihood, sample_key,
                                   max(1, n // cols), cols, latent_dim)
    pictures['samples'] = visualize.labelled_grid(grid, title=f'prior samples ({where})')
  ids = dataset.eval_ids[:cols]
  x, y = _eval_batch(spec.data, dataset.arrays, 'eval', ids, data_key)
  grid = visualize.reconstructions(model, params, likelihood, recon_key, x, y,
                                   RECON_SAMPLES, stochastic)
  rows = ['input', 'from mean z'] + [f'z ~ q(z|x) #{i + 1}' for i in range(len(grid) - 2)]
  pictures['reconstructions'] = visualize.labelled_grid(
      grid, row_labels=rows, title=f'reconstructions ({where})')
  if cfg.model.conditional:
    grid = visualize.conditional_grid(model, params, likelihood, sample_key,
                                      spec.data.num_classes, cols, latent_dim)
    pictures['conditional'] = visualize.labelled_grid(
        grid, row_labels=list(names), title=f'same z, one row per class ({where})')

  order, kl = _traversal_order(metrics, moments[0], stochastic)
  grid, row_labels = visualize.traversals(model, params, likelihood, x[0], y[0], latent_dim,
                                          order=order, kl_per_dim=kl)
  offsets = [f'{s:+.1f}' for s in visualize.traversal_offsets(grid.shape[1])]
  pictures['traversals'] = visualize.labelled_grid(
      grid, row_labels=row_labels, col_labels=offsets,
      title=f'latent traversals, offsets in prior std ({where})')

  pairs = min(INTERPOLATION_PAIRS, len(ids) // 2)
  if pairs:
    x_pairs = np.stack([np.asarray(x[:pairs]), np.asarray(x[pairs:2 * pairs])], axis=1)
    y_pairs = np.stack([np.asarray(y[:pairs]), np.asarray(y[pairs:2 * pairs])], axis=1)
    grid = visualize.interpolations(model, params, likelihood, x_pairs, y_pairs)
    pictures['interpolations'] = visualize.labelled_grid(
        grid, title=f'interpolations between encoded inputs ({where})')

  mu, _, labels = moments
  if latent_dim >= 2:
    shown = slice(0, SCATTER_POINTS)
    class_names = list(names) if spec.data.num_classes else None
    pictures['scatter'] = visualize.latent_scatter(
        mu[shown], labels[shown], class_names=class_names,
        title=f'posterior means z0, z1 ({where})')

  if stochastic:
    points = [{'kl': r['kl'], 'recon': r['recon'], 'label': str(r['step']),
               'group': 'held-out, by step'} for r in history]
    points.append({'kl': metrics['kl'], 'recon': metrics['recon'], 'label': str(step),
                   'group': 'held-out, by step'})
    pictures['rate_distortion'] = visualize.rate_distortion_plot(
        points, title=f'rate–distortion, nats ({where})')
  return pictures
