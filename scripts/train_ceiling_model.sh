#!/usr/bin/env bash
# Train the independent simulator's own model: the shipped model's architecture, recipe and options on
# 16000 objects of bench/othersim (never the held-out objects), so that the domain check can say how
# much of the shipped model's drop there is the set being harder and how much is lost in transfer.
#
#   scripts/train_ceiling_model.sh [WORKDIR]        (default WORKDIR: runs/othersim-model)
#
# Then: CEILING=WORKDIR/bundle scripts/train_shipped_model.sh (the domain check gets
# --ceiling othersim=WORKDIR/bundle), or python -m pipeline.training.domains BUNDLE ...
# --ceiling othersim=WORKDIR/bundle. About 27 minutes on 2 CPU cores (2026-11-30: 1.5 simulating,
# 24 training at 228 images/s); needs no GPU and no network.
set -euo pipefail

cd "$(dirname "$0")/.."
WORK=${1:-runs/othersim-model}
LAYOUT=euclid-sglc2
TRAIN_N=16000
OTHERSIM="--seed 9 --first-id 100000"   # the held-out set is --seed 8 --first-id 400000
export PREFECT_SERVER_ANALYTICS_ENABLED=false TF_CPP_MIN_LOG_LEVEL=2
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-300}
mkdir -p "$WORK"
if [ ! -e "$WORK/train/.complete" ]; then
  rm -rf "$WORK/train"
  # shellcheck disable=SC2086
  python -m bench.othersim "$WORK/train" --n "$TRAIN_N" $OTHERSIM --jobs 2 && touch "$WORK/train/.complete"
fi
lenshunt ingest "$WORK/train" "$WORK/train.zarr" --layout "$LAYOUT"
lenshunt train "$WORK/train.zarr" "$WORK/bundle" --overwrite \
  --architecture small_cnn --combine upsample --scaling robust_asinh --downsample 2 --observing-augment \
  --epochs 16 --batch-size 32 --learning-rate 0.002 --lr-schedule cosine --patience 5 --val-fraction 0.15 --seed 0 \
  --outputs score,theta_e --separate-outputs theta_e --model-id othersim-trained-small-cnn \
  --store-id "python -m bench.othersim --n $TRAIN_N $OTHERSIM"
