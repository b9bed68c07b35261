#!/usr/bin/env bash
# The ATTA step of the MNIST `cpu` preset, chosen by measurement (issue 4).
#
# For each step: `trades+atta` SmallCNN with the `cpu` preset otherwise unchanged (10 epochs, lr x0.1
# at epoch 8, max pool, seed 0), then PGD-40 (eps 0.3, step 0.01, random start) on the attack
# command's seeded subset of N test images (the same subset for every step). About 24 minutes of
# training a step on 2 CPU cores; the last line is one JSON object with clean and PGD-40 accuracy
# per step.
#
#   INTERPRETGAN_DATA=... STEPS="0.03 0.05 0.06" N=1000 bash experiments/2026-11-30-cpu-atta-sweep/sweep_atta_mnist_cpu.sh
#
# Re-running resumes: a step whose training finished is not trained again, an interrupted one
# continues from its checkpoint, and a step already attacked on N images is skipped.
set -euo pipefail
STEPS=${STEPS:-"0.03 0.04 0.05 0.06"}
N=${N:-1000}
POOL=${POOL:-max}
PRESET=${PRESET:-cpu}  # smoke: a rehearsal in seconds
OUT=${OUT:-runs/atta-sweep-$PRESET}
mkdir -p "$OUT"

run_of() { ls -d "$OUT/step-$1"/0* 2> /dev/null | tail -1 || true; }

for step in $STEPS; do
  run=$(run_of "$step")
  if [ -n "$run" ] && ls "$run"/attacks/test-"$N"-eps*/results.json > /dev/null 2>&1; then
    echo "step $step: done before, skipped"
    continue
  fi
  start=$(date +%s)
  if [ -z "$run" ]; then
    interpretgan train --dataset mnist --objective trades+atta --pool "$POOL" --preset "$PRESET" --attack-step "$step" \
      --out "$OUT/step-$step" --no-progress
    run=$(run_of "$step")
  elif [ ! -f "$run/results.json" ]; then
    interpretgan train --resume "$run" --no-progress
  fi
  interpretgan attack "$run" --attack pgd-40 --n "$N" --no-progress
  echo "step $step: $(( $(date +%s) - start )) s"
done

python - "$OUT" "$N" $STEPS <<'PY'
import glob, json, sys
out, n, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
figures = {}
for step in steps:
    run = sorted(glob.glob(f"{out}/step-{step}/0*"))[-1]
    train = json.load(open(f"{run}/results.json"))
    attack = json.load(open(sorted(glob.glob(f"{run}/attacks/test-{n}-eps*/results.json"))[0]))
    figures[step] = dict(clean_test=train["clean_accuracy"], n=attack["n"], clean=attack["clean_accuracy"],
                         pgd40=attack["attacks"]["pgd40"]["accuracy"], train_seconds=train["train_seconds"])
    print(f"step {step}: clean {100 * figures[step]['clean']:.1f} %, PGD-40 {100 * figures[step]['pgd40']:.1f} % "
          f"(n = {attack['n']}), training {train['train_seconds']:.0f} s")
print(json.dumps({"atta_step_sweep": figures}))
PY
