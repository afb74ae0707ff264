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

# One translation unit with every kernel file, and the table of kernel names.
: > "$out/src/kernels.gen.inc"
: > "$out/src/kernel_names.gen.inc"
for f in "$out"/src/*.cu; do
  echo "#include \"$(basename "$f")\"" >> "$out/src/kernels.gen.inc"
  { grep -oE 'extern "C" __global__ void [A-Za-z0-9_]+(##sfx)?' "$f" || true; } | awk '{print $5}' | while read -r name; do
    case "$name" in
      *'##sfx') base=${name%%##sfx}; echo "K(${base}f32)" >> "$out/src/kernel_names.gen.inc"; echo "K(${base}f64)" >> "$out/src/kernel_names.gen.inc" ;;
      *) echo "K($name)" >> "$out/src/kernel_names.gen.inc" ;;
    esac
  done
  # The pointwise table (pointwise.cu): each UNARY/BINARY/TERNARY line instantiates NAME_f32 and
  # NAME_f64, and binary lines also NAME_bcast_f32 / NAME_bcast_f64.
  { grep -oE '^(UNARY|BINARY|TERNARY)\([A-Za-z0-9_]+,' "$f" || true; } | tr '(,' '  ' | while read -r kind name; do
    for sfx in f32 f64; do
      echo "K(${name}_${sfx})" >> "$out/src/kernel_names.gen.inc"
      if [ "$kind" = BINARY ]; then echo "K(${name}_bcast_${sfx})" >> "$out/src/kernel_names.gen.inc"; fi
    done
  done
done

CXX=${CXX:-g++}
flags=(-std=c++20 -O2 -fPIC -shared -Wall -Wno-unused-function -Wno-unused-variable -Wno-unused-parameter)
"$CXX" "${flags[@]}" -I"$out/src" -I"$here" -include "$here/cuda_shim.h" "$here/fake_cuda.cpp" -o "$out/lib/libcuda.so.1"
"$CXX" "${flags[@]}" "$here/fake_cublas.cpp" -o "$out/lib/libcublas.so.12"
"$CXX" "${flags[@]}" "$here/fake_cudnn.cpp" -o "$out/lib/libcudnn.so.9"
# NCCL calls back into the fake driver (to check device buffers); $ORIGIN finds the same file .NET loaded.
"$CXX" "${flags[@]}" "$here/fake_nccl.cpp" -L"$out/lib" -l:libcuda.so.1 -Wl,-rpath,'$ORIGIN' -o "$out/lib/libnccl.so.2"
echo "emu: built $(wc -l < "$out/src/kernel_names.gen.inc") kernels into $out/lib"
