#!/usr/bin/env bash
# PGD-100 with and without 5 random restarts (`interpretgan attack --restarts 5`) on the seeded
# 1,000-image test subset, for the seed-0 `paper`-preset models of the H200 and of the CPU.
# Each run folder is copied (config and weights) under OUT first, so the records here stay as they
# were. Run from the repository root:
#   INTERPRETGAN_DATA=../shared/data bash experiments/2026-12-01-cpu-mnist-max-screen/restarts-cli.sh [OUT]
set -euo pipefail
out=${1:-runs/restarts}
m=experiments
declare -A src=([max-seed0]=$m/2026-11-30-h200-mnist-adv/max-trades+atta-seed0
                [avg-seed0]=$m/2026-11-30-h200-mnist-adv/avg-trades+atta-seed0
                [cpu-max-seed0]=$m/2026-11-30-cpu-mnist-paper/max-trades+atta
                [cpu-avg-seed0]=$m/2026-11-30-cpu-mnist-paper/avg-trades+atta)
for name in max-seed0 avg-seed0 cpu-max-seed0 cpu-avg-seed0; do
  mkdir -p "$out/$name"
  cp -r "${src[$name]}/config.json" "${src[$name]}/ckpt" "$out/$name/"
  python -m interpretgan attack "$out/$name" --attack pgd-100 --n 1000 --no-progress
  python -m interpretgan attack "$out/$name" --attack pgd-100 --restarts 5 --n 1000 --no-progress
done
