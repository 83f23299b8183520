#!/usr/bin/env bash
# Trains every shipped probe checkpoint (assets/probe) with the engine CLI, in parallel.
# Usage: scripts/train_probe_assets.sh [OUT_DIR] [DEVICE]   (defaults: assets/probe, auto)
set -euo pipefail
out=${1:-assets/probe}; dev=${2:+--device $2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$out"
pids=()
# GAPNet 5x5 ships from a 350-step run: its 6000-step run fit its training batches perfectly but came
# to depend on batch statistics (8.85% in eval mode; see docs/research/2026-probe-training-legs.md).
for grid in 3 5 7; do
  for head in gapnet permutenet; do
    steps=6000; [ "$head$grid" = gapnet5 ] && steps=350
    python -m engine train-probe --head $head --task location --grid $grid --steps $steps --seed 0 $dev \
      --out "$out/location-$head-g$grid-zero.pt" --json "$out/location-$head-g$grid-zero.json" > "$out/location-$head-g$grid.log" 2>&1 &
    pids+=($!)
  done
done
for head in gapnet permutenet; do
  python -m engine train-probe --head $head --task object --grid 3 --steps 6000 --seed 0 $dev \
    --out "$out/object-$head-g3-zero.pt" --json "$out/object-$head-g3-zero.json" > "$out/object-$head-g3.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
