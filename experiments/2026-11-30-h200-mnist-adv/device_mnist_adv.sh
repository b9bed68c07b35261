#!/usr/bin/env bash
# Issue 4's GPU check in one device call, all inside DEADLINE seconds, side by side on one GPU:
#   - JOBS: trades+atta SmallCNN, `paper` preset, each then attacked with PGD-40, PGD-100, M-PGD-40
#     and FGSM on all 10,000 test images; by default max and avg pool, seed 0 (the reference's);
#   - EXTRA: more jobs, started once four epochs show there is time for them (each one more slows the
#     others; EXTRA_NOW=1 starts them at once): by default the max-pool gap's suspects, max pool with
#     TF32 convolutions off (NVIDIA_TF32_OVERRIDE=0: PyTorch runs cuDNN convolutions in TF32 by
#     default, the CPU in full fp32), then max and avg pool seed 1;
#   - the max-pool models trained on the CPU (carried in CPU_RUNS, weights and records only) attacked
#     on the GPU with PGD-40 and PGD-100, TF32 on and off: does the evaluation's precision move them?
# A job is name:pool:seed[:VAR=value...]; IMAGE_SIZE=28 trains them all on MNIST's own 28x28 (ATTA's
# code) instead of the paper's 32x32. Everything but the ATTA buffers and adversarial sets comes
# back as one tarball in $OUT; the last line is one JSON object per model (clean, robust per attack,
# training seconds, seconds of the last epoch).
# Rehearse here: PRESET=smoke DEVICE=cpu N=64 DEADLINE=120 OUT=/tmp/out bash experiments/2026-11-30-h200-mnist-adv/device_mnist_adv.sh
# On the device: MNIST in .devdata/MNIST and the CPU runs in .devdata/cpu-runs (git-ignored), carried.
# experiments/2026-11-30-h200-mnist-adv has what two calls of it gave.
set -u
PRESET=${PRESET:-paper}
DEVICE=${DEVICE:-cuda}
DEADLINE=${DEADLINE:-550}
CPU_RUNS=${CPU_RUNS:-.devdata/cpu-runs}
JOBS=${JOBS:-"max-s0:max:0 avg-s0:avg:0"}
EXTRA=${EXTRA-"max-s0-tf32off:max:0:NVIDIA_TF32_OVERRIDE=0 max-s1:max:1 avg-s1:avg:1"}
EXTRA_NOW=${EXTRA_NOW:-}
IMAGE_SIZE=${IMAGE_SIZE:-32}
export PYTHONPATH=src PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export INTERPRETGAN_DATA=${INTERPRETGAN_DATA:-.devdata}
export INTERPRETGAN_CACHE=/tmp/ig-cache
R=/tmp/ig-adv-$PRESET
rm -rf "$R"; mkdir -p "$R" "$OUT"
START=$(date +%s); END=$((START + DEADLINE))
left() { echo $((END - $(date +%s))); }
limit() { local t; t=$(left); echo $((t > 1 ? t : 1)); }  # for timeout, where 0 would mean no limit
elapsed() { echo $(($(date +%s) - START)); }
ATTACKS="--attack pgd-40 --attack pgd-100 --attack mpgd-40 --attack fgsm ${N:+--n $N} --batch-size 2500"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" | tee "$R/device.txt"
python3 -c "from interpretgan.data.registry import load_dataset as l; l('mnist', 'train', image_size=$IMAGE_SIZE); l('mnist', 'test', image_size=$IMAGE_SIZE)" \
  > "$R/data.log" 2>&1  # the decoded cache, made once before the jobs race for it

job() {  # name:pool:seed[:VAR=value...]: train, then the four attacks; killed at the deadline
  local name pool seed env
  IFS=: read -r name pool seed env <<< "$1"
  IFS=: read -r -a env <<< "${env:-IG_JOB=$name}"
  ( env "${env[@]}" timeout "$(limit)" python3 -m interpretgan train --dataset mnist --objective trades+atta --pool "$pool" \
      --seed "$seed" --preset "$PRESET" --image-size "$IMAGE_SIZE" --checkpoint-every 10 --device "$DEVICE" --no-progress --out "$R/$name" &&
    env "${env[@]}" timeout "$(limit)" python3 -m interpretgan attack "$R/$name"/0* $ATTACKS --device "$DEVICE" --no-progress
    echo "$name ended at $(elapsed) s (rc $?)" ) > "$R/$name.log" 2>&1 &
}
epochs_done() { cat "$R/$1"/0*/metrics.jsonl 2> /dev/null | wc -l; }

