#!/usr/bin/env bash
# Set-up (idempotent) and entry point of vae_jax.
#
#   ./launch.sh train experiments/beta_vae.py [--config.a.b=v ...] [--workdir=DIR]
#   ./launch.sh eval  RUN_DIR [--config.eval.a=v ...]         # re-evaluate a run
#   ./launch.sh score RUN_DIR DATA     # score a dataset name or IDX directory with a run
#   ./launch.sh sweep experiments/sweeps/beta_sweep.py [--config.a.b=v ...] [--workdir=DIR]
#   ./launch.sh test  [pytest args]
#   ./launch.sh bench [--quick] [--only=train_step,...]   # benchmarks (installs torch)
#   ./launch.sh setup [test]           # only create or update .venv
#
# The first call creates .venv (override with VAE_JAX_VENV=path) and installs
# what the command needs: the package alone (pip install -e .) for train,
# eval, score and sweep; with its test extras (TensorFlow, TFDS, pytest, ...)
# for test and bench. Later calls reinstall only when pyproject.toml changed
# or a command needs the test extras for the first time.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VAE_JAX_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

setup() {  # $1: 'test' for the test extras, '' for the package alone
  local extras="${1:-}"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp
  stamp="$VENV/.vae_jax-installed-$(sha1sum pyproject.toml | cut -c1-12)"
  # A test install serves every command; the package alone serves all but test and bench.
  if [ -f "$stamp-test" ] || { [ -z "$extras" ] && [ -f "$stamp-base" ]; }; then
    return
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip
  if [ -n "$extras" ]; then
    "$VENV/bin/python" -m pip install -q -e ".[$extras]"
  else
    "$VENV/bin/python" -m pip install -q -e .
  fi
  rm -f "$VENV"/.vae_jax-installed-*
  touch "$stamp-${extras:-base}"
}

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit 2
}

[ $# -ge 1 ] || usage
command="$1"; shift
case "$command" in
  train)
    [ $# -ge 1 ] || usage
    config="$1"; shift
    setup
    exec "$VENV/bin/python" -m vae_jax.main --config="$config" "$@"
    ;;
  eval)
    [ $# -ge 1 ] || usage
    run_dir="$1"; shift
    setup
    exec "$VENV/bin/python" -m vae_jax.main --mode=eval --workdir="$run_dir" "$@"
    ;;
  score)
    [ $# -ge 2 ] || usage
    run_dir="$1"; data="$2"; shift 2
    setup
    exec "$VENV/bin/python" -m vae_jax.main --mode=score --workdir="$run_dir" --score_data="$data" "$@"
    ;;
  sweep)
    [ $# -ge 1 ] || usage
    config="$1"; shift
    setup
    exec "$VENV/bin/python" -m vae_jax.main --mode=sweep --config="$config" "$@"
    ;;
  bench)
    setup test
    # The PyTorch reference is a benchmark-only dependency (not in pyproject.toml).
    if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
      "$VENV/bin/python" -m pip install -q 'torch==2.13.0' \
        || echo 'warning: could not install torch==2.13.0; the torch columns stay empty' >&2
    fi
    exec "$VENV/bin/python" -m benchmarks "$@"
    ;;
  test)
    setup test
    exec "$VENV/bin/python" -m pytest -q -n "${VAE_JAX_TEST_WORKERS:-2}" --durations=15 "$@"
    ;;
  setup)
    setup "${1:-}"
    ;;
  *)
    usage
    ;;
esac
