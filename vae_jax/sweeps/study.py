"""The study table of a sweep: per method and setting, each score's median and
spread over seeds, as Locatello et al. (2019) present their study.

    study.csv           one row per (method, setting): the seeds, then per metric
                        its median, 25th and 75th percentile over the seeds
                        (numpy's linear interpolation; all three equal for one seed)
    study.md            the same, as `median (q25–q75)`, 3 decimals
    study_<score>.png   the score per method: a box over all the method's members
                        (settings × seeds), each member a dot coloured by its
                        setting (sweep_plots.plot_score_by_method)

A member's method is its objective (named as in METHOD_NAMES); its setting is
its swept values except the objective and the seed, leaving out keys that are
constant within the method (the AnnealedVAE's γ = 1000 and ramp length).
Written by `runner.write_results` when the members' summary.json carry
disentanglement scores.
"""

import collections
import csv
import dataclasses
import os

import numpy as np

from vae_jax import report
from vae_jax.evaluation import disentanglement
from vae_jax.pictures import sweep_plots

METHOD_NAMES = {'beta': 'β-VAE', 'capacity': 'AnnealedVAE', 'factor_vae': 'FactorVAE',
                'dip_vae_i': 'DIP-VAE-I', 'dip_vae_ii': 'DIP-VAE-II', 'beta_tc': 'β-TCVAE',
                'elbo': 'VAE'}
METRICS = disentanglement.SCORE_KEYS + ('recon', 'kl')  # scores, then the ELBO's terms
NOT_A_SETTING = ('objective.name', 'seed')
PERCENTILES = (50, 25, 75)  # median, then the interquartile range


@dataclasses.dataclass(frozen=True)
class Cell:
  """The members of one method and setting (its seeds)."""
  method: str  # the objective's name
  setting: str  # 'beta=4', 'lambda_od=1, lambda_d=10'; '' for a method with one setting
  setting_index: int  # its place among the method's settings, in sweep order
  records: tuple  # the members' report.read_run records

  @property
  def label(self) -> str:
    return METHOD_NAMES.get(self.method, self.method)

  def values(self, metric: str) -> list:
    return [float(r[metric]) for r in self.records if r.get(metric) is not None]


def cells(records: list, settings: list) -> list:
  """The Cells of the members (`records` of report.read_run with 'objective.name',
  `settings` their swept {key: value}), methods and settings in sweep order."""
  by_method = collections.defaultdict(list)
  for record, member_settings in zip(records, settings):
    by_method[record['objective.name']].append((record, member_settings))
  result = []
  for method, members in by_method.items():
    keys = [k for k in dict.fromkeys(k for _, s in members for k in s)
            if k not in NOT_A_SETTING and
            len({report.format_value(s.get(k)) for _, s in members}) > 1]
    by_setting = collections.defaultdict(list)
    for record, member_settings in members:
      label = ', '.join(f'{k.split(".")[-1]}={report.format_value(member_settings.get(k))}'
                        for k in keys)
      by_setting[label].append(record)
    result += [Cell(method, label, i, tuple(rs))
               for i, (label, rs) in enumerate(by_setting.items())]
  return result


def statistics(values: list) -> tuple:
  """(median, 25th, 75th percentile) of the values; Nones without any."""
  if not values:
    return (None,) * len(PERCENTILES)
  return tuple(float(v) for v in np.percentile(np.asarray(values, np.float64), PERCENTILES))


def table(cell_list: list, metrics: list) -> tuple:
  """(headers, csv rows, markdown rows) of the study table."""
  headers = ['method', 'objective', 'setting', 'seeds']
  csv_rows, md_rows = [], []
  for cell in cell_list:
    head = [cell.label, cell.method, cell.setting, str(len(cell.records))]
    stats = [statistics(cell.values(m)) for m in metrics]
    csv_rows.append(head + ['' if v is None else repr(v) for s in stats for v in s])
    md_rows.append(head + ['' if s[0] is None else f'{s[0]:.3f} ({s[1]:.3f}–{s[2]:.3f})'
                           for s in stats])
  csv_headers = headers + [f'{m}_{q}' for m in metrics for q in ('median', 'q25', 'q75')]
  return (csv_headers, headers + list(metrics)), csv_rows, md_rows


def write_study(sweep_dir: str, records: list, settings: list) -> list:
  """study.csv, study.md and study_<score>.png; [] (nothing written) when no
  member has a disentanglement score. Returns the paths written."""
  scores = [k for k in disentanglement.SCORE_KEYS if any(r.get(k) is not None for r in records)]
  if not scores:
    return []
  metrics = scores + [k for k in METRICS[len(disentanglement.SCORE_KEYS):]
                      if any(r.get(k) is not None for r in records)]
  cell_list = cells(records, settings)
  (csv_headers, md_headers), csv_rows, md_rows = table(cell_list, metrics)
  paths = [os.path.join(sweep_dir, name) for name in ('study.csv', 'study.md')]
  with open(paths[0], 'w', newline='') as f:
    csv.writer(f).writerows([csv_headers, *csv_rows])
  with open(paths[1], 'w') as f:
    f.write('Median (25th–75th percentile) over seeds of each score, per method and '
            'setting.\n\n' + report.markdown(md_headers, md_rows) + '\n')
  for score in scores:
    path = os.path.join(sweep_dir, f'study_{score}.png')
    sweep_plots.plot_score_by_method(path, score, cell_list)
    paths.append(path)
  return paths
