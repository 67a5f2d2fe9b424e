#!/usr/bin/env bash
# One prepared run for a lent GPU machine (an H200: sm_90): builds the Engram layer's CUDA
# kernels, their CPU twins, the CUDA twin test and kernel_bench with bench/gpu/CMakeLists.txt
# (a standalone project: the device image lacks the store's dependencies), runs the test, then
# the benchmark, and prints a table last. Needs no network. Budget: under 8 minutes (build
# ~1-2 min, test < 1 min, bench ~1-2 min); each step has its own time limit.
#
#   bench/gpu/run.sh              on the device machine (any working directory)
#   bench/gpu/run.sh --prepare    here, before the run: copies googletest's sources to
#                                 build-gpu/googletest so the run can build the test where
#                                 GoogleTest is not installed; then carry "build-gpu/googletest"
#
# Outputs under ${OUT:-/tmp/gpu-out}: run.log (everything), build.log, cuda_kernels_test.xml,
# kernel_bench.txt, kernel_bench.json. Exit status: 0 when the build, the test and the
# benchmark's own checks passed (the bandwidth ratio is reported, not enforced).
# Environment: ENGRAM_GPU_ARCH (default 90), ENGRAM_GPU_BUILD (build dir, default
# /tmp/engram-gpu-build), ENGRAM_BENCH_ARGS (extra kernel_bench flags).
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
stamp() { echo "[$(($(date +%s) - start)) s] $*"; }

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
  timeout 120 cmake -S "$ROOT/bench/gpu" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DCMAKE_CUDA_COMPILER="$NVCC" "${GTEST_ARGS[@]}" &&
    timeout 300 cmake --build "$BUILD" -j "$(nproc)"
} >"$OUT/build.log" 2>&1 || build_rc=$?
# Per kernel: registers and spills (ptxas -v), names demangled where c++filt exists.
awk '/Compiling entry function/ { match($0, /_Z[A-Za-z0-9_]+/); name = substr($0, RSTART, RLENGTH) }
     /bytes spill stores/ { spill = $1 " B stack, " $5 " B spilled" }
     /Used [0-9]+ registers/ { print "  " name " : " $5 " registers, " spill }' "$OUT/build.log" |
  { c++filt 2>/dev/null || cat; } |
  sed -E 's/engram::model::\(anonymous namespace\):://g; s/engram::model:://g' || true
grep -E "error|warning:" "$OUT/build.log" | head -20 || true
if [[ $build_rc -ne 0 ]]; then
  tail -40 "$OUT/build.log"
  stamp "BUILD FAILED (rc $build_rc)"
  exit 1
fi

test_rc=0
test_summary="not built (no GoogleTest: run.sh --prepare here, carry build-gpu/googletest)"
if [[ -x "$BUILD/cuda_kernels_test" ]]; then
  stamp "cuda_kernels_test"
  timeout 240 "$BUILD/cuda_kernels_test" --gtest_output="xml:$OUT/cuda_kernels_test.xml" \
    >"$OUT/cuda_kernels_test.txt" 2>&1 || test_rc=$?
  grep -E "^\[ +(OK|FAILED|SKIPPED) +\] [^ ]+\.[^ ]+ \(|Failure|out of tolerance|differ" \
    "$OUT/cuda_kernels_test.txt" | head -60 || true
  test_summary="$({ grep -E "^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ tests?" "$OUT/cuda_kernels_test.txt" ||
    true; } | tr '\n' ' ')(rc $test_rc)"
  [[ $test_rc -eq 124 ]] && test_summary="TIMED OUT after 240 s"
fi

bench_rc=0
stamp "kernel_bench"
# shellcheck disable=SC2086
timeout 240 "$BUILD/kernel_bench" --json "$OUT/kernel_bench.json" ${ENGRAM_BENCH_ARGS:-} \
  >"$OUT/kernel_bench.txt" 2>&1 || bench_rc=$?
grep -vE "^\|" "$OUT/kernel_bench.txt" || true

stamp "done"
echo
gpu=$({ nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "no GPU"; } | head -1)
echo "== engram CUDA kernels on $gpu, sm_$ARCH =="
echo "test:  $test_summary"
echo "bench: rc $bench_rc$([[ $bench_rc -eq 124 ]] && echo ' (TIMED OUT after 240 s)')"
grep -E "^\|" "$OUT/kernel_bench.txt" || echo "(no table: see $OUT/kernel_bench.txt)"
[[ $test_rc -eq 0 && $bench_rc -eq 0 ]]
