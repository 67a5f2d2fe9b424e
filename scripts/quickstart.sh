#!/usr/bin/env bash
# engram-store quickstart: installs what is missing (Debian packages), builds, then runs
#   demo  - creates a 1 GiB table, reads it through a 128 MiB DRAM cache over NVMe (io_uring),
#           prints throughput and per-tier hit counts; then runs one Engram layer (reference
#           config, random weights and table) over a sentence's token ids and prints its n-gram
#           row ids, output and timings
#   Files go under $ENGRAM_DEMO_DIR (default /var/tmp/engram-demo). ENGRAM_TABLECTL=/ABS/PATH runs
#   the demo with that tablectl instead of building one.
#   test  - the whole test suite, then again under AddressSanitizer + UBSan, then the cache
#           tests (lock-free hits, pins, concurrent inserts) under ThreadSanitizer
# Usage: bash scripts/quickstart.sh demo|test      (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake ninja-build pkg-config git liburing-dev librocksdb-dev libxxhash-dev libicu-dev libopenblas-dev
          libboost-dev libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev fio
          python3 python3-numpy)
JOBS=$(nproc)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "quickstart: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build DIR [cmake args...]
build() {
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
}

run_demo() {
  local ctl=${ENGRAM_TABLECTL:-}
  if [ -z "$ctl" ]; then
    build build -DCMAKE_BUILD_TYPE=Release -DENGRAM_BUILD_TESTS=OFF
    ctl=build/tools/tablectl/tablectl
  fi
  local dir=${ENGRAM_DEMO_DIR:-/var/tmp/engram-demo}
  mkdir -p "$dir"
  demo_store "$ctl" "$dir"
  demo_engram_layer "$ctl" "$dir/layer"
}

# demo_store TABLECTL DIR: a 1 GiB table read through the DRAM cache, then from NVMe only.
demo_store() {
  local ctl=$1 dir=$2
  rm -rf "$dir/table"
  echo "== create: 4194304 rows x 64 f32 (1 GiB) =="
  $ctl create "$dir/table" --rows 4194304 --dim 64 --dtype f32 --fill random --seed 1 --progress
  $ctl info "$dir/table"
  echo "== bench: Zipf(0.99) lookups, 128 MiB DRAM cache over NVMe, 2 threads, batch 4096 =="
  $ctl bench "$dir/table" --trace zipf:0.99 --dram-cache 128MiB --threads 2 --batch 4096 --duration 5
  echo "== bench: uniform lookups, NVMe only =="
  $ctl bench "$dir/table" --trace uniform --dram-cache 0 --threads 2 --batch 1024 --duration 3
  echo "== bench: the same Zipf lookups through the prefetcher (each batch issued one ahead),"
  echo "   rows copied to a host-emulated GPU with a 64 MiB HBM tier over the DRAM cache =="
  $ctl bench "$dir/table" --trace zipf:0.99 --dram-cache 128MiB --threads 2 --batch 4096 \
    --duration 5 --prefetch --device emulated --hbm-cache 64MiB
  rm -rf "$dir/table"
}

# demo_engram_layer TABLECTL DIR: one Engram layer (the reference demo's config, layer 1) over
# the token ids of a sentence, with random weights and a random int8 table (64 values + a scale
# per row, 673 MiB: writing it is most of the part's time) of exactly the layer's stacked row
# count (the sum of its 16 heads' primes, read from ngram-hash --json).
demo_engram_layer() {
  local ctl=$1 dir=$2 py=/usr/bin/python3 gen=scripts/make_demo_layer.py
  local start=$EPOCHREALTIME
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "== Engram layer 1 over a sentence: reference config, random weights, random table =="
  $py $gen inputs "$dir"
  $ctl ngram-hash --config "$dir/cfg.json" --layer 1 --ids "$dir/ids.npy" --out "$dir/rows.npy" \
    --offsets --json >"$dir/hash.json"
  local rows
  rows=$($py $gen table-rows "$dir/hash.json")
  $ctl create "$dir/table" --rows "$rows" --dim 64 --dtype int8 --fill random --seed 7
  $ctl engram-forward --config "$dir/cfg.json" --layer 1 --table "$dir/table" \
    --weights "$dir/weights.safetensors" --ids "$dir/ids.npy" --hidden "$dir/hidden.npy" \
    --out "$dir/y.npy" --json >"$dir/forward.json"
  $py $gen report "$dir"
  rm -rf "$dir/table"
  local secs
  secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  echo "Engram part: $secs s in all (inputs, table creation, hashing, forward); files in $dir"
}

run_tests() {
  build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENGRAM_BUILD_BENCH=OFF
  ctest --test-dir build --output-on-failure -j"$JOBS"
  echo "== the same suite under AddressSanitizer + UndefinedBehaviorSanitizer =="
  # CUDA off: nvcc code is not instrumented and no GPU runs here; its build is checked above.
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DENGRAM_SANITIZE=address,undefined -DENGRAM_BUILD_BENCH=OFF \
    -DENGRAM_WITH_CUDA=OFF
  ctest --test-dir build-asan --output-on-failure -j"$JOBS"
  echo "== the concurrent parts (cache/, gpu_bridge/) under ThreadSanitizer =="
  # CUDA off: nvcc code is not instrumented, and no GPU runs here anyway.
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DENGRAM_SANITIZE=thread \
    -DENGRAM_BUILD_BENCH=OFF -DENGRAM_WITH_CUDA=OFF >/dev/null
  cmake --build build-tsan -j"$JOBS" --target cache_tests gpu_device_tests prefetch_tests
  ctest --test-dir build-tsan --output-on-failure -j"$JOBS" -L "cache|gpu_bridge"
}

case "${1:-}" in
  demo) install_missing; run_demo ;;
  test) install_missing; run_tests ;;
  *) echo "usage: bash scripts/quickstart.sh demo|test" >&2; exit 2 ;;
esac
