r"""One results table from any set of run directories.

    python -m vae_jax.report runs/vae-* runs/beta_vae-*      # markdown to stdout
    python -m vae_jax.report --csv=results.csv runs/*

Each row is one workdir: its objective and data (config.json) and its final
held-out metrics (summary.json), in nats per example. A column is shown when
at least one run has it.
"""

import csv
import json
import os
import sys

COLUMNS = (  # (header, summary.json key or config key path, format)
    ('run', 'run', '{}'),
    ('objective', 'objective.name', '{}'),
    ('β', 'objective.beta', '{:g}'),
    ('data', 'data.name', '{}'),
    ('model', 'model.architecture', '{}'),
    ('steps', 'step', '{}'),
    ('nelbo', 'nelbo', '{:.2f}'),
    ('recon', 'recon', '{:.2f}'),
    ('kl', 'kl', '{:.2f}'),
    ('nll_iw', 'nll_iw', '{:.2f}'),
    ('k', 'iw_samples', '{}'),
    ('active units', 'active_units', '{}'),
    ('anomaly AUROC', 'anomaly_auroc', '{:.3f}'),
    ('BetaVAE', 'beta_vae_score', '{:.3f}'),
    ('FactorVAE', 'factor_vae_score', '{:.3f}'),
    ('MIG', 'mig', '{:.3f}'),
    ('DCI dis.', 'dci_disentanglement', '{:.3f}'),
    ('DCI comp.', 'dci_completeness', '{:.3f}'),
    ('DCI inf.', 'dci_informativeness', '{:.3f}'),
    ('SAP', 'sap', '{:.3f}'),
)


def _lookup(record: dict, key: str):
  value = record
  for part in key.split('.'):
    if not isinstance(value, dict) or part not in value:
      return None
    value = value[part]
  return value


def read_run(workdir: str) -> dict:
  """{column key: value} of one run; raises FileNotFoundError without summary.json."""
  with open(os.path.join(workdir, 'summary.json')) as f:
    summary = json.load(f)
  with open(os.path.join(workdir, 'config.json')) as f:
    config = json.load(f)
  record = {**config, **summary, 'run': os.path.basename(os.path.normpath(workdir))}
  return {key: _lookup(record, key) for _, key, _ in COLUMNS}


def table_rows(workdirs: list) -> tuple:
  """(headers, rows of formatted strings) over the columns some run has."""
  runs = [read_run(w) for w in workdirs]
  shown = [c for c in COLUMNS if any(r[c[1]] is not None for r in runs)]
  rows = [['' if r[key] is None else fmt.format(r[key]) for _, key, fmt in shown]
          for r in runs]
  return [header for header, _, _ in shown], rows


def markdown(headers: list, rows: list) -> str:
  lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
  lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
  return '\n'.join(lines)


def main(argv: list) -> int:
  csv_path = None
  paths = []
  for arg in argv:
    if arg.startswith('--csv='):
      csv_path = arg.split('=', 1)[1]
    else:
      paths.append(arg)
  usable = [p for p in paths if os.path.isfile(os.path.join(p, 'summary.json'))]
  if not usable:
    print('error: no run directory with a summary.json among the arguments; '
          'pass workdirs such as runs/vae-*', file=sys.stderr)
    return 2
  for skipped in sorted(set(paths) - set(usable)):
    print(f'note: {skipped} has no summary.json (unfinished?); left out', file=sys.stderr)
  headers, rows = table_rows(usable)
  if csv_path:
    with open(csv_path, 'w', newline='') as f:
      csv.writer(f).writerows([headers, *rows])
  print(markdown(headers, rows))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