for j in $JOBS; do job "$j"; done
if [ -n "$EXTRA_NOW" ]; then for j in $EXTRA; do job "$j"; done; EXTRA=; fi

for run in "$CPU_RUNS"/*/; do  # short: attacks of the CPU-trained models while the jobs warm up
  [ -f "$run/config.json" ] || continue
  for tf32 in on off; do
    cp -r "$run" "$R/cpu-$(basename "$run")-tf32$tf32"
    if [ $tf32 = on ]; then env=(); else env=(NVIDIA_TF32_OVERRIDE=0); fi
    env "${env[@]}" timeout "$(limit)" python3 -m interpretgan attack "$R/cpu-$(basename "$run")-tf32$tf32" \
      --attack pgd-40 --attack pgd-100 ${N:+--n $N} --batch-size 2500 --device "$DEVICE" --no-progress \
      > "$R/cpu-$(basename "$run")-tf32$tf32.log" 2>&1
    echo "CPU-trained $(basename "$run"), TF32 $tf32: attacked at $(elapsed) s"
  done
done

# The extra jobs, as many as the first four epochs (the CPU runs' attacks are done by then) leave time for.
FIRST=${JOBS%% *}; FIRST=${FIRST%%:*}
EPOCHS=$(python3 -c "from interpretgan.config.presets import resolve_train_config as r; print(r('mnist', 'trades+atta', '$PRESET').epochs)")
until [ -z "$EXTRA" ] || [ "$(epochs_done "$FIRST")" -ge $((EPOCHS < 4 ? EPOCHS : 4)) ] || grep -q "ended at" "$R/$FIRST.log" \
  || [ "$(left)" -le 0 ]; do sleep 2; done
if [ -n "$EXTRA" ]; then
  PER_EPOCH=$(python3 -c 'import json, sys; r = [json.loads(l) for l in open(sys.argv[1])]; print(r[-1]["seconds"] + 0.3)' "$R/$FIRST"/0*/metrics.jsonl 2> /dev/null || echo 1e9)
  RUNNING=$(echo $JOBS | wc -w)
  echo "seconds an epoch, $RUNNING jobs: $PER_EPOCH ($(left) s left)"
  for j in $EXTRA; do  # an epoch's time taken to grow in proportion to the jobs side by side
    if python3 -c "import sys; sys.exit(0 if $PER_EPOCH * ($RUNNING + 1) / $RUNNING * $EPOCHS + 60 < $(left) else 1)"; then
      job "$j"; RUNNING=$((RUNNING + 1)); echo "started ${j%%:*}"
    else echo "no time for ${j%%:*}"; fi
  done
fi

wait
echo "all jobs ended at $(elapsed) s"
python3 - "$R" <<'PY'
import glob, json, os, sys
figures = {}
for res in sorted(glob.glob(f"{sys.argv[1]}/*/attacks/*/results.json") + glob.glob(f"{sys.argv[1]}/*/0*/attacks/*/results.json")):
    name = res[len(sys.argv[1]) + 1:].split("/")[0]
    a = json.load(open(res))
    run = res.split("/attacks/")[0]
    metrics = [json.loads(l) for l in open(f"{run}/metrics.jsonl")] if os.path.exists(f"{run}/metrics.jsonl") else []
    figures[name] = dict(n=a["n"], clean=round(100 * a["clean_accuracy"], 2),
                         robust={k: round(100 * v["accuracy"], 2) for k, v in a["attacks"].items()},
                         train_seconds=round(sum(m["seconds"] for m in metrics), 1) if not name.startswith("cpu-") else None,
                         epoch_seconds=round(metrics[-1]["seconds"], 2) if metrics and not name.startswith("cpu-") else None)
    print(name, figures[name])
print(json.dumps({"device_mnist_adv": figures}))
PY
tar -C "$R" --exclude='state.pt' --exclude='attacks/*/*.safetensors' -czf "$OUT/device-mnist-adv-$PRESET.tgz" .
ls -la "$OUT"
