#!/usr/bin/env bash
# Runs the store benchmarks end to end and keeps the results out of the source tree:
#   1. builds store_bench in a Release build (build-release/, incremental; reuses an existing
#      binary if the build fails because somebody's file is mid-edit),
#   2. runs store_bench with every workload (tables under $ENGRAM_BENCH_DIR, created if absent),
#   3. runs fio's io_uring 4 KiB O_DIRECT random-read baseline on the NVMe table's data file
#      (numjobs 1 and 2, queue depth 32 each, 8 s, read-only) and prints its IOPS beside ours.
# Everything printed is also written to $ENGRAM_BENCH_DIR/results/store_bench-<date>.txt, and
# store_bench's JSON to store_bench-<date>.json next to it.
#
#   bench/run_store_bench.sh [extra store_bench flags, e.g. --nvme_seconds 4]
# Environment: ENGRAM_BENCH_DIR (/var/tmp/engram-bench), ENGRAM_BUILD_DIR (<repo>/build-release),
#              ENGRAM_SKIP_FIO=1 to skip fio.
# shellcheck disable=SC2317  # main and its helpers run through bench_logged
set -uo pipefail

# shellcheck source=bench/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
bench_init store_bench
QD=32
FIO_SECONDS=8

# fio's random-read IOPS and completion-latency percentiles on FILE with NUMJOBS jobs.
run_fio() {
  local file=$1 numjobs=$2 out
  out=$(fio --name=rand --filename="$file" --readonly --rw=randread --bs=4k --direct=1 \
    --ioengine=io_uring --iodepth="$QD" --numjobs="$numjobs" --runtime="$FIO_SECONDS" \
    --time_based --group_reporting --output-format=json) || { echo "fio failed" >&2; return 1; }
  jq -r '.jobs[0].read | "\(.iops|floor) \(.clat_ns.percentile["50.000000"]/1000|floor) \(.clat_ns.percentile["99.000000"]/1000|floor)"' <<<"$out"
}

fio_section() {
  if [[ ${ENGRAM_SKIP_FIO:-0} == 1 ]]; then return 0; fi
  if ! command -v fio >/dev/null || ! command -v jq >/dev/null; then
    echo "fio or jq not installed: fio baseline skipped"
    return 0
  fi
  local data
  data=$(jq -r '.workloads.nvme_random.data_file // empty' "$JSON" 2>/dev/null)
  if [[ -z $data || ! -f $data ]]; then
    echo "no nvme_random data file in $JSON: fio baseline skipped"
    return 0
  fi
  echo
  echo "fio baseline on $data (randread 4k, direct, io_uring, iodepth $QD, ${FIO_SECONDS} s):"
  printf '%-9s | %-12s | %-15s | %-12s | %-14s | %-14s\n' numjobs "fio IOPS" "fio p50/p99 us" \
    "table IOPS" "raw uring IOPS" "table / fio"
  local jobs
  for jobs in 1 2; do
    local fio_line ours raw
    fio_line=$(run_fio "$data" "$jobs") || continue
    read -r fio_iops fio_p50 fio_p99 <<<"$fio_line"
    ours=$(jq -r --argjson t "$jobs" \
      '.workloads.nvme_random.runs[] | select(.threads == $t) | .ours_iops | floor' "$JSON")
    raw=$(jq -r --argjson t "$jobs" \
      '.workloads.nvme_random.runs[] | select(.threads == $t) | .raw_iops | floor' "$JSON")
    local ratio="-"
    if [[ -n $ours && $fio_iops -gt 0 ]]; then
      ratio=$(awk -v a="$ours" -v b="$fio_iops" 'BEGIN { printf "%.3f", a / b }')
    fi
    printf '%-9s | %-12s | %-15s | %-12s | %-14s | %-14s\n' "$jobs" "$fio_iops" \
      "$fio_p50/$fio_p99" "${ours:--}" "${raw:--}" "$ratio"
  done
}

main() {
  echo "run_store_bench: $(date -Is), results in $LOG"
  bench_build store_bench || return 1
  local rc=0
  "$BUILD/bench/store_bench" --dir "$DIR" \
    --workloads resident_rss,resident_gather,nvme_random --json_out "$JSON" "$@" || rc=$?
  fio_section
  echo
  echo "results: $LOG, $JSON"
  return "$rc"
}

bench_logged main "$@"
exit $?
