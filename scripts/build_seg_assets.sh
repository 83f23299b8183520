#!/usr/bin/env bash
# Rebuilds everything assets/seg ships beside the two checkpoints, from the checkpoints alone: rankings.json (both
# models, six methods, held-out and in-sample; cached rankings are reused), and, for the models named (default: both),
# the fidelity reports and the Kernel-Flip sweeps.
# Usage: scripts/build_seg_assets.sh [default] [control]   (after `python -m engine pack-assets` of the checkpoints)
set -euo pipefail
cd "$(dirname "$0")/.."
seg=assets/seg
models=("$@"); [ ${#models[@]} -eq 0 ] && models=(default control)
rm -f "$seg/rankings.json"  # keyed by model weights: entries of earlier checkpoints would never be read again
for model in default control; do
  for on in held-out val; do
    python -m engine rank --checkpoint "$seg/$model.pt" --rank-on "$on" --method overall left right kflip1 kflip2 magnitude \
      --add-to "$seg/rankings.json" --top 0
  done
done
for model in "${models[@]}"; do
  ckpt="$seg/$model.pt"
  python -m engine fidelity --checkpoint "$ckpt" --json "$seg/fidelity_$model.json"
  python -m engine fidelity --checkpoint "$ckpt" --rank-on val --json "$seg/fidelity_${model}_rankval.json"
  python -m engine sweep --checkpoint "$ckpt" --rankings overall,kflip1,kflip2,magnitude,relative --draws 5 \
    --json "$seg/sweep_kflip_$model.json"
done
