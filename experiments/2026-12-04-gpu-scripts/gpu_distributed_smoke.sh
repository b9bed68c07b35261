#!/usr/bin/env bash
# A distributed smoke check on NPROC GPUs of one machine (nccl): train, attack and explain train at the
# `smoke` preset with torchrun --nproc_per_node NPROC beside one process, and what should agree:
#   - training: both runs' clean accuracy (dropout draws differ per process, so not the weights);
#   - attacks: the adversarial sets of the 2-process job against the 1-process ones (max |difference|;
#     0 on the CPU, where the kernels are deterministic);
#   - explainers: each layer's weights (max |difference|; 0 on the CPU at one thread per process), for
#     layers spread over the processes and for one layer trained data-parallel by all of them.
# Into $OUT: summary.json and the logs. Rehearse on the CPU (gloo): DEVICE=cpu OUT=/tmp/out bash experiments/2026-12-04-gpu-scripts/gpu_distributed_smoke.sh
set -u
NPROC=${NPROC:-2}
DEVICE=${DEVICE:-cuda}
export PYTHONPATH=src PYTHONUNBUFFERED=1 MPLBACKEND=Agg OMP_NUM_THREADS=1
export INTERPRETGAN_DATA=${INTERPRETGAN_DATA:-.devdata}
export INTERPRETGAN_CACHE=${INTERPRETGAN_CACHE:-/tmp/ig-cache}
R=/tmp/ig-distributed-smoke
rm -rf "$R"; mkdir -p "$R" "$OUT"
launch() {  # launch N LOG ARGS...: interpretgan under torchrun with N processes
  local n=$1 log=$2; shift 2
  python3 -m torch.distributed.run --standalone --nproc_per_node "$n" -m interpretgan "$@" --device "$DEVICE" \
    --no-progress > "$OUT/$log.log" 2>&1 || { echo "failed: $*"; tail -20 "$OUT/$log.log"; }
}
for n in 1 "$NPROC"; do
  launch "$n" "train-$n" train --dataset mnist --objective trades+atta --preset smoke --out "$R/train-$n"
done
CLS=$(ls -d "$R"/train-1/0*)
for n in 1 "$NPROC"; do
  cp -r "$CLS" "$R/attack-$n"
  launch "$n" "attack-$n" attack "$R/attack-$n" --attack pgd-10 --attack fgsm --n-images 256 --batch-size 64
  launch "$n" "explain-$n" explain train "$CLS" --preset smoke --out "$R/explain-$n"
  launch "$n" "explain-dp-$n" explain train "$CLS" --preset smoke --layers conv1 --out "$R/explain-dp-$n"
done
python3 - "$R" "$NPROC" > "$OUT/summary.json" <<'EOF'
import json, sys
from pathlib import Path
from safetensors.torch import load_file
r, n = Path(sys.argv[1]), sys.argv[2]
def one(pattern):
    found = sorted(r.glob(pattern))
    return found[0] if found else None
def diff(a, b):
    a, b = load_file(a), load_file(b)
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
out = {"processes": int(n)}
for k in ("1", n):
    res = one(f"train-{k}/*/results.json")
    out[f"train_clean_accuracy_{k}"] = json.loads(res.read_text())["clean_accuracy"] if res else None
sets = {}
for name in ("pgd10", "fgsm"):
    a, b = one(f"attack-1/attacks/*/{name}.safetensors"), one(f"attack-{n}/attacks/*/{name}.safetensors")
    sets[name] = diff(a, b) if a and b else None
out["attack_sets_max_abs_difference"] = sets
for key, folder in (("explainer_weights_max_abs_difference", "explain"),
                    ("data_parallel_explainer_weights_max_abs_difference", "explain-dp")):
    layers = {}
    for path in sorted(r.glob(f"{folder}-1/*/ckpt/*/explainer.safetensors")):
        other = one(f"{folder}-{n}/*/ckpt/{path.parent.name}/explainer.safetensors")
        layers[path.parent.name] = diff(path, other) if other else None
    out[key] = layers
print(json.dumps(out, indent=1))
EOF
cat "$OUT/summary.json"
