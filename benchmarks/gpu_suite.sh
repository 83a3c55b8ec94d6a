#!/usr/bin/env bash
# The GPU benchmark figures of benchmarks/RESULTS.md in one or two commands, each within 10 minutes on one H100.
#
#   bash benchmarks/gpu_suite.sh PART OUTDIR       PART: features | sampling | all
#
# features: Inception feature throughput, dgmbench vs torch-fidelity side by side (32 and 299 px inputs,
#           batch 64/250/500; default fp32 arithmetic, TF32 forced, bf16 autocast), with the achieved
#           TFLOP/s against the data-sheet peak; then the FID change of each precision on real CIFAR-10.
#           Then FID's float64 linear algebra (value, delta interval) on the CPU vs the device at n = 2048
#           and 10,000, 2048-d (bench_fid_interval.py --device; log in OUTDIR/fid-interval.log).
# sampling: sampling speed of every baseline (presets mnist-gpu and cifar10, batch 256), then
#           `dgmbench score` vs torch-fidelity's `fidelity` as command lines on 10,000 + 1,000 CIFAR PNGs.
#
# Each pytest run writes OUTDIR/<name>.json (pytest-benchmark); benchmarks/summarize.py turns them into the
# Markdown of OUTDIR/summary.md. With no ../shared/offline and no internet (a lent GPU box), unpack a bundle
# made by benchmarks/offline_bundle.py first and export what it prints (DGMBENCH_BENCH_DATA/_WEIGHTS).
# Environment: PYTHON (default python3), DGMBENCH_BENCH_N (feature images, default 2000), BATCHES (feature batch
# sizes, default 64,250,500), ROUNDS (default 3), PRESETS (sampling, default mnist-gpu,cifar10), SAMPLING_BS
# (default 256), SKIP (space-separated run names to leave out, e.g. "cli10k"), DGMBENCH_BENCH_TIMEOUT (seconds
# per pytest run, default 240; the sampling and command-line runs get twice that).
set -u
PART=${1:?usage: gpu_suite.sh features|sampling|all OUTDIR}
OUT=${2:?usage: gpu_suite.sh features|sampling|all OUTDIR}
PY=${PYTHON:-python3}
N=${DGMBENCH_BENCH_N:-2000}
TIMEOUT=${DGMBENCH_BENCH_TIMEOUT:-240}
BATCHES=${BATCHES:-64,250,500}
ROUNDS=${ROUNDS:-3}
PRESETS=${PRESETS:-mnist-gpu,cifar10}
SAMPLING_BS=${SAMPLING_BS:-256}
SKIP=" ${SKIP:-} "
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
export DGMBENCH_OFFLINE=1 DGMBENCH_BENCH_DEVICE=${DGMBENCH_BENCH_DEVICE:-cuda} PYTHONUNBUFFERED=1
export PYTHONPATH="$HERE/..${PYTHONPATH:+:$PYTHONPATH}"
status=0

bench() {  # bench NAME FILE [pytest args...]: one pytest-benchmark run into $OUT/NAME.json, log in $OUT/NAME.log
  local name=$1 file=$2; shift 2
  case "$SKIP" in *" $name "*) echo "== $name: skipped"; return;; esac
  echo "== $name ($(date -u +%H:%M:%S))"
  timeout "$TIMEOUT" "$PY" -m pytest "$HERE/$file" -q -p no:cacheprovider --benchmark-only \
    --benchmark-json "$OUT/$name.json" --benchmark-columns=min,median,max,rounds "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 3 "$OUT/$name.log"
  [ $rc -eq 0 ] || { echo "!! $name exited $rc (log: $OUT/$name.log)"; status=1; }
}

"$PY" - <<'EOF' >"$OUT/device.txt" 2>&1
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(torch.cuda.get_device_name(0), f"{p.total_memory / 2**30:.1f} GiB", p.multi_processor_count, "SMs")
print("cudnn.allow_tf32", torch.backends.cudnn.allow_tf32, "matmul.allow_tf32", torch.backends.cuda.matmul.allow_tf32)
EOF
cat "$OUT/device.txt"

if [ "$PART" = features ] || [ "$PART" = all ]; then
  for opts in "" tf32 bf16; do
    DGMBENCH_BENCH_N=$N DGMBENCH_BENCH_BS=$BATCHES DGMBENCH_BENCH_ROUNDS=$ROUNDS DGMBENCH_BENCH_OPTS=$opts \
      bench "features${opts:+-$opts}" bench_features.py -k test_extract
  done
  DGMBENCH_BENCH_BS=${BATCHES##*,} bench precision bench_precision.py
  case "$SKIP" in *" fid-interval "*) echo "== fid-interval: skipped";; *)  # FID's linear algebra: CPU vs device
    echo "== fid-interval ($(date -u +%H:%M:%S))"
    timeout "$TIMEOUT" "$PY" "$HERE/bench_fid_interval.py" 2048 10000 --repeats 2 --device "$DGMBENCH_BENCH_DEVICE" \
      >"$OUT/fid-interval.log" 2>&1 || { echo "!! fid-interval failed (log: $OUT/fid-interval.log)"; status=1; }
    grep " on " "$OUT/fid-interval.log";;
  esac
fi

if [ "$PART" = sampling ] || [ "$PART" = all ]; then
  DGMBENCH_BENCH_PRESETS=$PRESETS DGMBENCH_BENCH_BS=$SAMPLING_BS DGMBENCH_BENCH_ROUNDS=2 TIMEOUT=$((2 * TIMEOUT)) \
    bench sampling bench_sampling.py
  DGMBENCH_BENCH_CLI10K=1 DGMBENCH_BENCH_BS=250 TIMEOUT=$((2 * TIMEOUT)) bench cli10k bench_features.py -k test_score_cli_10k
fi

"$PY" "$HERE/summarize.py" "$OUT"/*.json --device-info "$OUT/device.txt" --out "$OUT/summary.md" || status=1
exit $status
