#!/usr/bin/env bash
# The CPU run behind docs/experiments/fashion-mnist/ (results and discussion in README.md there).
# Sized for a shared 2-core machine: one thread, niced, about two and a half hours of wall time. Every
# finished run is saved under <out>/runs/ and reused when the script is started again, so an
# interrupted run continues where it stopped.
#   RESIDUAL   how to call the tool (default: the Release build of this checkout)
#   DATA       where Fashion-MNIST is imported (default data/fashion-mnist)
set -euo pipefail
cd "$(dirname "$0")/../../.."
RESIDUAL=${RESIDUAL:-"dotnet Tools/bin/Release/net10.0/residual.dll"}
DATA=${DATA:-data/fashion-mnist}
OUT=docs/experiments/fashion-mnist
common=(--data "$DATA" --iterations 400 --batch-size 128 --eval-points 10 --eval-images 1000 --threads 1 --workers 1)

$RESIDUAL data import --from /usr/share/datasets/fashion-mnist --out "$DATA"
# The two depths the claim is about, two seeds each.
nice -n 10 $RESIDUAL experiment degradation "${common[@]}" --depths 20,56 --seeds 0,1 --out "$OUT/degradation-20-56"
# All four depths of Fig. 6 (not run here: about 1.5 more hours on one core) would be
#   nice -n 10 $RESIDUAL experiment degradation "${common[@]}" --depths 20,32,44,56 --seeds 0 --out "$OUT/degradation-all-depths"
