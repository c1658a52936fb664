#!/usr/bin/env bash
# Set up .venv, then run the main job: the reproduction pipeline on the smoke profile
# (`dvc exp run -S profile=smoke`, DVC's way to run with one param changed: it leaves params.yaml
# and dvc.lock switched to smoke; `git checkout params.yaml dvc.lock` returns to the committed study):
# runs/smoke/, results/smoke/, figures/smoke/, paper_tables/smoke/ (the report: paper_tables/smoke/README.md).
source "$(dirname "$0")/setup.sh"
export MPLBACKEND=Agg
dvc exp run -S profile=smoke "$@"
profile=$(python -c "import yaml; print(yaml.safe_load(open('params.yaml'))['profile'])")
echo
echo "profile:       $profile"
echo "report:        paper_tables/$profile/README.md"
echo "figures:       $(ls figures/$profile/*.png | tr '\n' ' ')"
echo "tables:        paper_tables/$profile/reproduction.md, paper_tables/$profile/claims.csv"
echo "results:       results/$profile/runs.csv, results/$profile/curves.csv"
