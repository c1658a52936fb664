#!/usr/bin/env bash
# Set up .venv, then run the unit tests and the benchmarks (accuracy thresholds, speed ratios).
source "$(dirname "$0")/setup.sh"
ruff check . && ruff format --check .
python -m pytest tests benchmarks -q "$@"
