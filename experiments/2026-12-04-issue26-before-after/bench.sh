#!/bin/bash
# Issue 26: the benchmarks before (25bace1, the commit before the first issue-26 commit) and after
# (the checkout this runs from), alternated on the same cores. Run from the repository root:
#   git worktree add /tmp/b26 25bace1 && bash experiments/2026-12-04-issue26-before-after/bench.sh /tmp/b26
before=${1:?the checkout of 25bace1}
after=$(pwd)
export INTERPRETGAN_DATA=${INTERPRETGAN_DATA:-../shared/data}
for side in before after; do
  dir=$before; [ $side = after ] && dir=$after
  echo "== attack_speed $side"
  (cd "$dir" && PYTHONPATH="$dir/src" python benchmarks/attack_speed.py --quick 2>&1 | tail -1)
done
for round in 1 2 3; do
  for side in before after; do
    dir=$before; [ $side = after ] && dir=$after
    echo "== adv_train_speed $side round $round"
    (cd "$dir" && PYTHONPATH="$dir/src" python benchmarks/adv_train_speed.py --n 5000 --repeats 2 2>&1 | tail -1)
  done
done
echo "== test suite before"
(cd "$before" && time PYTHONPATH="$before/src" python -m pytest -q -p no:cacheprovider 2>&1 | tail -1)
echo "== test suite after"
(cd "$after" && time python -m pytest -q -p no:cacheprovider 2>&1 | tail -1)
