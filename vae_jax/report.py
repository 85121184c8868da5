r"""One results table from any set of run directories.

    python -m vae_jax.report runs/vae-* runs/beta_vae-*      # markdown to stdout
    python -m vae_jax.report --csv=results.csv runs/*
    python -m vae_jax.report runs/beta_sweep/*/              # a sweep's members

Each row is one workdir: its objective and data (config.json) and its final
held-out metrics (summary.json), in nats per example. A column is shown when
at least one run has it; every other config key whose value differs between
the runs (a sweep's axes: seed, learning rate, latent size, ...) gets a
column of its own. Every header is the key itself: a dotted config.json key
(objective.beta) or a summary.json key (nll_iw). The markdown table states
a column whose value is the same in every row once, above the table
("all rows: objective.name = beta, ..."); the CSV keeps every column.
"""

import csv
import json
import os
import sys

from vae_jax.errors import UserError
from vae_jax.run.workdir import flatten

COLUMNS = (  # (summary.json key or config key path: the header, format)
    ('run', '{}'),
    ('objective.name', '{}'),
    ('objective.beta', '{:g}'),
    ('data.name', '{}'),
    ('model.architecture', '{}'),
    ('step', '{}'),
    ('nelbo', '{:.2f}'),
    ('recon', '{:.2f}'),
    ('kl', '{:.2f}'),
    ('nll_iw', '{:.2f}'),
    ('iw_samples', '{}'),
    ('active_units', '{}'),
    ('anomaly_auroc', '{:.3f}'),
    ('beta_vae_score', '{:.3f}'),
    ('factor_vae_score', '{:.3f}'),
    ('mig', '{:.3f}'),
    ('dci_disentanglement', '{:.3f}'),
    ('dci_completeness', '{:.3f}'),
    ('dci_informativeness', '{:.3f}'),
    ('sap', '{:.3f}'),
)
COLUMN_KEYS = tuple(key for key, _ in COLUMNS)

# Config keys that differ between runs without describing the experiment.
VARYING_BUT_UNINTERESTING = ('data.local_dir', 'data.tfds_data_dir')


def _lookup(record: dict, key: str):
  value = record
  for part in key.split('.'):
    if not isinstance(value, dict) or part not in value:
      return None
    value = value[part]
  return value


def _read_json(workdir: str, name: str) -> dict:
  """The dict in <workdir>/<name>; UserError if it is missing or not a JSON object."""
  path = os.path.join(workdir, name)
  try:
    with open(path) as f:
      value = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f'{path} cannot be read ({type(e).__name__}); restore it or leave '
                    f'{workdir} out') from None
  if not isinstance(value, dict):
    raise UserError(f'{path} holds no JSON object; restore it or leave {workdir} out')
  return value


def read_run(workdir: str, extra_keys: tuple = ()) -> dict:
  """{column key: value} of one run (plus config `extra_keys`); raises
  FileNotFoundError without summary.json."""
  config, summary = _read_json(workdir, 'config.json'), _read_json(workdir, 'summary.json')
  record = {**config, **summary, 'run': os.path.basename(os.path.normpath(workdir))}
  keys = list(COLUMN_KEYS) + list(extra_keys)
  return {key: _lookup(record, key) for key in keys}


def varying_keys(workdirs: list) -> list:
  """Config keys (dotted) whose values differ between the runs' config.json."""
  flats = [flatten(_read_json(w, 'config.json')) for w in workdirs]
  keys = sorted(set().union(*flats))
  return [k for k in keys if k not in COLUMN_KEYS and k not in VARYING_BUT_UNINTERESTING
          and len({json.dumps(f.get(k)) for f in flats}) > 1]


def format_value(value, fmt: str = '{}') -> str:
  """Floats as %g (unless `fmt` says otherwise), lists as a-b-c, else `fmt`."""
  if isinstance(value, (list, tuple)):
    return '-'.join(format_value(v) for v in value)
  if isinstance(value, float) and fmt == '{}':
    return f'{value:g}'
  return fmt.format(value)


def table_rows(workdirs: list, extra_keys=None) -> tuple:
  """(headers, rows of formatted strings): `extra_keys` config columns (default:
  the keys that vary between the runs), then the columns some run has."""
  if extra_keys is None:
    extra_keys = varying_keys(workdirs)
  runs = [read_run(w, extra_keys) for w in workdirs]
  columns = [COLUMNS[0]] + [(k, '{}') for k in extra_keys
                            if k not in COLUMN_KEYS] + list(COLUMNS[1:])
  shown = [c for c in columns if any(r[c[0]] is not None for r in runs)]
  rows = [['' if r[key] is None else format_value(r[key], fmt) for key, fmt in shown]
          for r in runs]
  return [key for key, _ in shown], rows


def write_csv(path: str, headers: list, rows: list) -> None:
  with open(path, 'w', newline='') as f:
    csv.writer(f).writerows([headers, *rows])


def constant_columns(headers: list, rows: list) -> list:
  """Indices of the columns (but `run`) whose value is the same in every one of
  two or more rows."""
  if len(rows) < 2:
    return []
  return [i for i, header in enumerate(headers)
          if header != 'run' and len({row[i] for row in rows}) == 1]


def markdown(headers: list, rows: list) -> str:
  """A markdown table; the constant columns (`constant_columns`) are stated
  once above it as "all rows: key = value, ..." instead of in every row."""
  constant = constant_columns(headers, rows)
  lines = []
  if constant:
    lines += ['all rows: ' + ', '.join(f'{headers[i]} = {rows[0][i]}' for i in constant),
              '']
  keep = [i for i in range(len(headers)) if i not in constant]
  lines += ['| ' + ' | '.join(headers[i] for i in keep) + ' |', '|' + '---|' * len(keep)]
  lines += ['| ' + ' | '.join(row[i] for i in keep) + ' |' for row in rows]
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
  try:
    headers, rows = table_rows(usable)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if csv_path:
    write_csv(csv_path, headers, rows)
  print(markdown(headers, rows))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
