#!/usr/bin/env bash
# Set up .venv, then run the unit tests and the benchmarks (accuracy thresholds, speed ratios): the full
# suite on .venv's one Python (3.11 where present); CI adds the fast tests on 3.13 (.ci/run).
source "$(dirname "$0")/setup.sh"
require_data
echo "test.sh: the full suite on $(python -V) (.venv)"
ruff check . && ruff format --check .
python -m pytest tests benchmarks -q "$@"
