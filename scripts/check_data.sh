# Sourced first by scripts/test.sh, smoke.sh and mutate.sh, before setup.sh's install (minutes, ~6 GB in .venv):
# stops with one line and exit 2 when no CIFAR data can be had. With RLAUX_DATA set, it must hold the offline
# subsets (subsets/cifar10.npz, cifar100.npz) or the torchvision folders to build them from; unset, the data
# must be beside the project (../shared/data/subsets/cifar10.npz) or in ./data, or the CIFAR download reachable.
# scripts/data.sh (sourced by setup.sh) then finds, builds or downloads the subsets, and `require_data` checks them.
rlaux_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

rlaux_holds_cifar() {  # the offline subsets, or the torchvision folders `rlaux subsets` builds them from
  { [ -f "$1/subsets/cifar10.npz" ] && [ -f "$1/subsets/cifar100.npz" ]; } ||
    { [ -f "$1/cifar-10-batches-py/data_batch_1" ] && [ -f "$1/cifar-100-python/train" ]; }
}

rlaux_can_download() {  # the host torchvision downloads CIFAR from answers (through the proxy, if one is set)
  local url=https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz
  if command -v curl >/dev/null; then
    curl -sfI --max-time 10 "$url" >/dev/null 2>&1
  elif command -v python3 >/dev/null; then
    python3 -c 'import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], method="HEAD"), timeout=10)' \
      "$url" >/dev/null 2>&1
  fi  # neither: not checked here; scripts/data.sh reports a failed download
}

if [ -n "${RLAUX_DATA:-}" ]; then
  if ! rlaux_holds_cifar "$RLAUX_DATA"; then
    echo "error: no CIFAR data under RLAUX_DATA=$RLAUX_DATA (neither subsets/cifar10.npz and cifar100.npz nor the torchvision folders cifar-10-batches-py/ and cifar-100-python/); point RLAUX_DATA at a folder holding them, or unset it to download into ./data" >&2
    exit 2
  fi
elif [ ! -f "$rlaux_root/../shared/data/subsets/cifar10.npz" ] && ! rlaux_holds_cifar "$rlaux_root/data" &&
  ! rlaux_can_download; then
  echo "error: no CIFAR data and no internet: RLAUX_DATA is unset, neither ../shared/data/subsets/ nor ./data holds the CIFAR files, and the download (www.cs.toronto.edu) cannot be reached; set RLAUX_DATA to a folder holding subsets/cifar10.npz and cifar100.npz (or cifar-10-batches-py/ and cifar-100-python/), or run once with internet access" >&2
  exit 2
fi
