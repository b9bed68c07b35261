#!/usr/bin/env bash
# The whole MNIST `paper` reproduction on one GPU with the options measured fastest, inside DEADLINE seconds:
#   interpretgan reproduce mnist --preset paper --device cuda --precision bf16 --channels-last
# The data stays on the GPU (the training loop and the explainers index uint8 tensors there; no loader);
# the attacks run in bf16 too, with the input layer in fp32 and every adversarial example judged by the
# fp32 model (experiments/2026-12-04-bf16-attack). COMPILE=1 adds --compile (not measured on a GPU yet). The stages resume: with FOLDER carried back, a second call continues where the
# deadline stopped the first. Into $OUT: device.txt, the log's tail, stages.json, results.json and
# report.md when it got that far, and summary.json (each stage's seconds; each training run's epoch
# seconds against issue 30's goals: a 60-epoch trades+atta SmallCNN within 60 s, the whole reproduction
# within 1,200 s on one H200).
# Rehearse on the CPU: PRESET=smoke DEVICE=cpu DEADLINE=300 OUT=/tmp/out bash experiments/2026-12-04-gpu-scripts/gpu_mnist_paper.sh
# On the device: MNIST copied into .devdata/MNIST (git-ignored) and carried.
set -u
PRESET=${PRESET:-paper}
DEVICE=${DEVICE:-cuda}
DEADLINE=${DEADLINE:-560}
COMPILE=${COMPILE:-}
FOLDER=${FOLDER:-/tmp/ig-reproduce-mnist-$PRESET}
export PYTHONPATH=src PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export INTERPRETGAN_DATA=${INTERPRETGAN_DATA:-.devdata}
export INTERPRETGAN_CACHE=${INTERPRETGAN_CACHE:-/tmp/ig-cache}
mkdir -p "$OUT"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" \
  | tee "$OUT/device.txt"
timeout "$DEADLINE" python3 -m interpretgan reproduce mnist --preset "$PRESET" --device "$DEVICE" --precision bf16 \
  --channels-last ${COMPILE:+--compile} --out "$FOLDER" --no-progress > "$OUT/reproduce.log" 2>&1
echo "reproduce exit status $? (124: the deadline; run again with FOLDER to resume)"
tail -c 8000 "$OUT/reproduce.log" > "$OUT/reproduce-tail.log"
for f in stages.json results.json report.md; do [ -f "$FOLDER/$f" ] && cp "$FOLDER/$f" "$OUT/"; done
python3 - "$FOLDER" > "$OUT/summary.json" <<'EOF'
import json, sys
from pathlib import Path
folder = Path(sys.argv[1])
stages = json.loads((folder / "stages.json").read_text()) if (folder / "stages.json").is_file() else {}
seconds = {k: round(v["seconds"], 1) for k, v in stages.items()}
train = {}
for run in sorted(folder.glob("0*-smallcnn-*")):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train[run.name] = {"epochs": len(records), "epoch_seconds": round(sum(r["seconds"] for r in records), 1)}
summary = {"stage_seconds": seconds, "total_seconds": round(sum(seconds.values()), 1), "training": train,
           "finished": (folder / "results.json").is_file(),
           "goals": {"trades_atta_60_epochs_s": 60, "reproduction_s": 1200}}
print(json.dumps(summary, indent=1))
EOF
cat "$OUT/summary.json"
