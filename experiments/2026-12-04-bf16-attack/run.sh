#!/usr/bin/env bash
# Issue 30: does an attack under --precision bf16 (the layer that reads the pixels kept in fp32, every
# example judged by the fp32 model) measure the fp32 robust accuracy? The zoo's trades+atta SmallCNN (max
# pooling): PGD-40 on all 10,000 MNIST test images in fp32 and in bf16 + channels-last (the arithmetic
# `reproduce --precision bf16 --channels-last` gives its attacks), then AutoAttack under bf16 + channels-last
# on the 300 images the `cpu` reproduction's AutoAttack stage used (its fp32 figure:
# ../2026-12-04-mnist-cpu-autoattack/). Run from a scratch folder, MNIST under $INTERPRETGAN_DATA:
#
#     bash experiments/2026-12-04-bf16-attack/run.sh
set -euo pipefail
M=pretrained:mnist-smallcnn-max-trades+atta
run() { local t0=$SECONDS; interpretgan attack "$M" --no-progress "$@"; echo "seconds: $((SECONDS - t0)) for: $*"; }
run --attack pgd-40
run --attack pgd-40 --precision bf16 --channels-last
run --attack autoattack --n 300 --precision bf16 --channels-last
