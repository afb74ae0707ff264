#!/usr/bin/env bash
# ResidualEngine build entry point. Verbs:
#   ./build.sh build            restore and build everything (Release)
#   ./build.sh test [filter]    build and run every test (the Gpu category under the CPU emulator when no GPU is
#                               present); ends with "Tests: N passed, N failed, N skipped"
#   ./build.sh train [args]     the main job: train a small ResNet on synthetic data (or pass residual train options)
#   ./build.sh bench [args]     benchmarks: ours and PyTorch's side by side when Python+torch is present
#   ./build.sh fashion-mnist [DIR]  Fashion-MNIST (Debian's dataset-fashion-mnist) as an ImageFolder in DIR (data/fashion-mnist)
#   ./build.sh publish          one self-contained linux-x64 bundle of `residual` and the tests, .gpu/bundle.tgz (for a GPU box without .NET)
#   ./build.sh help             this list
# Exit codes: 0 success, 1 a build, test or command failed (compiler errors are shown), 2 no or unknown verb.
# build.ps1 has the same verbs, exit codes and output.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
CONFIG=${CONFIG:-Release}
verb=${1:-}
[ $# -gt 0 ] && shift

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# Builds the residual tool quietly; on failure shows the compiler's output (dotnet prints errors
# on stdout) on stderr and stops with exit code 1.
build_tools() {
  local log
  log=$(mktemp)
  if ! dotnet build Tools -c "$CONFIG" -v q -nologo >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "build.sh: building Tools failed (errors above)" >&2
    exit 1
  fi
  rm -f "$log"
}

need_dotnet() {
  command -v dotnet >/dev/null 2>&1 || { echo "build.sh: the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 2; }
}

# NVRTC lets the test suite compile every kernel even without a GPU. Debian ships it in
# non-free as libnvrtc11.2; install it when we are root with apt, and say loudly when we cannot.
ensure_nvrtc() {
  if ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so'; then return 0; fi
  for d in "${CUDA_PATH:-}" "${CUDA_HOME:-}" /usr/local/cuda; do
    [ -n "$d" ] && ls "$d"/lib64/libnvrtc.so* >/dev/null 2>&1 && return 0
  done
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "build.sh: installing Debian's libnvrtc11.2 (non-free) so kernel compilation can be tested"
    if [ -f /etc/apt/sources.list.d/debian.sources ] && ! grep -q 'non-free' /etc/apt/sources.list.d/debian.sources; then
      sed -i 's/^Components: main$/Components: main contrib non-free/' /etc/apt/sources.list.d/debian.sources
    elif [ -f /etc/apt/sources.list ] && grep -q '^deb .* main$' /etc/apt/sources.list; then
      sed -i 's/^\(deb .* main\)$/\1 contrib non-free/' /etc/apt/sources.list
    fi
    if apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnvrtc11.2 >/dev/null 2>&1; then
      echo "build.sh: libnvrtc11.2 installed"
      return 0
    fi
  fi
  echo "build.sh: WARNING: NVRTC not found and could not be installed; kernel-compile tests will be SKIPPED" >&2
}

# Open MPI runs the multi-process (data-parallel) tests and `residual train --nproc`. Debian ships it
# as openmpi-bin (mpirun) and libopenmpi-dev; install them when we are root with apt, and say loudly
# when we cannot (those tests are then SKIPPED, each saying why).
ensure_mpi() {
  # (grep reads all of ldconfig's output: with pipefail, grep -q's early exit would fail the pipe)
  if command -v mpirun >/dev/null 2>&1 && ldconfig -p 2>/dev/null | grep 'libmpi\.so' >/dev/null; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "build.sh: installing Debian's openmpi-bin and libopenmpi-dev so multi-process training can be tested"
    if apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null 2>&1; then
      echo "build.sh: Open MPI installed"
      return 0
    fi
  fi
  echo "build.sh: WARNING: Open MPI (mpirun, libmpi) not found and could not be installed; the multi-process tests will be SKIPPED" >&2
}

# Fashion-MNIST is the real data of the experiments (docs/experiments); Debian ships it as
# dataset-fashion-mnist (IDX files, ~30 MB). Install it when we are root with apt; say loudly when not.
ensure_fashion_mnist() {
  local dir=/usr/share/datasets/fashion-mnist
  ls "$dir"/train-images-idx3-ubyte* >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "build.sh: installing Debian's dataset-fashion-mnist"
    if apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; then
      echo "build.sh: dataset-fashion-mnist installed in $dir"
      return 0
    fi
  fi
  echo "build.sh: WARNING: Fashion-MNIST is not in $dir and could not be installed (needs root and apt: apt-get install dataset-fashion-mnist)" >&2
  return 1
}

case "$verb" in
  fashion-mnist)
    need_dotnet
    ensure_fashion_mnist || exit 1
    build_tools
    exec dotnet "Tools/bin/$CONFIG/net10.0/residual.dll" data import --from /usr/share/datasets/fashion-mnist --out "${1:-data/fashion-mnist}"
    ;;
  build)
    need_dotnet
    dotnet build ResidualEngine.sln -c "$CONFIG" "$@"
    ;;
  test)
    need_dotnet
    ensure_nvrtc || true
    ensure_mpi || true
    dotnet build ResidualEngine.sln -c "$CONFIG" -v q -nologo || { echo "build.sh: the build failed (errors above)" >&2; echo "Tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
    sum_passed=0 sum_failed=0 sum_skipped=0 any_rc=0
    # Runs the test executable once and adds its counts to the sums.
    run_tests() {
      local log rc total failed passed skipped
      log=$(mktemp)
      set +e
      dotnet test --project Tests -c "$CONFIG" --no-build "$@" 2>&1 | tee "$log"
      rc=${PIPESTATUS[0]}
      set -e
      total=$(grep -Eo '^\s*total: [0-9]+' "$log" | grep -Eo '[0-9]+' | tail -1 || true)
      failed=$(grep -Eo '^\s*failed: [0-9]+' "$log" | grep -Eo '[0-9]+' | tail -1 || true)
      passed=$(grep -Eo '^\s*succeeded: [0-9]+' "$log" | grep -Eo '[0-9]+' | tail -1 || true)
      skipped=$(grep -Eo '^\s*skipped: [0-9]+' "$log" | grep -Eo '[0-9]+' | tail -1 || true)
      rm -f "$log"
      if [ -z "$total" ]; then
        echo "build.sh: a test run did not complete" >&2
        failed=$(( ${failed:-0} + 1 ))
      fi
      sum_passed=$(( sum_passed + ${passed:-0} )); sum_failed=$(( sum_failed + ${failed:-0} )); sum_skipped=$(( sum_skipped + ${skipped:-0} ))
      [ "$rc" -ne 0 ] && any_rc=$rc
      return 0
    }
    if [ $# -gt 0 ]; then
      run_tests --filter "$1"
    elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      echo "build.sh: a GPU is present: the Gpu category runs on it"
      run_tests
    else
      # No GPU: the Gpu category runs against the CPU emulator of libcuda/cuBLAS/cuDNN
      # (Tools/gpu/emu), which needs g++ >= 12 and NVRTC. Without them it is skipped, loudly.
      run_tests --filter "TestCategory!=Gpu"
      emu=$(mktemp -d)
      if ! command -v "${CXX:-g++}" >/dev/null 2>&1; then
        echo "build.sh: WARNING: g++ not found: the GPU tests are SKIPPED (install g++ >= 12 to run them under the emulator)" >&2
        run_tests --filter "TestCategory=Gpu"
      elif ! Tools/gpu/emu/build.sh "$emu" >"$emu/build.log" 2>&1; then
        cat "$emu/build.log" >&2
        echo "build.sh: WARNING: the GPU emulator did not build (log above): the GPU tests are SKIPPED" >&2
        run_tests --filter "TestCategory=Gpu"
      else
        echo "build.sh: running the Gpu category against the CPU emulator (not a GPU run)"
        RESIDUAL_CUDA_LIB_DIR="$emu/lib" RESIDUAL_KERNEL_CACHE="$emu/kernel-cache" run_tests --filter "TestCategory=Gpu"
      fi
      rm -rf "$emu"
    fi
    # The CPU kernels pick AVX-512, AVX2 or portable code by what the CPU has. On an AVX-512
    # machine the tests above ran the AVX-512 paths only; run the kernel tests again the way a
    # laptop without AVX-512 would run them (.NET's DOTNET_EnableAVX512F=0), so both are checked.
    if [ $# -eq 0 ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
      echo "build.sh: running the CPU kernel tests again without AVX-512 (DOTNET_EnableAVX512F=0: the AVX2 paths)"
      DOTNET_EnableAVX512F=0 run_tests --filter "(FullyQualifiedName~.Backends.|FullyQualifiedName~.Ops.|FullyQualifiedName~.Nn.|FullyQualifiedName~.Models.|FullyQualifiedName~.Autograd.)&TestCategory!=Gpu"
    fi
    echo "Tests: $sum_passed passed, $sum_failed failed, $sum_skipped skipped"
    if [ "$any_rc" -ne 0 ] || [ "$sum_failed" -ne 0 ]; then exit 1; fi
    ;;
  train)
    need_dotnet
    build_tools
    exec dotnet "Tools/bin/$CONFIG/net10.0/residual.dll" train "$@"
    ;;
  bench)
    need_dotnet
    build_tools
    exec dotnet "Tools/bin/$CONFIG/net10.0/residual.dll" bench compare "$@"
    ;;
  publish)
    need_dotnet
    # One self-contained linux-x64 folder for the GPU machine (no .NET there): the `residual` app and
    # the test runner share one runtime. Files only CPU-side tests need are left out (ONNX Runtime's
    # native libraries, Roslyn, Windows DLLs), so the packed bundle fits the device tool's 64 MiB
    # transfer with the working tree beside it.
    rm -rf .gpu/bundle .gpu/bundle.tgz
    dotnet publish Tests -c Release -r linux-x64 --self-contained -o .gpu/bundle -v q -nologo
    dotnet publish Tools -c Release -r linux-x64 --self-contained -o .gpu/bundle -p:PublishReadyToRun=false -v q -nologo
    rm -f .gpu/bundle/onnxruntime.dll .gpu/bundle/onnxruntime_providers_shared.dll .gpu/bundle/libonnxruntime*.so \
          .gpu/bundle/Microsoft.CodeAnalysis*.dll .gpu/bundle/*.pdb
    tar czf .gpu/bundle.tgz -C .gpu bundle
    size=$(stat -c %s .gpu/bundle.tgz)
    echo "build.sh: .gpu/bundle ($(du -sh .gpu/bundle | cut -f1)) packed as .gpu/bundle.tgz ($(( size / 1048576 )) MiB); run it with Tools/gpu/first-run.sh"
    if [ "$size" -gt $(( 56 * 1048576 )) ]; then
      echo "build.sh: WARNING: .gpu/bundle.tgz is over 56 MiB: with the working tree it may not fit the GPU machine's 64 MiB transfer" >&2
      exit 1
    fi
    ;;
  help|-h|--help)
    usage
    ;;
  "")
    echo "build.sh: which verb?" >&2
    usage >&2
    exit 2
    ;;
  *)
    echo "build.sh: unknown verb '$verb'" >&2
    usage >&2
    exit 2
    ;;
esac
