#!/usr/bin/env bash
# One device (GPU) call for the checks issues 4-6 leave to a GPU, all inside DEADLINE seconds:
#   1. natural SmallCNN, `paper` preset (the classifier the explainers explain);
#   2. benchmarks/explain_speed.py at the paper's widths, unfused and --fuse, alone on the GPU;
#   then, side by side on the one GPU:
#   3. trades+atta SmallCNN `paper` preset, max and avg pool, seeds 0 and 1 (the spread over seeds the
#      one-seed reference cannot show; the inner step's loss was settled on the CPU: ATTA's
#      cross-entropy landed within 1.2 points of the default KL term), each then attacked with
#      PGD-40, PGD-100, M-PGD-40 and FGSM on all 10,000 test images;
#   4. explainers of all 7 layers of the natural model at the paper's widths (batch 16, 128 maps),
#      --fuse, on as many iterations as the time left allows (the paper's 1:1:1:2 split over scales),
#      then consistency and Frechet distance on all 10,000 test images.
# Everything but weights of the explainers and adversarial sets comes back as one tarball in $OUT.
# Rehearse here on the CPU: PRESET=smoke DEVICE=cpu DEADLINE=300 N=64 OUT=/tmp/out bash scripts/device_gpu_checks.sh
# On the device: MNIST copied into .devdata/MNIST (git-ignored) and carried.
set -u
PRESET=${PRESET:-paper}
DEVICE=${DEVICE:-cuda}
DEADLINE=${DEADLINE:-530}
export PYTHONPATH=src PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export INTERPRETGAN_DATA=${INTERPRETGAN_DATA:-.devdata}
export INTERPRETGAN_CACHE=/tmp/ig-cache
R=/tmp/ig-gpu-$PRESET
rm -rf "$R"; mkdir -p "$R" "$OUT"
export START=$(date +%s); export END=$((START + DEADLINE))
ig() { python3 -m interpretgan "$@"; }
left() { echo $((END - $(date +%s))); }
elapsed() { echo $(($(date +%s) - START)); }
# `timeout 0` would mean no limit: a job whose time is up is skipped instead.
until_deadline() { local t; t=$(left); if [ "$t" -gt 0 ]; then timeout "$t" "$@"; else echo "skipped (deadline): $*"; return 124; fi; }
if [ "$PRESET" = paper ]; then BENCH_ITERS=30,30,30,30; else BENCH_ITERS=2,2,2,2; fi
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" | tee "$R/device.txt"

ig train --dataset mnist --preset "$PRESET" --device "$DEVICE" --no-progress --out "$R/natural" > "$R/natural.log" 2>&1
echo "natural: $(elapsed) s"; tail -1 "$R/natural.log"
NAT=$(ls -d "$R"/natural/0*)

for fuse in "" "--fuse"; do
  until_deadline python3 benchmarks/explain_speed.py --device "$DEVICE" --preset "$PRESET" --classifier "$NAT" \
    --scale-iterations $BENCH_ITERS $fuse > "$R/explain_speed${fuse:+-fused}.log" 2>&1
  echo "explain_speed ${fuse:-unfused}: $(elapsed) s"; tail -1 "$R/explain_speed${fuse:+-fused}.log"
done

adv() {  # pool seed: train, then the four attacks on all test images
  local out="$R/adv-$1-s$2"
  ig train --dataset mnist --objective trades+atta --pool "$1" --seed "$2" --preset "$PRESET" --checkpoint-every 10 \
    --device "$DEVICE" --no-progress --out "$out" > "$out.log" 2>&1 &&
  ig attack "$out"/0* --attack pgd-40 --attack pgd-100 --attack mpgd-40 --attack fgsm ${N:+--n $N} --batch-size 2500 \
    --device "$DEVICE" --no-progress >> "$out.log" 2>&1
  echo "adv $1 seed $2 done at $(elapsed) s (rc $?)"
}
for seed in 0 1; do for pool in max avg; do
  until_deadline bash -c "$(declare -f adv ig elapsed); R=$R PRESET=$PRESET DEVICE=$DEVICE N=${N:-}; adv $pool $seed" &
done; done

# The explainer slice: iterations from the fused benchmark's rate, slowed 1.6x for the jobs beside it,
# leaving 60 s for the evaluation.
ITERS=$(python3 - "$R/explain_speed-fused.log" "$(left)" "$PRESET" <<'EOF'
import json, sys
try:
    res = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
    per_iter = res["joint_seconds"] / res["iterations_per_layer"]
except Exception:
    per_iter = 0.05
a = max(2, int((int(sys.argv[2]) - 60) / (5 * 1.6 * per_iter))) if sys.argv[3] == "paper" else 2
print(f"{a},{a},{a},{2 * a}")
EOF
)
echo "explainer slice: --scale-iterations $ITERS ($(left) s left)"
until_deadline python3 -m interpretgan explain train "$NAT" --preset "$PRESET" --fuse --scale-iterations "$ITERS" \
  --device "$DEVICE" --no-progress --out "$R/explain" > "$R/explain.log" 2>&1
echo "explainer slice: rc $? at $(elapsed) s"; tail -12 "$R/explain.log"
wait
echo "all jobs ended at $(elapsed) s"
for log in "$R"/adv-*.log; do echo "== $log"; grep -E "clean test accuracy|robust accuracy|worst case" "$log"; done
tar -C "$R" --exclude='*.safetensors.chunks' --exclude='attacks/*/*.safetensors' --exclude='state.pt' \
    --exclude='explain/*/ckpt' -czf "$OUT/gpu-checks-$PRESET.tgz" .
ls -la "$OUT"
