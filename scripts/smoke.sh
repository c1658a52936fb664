#!/usr/bin/env bash
# Set up .venv, then run the main job: a short real training run on the CIFAR-10 subset.
source "$(dirname "$0")/setup.sh"
rlaux train --dataset cifar10 --method single --epochs 3 --train-size 2000 --width 0.25 --seed 0 --out runs/smoke "$@"
