"""Matplotlib figures, drawn off-screen on their own Agg canvas (no pyplot state).

`figure` is the one way the package makes a matplotlib figure (here and in
`vae_jax.sweep_plots`); `render` turns one into uint8 [H, W, 3] pixels.
`latent_scatter` and `rate_distortion_plot` are the per-run figures, each
uint8 [500, 500, 3]: inputs in, array out; the caller saves it.

Matplotlib is imported on first use (≈ 0.4 s): a run's start does not wait
for it.
"""

from typing import Optional, Sequence

import numpy as np

FIGURE_INCHES = 5.0
FIGURE_DPI = 100  # pixels an inch: a 5-inch figure is 500 pixels a side
MAX_LEGEND_CLASSES = 20  # more distinct (or non-integer) labels get a colorbar
MIN_LABEL_GAP = 0.06  # fraction of the axes: closer point labels are left out


def figure(width: float = FIGURE_INCHES, height: float = FIGURE_INCHES,
           layout: str = 'constrained'):
  """A width×height inch matplotlib Figure at FIGURE_DPI on its own Agg canvas
  (no pyplot)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(width, height), dpi=FIGURE_DPI, layout=layout)
  FigureCanvasAgg(fig)
  return fig


def colormap(name: str):
  """matplotlib's colormap `name` (e.g. 'tab10')."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  return matplotlib.colormaps[name]


def render(fig) -> np.ndarray:
  """The figure's pixels, uint8 [H, W, 3]; the figure is cleared."""
  fig.canvas.draw()
  picture = np.array(np.asarray(fig.canvas.buffer_rgba())[..., :3], np.uint8)
  fig.clear()
  return picture


def latent_scatter(mu: np.ndarray, labels: np.ndarray,
                   class_names: Optional[Sequence[str]] = None, title: str = '',
                   dims: tuple[int, int] = (0, 1)) -> np.ndarray:
  """Scatter of posterior means mu [N, D] (dims `dims`, default z0/z1) by label [N].

  Few integer labels (≤ MAX_LEGEND_CLASSES) get one colour each and a legend
  (named by class_names[label] when given); other labels (e.g. a continuous
  factor) get a colormap and colorbar. Returns uint8 [500, 500, 3].
  """
  mu, labels = np.asarray(mu), np.asarray(labels)
  if mu.ndim != 2 or max(dims) >= mu.shape[1]:
    raise ValueError(f'mu must be [N, D] with D > {max(dims)}, got shape {mu.shape}')
  if labels.shape != mu.shape[:1]:
    raise ValueError(f'labels must be [{mu.shape[0]}], got shape {labels.shape}')
  fig = figure()
  ax = fig.add_subplot()
  a, b = mu[:, dims[0]], mu[:, dims[1]]
  classes = np.unique(labels)
  if np.issubdtype(labels.dtype, np.integer) and len(classes) <= MAX_LEGEND_CLASSES:
    cmap = colormap('tab10' if len(classes) <= 10 else 'tab20')
    for i, k in enumerate(classes):
      name = class_names[k] if class_names is not None else str(k)
      keep = labels == k
      ax.scatter(a[keep], b[keep], s=6, alpha=0.7, color=cmap(i), label=name,
                 linewidths=0)
    ax.legend(fontsize='small', markerscale=2.5, loc='best', framealpha=0.8)
  else:
    points = ax.scatter(a, b, c=labels, s=6, alpha=0.7, cmap='viridis', linewidths=0)
    fig.colorbar(points, ax=ax, shrink=0.8)
  ax.set_xlabel(f'z{dims[0]}')
  ax.set_ylabel(f'z{dims[1]}')
  ax.set_title(title)
  ax.grid(True, alpha=0.3)
  return render(fig)


def uncrowded(xy: np.ndarray, min_gap: float) -> list[bool]:
  """Which of the points xy [N, 2] keep their label: the last one, then each
  earlier one at least `min_gap` (Euclidean) from every label kept so far."""
  kept = []
  keep = [False] * len(xy)
  for i in reversed(range(len(xy))):
    if all(np.hypot(*(xy[i] - xy[j])) >= min_gap for j in kept):
      kept.append(i)
      keep[i] = True
  return keep


def rate_distortion_plot(points: list[dict], title: str = '') -> np.ndarray:
  """Rate (KL, x) vs distortion (−E log p(x|z), y), both in nats; uint8 [500, 500, 3].

  Each point is a dict with 'kl', 'recon' and 'label' (annotated next to it,
  unless it would crowd the label of a later point: `uncrowded`); points
  sharing an optional 'group' are joined by a line in the order given (a run's
  evaluations: step order), coloured alike and named in a legend. The dashed
  diagonal is the best −ELBO = kl + recon.
  """
  if not points:
    raise ValueError('rate_distortion_plot needs at least one point')
  fig = figure()
  ax = fig.add_subplot()
  groups = {}
  for point in points:
    groups.setdefault(point.get('group'), []).append(point)
  cmap = colormap('tab10')
  for i, (group, members) in enumerate(groups.items()):
    kl = [float(p['kl']) for p in members]
    recon = [float(p['recon']) for p in members]
    style = '-o' if group is not None and len(members) > 1 else 'o'
    ax.plot(kl, recon, style, color=cmap(i % 10), markersize=6,
            label=None if group is None else str(group))
  ax.margins(0.15)
  xy = np.array([[float(p['kl']), float(p['recon'])] for p in points])
  (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
  in_axes = (xy - [x0, y0]) / [max(x1 - x0, 1e-12), max(y1 - y0, 1e-12)]
  for p, (x, y), keep in zip(points, xy, uncrowded(in_axes, MIN_LABEL_GAP)):
    if keep:
      ax.annotate(str(p['label']), (x, y), textcoords='offset points', xytext=(5, 5),
                  fontsize='small')
  best = min(points, key=lambda p: float(p['kl']) + float(p['recon']))
  best_nelbo = float(best['kl']) + float(best['recon'])
  ax.axline((float(best['kl']), float(best['recon'])), slope=-1.0, color='grey',
            linestyle='--', linewidth=1, label=f'-ELBO = {best_nelbo:.1f}')
  ax.legend(fontsize='small', loc='best')
  ax.set_xlabel('rate: KL(q(z|x) || p(z)) [nats]')
  ax.set_ylabel('distortion: -E log p(x|z) [nats]')
  ax.set_title(title)
  ax.grid(True, alpha=0.3)
  return render(fig)
