r"""One results table from any set of run directories.

    python -m vae_jax.report runs/vae-* runs/beta_vae-*      # markdown to stdout
    python -m vae_jax.report --csv=results.csv runs/*
    python -m vae_jax.report runs/beta_sweep/*/              # a sweep's members
    python -m vae_jax.report --over_seeds runs/beta_sweep/*/ # mean ± sd over seeds
    python -m vae_jax.report --steps_to=nelbo:245,242.15 runs/init_choice/*/

Each row is one workdir: its objective and data (config.json) and its final
held-out metrics (summary.json), in nats per example. A column is shown when
at least one run has it; every other config key whose value differs between
the runs (a sweep's axes: seed, learning rate, latent size, ...) gets a
column of its own; in a table of several objectives, a config.objective
setting is left blank in the rows whose objective does not read it. Every header is the key itself: a dotted config.json key
(objective.beta) or a summary.json key (nll_iw). The markdown table states
a column whose value is the same in every row once, above the table
("all rows: objective.name = beta, ..."); the CSV keeps every column.

--over_seeds folds the runs that differ only in their seed into one row: a
number that differs between the seeds is shown as `mean ± sd` (the sample
standard deviation, n − 1), the `seeds` column lists them.
--steps_to=METRIC:V1,V2 adds, per run, the first step whose held-out record
in metrics.jsonl has METRIC ≤ V (column `steps_to_METRIC<=V`; `>S` when no
evaluation up to step S reached it): the resolution is the run's
train.eval_every_steps.
"""

import csv
import json
import os
import statistics
import sys

from vae_jax.errors import UserError
from vae_jax.run.metrics_log import read_metrics
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
    ('nll_iw_marginal', '{:.2f}'),
    ('marginal_iw_samples', '{}'),
    ('active_units', '{}'),
    ('mmd_to_prior', '{:.4f}'),
    ('aggregate_kl_moment_matched', '{:.3f}'),
    ('aggregate_kl_moment_matched_full_cov', '{:.3f}'),
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
CONFIG_COLUMN_KEYS = tuple(key for key in COLUMN_KEYS if '.' in key)  # from config.json

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


def parse_steps_to(text: str) -> list:
  """'nelbo:245,242.15' → [('nelbo', 245.0), ('nelbo', 242.15)]; UserError if malformed."""
  metric, _, values = text.partition(':')
  try:
    targets = [float(v) for v in values.split(',') if v.strip()]
  except ValueError:
    targets = []
  if not metric or not targets:
    raise UserError(f'--steps_to={text} is not METRIC:VALUE[,VALUE...]; e.g. '
                    '--steps_to=nelbo:245,242.15')
  return [(metric, target) for target in targets]


def steps_to(workdir: str, metric: str, target: float):
  """The first step whose held-out record has `metric` ≤ `target` (an int), or
  '>S' with S the last evaluated step; None without held-out records."""
  evaluated = {r['step']: r[metric] for r in read_metrics(workdir)
               if r['split'] == 'eval' and isinstance(r.get(metric), (int, float))}
  for step in sorted(evaluated):
    if evaluated[step] <= target:
      return step
  return f'>{max(evaluated)}' if evaluated else None


def _steps_to_key(metric: str, target: float) -> str:
  return f'steps_to_{metric}<={target:g}'


def _objective_reads(name) -> set:
  """The config.objective fields objective `name` reads ('' for an unknown name:
  then every field counts as read)."""
  from vae_jax import objectives  # pylint: disable=g-import-not-at-top  (JAX: only here)
  try:
    objective = objectives.get(name)
  except ValueError:
    return set(objectives.FIELDS)
  reads = set(objective.hparams) | set(objective.settings)
  if objective.auxiliary is not None:
    reads.add(objective.auxiliary.learning_rate)
  return reads


def _unread_fields_blank(runs: list) -> None:
  """Sets to None each run's config.objective.* values its objective does not read
  (a table of several objectives shows only the settings that apply to a row)."""
  keys = [k for k in (runs[0] if runs else {}) if k.startswith('objective.')
          and k != 'objective.name']
  if not keys or len({r.get('objective.name') for r in runs}) < 2:
    return
  for run in runs:
    reads = _objective_reads(run.get('objective.name'))
    for key in keys:
      if key.split('.', 1)[1] not in reads:
        run[key] = None


