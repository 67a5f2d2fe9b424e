#!/usr/bin/env bash
# One prepared run for a lent GPU machine (an H200: sm_90): builds, with bench/gpu/CMakeLists.txt
# (a standalone project: the device image lacks the store's dependencies), the Engram layer's
# CUDA kernels with their CPU twins, the device layer (gpu_bridge/: CUDA and host-emulated
# devices, row kernels), their tests, kernel_bench and bridge_bench; runs the tests, then the
# benchmarks, and prints the tables last. Needs no network. Budget: under 8 minutes in all
# (build ~2 min, tests ~1 min, benches ~2 min): each step has its own time limit, cut to what is
# left of a 450 s deadline.
#
#   bench/gpu/run.sh              on the device machine (any working directory)
#   bench/gpu/run.sh --prepare    here, before the run: copies googletest's sources to
#                                 build-gpu/googletest so the run can build the tests where
#                                 GoogleTest is not installed; then carry "build-gpu/googletest"
#
# Outputs under ${OUT:-/tmp/gpu-out} (8 files, the most a device run brings back): run.log
# (everything), build.log, cuda_kernels_test.txt, gpu_device_tests.txt, kernel_bench.txt,
# kernel_bench.json, bridge_bench.txt, bridge_bench.json. Exit status: 0 when the build, the
# tests and the benchmarks' own checks passed (bandwidth ratios are reported, not enforced).
# Environment: ENGRAM_GPU_ARCH (default 90), ENGRAM_GPU_BUILD (build dir, default
# /tmp/engram-gpu-build), ENGRAM_BENCH_ARGS (extra kernel_bench flags), ENGRAM_BRIDGE_ARGS
# (extra bridge_bench flags).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if [[ "${1:-}" == "--prepare" ]]; then
  src=/usr/src/googletest/googletest
  [[ -f $src/CMakeLists.txt ]] || { echo "no googletest sources at $src" >&2; exit 1; }
  rm -rf "$ROOT/build-gpu/googletest"
  mkdir -p "$ROOT/build-gpu/googletest"
  cp -r "$src/CMakeLists.txt" "$src/cmake" "$src/include" "$src/src" "$ROOT/build-gpu/googletest/"
  echo "prepared $ROOT/build-gpu/googletest ($(du -sh "$ROOT/build-gpu/googletest" | cut -f1));"
  echo "carry [\"build-gpu/googletest\"] with the run"
  exit 0
fi

OUT=${OUT:-/tmp/gpu-out}
BUILD=${ENGRAM_GPU_BUILD:-/tmp/engram-gpu-build}
ARCH=${ENGRAM_GPU_ARCH:-90}
mkdir -p "$OUT" "$BUILD"
exec > >(tee -a "$OUT/run.log") 2>&1
start=$(date +%s)
deadline=$((start + 450))
stamp() { echo "[$(($(date +%s) - start)) s] $*"; }
# Seconds a step may take: its own limit, or what is left before the deadline (at least 5).
limit() {
  local left=$((deadline - $(date +%s)))
  ((left < 5)) && left=5
  echo $(($1 < left ? $1 : left))
}

stamp "engram GPU run: $(date -u +%FT%TZ), root $ROOT"
if command -v nvidia-smi >/dev/null; then
  timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem \
    --format=csv || true
fi
NVCC=$(command -v nvcc || true)
[[ -z "$NVCC" && -x /usr/local/cuda/bin/nvcc ]] && NVCC=/usr/local/cuda/bin/nvcc
if [[ -z "$NVCC" ]]; then echo "no nvcc found" >&2; exit 1; fi
"$NVCC" --version | tail -1

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
GTEST_ARGS=()
[[ -f "$ROOT/build-gpu/googletest/CMakeLists.txt" ]] &&
  GTEST_ARGS=(-DENGRAM_GTEST_SOURCE_DIR="$ROOT/build-gpu/googletest")

