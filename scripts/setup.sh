# Sourced by the other scripts: a virtual environment in .venv with rlaux and its dev extra.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
  python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[dev]'
# The offline CIFAR data beside the project, unless the user points elsewhere.
if [ -z "${RLAUX_DATA:-}" ] && [ -d ../shared/data ]; then
  export RLAUX_DATA="$(cd ../shared/data && pwd)"
fi
