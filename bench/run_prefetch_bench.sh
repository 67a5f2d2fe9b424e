#!/usr/bin/env bash
# Runs the prefetch benchmarks (issue 5) end to end and keeps the results out of the source tree:
#   1. builds prefetch_bench in a Release build (build-release/, incremental; reuses an existing
#      binary if the build fails because somebody's file is mid-edit),
#   2. runs it: the overlap sweep (NVMe vs resident step time at W = r x F) and the decode-like
#      Wait() latencies (NVMe only and with a DRAM cache), on f32x64-<ROWS> under
#      $ENGRAM_BENCH_DIR (created if absent, ~1 GiB), with step counts sized for a few minutes
#      on a 2-core machine.
# Decode ids: $TRACE, or the real trace ($ENGRAM_BENCH_DIR/traces/real.npy, made by
# bench/real_trace/make_real_trace.sh) when present, else Zipf 0.99; trace ids beyond the
# table are folded into it (id % rows) and counted.
# Everything printed is also written to $ENGRAM_BENCH_DIR/results/prefetch_bench-<date>.txt, and
# the JSON to prefetch_bench-<date>.json next to it.
#
#   bench/run_prefetch_bench.sh [extra prefetch_bench flags, e.g. --device emulated]
# Environment: ENGRAM_BENCH_DIR (/var/tmp/engram-bench), ENGRAM_BUILD_DIR (<repo>/build-release),
#              ROWS (4194304), STEPS (60: overlap steps per r and table), DECODE_STEPS (50),
#              CACHE_WARMUP (10: seconds of DRAM cache warm-up), TRACE (see above).
# shellcheck disable=SC2317  # main and its helpers run through bench_logged
set -uo pipefail

# shellcheck source=bench/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
bench_init prefetch_bench
ROWS=${ROWS:-4194304}
STEPS=${STEPS:-60}
DECODE_STEPS=${DECODE_STEPS:-50}
CACHE_WARMUP=${CACHE_WARMUP:-10}

main() {
  echo "run_prefetch_bench: $(date -Is), results in $LOG"
  bench_build prefetch_bench || return 1
  local trace=${TRACE:-}
  if [[ -z $trace ]]; then
    if [[ -f $DIR/traces/real.npy ]]; then trace=$DIR/traces/real.npy; else trace=zipf:0.99; fi
  fi
  "$BUILD/bench/prefetch_bench" --dir "$DIR" --rows "$ROWS" --steps "$STEPS" \
    --decode_steps "$DECODE_STEPS" --cache_warmup_seconds "$CACHE_WARMUP" --trace "$trace" \
    --json "$JSON" "$@"
  local rc=$?
  echo
  echo "results: $LOG, $JSON"
  return "$rc"
}

bench_logged main "$@"
exit $?
