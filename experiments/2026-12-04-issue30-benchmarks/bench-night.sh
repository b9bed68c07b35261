#!/bin/bash
# Every issue-30 benchmark at --quick, alone on the cores, after the moving-average and warm-timing commits.
# Run from the repository root in its virtual environment: bash experiments/2026-12-04-issue30-benchmarks/bench-night.sh > experiments/2026-12-04-issue30-benchmarks/records-night.log
for b in train_speed attack_speed adv_train_speed explain_speed distributed_speed; do
  echo "== $b (--quick)"
  python benchmarks/$b.py --quick 2>&1 | tail -1
done
