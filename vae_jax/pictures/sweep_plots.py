"""Plots of a sweep's results (`plots.figure`s, written as PNG).

- `metrics_vs_<axis>.png`: each final metric against the swept values of one
  axis; one line per combination of the other non-seed axes; points are the
  mean over seeds, error bars their standard deviation.
- `rate_distortion.png`: rate (kl) against distortion (recon) per setting
  (mean ± std over seeds), one colour and legend entry per setting (β when
  β is swept): the rate–distortion trade-off of β, no label over a point.

Values are ordered as numbers where they are numbers (`natural_key`: 2
before 10), in legends, on category axes and along lines.
- `study_<score>.png` (`plot_score_by_method`, for vae_jax.study): a score
  per method, as the figures of Locatello et al. (2019): a box of all the
  method's members, each member a dot coloured by its setting.
"""

import collections
import os

import matplotlib
import numpy as np

from vae_jax import report
from vae_jax.evaluation import disentanglement
from vae_jax.pictures import plots

METRICS = ('nelbo', 'recon', 'kl', 'nll_iw', 'active_units') + disentanglement.SCORE_KEYS
SEED_KEY = 'seed'


def _label(key: str) -> str:
  return {'objective.beta': 'β'}.get(key, key.split('.')[-1])


def natural_key(value) -> tuple:
  """Sort key: numbers and numeric text ('2', '10', '1e-3') by value, before any
  other text (sorted as text); tuples element by element."""
  if isinstance(value, (tuple, list)):
    return tuple(natural_key(v) for v in value)
  if not isinstance(value, bool):
    try:
      return (0, float(value), '')
    except (TypeError, ValueError):
      pass
  return (1, 0.0, str(value))


def _numeric(values) -> bool:
  return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def seed_statistics(records: list, x_key: str, metric: str, other_keys: list) -> dict:
  """{other-axes values: (xs, means, stds)} of `metric` over seeds, xs sorted."""
  cells = collections.defaultdict(list)
  for record in records:
    if record.get(metric) is None:
      continue
    line = tuple(report.format_value(record[k]) for k in other_keys)
    cells[(line, _hashable(record[x_key]))].append(float(record[metric]))
  lines = collections.defaultdict(list)
  for (line, x), values in cells.items():
    lines[line].append((x, float(np.mean(values)), float(np.std(values))))
  result = {}
  for line, points in lines.items():
    points.sort(key=lambda p: natural_key(p[0]))
    result[line] = tuple(list(column) for column in zip(*points))
  return result


def _hashable(value):
  return tuple(value) if isinstance(value, list) else value


def _positions(xs: list, all_xs: list):
  """Numeric x values as they are; others as their index among `all_xs`."""
  if _numeric(all_xs):
    return xs
  order = sorted({str(x) for x in all_xs}, key=natural_key)
  return [order.index(str(x)) for x in xs]


