"""The pictures of an evaluation: which pictures a run writes, from what.

`make_pictures` gives one evaluation's {kind: uint8 picture}, which the
caller writes as `images/<kind>_<step>.png` (kinds: samples,
reconstructions, conditional, traversals, interpolations, scatter,
rate_distortion); `write_final_animations` writes the final
`traversals_<step>.gif` and, for dSprites, `factors_0.png`. Their draws come
from the run's IMAGE_STREAM key, the inputs are the first evaluation examples.
"""

import math
import os
from typing import Optional

import jax
import numpy as np

from vae_jax import data as data_lib
from vae_jax import models
from vae_jax import key_streams
from vae_jax.evaluation import diagnostics
from vae_jax.pictures import figures
from vae_jax.pictures import model_pictures
from vae_jax.pictures import plots

RECON_SAMPLES = 3  # posterior samples per input in the reconstruction pictures
MAX_TRAVERSAL_ROWS = 10  # active latents shown in a traversal (those with most KL)
INTERPOLATION_PAIRS = 4
SCATTER_POINTS = 5_000

# Gathers (and binarizes) a few evaluation examples in one compiled call.
_eval_batch = jax.jit(data_lib.get_batch, static_argnums=(0, 2))


def _keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The (samples, reconstructions, data) keys of a run's model_pictures."""
  key = jax.random.fold_in(jax.random.key(seed), key_streams.IMAGE_STREAM)
  return tuple(jax.random.split(key, 3))


def traversal_order(metrics: dict, mu: np.ndarray,
                    stochastic: bool) -> tuple[np.ndarray, Optional[np.ndarray], int]:
  """(latents to show, most informative first, int [≤ MAX_TRAVERSAL_ROWS]; KL [D]
  or None; the number of active latents).

  Only active latents are shown: activity A_u = Var_x E[z_u|x] of the
  posterior means mu [N, D] above diagnostics.ACTIVE_UNIT_THRESHOLD (the
  `active_units` metric); a collapsed latent decodes to the same image at
  every offset. They are ranked by metrics['kl_per_dim'] when the model is
  stochastic and has it, else by A_u. Without any active latent the top
  ranked one is shown, so the picture exists.
  """
  _, activity = diagnostics.active_units(mu)
  kl_per_dim = metrics.get('kl_per_dim') if stochastic else None
  kl = None if kl_per_dim is None else np.asarray(kl_per_dim)
  ranking = activity if kl is None else kl
  order = np.argsort(-ranking, kind='stable')
  active = activity > diagnostics.ACTIVE_UNIT_THRESHOLD
  shown = order[active[order]][:MAX_TRAVERSAL_ROWS]
  return (shown if len(shown) else order[:1]), kl, int(np.sum(active))


def scatter_dims(order: np.ndarray, latent_dim: int) -> tuple[int, int]:
  """The two latents a scatter shows: the first two of the traversal `order` (the
  active ones with most KL), else its one and the lowest other latent."""
  first = [int(d) for d in order[:2]]
  if len(first) == 2:
    return first[0], first[1]
  return first[0], next(d for d in range(latent_dim) if d != first[0])


def traversal_note(shown: int, active: int, latent_dim: int) -> str:
  """What a traversal picture leaves out, e.g. '3 of 20 latents active; 17
  inactive ones not shown'."""
  if active == 0:
    return f'no latent active (of {latent_dim}); the top one shown'
  note = f'{active} of {latent_dim} latents active'
  if active < latent_dim:
    note += f'; {latent_dim - active} inactive ones not shown'
  if shown < active:
    note += f'; the {shown} with most KL shown'
  return note


def rate_distortion_history(records: list, step: int) -> list:
  """The held-out records of metrics.jsonl before `step` that have a kl, from
  step 0 (the untrained model) on: the earlier points of the run's
  rate–distortion curve."""
  return [r for r in records
          if r['split'] == 'eval' and r['step'] < step and r.get('kl') is not None]


def write_final_animations(model: models.VAE, params, dataset: data_lib.Dataset, *,
                           seed: int, stochastic: bool, step: int, metrics: dict, moments,
                           images_dir: str) -> list[str]:
  """The final model's traversal GIF (and a procedural dataset's factors_0.png); their paths.

  moments: (mu [N, D], logvar [N, D], labels [N]) of the evaluation examples.
  """
  data_key = _keys(seed)[2]
  x, y = _eval_batch(dataset.spec, dataset.arrays, 'eval', dataset.eval_ids[:1], data_key)
  order, kl, _ = traversal_order(metrics, moments[0], stochastic)
  os.makedirs(images_dir, exist_ok=True)
  paths = [model_pictures.traversal_gif(model, params, x[0], y[0],
                         os.path.join(images_dir, f'traversals_{step}.gif'),
                         order=order, kl_per_dim=kl)]
  if dataset.spec.procedural:  # a registered procedural dataset (data.procedural)
    picture = model_pictures.factor_traversal_picture(dataset=dataset.spec.name)
    paths.append(figures.save_png(images_dir, 'factors', 0, picture))
  return paths


