#!/usr/bin/env bash
# Reproduce the shipped default model, pipeline/models/shipped/default/, from this repository alone.
#
#   scripts/train_shipped_model.sh [WORKDIR]        (default WORKDIR: runs/shipped-model)
#
# 1. simulate the training set (euclid-sglc2 layout, fixed seed and id range) and ingest it;
# 2. train small_cnn on it (recipe: VIS + Y, J, H upsampled to the VIS grid, downsampled 2x to
#    100x100x4, clip_minmax 0.1/98 percentiles; fixed seed);
# 3. simulate a fresh held-out set (another seed and id range), ingest it, score it with the bundle
#    in this process and write its AUROC, TPR0 and TPR10 into the card;
# 4. copy model.keras, recipe.json and card.json to pipeline/models/shipped/default/.
#
# About 25 to 40 minutes on 2 CPU cores (most of it simulating); needs no GPU and no network.
# Set LENSHUNT_SHIP=0 to leave pipeline/models/shipped/ untouched (e.g. to check reproducibility).
set -euo pipefail

cd "$(dirname "$0")/.."
WORK=${1:-runs/shipped-model}
SHIP_DIR=pipeline/models/shipped/default

LAYOUT=euclid-sglc2
TRAIN_N=3000
TRAIN_SEED=2026
TRAIN_FIRST_ID=100000
HELDOUT_N=1000
HELDOUT_SEED=7919
HELDOUT_FIRST_ID=500000
TRAIN_OPTIONS=(
  --architecture small_cnn --combine upsample --scaling clip_minmax --percentiles 0.1 98 --downsample 2
  --epochs 12 --batch-size 32 --learning-rate 0.002 --lr-schedule cosine --patience 4 --val-fraction 0.15 --seed 0
  --model-id lenshunt-default-small-cnn-1
  --store-id "lenshunt simulate --layout $LAYOUT --n $TRAIN_N --seed $TRAIN_SEED --first-id $TRAIN_FIRST_ID"
)

export PREFECT_SERVER_ANALYTICS_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2
# each command starts a temporary Prefect server unless PREFECT_API_URL names one; give it time
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-180}
mkdir -p "$WORK"
step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "simulate the training set"
[ -e "$WORK/train" ] || lenshunt simulate "$WORK/train" --layout "$LAYOUT" --n "$TRAIN_N" --seed "$TRAIN_SEED" \
  --first-id "$TRAIN_FIRST_ID"
step "ingest the training set"
lenshunt ingest "$WORK/train" "$WORK/train.zarr" --layout "$LAYOUT"

step "train"
lenshunt train "$WORK/train.zarr" "$WORK/bundle" --overwrite "${TRAIN_OPTIONS[@]}"

step "simulate the held-out set"
[ -e "$WORK/heldout" ] || lenshunt simulate "$WORK/heldout" --layout "$LAYOUT" --n "$HELDOUT_N" \
  --seed "$HELDOUT_SEED" --first-id "$HELDOUT_FIRST_ID"
step "ingest the held-out set"
lenshunt ingest "$WORK/heldout" "$WORK/heldout.zarr" --layout "$LAYOUT"

step "score the held-out set in-process and record its metrics in the card"
python -m pipeline.training.heldout "$WORK/bundle" "$WORK/heldout.zarr" --prefix heldout --note \
  "Held-out metrics (heldout_*): $HELDOUT_N objects from lenshunt simulate --layout $LAYOUT --n $HELDOUT_N --seed $HELDOUT_SEED --first-id $HELDOUT_FIRST_ID, never seen in training."

if [ "${LENSHUNT_SHIP:-1}" != 0 ]; then
  step "ship the bundle"
  mkdir -p "$SHIP_DIR"
  cp "$WORK/bundle/model.keras" "$WORK/bundle/recipe.json" "$WORK/bundle/card.json" "$SHIP_DIR/"
  python -c "from pipeline.models.bundle import load_bundle; b = load_bundle('$SHIP_DIR'); print(b, b.card.metrics)"
fi
