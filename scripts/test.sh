#!/usr/bin/env bash
# Set up .venv, then run the unit tests and the benchmarks (accuracy thresholds, speed ratios): the full
# suite on .venv's one Python (3.11 where present); CI adds the fast tests on 3.13 (.ci/run).
source "$(dirname "$0")/check_data.sh"  # before the install (minutes, GBs): no data, one line
source "$(dirname "$0")/setup.sh"
require_data
echo "test.sh: the full suite on $(python -V) (.venv)"
ruff check . && ruff format --check .
lint-imports  # the layers of pyproject.toml's [tool.importlinter]
mypy  # rlaux/, as configured in pyproject.toml's [tool.mypy]
python -m pytest tests benchmarks -q --durations=15 "$@"
