# Sourced by scripts/setup.sh (with .venv active): the data root. RLAUX_DATA when set; else a prepared copy
# beside the project (../shared/data) when it holds the offline subsets; else ./data. Missing subsets are
# built once (rlaux subsets): from the torchvision CIFAR folders already in the data root, or, when no data
# root was given, from a download into ./data. `require_data` (scripts/test.sh) stops with one line when
# there are none.
if [ -z "${RLAUX_DATA:-}" ]; then
  if [ -f ../shared/data/subsets/cifar10.npz ]; then
    export RLAUX_DATA="$(cd ../shared/data && pwd)"
  else
    export RLAUX_DATA="$PWD/data"
    rlaux_download=--download
  fi
fi
rlaux_data_problem="none of them could be built"
if [ ! -f "$RLAUX_DATA/subsets/cifar10.npz" ] || [ ! -f "$RLAUX_DATA/subsets/cifar100.npz" ]; then
  if [ -f "$RLAUX_DATA/cifar-10-batches-py/data_batch_1" ] || [ -n "${rlaux_download:-}" ]; then
    echo "setup: building the offline subsets in $RLAUX_DATA/subsets (rlaux subsets${rlaux_download:+ --download})" >&2
    if ! out=$(rlaux subsets --root "$RLAUX_DATA" ${rlaux_download:-} 2>&1); then
      rlaux_data_problem=$(echo "$out" | grep "rlaux: error" | tail -1 || true)
      rlaux_data_problem=${rlaux_data_problem:-$(echo "$out" | tail -1)}
    fi
  else
    rlaux_data_problem="no torchvision CIFAR folders there to build them from"
  fi
fi

require_data() {  # one line and exit 2 when the subsets the tests read are missing
  if [ ! -f "$RLAUX_DATA/subsets/cifar10.npz" ] || [ ! -f "$RLAUX_DATA/subsets/cifar100.npz" ]; then
    echo "error: no CIFAR data: $RLAUX_DATA/subsets/cifar10.npz and cifar100.npz are missing ($rlaux_data_problem); set RLAUX_DATA to a folder holding them or the torchvision CIFAR folders (cifar-10-batches-py/, cifar-100-python/), or run once with internet access" >&2
    exit 2
  fi
}