def plot_metrics_vs_axis(path: str, records: list, axis: str, axes: list) -> bool:
  """`metrics_vs_<axis>.png`; False if no metric has a value."""
  others = [a for a in axes if a not in (axis, SEED_KEY)]
  metrics = [m for m in METRICS if any(r.get(m) is not None for r in records)]
  if not metrics:
    return False
  all_xs = [_hashable(r[axis]) for r in records]
  cols = min(3, len(metrics))
  rows = -(-len(metrics) // cols)
  fig = plots.figure(4.2 * cols, 3.2 * rows, layout='tight')
  grid = fig.subplots(rows, cols, squeeze=False)
  for ax, metric in zip(grid.ravel(), metrics):
    lines = seed_statistics(records, axis, metric, others)
    for line, (xs, means, stds) in sorted(lines.items(),
                                          key=lambda item: natural_key(item[0])):
      label = ', '.join(f'{_label(k)}={v}' for k, v in zip(others, line)) or None
      ax.errorbar(_positions(xs, all_xs), means, yerr=stds, marker='o', capsize=3,
                  label=label)
    ax.set_title(metric)
    ax.set_xlabel(_label(axis))
    if _numeric(all_xs) and min(all_xs) > 0 and max(all_xs) / min(all_xs) >= 10:
      ax.set_xscale('log', base=2)
    if not _numeric(all_xs):
      order = sorted({str(x) for x in all_xs}, key=natural_key)
      ax.set_xticks(range(len(order)), order)
    ax.grid(alpha=0.3)
  for ax in grid.ravel()[len(metrics):]:
    ax.axis('off')
  if others:
    grid.ravel()[0].legend(fontsize=7)
  seeds = ' (mean ± std over seeds)' if SEED_KEY in axes else ''
  fig.suptitle(f'final held-out metrics vs {_label(axis)}{seeds}')
  fig.savefig(path, dpi=plots.FIGURE_DPI)
  return True


MARKERS = ('o', 's', '^', 'D', 'v')  # after every colour of the colormap, the next marker


def rate_distortion_cells(records: list, settings: list) -> dict:
  """{setting (formatted values of the `settings` keys): (kl [S], recon [S]) of its
  S seeds}, settings in `natural_key` order; records without kl or recon left out."""
  cells = collections.defaultdict(list)
  for record in records:
    if record.get('kl') is not None and record.get('recon') is not None:
      setting = tuple(report.format_value(record[k]) for k in settings)
      cells[setting].append((record['kl'], record['recon']))
  return {setting: tuple(np.asarray(cells[setting], np.float64).T)
          for setting in sorted(cells, key=natural_key)}


def plot_rate_distortion(path: str, records: list, axes: list) -> bool:
  """`rate_distortion.png` (kl vs recon, mean ± std over seeds); False without kl."""
  settings = [a for a in axes if a != SEED_KEY]
  if not any(r.get('kl') is not None for r in records):
    return False
  cells = rate_distortion_cells(records, settings)
  fig = plots.figure(7.0, 4.2, layout='constrained')
  ax = fig.subplots()
  cmap = matplotlib.colormaps['tab10' if len(cells) <= 10 else 'tab20']
  for n, (setting, (kl, recon)) in enumerate(cells.items()):
    label = ', '.join(f'{_label(k)}={v}' for k, v in zip(settings, setting)) or None
    ax.errorbar(kl.mean(), recon.mean(), xerr=kl.std(), yerr=recon.std(), capsize=3,
                color=cmap(n % cmap.N), marker=MARKERS[n // cmap.N % len(MARKERS)],
                linestyle='none', label=label)
  if settings:
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
  ax.set_xlabel('rate: kl (nats)')
  ax.set_ylabel('distortion: recon (nats)')
  ax.set_title('rate–distortion of the sweep (held-out)')
  ax.grid(alpha=0.3)
  fig.savefig(path, dpi=plots.FIGURE_DPI)
  return True


def write_plots(sweep_dir: str, records: list, axes: list) -> list:
  """Writes every plot that the records support; returns their paths."""
  written = []
  for axis in axes:
    if axis == SEED_KEY and len(axes) > 1:
      continue
    path = os.path.join(sweep_dir, f'metrics_vs_{_label(axis)}.png'.replace('β', 'beta'))
    if plot_metrics_vs_axis(path, records, axis, axes):
      written.append(path)
  path = os.path.join(sweep_dir, 'rate_distortion.png')
  if plot_rate_distortion(path, records, axes):
    written.append(path)
  return written


def plot_score_by_method(path: str, score: str, cells: list) -> None:
  """`study_<score>.png`: one column per method (study.Cell's label), a box
  (quartiles, whiskers to the extremes) over all its members and a dot per
  member, coloured by its setting in sweep order (viridis: dark = first)."""
  methods = list(dict.fromkeys(cell.label for cell in cells))
  fig = plots.figure(max(5.0, 1.25 * len(methods) + 1.5), 4.2, layout='tight')
  ax = fig.subplots()
  cmap = matplotlib.colormaps['viridis']
  for i, method in enumerate(methods):
    own = [cell for cell in cells if cell.label == method]
    values = [v for cell in own for v in cell.values(score)]
    if values:
      ax.boxplot([values], positions=[i], widths=0.6, whis=(0, 100), showfliers=False,
                 medianprops={'color': 'black'}, boxprops={'color': 'grey'},
                 whiskerprops={'color': 'grey'}, capprops={'color': 'grey'})
    for cell in own:
      shade = cell.setting_index / max(1, len(own) - 1)
      offset = 0.5 * (shade - 0.5)  # settings side by side within the column
      ys = cell.values(score)
      ax.scatter([i + offset] * len(ys), ys, s=14, color=cmap(0.9 * shade), zorder=3,
                 edgecolors='none')
  ax.set_xticks(range(len(methods)), methods)
  ax.set_xlim(-0.6, len(methods) - 0.4)
  ax.set_ylabel(score)
  ax.set_title(f'{score} per method (dots: members; colour: setting, first = dark)',
               fontsize=9)
  ax.grid(axis='y', alpha=0.3)
  fig.savefig(path, dpi=plots.FIGURE_DPI)
