#!/usr/bin/env bash
# The GPU run of ResidualEngine, on a machine with an NVIDIA GPU and no .NET: everything runs from
# the self-contained bundle that `./build.sh publish` makes (.gpu/bundle.tgz, under 56 MiB), and
# every step has its own time limit, so one hang cannot eat the machine's short lease.
#
#   Tools/gpu/first-run.sh [checks|perf|all] [BUNDLE]      (default: all .gpu/bundle.tgz)
#
# checks: nvidia-smi; residual info --verbose (with LD_DEBUG=libs, to see where every library
#         really came from); residual kernels check; the Gpu test category; compute-sanitizer
#         memcheck on the kernel parity tests when the tool is there.
# perf:   the main job (residual train --device cuda on the synthetic set, a few epochs), then
#         residual bench compare --device cuda against PyTorch on the same GPU
#         (/opt/torch/.venv/bin/python, or RESIDUAL_PYTHON): ResNet-50 b64 and b256, ResNet-18 b256.
# Output: at most 8 files in $OUT (the device tool returns no more): summary.md (a row for
# docs/gpu-verification.md), info.txt, tests.txt, sanitizer.txt, train.txt, bench.txt, bench.json,
# run.log. DEADLINE_S (default 540) bounds the whole script: steps that would not fit are skipped
# and said so.
set -uo pipefail
PHASE=${1:-all}
BUNDLE=${2:-.gpu/bundle.tgz}
OUT=${OUT:-$(pwd)/gpu-out}
WORK=${WORK:-/tmp/residual-gpu}
DEADLINE_S=${DEADLINE_S:-540}
START=$(date +%s)
mkdir -p "$OUT" "$WORK"
log() { echo "== [$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/run.log"; }
left() { echo $(( DEADLINE_S - ($(date +%s) - START) )); }
# step NAME LIMIT_S FILE CMD...: runs CMD with a time limit (never past the deadline), appending to FILE.
step() {
  local name=$1 limit=$2 file=$3; shift 3
  local remaining; remaining=$(left)
  if [ "$remaining" -lt 20 ]; then log "SKIPPED $name: the deadline is near"; echo "SKIPPED (deadline)" >> "$file"; return 124; fi
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  log "$name (limit ${limit}s)"
  echo "### $name" >> "$file"
  timeout --kill-after=10 "$limit" "$@" >> "$file" 2>&1
  local rc=$?
  [ $rc -eq 124 ] && log "TIMED OUT: $name after ${limit}s"
  log "$name: exit $rc"
  return $rc
}

case "$PHASE" in checks|perf|all) ;; *) echo "first-run: phase must be checks, perf or all, not '$PHASE'" >&2; exit 2 ;; esac
if [ ! -f "$BUNDLE" ]; then echo "first-run: bundle $BUNDLE not found (make it with ./build.sh publish)" | tee -a "$OUT/run.log" >&2; exit 2; fi
rm -rf "$WORK/bundle"
tar xzf "$BUNDLE" -C "$WORK" || { echo "first-run: cannot unpack $BUNDLE" | tee -a "$OUT/run.log" >&2; exit 2; }
APP="$WORK/bundle/residual"
TESTS="$WORK/bundle/ResidualEngine.Tests"
export RESIDUAL_KERNEL_CACHE="$WORK/kernel-cache"
export DOTNET_CLI_TELEMETRY_OPTOUT=1
info_rc=- kernels_rc=- tests_rc=- san="not run" train_rc=- bench_rc=-

if [ "$PHASE" != perf ]; then
  step "nvidia-smi" 20 "$OUT/info.txt" nvidia-smi
  step "residual info --verbose" 60 "$OUT/info.txt" "$APP" info --verbose; info_rc=$?
  # Where each shared library was really loaded from (GPU-RISKS: cuDNN sub-libraries, cuBLAS majors).
  step "library loads (LD_DEBUG=libs, filtered)" 60 "$OUT/info.txt" bash -c \
    "LD_DEBUG=libs '$APP' info 2>&1 | grep -E 'calling init: .*(cuda|cudnn|cublas|nvrtc|nccl)' | sort -u"
  step "residual kernels check" 120 "$OUT/info.txt" "$APP" kernels check; kernels_rc=$?
  # strict: a run where every GPU test skipped (no device found) is a failure here, not a silent pass.
  step "Gpu test category" 300 "$OUT/tests.txt" "$TESTS" --filter "TestCategory=Gpu" --zero-tests-policy strict --no-ansi --output Detailed
  tests_rc=$?
  SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
  if [ -n "$SAN" ]; then
    step "compute-sanitizer memcheck (pointwise and parity tests)" 150 "$OUT/sanitizer.txt" "$SAN" --tool memcheck --error-exitcode 99 \
      "$TESTS" --filter "FullyQualifiedName~CudaPointwiseParityTests|FullyQualifiedName~CudaParityTests" --no-ansi
    rc=$?; san=$([ $rc -eq 0 ] && echo "memcheck clean" || echo "memcheck exit $rc (sanitizer.txt)")
  else
    san="not installed"; echo "compute-sanitizer not installed" >> "$OUT/sanitizer.txt"
  fi
fi

if [ "$PHASE" != checks ]; then
  # The main job: it must learn as on the CPU (README: ResNet-20, 6 epochs on the synthetic set, ~69% val top-1).
  step "main job: residual train --device cuda" 180 "$OUT/train.txt" bash -c \
    "cd '$WORK' && '$APP' train --device cuda --epochs 4 --out '$WORK/run'"
  train_rc=$?
  for cfg in "resnet50 64" "resnet18 256" "resnet50 256"; do
    set -- $cfg
    step "bench compare $1 b$2 cuda fp32" 150 "$OUT/bench.txt" "$APP" bench compare --device cuda --model "$1" --batch-size "$2" \
      --warmup 2 --steps 10 --json "$WORK/bench-$1-$2.json"
    rc=$?; [ "$bench_rc" = - ] && bench_rc=$rc; [ $rc -ne 0 ] && bench_rc=$rc
  done
  cat "$WORK"/bench-*.json > "$OUT/bench.json" 2>/dev/null || true
fi

gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
passed=$(grep -Eo 'succeeded: [0-9]+' "$OUT/tests.txt" 2>/dev/null | tail -1 | grep -Eo '[0-9]+' || true)
failed=$(grep -Eo 'failed: [0-9]+' "$OUT/tests.txt" 2>/dev/null | tail -1 | grep -Eo '[0-9]+' || true)
skipped=$(grep -Eo 'skipped: [0-9]+' "$OUT/tests.txt" 2>/dev/null | tail -1 | grep -Eo '[0-9]+' || true)
{
  echo "| date | GPU, driver | Gpu tests passed/failed/skipped | info | kernel check | sanitizer | main job | bench |"
  echo "|---|---|---|---|---|---|---|---|"
  echo "| $(date -u +%Y-%m-%d) | ${gpu:-?} | ${passed:--}/${failed:--}/${skipped:--} (exit $tests_rc) | exit $info_rc | exit $kernels_rc | $san | exit $train_rc | exit $bench_rc |"
  echo
  echo "Wall time: $(( $(date +%s) - START )) s of a ${DEADLINE_S} s deadline."
} > "$OUT/summary.md"
cat "$OUT/summary.md"
for rc in "$info_rc" "$kernels_rc" "$tests_rc" "$train_rc"; do [ "$rc" != - ] && [ "$rc" != 0 ] && exit 1; done
exit 0