def table_rows(workdirs: list, extra_keys=None, targets: tuple = (),
               over_seeds: bool = False) -> tuple:
  """(headers, rows of formatted strings): `extra_keys` config columns (default:
  the keys that vary between the runs), then the columns some run has, then
  one per (metric, value) of `targets` (`steps_to`); with `over_seeds` one row
  per set of runs that differ only in their seed (`fold_seeds`)."""
  if extra_keys is None:
    extra_keys = varying_keys(workdirs)
  if over_seeds and 'seed' not in extra_keys:
    extra_keys = list(extra_keys) + ['seed']
  runs = [read_run(w, extra_keys) for w in workdirs]
  _unread_fields_blank(runs)
  for run, workdir in zip(runs, workdirs):
    run.update({_steps_to_key(m, t): steps_to(workdir, m, t) for m, t in targets})
  columns = [COLUMNS[0]] + [(k, '{}') for k in extra_keys
                            if k not in COLUMN_KEYS] + list(COLUMNS[1:])
  columns += [(_steps_to_key(m, t), '{}') for m, t in targets]
  shown = [c for c in columns if any(r[c[0]] is not None for r in runs)]
  if over_seeds:
    settings = [k for k, _ in shown if k in extra_keys or k in CONFIG_COLUMN_KEYS]
    return fold_seeds(runs, shown, [k for k in settings if k != 'seed'])
  rows = [['' if r[key] is None else format_value(r[key], fmt) for key, fmt in shown]
          for r in runs]
  return [key for key, _ in shown], rows


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fold(values: list, fmt: str) -> str:
  """One cell for the seeds' values: the value if they agree, `mean ± sd` if they
  are numbers, else the values listed."""
  present = [v for v in values if v is not None]
  if not present:
    return ''
  if len({json.dumps(v) for v in present}) == 1:
    return format_value(present[0], fmt)
  if len(present) == len(values) and all(map(_is_number, present)):
    fmt = '{:.4g}' if fmt == '{}' else fmt
    return (f'{format_value(statistics.mean(present), fmt)} ± '
            f'{format_value(statistics.stdev(present), fmt)}')
  return ', '.join('' if v is None else format_value(v, fmt) for v in values)


def fold_seeds(runs: list, shown: list, settings: list) -> tuple:
  """(headers, rows) with the runs that agree on every config key of `settings` as
  one row: `seeds` lists their seeds, every other column of `shown` is `_fold`ed;
  rows in first-seen order."""
  groups = {}
  for run in runs:
    groups.setdefault(json.dumps([run.get(k) for k in settings]), []).append(run)
  columns = [(key, fmt) for key, fmt in shown if key not in ('run', 'seed')]
  headers = ['seeds'] + [key for key, _ in columns]
  rows = [[', '.join(format_value(r.get('seed')) for r in group)]
          + [_fold([r.get(key) for r in group], fmt) for key, fmt in columns]
          for group in groups.values()]
  return headers, rows


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
  csv_path, targets, over_seeds = None, [], False
  paths = []
  try:
    for arg in argv:
      if arg in ('--help', '-h'):
        print(__doc__.strip())
        return 0
      if arg.startswith('--csv='):
        csv_path = arg.split('=', 1)[1]
      elif arg.startswith('--steps_to='):
        targets += parse_steps_to(arg.split('=', 1)[1])
      elif arg == '--over_seeds':
        over_seeds = True
      elif arg.startswith('-'):
        raise UserError(f'unknown option {arg}; see python -m vae_jax.report --help')
      else:
        paths.append(arg)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  usable = [p for p in paths if os.path.isfile(os.path.join(p, 'summary.json'))]
  if not usable:
    print('error: no run directory with a summary.json among the arguments; '
          'pass workdirs such as runs/vae-*', file=sys.stderr)
    return 2
  for skipped in sorted(set(paths) - set(usable)):
    print(f'note: {skipped} has no summary.json (unfinished?); left out', file=sys.stderr)
  try:
    headers, rows = table_rows(usable, targets=tuple(targets), over_seeds=over_seeds)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if csv_path:
    write_csv(csv_path, headers, rows)
  print(markdown(headers, rows))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
