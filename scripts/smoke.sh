#!/usr/bin/env bash
# Set up .venv, then run the main job: the reproduction pipeline (dvc repro) with the active
# profile of params.yaml (smoke by default): runs/, results/, figures/, paper_tables/.
source "$(dirname "$0")/setup.sh"
export MPLBACKEND=Agg
dvc repro "$@"
echo
echo "figures:       $(ls figures/*.png | tr '\n' ' ')"
echo "tables:        paper_tables/reproduction.md, paper_tables/claims.csv"
