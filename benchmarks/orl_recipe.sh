#!/bin/bash
# The ORL recipe chosen on validation (see benchmarks/orl_recipe.py): per split seed, N
# members (N=3 default; init seeds 0..N-1) of a Conv 16-32-64-64 CNN at 56x46, CosFace
# (s=16, m=0.2) + batch-hard cosine triplet (margin 0.2), affine/flip/gamma augmentation,
# 300 AdamW steps of 16x4 PxK batches, checkpoint by val AUC every 25 steps; then the
# equal-weight ensemble of val-z-normalised scores, and (separately) its fusion with
# Fisherfaces-by-val. Usage: benchmarks/orl_recipe.sh OUTDIR [SEEDS] [N]
set -e
out=${1:?outdir}; seeds=${2:-0,1,2}; n=${3:-3}
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD
prefixes=()
for ((i = 0; i < n; i++)); do
  for s in ${seeds//,/ }; do
    python -m benchmarks.orl_recipe --seeds=$s --steps=300 --eval_every=25 \
      --widths 16 32 64 64 --triplet=1 --init_seed=$i --out="$out/m${i}_s$s.json"
  done
  prefixes+=("$out/m${i}_s{seed}")
done
python -m benchmarks.orl_ensemble "${prefixes[@]}" --seeds=$seeds
