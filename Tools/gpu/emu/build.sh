#!/usr/bin/env bash
# Builds the GPU emulator: fake libcuda.so.1 (running Kernels/*.cu as C++ on fibers), libcublas.so.12,
# libcudnn.so.9 and a one-rank libnccl.so.2 into $1 (default /tmp/residual-emu). Needs g++ >= 12 (C++20, _Float16). See README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=${1:-/tmp/residual-emu}
mkdir -p "$out/src" "$out/lib"
rm -f "$out"/src/*

cp "$repo"/Kernels/*.cu "$repo"/Kernels/*.cuh "$out/src/"
# The only inline PTX (half conversions) becomes calls into the shim.
python3 - "$out/src/common.cuh" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
a = 'asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));'
b = 'asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));'
assert a in s and b in s, "common.cuh's half conversions changed: update Tools/gpu/emu/build.sh"
s = s.replace(a, 'f = emu_half_to_float(h);').replace(b, 'h = emu_float_to_half(f);')
assert 'asm(' not in s, "common.cuh has inline PTX the emulator does not know"
open(p, 'w').write(s)
PY
for f in "$out"/src/*.cu; do grep -q 'asm(' "$f" && { echo "emu: $f has inline PTX the emulator does not know" >&2; exit 1; }; done

CXX=${CXX:-g++}
# One translation unit with every kernel file, and the table of kernel names. The names come from
# each file after macro expansion (g++ -E, __global__ defined empty; no system headers), so every
# instantiation of FOR_FLOAT_TYPES / FOR_POINTWISE_TYPES / any other generator is found as it is.
: > "$out/src/kernels.gen.inc"
: > "$out/src/kernel_names.gen.inc"
for f in "$out"/src/*.cu; do
  echo "#include \"$(basename "$f")\"" >> "$out/src/kernels.gen.inc"
  "$CXX" -x c++ -std=c++20 -E -P -D__global__= -I"$out/src" "$f" \
    | tr '\n' ' ' | grep -oE 'extern "C" +void +[A-Za-z_][A-Za-z0-9_]* *\(' | sed -E 's/.*void +([A-Za-z0-9_]+).*/K(\1)/' \
    >> "$out/src/kernel_names.gen.inc"
done
[ -s "$out/src/kernel_names.gen.inc" ] || { echo "emu: found no kernels in Kernels/*.cu" >&2; exit 1; }

flags=(-std=c++20 -O2 -fPIC -shared -Wall -Wno-unused-function -Wno-unused-variable -Wno-unused-parameter)
"$CXX" "${flags[@]}" -I"$out/src" -I"$here" -include "$here/cuda_shim.h" "$here/fake_cuda.cpp" -o "$out/lib/libcuda.so.1"
"$CXX" "${flags[@]}" "$here/fake_cublas.cpp" -o "$out/lib/libcublas.so.12"
"$CXX" "${flags[@]}" "$here/fake_cudnn.cpp" -o "$out/lib/libcudnn.so.9"
# NCCL calls back into the fake driver (to check device buffers); $ORIGIN finds the same file .NET loaded.
"$CXX" "${flags[@]}" "$here/fake_nccl.cpp" -L"$out/lib" -l:libcuda.so.1 -Wl,-rpath,'$ORIGIN' -o "$out/lib/libnccl.so.2"
echo "emu: built $(wc -l < "$out/src/kernel_names.gen.inc") kernels into $out/lib"
