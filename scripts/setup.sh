# Sourced by the other scripts: a virtual environment in .venv with rlaux and its dev extra, made with a
# supported Python: 3.11 (preferred: the version of the published results), 3.12 or 3.13. RLAUX_PYTHON
# names an interpreter to use instead. A .venv made with another Python is rebuilt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SUPPORTED="3.11 3.12 3.13"

supported() {  # prints X.Y when "$1" runs and is a supported Python
  local v
  v=$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || return 1
  [[ " $SUPPORTED " == *" $v "* ]] && echo "$v"
}

pick_python() {  # RLAUX_PYTHON, else python3.11 / 3.12 / 3.13 on PATH or from pyenv, else python3
  local v c
  if [ -n "${RLAUX_PYTHON:-}" ]; then supported "$RLAUX_PYTHON" >/dev/null && echo "$RLAUX_PYTHON"; return; fi
  for v in $SUPPORTED; do
    for c in "python$v" $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$v".*/bin/"python$v" 2>/dev/null | sort -rV); do
      if supported "$c" >/dev/null; then echo "$c"; return; fi
    done
  done
  supported python3 >/dev/null && echo python3
}

if [ -e .venv ] && ! supported .venv/bin/python >/dev/null; then
  made=$(.venv/bin/python -V 2>/dev/null) || made="a Python that no longer runs"
  echo "setup: .venv was made with $made, not Python 3.11, 3.12 or 3.13; rebuilding it" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  if ! python=$(pick_python); then
    echo "setup: error: no Python 3.11, 3.12 or 3.13 found (${RLAUX_PYTHON:+RLAUX_PYTHON=$RLAUX_PYTHON is none of them; }looked for python3.11, python3.12, python3.13, pyenv's versions and python3); install one or set RLAUX_PYTHON" >&2
    exit 1
  fi
  echo "setup: creating .venv with $python (Python $(supported "$python"))" >&2
  "$python" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[dev,cluster]'
source scripts/data.sh
