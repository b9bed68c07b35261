#!/bin/bash
# Issue 30, session of 2026-12-04 (afternoon; records.log; rerun in the evening against a5fa03f: records-evening.log): every benchmark's last line before (5c16e15, the session's
# first commit's parent) and after (the checkout this runs from), one after the other on the same 2 cores,
# then the new torchrun benchmark (after only). Run from the repository root:
#   git worktree add /tmp/b30 5c16e15 && bash experiments/2026-12-04-issue30-benchmarks/bench.sh /tmp/b30
before=${1:?the checkout of 5c16e15}
after=$(pwd)
export INTERPRETGAN_DATA=${INTERPRETGAN_DATA:-../shared/data}
for bench in train_speed attack_speed adv_train_speed explain_speed; do
  for side in before after; do
    dir=$before; [ $side = after ] && dir=$after
    echo "== $bench $side"
    (cd "$dir" && PYTHONPATH="$dir/src" python benchmarks/$bench.py --quick 2>&1 | tail -1)
  done
done
echo "== distributed_speed after (--quick)"
python benchmarks/distributed_speed.py --quick 2>&1 | tail -3
echo "== distributed_speed after (2 repeats, 10,000 / 4,000 images)"
python benchmarks/distributed_speed.py --repeats 2 2>&1 | tail -3
