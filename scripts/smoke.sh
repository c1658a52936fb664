#!/usr/bin/env bash
# Set up .venv, then run the main job: the reproduction pipeline on the smoke profile
# (`dvc exp run -S profile=smoke`, DVC's way to run with one param changed): runs/smoke/, results/smoke/,
# figures/smoke/, paper_tables/smoke/ (the report: paper_tables/smoke/README.md), all git-ignored.
# DVC leaves params.yaml, dvc.lock and results/plan/ switched to smoke (and staged, when stopped midway); this
# script puts them back as they were, in git's index too, when it exits, also on a failure or Ctrl-C, so the
# checkout ends as it began.
source "$(dirname "$0")/check_data.sh"  # before the install (minutes, GBs): no data, one line
source "$(dirname "$0")/setup.sh"
export MPLBACKEND=Agg

snapshot=$(mktemp -d)
cp -p params.yaml dvc.lock "$snapshot/"
cp -pR results/plan "$snapshot/plan"
git ls-files -s -z -- params.yaml dvc.lock results/plan >"$snapshot/index"  # DVC stages them as it goes
put_back() {
  cp -p "$snapshot/params.yaml" "$snapshot/dvc.lock" .
  rm -rf results/plan && cp -pR "$snapshot/plan" results/plan
  git ls-files -z -- params.yaml dvc.lock results/plan | xargs -0 git update-index --force-remove --
  git update-index -z --index-info <"$snapshot/index"
  rm -rf "$snapshot"
  echo "smoke.sh: params.yaml, dvc.lock and results/plan/ put back as they were before the run (git status as before)"
}
trap put_back EXIT
trap 'exit 130' INT TERM

dvc exp run -S profile=smoke "$@"
profile=$(python -c "import yaml; print(yaml.safe_load(open('params.yaml'))['profile'])")
echo
echo "profile:       $profile"
echo "report:        paper_tables/$profile/README.md"
echo "figures:       $(ls figures/$profile/*.png | tr '\n' ' ')"
echo "tables:        paper_tables/$profile/reproduction.md, paper_tables/$profile/claims.csv"
echo "results:       results/$profile/runs.csv, results/$profile/curves.csv"
