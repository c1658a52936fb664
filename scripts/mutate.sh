#!/usr/bin/env bash
# Mutation testing, on demand (not in CI): mutmut mutates rlaux/evaluation.py and rlaux/report/{stats,claims,tables}.py (the
# metrics, the report's statistics and claims; [tool.mutmut] in pyproject.toml), runs the fast tests that pin their numbers against
# each mutant, and prints killed / total per module and every survivor (`mutmut show NAME` shows one's diff).
# About 35 min on 2 cores; scripts/mutate.md records the last run and judges each survivor.
# Extra arguments go to `mutmut run` (e.g. "rlaux.report.stats*" for one module).
source "$(dirname "$0")/check_data.sh"  # before the install
source "$(dirname "$0")/setup.sh"
require_data
python -c 'import mutmut' 2>/dev/null || python -m pip install -q -e '.[dev,cluster,mutation]'
export MPLBACKEND=Agg
rm -rf mutants  # a fresh run: results cached under another config or older tests would not be re-checked
mutmut run --max-children "${MUTMUT_CHILDREN:-2}" "$@" >/dev/null || true  # its progress bar; the summary follows
python - <<'PY'
import collections, json, pathlib
from mutmut.stats import status_by_exit_code

for meta in sorted(pathlib.Path("mutants").rglob("*.py.meta")):
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    status = collections.Counter(status_by_exit_code[c] for c in codes.values())
    module = meta.relative_to("mutants").as_posix().removesuffix(".meta")
    print(f"{module}: {status['killed']} killed / {len(codes)} mutants ({dict(status)})")
    for name, code in sorted(codes.items()):
        if status_by_exit_code[code] != "killed":
            print(f"  {status_by_exit_code[code]}: {name}")
PY
