#!/usr/bin/env bash
# One device (GPU) call: the MNIST `paper` presets and their evaluation, as issue 3/4 ask.
#   natural SmallCNN (10 epochs), trades+atta SmallCNN with max and with avg pooling (60 epochs,
#   the two trained side by side on the one GPU), then PGD-40, PGD-100, M-PGD-40 and FGSM on all
#   10,000 test images for each model. Results come back as one tarball in $OUT.
# Usage (here, to rehearse on the CPU): PRESET=smoke DEVICE=cpu OUT=/tmp/out bash experiments/2026-11-28-h200-mnist-paper/device_mnist_paper.sh
# On the device: MNIST copied into .devdata/MNIST (git-ignored) and carried.
set -u
PRESET=${PRESET:-paper}
DEVICE=${DEVICE:-cuda}
N=${N:-}
export PYTHONPATH=src PYTHONUNBUFFERED=1
export INTERPRETGAN_DATA=${INTERPRETGAN_DATA:-.devdata}
export INTERPRETGAN_CACHE=/tmp/ig-cache INTERPRETGAN_RUNS=/tmp/ig-runs-$PRESET
rm -rf "$INTERPRETGAN_RUNS"; mkdir -p "$INTERPRETGAN_RUNS" "$OUT"
ig() { python3 -m interpretgan "$@"; }
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
T0=$SECONDS
ig train --dataset mnist --preset "$PRESET" --device "$DEVICE" --no-progress > "$INTERPRETGAN_RUNS/natural.log" 2>&1
echo "natural: $((SECONDS - T0)) s"; tail -1 "$INTERPRETGAN_RUNS/natural.log"
T1=$SECONDS
for pool in max avg; do
  ig train --dataset mnist --objective trades+atta --pool $pool --preset "$PRESET" --checkpoint-every 10 \
     --device "$DEVICE" --no-progress > "$INTERPRETGAN_RUNS/adv-$pool.log" 2>&1 &
done
wait
echo "trades+atta max+avg side by side: $((SECONDS - T1)) s"; tail -n 1 "$INTERPRETGAN_RUNS"/adv-*.log
for run in "$INTERPRETGAN_RUNS"/0*; do
  T2=$SECONDS
  ig attack "$run" --attack pgd-40 --attack pgd-100 --attack mpgd-40 --attack fgsm ${N:+--n $N} \
     --batch-size 2500 --device "$DEVICE" --no-progress 2> "$run/attack.stderr"
  echo "attacks on $(basename "$run"): $((SECONDS - T2)) s"
done
# everything but the adversarial sets (40 MB each) comes back
tar -C "$INTERPRETGAN_RUNS" --exclude='*.safetensors.chunks' --exclude='attacks/*/*.safetensors' --exclude='state.pt' -czf "$OUT/mnist-$PRESET.tgz" .
ls -la "$OUT"
