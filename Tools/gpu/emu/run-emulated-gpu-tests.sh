#!/usr/bin/env bash
# Runs the Gpu test category against the CPU emulator (fake libcuda/libcublas/libcudnn built from
# Kernels/*.cu by build.sh), on a machine without a GPU. Needs .NET, g++ >= 12 and libnvrtc.
# Extra arguments go to the test runner, e.g.  --filter "FullyQualifiedName~CudaParityTests".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=${EMU_OUT:-/tmp/residual-emu}
"$here/build.sh" "$out"
export RESIDUAL_CUDA_LIB_DIR="$out/lib"
export RESIDUAL_KERNEL_CACHE="$out/kernel-cache"
cd "$repo"
dotnet build Tools -c Release -v q -nologo >/dev/null
dotnet Tools/bin/Release/net10.0/residual.dll info
filter=(--filter "TestCategory=Gpu")
[ $# -gt 0 ] && filter=("$@")
dotnet test --project Tests -c Release "${filter[@]}" --zero-tests-policy strict
