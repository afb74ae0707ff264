#!/usr/bin/env bash
# GPU checks for ResidualEngine, run on a GPU machine from the published bundle (no .NET needed there).
# Build the bundle first (on a machine with .NET):   ./build.sh publish   -> .gpu/app.tgz (app/ and tests/)
# Then on the GPU machine, from the repository root: Tools/gpu/run-gpu-checks.sh [.gpu/app.tgz]
# A tests-only tarball (tar czf .gpu/tests.tgz -C .gpu tests, ~45 MB instead of ~80) works too: the
# info and kernel-check steps then come from the CudaDeviceReportTests (same commands, in-process).
#
# Steps (each logged to $OUT, default ./gpu-out):
#   1. nvidia-smi                                   -> nvidia-smi.txt
#   2. residual info --verbose                      -> info.txt      (GPU, driver, library versions and paths)
#   3. residual kernels check (the GPU's own arch)  -> kernels.txt   (every kernel compiles with this NVRTC)
#   4. the Gpu test category                        -> gpu-tests.txt (GPU vs CPU parity, training step, memory)
#   5. compute-sanitizer memcheck and racecheck on the kernel parity tests, if the tool is installed
#   6. summary.md: one row in the table format of docs/gpu-verification.md, to paste there
# Exit status: non-zero if info, the kernel check or the GPU tests failed (sanitizer findings are
# reported in the summary but do not change the status, since the sanitizer may be missing).
set -uo pipefail
BUNDLE=${1:-.gpu/app.tgz}
OUT=${OUT:-$(pwd)/gpu-out}
WORK=${WORK:-/tmp}
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/run.log"; }

if [ ! -f "$BUNDLE" ]; then
  echo "run-gpu-checks: bundle $BUNDLE not found (build it with ./build.sh publish)" | tee "$OUT/run.log" >&2
  exit 2
fi
mkdir -p "$WORK"
rm -rf "$WORK/app" "$WORK/tests"
tar xzf "$BUNDLE" -C "$WORK" || { echo "run-gpu-checks: cannot extract $BUNDLE into $WORK" | tee -a "$OUT/run.log" >&2; exit 2; }
[ -x "$WORK/tests/ResidualEngine.Tests" ] || { echo "run-gpu-checks: $BUNDLE has no tests/ResidualEngine.Tests" | tee -a "$OUT/run.log" >&2; exit 2; }
APP="$WORK/app/residual"
TESTS="$WORK/tests/ResidualEngine.Tests"
# Kernel cache inside $OUT so that a second run shows the cache working, and nothing lands in $HOME.
export RESIDUAL_KERNEL_CACHE="$OUT/kernel-cache"

log "nvidia-smi"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed or missing" >> "$OUT/nvidia-smi.txt"

if [ -x "$APP" ]; then
  log "residual info --verbose"
  "$APP" info --verbose > "$OUT/info.txt" 2>&1
  info_rc=$?
  log "residual kernels check"
  "$APP" kernels check > "$OUT/kernels.txt" 2>&1
  kernels_rc=$?
else
  log "no residual app in the bundle: info and kernel check through CudaDeviceReportTests"
  "$TESTS" --filter "FullyQualifiedName~CudaDeviceReportTests.InfoDescribesTheDevice" --output Detailed --no-ansi > "$OUT/info.txt" 2>&1
  info_rc=$?
  "$TESTS" --filter "FullyQualifiedName~CudaDeviceReportTests.KernelsCompile" --output Detailed --no-ansi > "$OUT/kernels.txt" 2>&1
  kernels_rc=$?
fi
cat "$OUT/info.txt" "$OUT/kernels.txt"

log "GPU tests (TestCategory=Gpu)"
# strict: a run where every GPU test skipped (no device found) is a failure here, not a silent pass.
"$TESTS" --filter "TestCategory=Gpu" --zero-tests-policy strict --output Detailed --no-ansi \
  --results-directory "$OUT/test-results" --timeout 25m > "$OUT/gpu-tests.txt" 2>&1
tests_rc=$?
tail -n 40 "$OUT/gpu-tests.txt"

SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
san_summary="not run (compute-sanitizer not installed)"
if [ -n "$SAN" ]; then
  san_summary=""
  for tool in memcheck racecheck; do
    log "compute-sanitizer --tool $tool (kernel parity tests)"
    "$SAN" --tool "$tool" --target-processes all --error-exitcode 99 \
      "$TESTS" --filter "FullyQualifiedName~CudaParityTests|FullyQualifiedName~CudaConvPoolNormParityTests" --no-ansi \
      > "$OUT/sanitizer-$tool.txt" 2>&1
    rc=$?
    san_summary="$san_summary $tool: $([ $rc -eq 0 ] && echo clean || echo "exit $rc, see sanitizer-$tool.txt");"
    tail -n 15 "$OUT/sanitizer-$tool.txt"
  done
fi

# ---- summary row for docs/gpu-verification.md ----
gpu=$(grep -m1 -E '^\s*cuda:0 ' "$OUT/info.txt" | sed -E 's/^\s*cuda:0 +//; s/,.*//' || true)
cc=$(grep -m1 -oE 'compute capability [0-9.]+' "$OUT/info.txt" | awk '{print $3}' || true)
driver=$(grep -m1 -E 'driver +supports CUDA' "$OUT/info.txt" | grep -oE 'CUDA [0-9.]+' || true)
drv_ver=$(grep -m1 -oE 'Driver Version: [0-9.]+' "$OUT/nvidia-smi.txt" | awk '{print $3}' || true)
lib() { grep -m1 -E "^\s*$1 " "$OUT/info.txt" | sed -E "s/^\s*$1 +//; s/ at .*//; s/ \(targets.*//" ; }
nvrtc=$(lib NVRTC); cublas=$(lib cuBLAS); cudnn=$(lib cuDNN)
total=$(grep -oE 'total: [0-9]+' "$OUT/gpu-tests.txt" | tail -1 | awk '{print $2}')
passed=$(grep -oE 'succeeded: [0-9]+' "$OUT/gpu-tests.txt" | tail -1 | awk '{print $2}')
failed=$(grep -oE 'failed: [0-9]+' "$OUT/gpu-tests.txt" | tail -1 | awk '{print $2}')
skipped=$(grep -oE 'skipped: [0-9]+' "$OUT/gpu-tests.txt" | tail -1 | awk '{print $2}')
failures=$(grep -E '^failed ' "$OUT/gpu-tests.txt" | sed -E 's/^failed //; s/ \(.*//' | head -20 | paste -sd ',' - || true)
{
  echo "| Date | GPU (cc) | Driver / CUDA | NVRTC | cuBLAS | cuDNN | Gpu tests (passed/failed/skipped of total) | Kernel check | Sanitizer | Failures |"
  echo "|------|----------|---------------|-------|--------|-------|---------------------------------------------|--------------|-----------|----------|"
  echo "| $(date -u +%Y-%m-%d) | ${gpu:-?} (${cc:-?}) | ${drv_ver:-?} / ${driver:-?} | ${nvrtc:-?} | ${cublas:-?} | ${cudnn:-?} | ${passed:-0}/${failed:-?}/${skipped:-?} of ${total:-?} | $([ $kernels_rc -eq 0 ] && echo OK || echo "FAILED ($kernels_rc)") |${san_summary} | ${failures:-none} |"
} > "$OUT/summary.md"
log "summary"
cat "$OUT/summary.md"

[ $info_rc -eq 0 ] && [ $kernels_rc -eq 0 ] && [ $tests_rc -eq 0 ]
