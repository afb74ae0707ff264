#!/usr/bin/env bash
# He et al.'s CIFAR protocol at the paper's full length on a CUDA GPU: 64,000 iterations of batch
# 128 (SGD 0.1, divided by 10 at 32k and 48k, momentum 0.9, weight decay 1e-4, pad-4 crop + flip),
#   1. plain and residual nets of depth 20/32/44/56 (He et al. 2015, Fig. 6), and
#   2. original vs full pre-activation units at 110 and 164 layers (He et al. 2016, lr 0.01 for the
#      first 400 iterations),
# three seeds each, on Fashion-MNIST by default or any ImageFolder (CIFAR-10, the paper's data:
#   residual data import --from cifar-10-python.tar.gz --out data/cifar10; DATA=data/cifar10 ./run-gpu-64k.sh).
# It has not been run: the machines this project was written on have no GPU, and the CUDA backend
# has not yet run on a real GPU (docs/gpu-verification.md). Run Tools/gpu/first-run.sh on the
# machine first, and a rehearsal (ITERATIONS=640) before the real thing. Finished runs are saved in
# $OUT/*/runs/ and reused, so the script can be stopped and started again.
# Compute: 1.67 forward GMACs per image for the twelve nets together, i.e. about 10 GFLOP per
# training image, 82 PFLOP per seed at 64k x 128 images (wall time depends on the GPU and is not
# known yet for this engine).
#   RESIDUAL    the tool (default: this checkout's Release build through dotnet; on a machine without
#               .NET, the published bundle's app/residual from ./build.sh publish)
#   DATA        ImageFolder with train/ and val/ (default data/fashion-mnist, from Debian's package)
#   OUT         results (default docs/experiments/<name of DATA>-64k)
#   ITERATIONS  (64000)   SEEDS (0,1,2)   WORKERS (8 decoding threads)   DEVICE (cuda)
set -euo pipefail
cd "$(dirname "$0")/../.."
RESIDUAL=${RESIDUAL:-"dotnet Tools/bin/Release/net10.0/residual.dll"}
DATA=${DATA:-data/fashion-mnist}
OUT=${OUT:-docs/experiments/$(basename "$DATA")-64k}
ITERATIONS=${ITERATIONS:-64000}
if [ "$RESIDUAL" = "dotnet Tools/bin/Release/net10.0/residual.dll" ]; then ./build.sh build -v q >/dev/null; fi
if [ ! -d "$DATA" ] && [ "$DATA" = data/fashion-mnist ]; then ./build.sh fashion-mnist "$DATA"; fi
common=(--data "$DATA" --iterations "$ITERATIONS" --batch-size 128 --lr 0.1 --seeds "${SEEDS:-0,1,2}"
        --eval-points 64 --eval-images 0 --device "${DEVICE:-cuda}" --workers "${WORKERS:-8}")
$RESIDUAL experiment degradation "${common[@]}" --depths 20,32,44,56 --out "$OUT/degradation"
$RESIDUAL experiment preact "${common[@]}" --depths 110,164 --out "$OUT/preact"
echo "results: $OUT/degradation/results.md, $OUT/preact/results.md (figures next to them)"
