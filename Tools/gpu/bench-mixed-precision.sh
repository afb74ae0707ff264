#!/usr/bin/env bash
# ResNet-50 training throughput and memory, batch 256, bf16 autocast + channels-last, ours vs PyTorch
# eager in the same run (issue 11's GPU number), plus the tf32 NCHW configuration for reference.
# For a session with a GPU; nothing here has been run on one yet. Run from the repository root of a
# checkout with the published bundle (./build.sh publish -> .gpu/app.tgz) and a Python with PyTorch
# (the GPU machine's 2.11; set PY, default: the first of /opt/torch/.venv/bin/python, python3 that imports torch).
#   Tools/gpu/bench-mixed-precision.sh [.gpu/app.tgz]     -> $OUT (default ./gpu-out/bench-mixed)
# Budget: the first step of each engine compiles kernels / times cuDNN algorithms (NVRTC about a
# minute on a cold cache); then 5 warm-up + 20 timed steps per configuration and engine. Both
# configurations together should stay within a few minutes on an H100-class GPU; the script stops
# each run after 8 minutes (timeout) so a hang cannot eat the session's device time.
set -uo pipefail
BUNDLE=${1:-.gpu/app.tgz}
OUT=${OUT:-$(pwd)/gpu-out/bench-mixed}
WORK=${WORK:-/tmp}
mkdir -p "$OUT"
if [ ! -x "$WORK/app/residual" ]; then
  [ -f "$BUNDLE" ] || { echo "bench-mixed-precision: bundle $BUNDLE not found (./build.sh publish)" >&2; exit 2; }
  tar xzf "$BUNDLE" -C "$WORK" || exit 2
fi
APP="$WORK/app/residual"
export RESIDUAL_KERNEL_CACHE="$OUT/kernel-cache"
if [ -z "${PY:-}" ]; then
  for c in /opt/torch/.venv/bin/python python3; do
    if "$c" -c 'import torch, torchvision' >/dev/null 2>&1; then PY=$c; break; fi
  done
fi
[ -n "${PY:-}" ] || { echo "bench-mixed-precision: no Python with torch and torchvision (set PY)" >&2; exit 2; }
"$APP" info > "$OUT/info.txt" 2>&1
status=0
for cfg in "bf16 --channels-last" "tf32"; do
  set -- $cfg
  name="resnet50-b256-$1${2:+-nhwc}"
  echo "== $name" | tee -a "$OUT/run.log"
  timeout 8m "$APP" bench compare --model resnet50 --batch-size 256 --device cuda --precision "$@" \
    --warmup 5 --steps 20 --python "$PY" --json "$OUT/$name.json" > "$OUT/$name.txt" 2>&1 || status=1
  tail -n 12 "$OUT/$name.txt" | tee -a "$OUT/run.log"
done
echo "results in $OUT (paste the tables into docs/benchmarks.md with the date, commit, GPU and versions)"
exit $status
