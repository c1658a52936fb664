#!/usr/bin/env bash
# Set up .venv, then run the main job: the reproduction pipeline (dvc repro) with the active
# profile of params.yaml (smoke by default): runs/<profile>/, results/<profile>/, figures/<profile>/,
# paper_tables/<profile>/ (the report: paper_tables/<profile>/README.md).
source "$(dirname "$0")/setup.sh"
export MPLBACKEND=Agg
dvc repro "$@"
profile=$(python -c "import yaml; print(yaml.safe_load(open('params.yaml'))['profile'])")
echo
echo "profile:       $profile"
echo "report:        paper_tables/$profile/README.md"
echo "figures:       $(ls figures/$profile/*.png | tr '\n' ' ')"
echo "tables:        paper_tables/$profile/reproduction.md, paper_tables/$profile/claims.csv"
echo "results:       results/$profile/runs.csv, results/$profile/curves.csv"
