#!/usr/bin/env bash
# engram-store quickstart: installs what is missing (Debian packages), builds, then runs
#   demo  - creates a 1 GiB table, reads it through a 128 MiB DRAM cache over NVMe (io_uring),
#           prints throughput and per-tier hit counts
#   test  - the whole test suite, then again under AddressSanitizer + UBSan
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
  build build -DCMAKE_BUILD_TYPE=Release -DENGRAM_BUILD_TESTS=OFF
  local ctl=build/tools/tablectl/tablectl
  local dir=${ENGRAM_DEMO_DIR:-/var/tmp/engram-demo}
  mkdir -p "$dir"
  rm -rf "$dir/table"
  echo "== create: 4194304 rows x 64 f32 (1 GiB) =="
  $ctl create "$dir/table" --rows 4194304 --dim 64 --dtype f32 --fill random --seed 1 --progress
  $ctl info "$dir/table"
  echo "== bench: Zipf(0.99) lookups, 128 MiB DRAM cache over NVMe, 2 threads, batch 4096 =="
  $ctl bench "$dir/table" --trace zipf:0.99 --dram-cache 128MiB --threads 2 --batch 4096 --duration 5
  echo "== bench: uniform lookups, NVMe only =="
  $ctl bench "$dir/table" --trace uniform --dram-cache 0 --threads 2 --batch 1024 --duration 3
  rm -rf "$dir/table"
}

run_tests() {
  build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENGRAM_BUILD_BENCH=OFF
  ctest --test-dir build --output-on-failure -j"$JOBS"
  echo "== the same suite under AddressSanitizer + UndefinedBehaviorSanitizer =="
  build build-asan -DCMAKE_BUILD_TYPE=Debug -DENGRAM_SANITIZE=address,undefined -DENGRAM_BUILD_BENCH=OFF
  ctest --test-dir build-asan --output-on-failure -j"$JOBS"
}

case "${1:-}" in
  demo) install_missing; run_demo ;;
  test) install_missing; run_tests ;;
  *) echo "usage: bash scripts/quickstart.sh demo|test" >&2; exit 2 ;;
esac