build_rc=0
stamp "configure + build (sm_$ARCH)"
{
  timeout "$(limit 90)" cmake -S "$ROOT/bench/gpu" -B "$BUILD" "${GEN[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DCMAKE_CUDA_COMPILER="$NVCC" \
    "${GTEST_ARGS[@]}" &&
    timeout "$(limit 240)" cmake --build "$BUILD" -j "$(nproc)"
} >"$OUT/build.log" 2>&1 || build_rc=$?
# Per kernel: registers and spills (ptxas -v), names demangled where c++filt exists.
awk '/Compiling entry function/ { match($0, /_Z[A-Za-z0-9_]+/); name = substr($0, RSTART, RLENGTH) }
     /bytes spill stores/ { spill = $1 " B stack, " $5 " B spilled" }
     /Used [0-9]+ registers/ { print "  " name " : " $5 " registers, " spill }' "$OUT/build.log" |
  { c++filt 2>/dev/null || cat; } |
  sed -E 's/engram::(model|gpu)::\(anonymous namespace\):://g; s/engram::(model|gpu):://g' || true
grep -E "error|warning:" "$OUT/build.log" | head -20 || true
if [[ $build_rc -ne 0 ]]; then
  tail -40 "$OUT/build.log"
  stamp "BUILD FAILED (rc $build_rc)"
  exit 1
fi

# run_test NAME LIMIT: runs $BUILD/NAME into $OUT/NAME.txt; sets test_rc (worst) and appends
# a summary line to test_summary.
test_rc=0
test_summary=""
run_test() {
  local name=$1 secs rc=0
  if [[ ! -x "$BUILD/$name" ]]; then
    test_summary+="$name: not built (no GoogleTest: run.sh --prepare here, carry build-gpu/googletest)"$'\n'
    return
  fi
  secs=$(limit "$2")
  stamp "$name (limit $secs s)"
  timeout "$secs" "$BUILD/$name" >"$OUT/$name.txt" 2>&1 || rc=$?
  grep -E "^\[ +(OK|FAILED|SKIPPED) +\] [^ ]+\.[^ ]+ \(|Failure|out of tolerance|differ|no CUDA" \
    "$OUT/$name.txt" | head -60 || true
  local line
  line="$name: $({ grep -E "^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ tests?" "$OUT/$name.txt" ||
    true; } | tr '\n' ' ')(rc $rc)"
  [[ $rc -eq 124 ]] && line="$name: TIMED OUT after $secs s"
  test_summary+="$line"$'\n'
  [[ $rc -ne 0 ]] && test_rc=$rc
  return 0
}
run_test cuda_kernels_test 150
run_test gpu_device_tests 120

bench_rc=0
secs=$(limit 200)
stamp "kernel_bench (limit $secs s)"
# shellcheck disable=SC2086
timeout "$secs" "$BUILD/kernel_bench" --json "$OUT/kernel_bench.json" ${ENGRAM_BENCH_ARGS:-} \
  >"$OUT/kernel_bench.txt" 2>&1 || bench_rc=$?
grep -vE "^\|" "$OUT/kernel_bench.txt" || true

bridge_rc=0
secs=$(limit 120)
stamp "bridge_bench (limit $secs s)"
# shellcheck disable=SC2086
timeout "$secs" "$BUILD/bridge_bench" --json "$OUT/bridge_bench.json" ${ENGRAM_BRIDGE_ARGS:-} \
  >"$OUT/bridge_bench.txt" 2>&1 || bridge_rc=$?
grep -vE "^\|" "$OUT/bridge_bench.txt" || true

stamp "done"
echo
gpu=$({ nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "no GPU"; } | head -1)
echo "== engram CUDA kernels and device layer on $gpu, sm_$ARCH =="
printf "tests:\n%s" "$test_summary"
echo "kernel_bench: rc $bench_rc$([[ $bench_rc -eq 124 ]] && echo ' (TIMED OUT)')"
grep -E "^\|" "$OUT/kernel_bench.txt" || echo "(no table: see $OUT/kernel_bench.txt)"
echo
echo "bridge_bench: rc $bridge_rc$([[ $bridge_rc -eq 124 ]] && echo ' (TIMED OUT)')"
grep -E "^\|" "$OUT/bridge_bench.txt" || echo "(no table: see $OUT/bridge_bench.txt)"
[[ $test_rc -eq 0 && $bench_rc -eq 0 && $bridge_rc -eq 0 ]]
