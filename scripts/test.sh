#!/usr/bin/env bash
# Set up .venv, then run the unit tests and the benchmarks (accuracy thresholds, speed ratios): the full
# suite on .venv's one Python (3.11 where present); CI adds the fast tests on 3.13 (.ci/run).
if [ -n "${RLAUX_DATA:-}" ] && [ ! -f "$RLAUX_DATA/subsets/cifar10.npz" ] && [ ! -d "$RLAUX_DATA/cifar-10-batches-py" ]; then
  # before the install (minutes, GBs): a data root given but holding nothing to read or build from
  echo "error: no CIFAR data under RLAUX_DATA=$RLAUX_DATA (neither subsets/cifar10.npz nor cifar-10-batches-py/); point RLAUX_DATA at a folder holding them, or unset it to download into ./data" >&2
  exit 2
fi
source "$(dirname "$0")/setup.sh"
require_data
echo "test.sh: the full suite on $(python -V) (.venv)"
ruff check . && ruff format --check .
lint-imports  # the layers of pyproject.toml's [tool.importlinter]
mypy  # rlaux/, as configured in pyproject.toml's [tool.mypy]
python -m pytest tests benchmarks -q --durations=15 "$@"