def make_pictures(model: models.VAE, params, dataset: data_lib.Dataset, *, seed: int,
                  num_images: int, stochastic: bool, step: int, metrics: dict, moments,
                  history: list) -> dict[str, np.ndarray]:
  """{kind: uint8 [H, W, 3] picture} of one evaluation of the model at `step`.

  samples (prior; only if stochastic), reconstructions (inputs, decoded
  posterior means, then posterior samples), conditional (CVAE: row k = class
  k), traversals (one row per active latent, ±3 prior σ around an encoded
  input, rows sorted by KL, the title saying how many were left out:
  `traversal_order`), interpolations (each row: an input, the decoded path
  between the posterior means of it and a second input, that input),
  scatter (z0, z1 of the posterior means, coloured by label) and
  rate_distortion (held-out (kl, recon) of `history` and now; only if
  stochastic). moments: (mu [N, D], logvar [N, D], labels [N]) of the
  evaluation examples; history: earlier held-out records with 'step', 'kl'
  and 'recon' (`rate_distortion_history`).
  """
  spec = dataset.spec
  sample_key, recon_key, data_key = _keys(seed)
  cols = max(1, min(int(math.sqrt(num_images)), dataset.num_eval))
  names = data_lib.class_names(spec)
  where = f'{spec.name}, step {step}'
  out = {}

  if stochastic:
    grid = model_pictures.prior_samples(model, params, sample_key, max(1, num_images // cols),
                                  cols)
    out['samples'] = figures.labelled_grid(grid, title=f'prior samples ({where})')
  ids = dataset.eval_ids[:cols]
  x, y = _eval_batch(spec, dataset.arrays, 'eval', ids, data_key)
  grid = model_pictures.reconstructions(model, params, recon_key, x, y, RECON_SAMPLES, stochastic)
  rows = ['input', 'from mean z'] + [f'z ~ q(z|x) #{i + 1}' for i in range(len(grid) - 2)]
  out['reconstructions'] = figures.labelled_grid(
      grid, row_labels=rows, title=f'reconstructions ({where})')
  if model.num_classes > 0:
    grid = model_pictures.conditional_grid(model, params, sample_key, cols)
    out['conditional'] = figures.labelled_grid(
        grid, row_labels=list(names), title=f'same z, one row per class ({where})')

  order, kl, active = traversal_order(metrics, moments[0], stochastic)
  grid, row_labels = model_pictures.traversals(model, params, x[0], y[0], order=order,
                                         kl_per_dim=kl)
  offsets = [f'{s:+.1f}' for s in model_pictures.traversal_offsets(grid.shape[1])]
  note = traversal_note(len(order), active, model.latent_dim)
  out['traversals'] = figures.labelled_grid(
      grid, row_labels=row_labels, col_labels=offsets,
      title=f'latent traversals, offsets in prior std; {note} ({where})')

  pairs = min(INTERPOLATION_PAIRS, len(ids) // 2)
  if pairs:
    x_pairs = np.stack([np.asarray(x[:pairs]), np.asarray(x[pairs:2 * pairs])], axis=1)
    y_pairs = np.stack([np.asarray(y[:pairs]), np.asarray(y[pairs:2 * pairs])], axis=1)
    grid, col_labels = model_pictures.interpolation_grid(model, params, x_pairs, y_pairs)
    out['interpolations'] = figures.labelled_grid(
        grid, col_labels=col_labels,
        title=f'interpolations: input x_a, decoded path t=0..1 from mu_a to mu_b, '
              f'input x_b ({where})')

  mu, _, labels = moments
  if model.latent_dim >= 2:
    shown = slice(0, SCATTER_POINTS)
    class_names = list(names) if spec.num_classes else None
    pair = scatter_dims(order, model.latent_dim)
    out['scatter'] = plots.latent_scatter(
        mu[shown], labels[shown], class_names=class_names, dims=pair,
        title=f'posterior means z{pair[0]}, z{pair[1]}, the first two latents of the '
              f'traversal ({where})')

  if stochastic:
    points = [{'kl': r['kl'], 'recon': r['recon'], 'label': str(r['step']),
               'group': 'held-out, by step'} for r in history]
    points.append({'kl': metrics['kl'], 'recon': metrics['recon'], 'label': str(step),
                   'group': 'held-out, by step'})
    out['rate_distortion'] = plots.rate_distortion_plot(
        points, title=f'rate–distortion, nats ({where})')
  return out
