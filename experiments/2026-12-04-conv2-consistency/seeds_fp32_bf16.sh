#!/bin/bash
# conv2's explainer alone on the zoo's natural SmallCNN at the cpu preset, 3 seeds x {fp32, bf16+cl}
# Run in a scratch folder, in the project's virtual environment; writes runs-*/, log-*.txt and summary.txt there.
: "${INTERPRETGAN_DATA:?set INTERPRETGAN_DATA to the data root}"
for seed in 0 1 2; do
  for prec in fp32 bf16; do
    extra=""; [ $prec = bf16 ] && extra="--precision bf16 --channels-last"
    start=$(date +%s)
    interpretgan explain train pretrained:mnist-smallcnn-max-natural --layers conv2 --preset cpu --seed $seed $extra --out runs-$prec-$seed --no-progress > log-$prec-$seed.txt 2>&1
    echo "$prec $seed rc=$? $(( $(date +%s) - start ))s" >> summary.txt
  done
done
