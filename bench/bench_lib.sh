# shellcheck shell=bash
# Shared by the run_*_bench.sh scripts that build one benchmark program in a Release build and
# keep its output out of the source tree (run_store_bench.sh, run_prefetch_bench.sh). Sourced,
# not run; it only defines variables and functions.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
#   bench_init NAME          sets ROOT (the repository), DIR ($ENGRAM_BENCH_DIR, default
#                            /var/tmp/engram-bench), BUILD ($ENGRAM_BUILD_DIR, default
#                            <repo>/build-release), RESULTS ($DIR/results), STAMP (the date),
#                            LOG and JSON ($RESULTS/NAME-$STAMP.txt / .json)
#   bench_build NAME         configures $BUILD when it has no build.ninja (Release, no tests) and
#                            builds target NAME; when the build fails (somebody's file mid-edit)
#                            an existing $BUILD/bench/NAME is reused with a warning on stderr.
#                            Status 1, with "run_NAME: cannot build NAME" on stderr, when there
#                            is no binary to run.
#   bench_logged FUNC ARGS   creates $RESULTS and runs FUNC ARGS with its stdout and stderr
#                            also written to $LOG; the status is FUNC's.

# shellcheck disable=SC2034  # the variables are for the sourcing script
bench_init() {
  local name=$1
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  DIR=${ENGRAM_BENCH_DIR:-/var/tmp/engram-bench}
  BUILD=${ENGRAM_BUILD_DIR:-$ROOT/build-release}
  RESULTS=$DIR/results
  STAMP=$(date +%Y%m%d-%H%M%S)
  LOG=$RESULTS/$name-$STAMP.txt
  JSON=$RESULTS/$name-$STAMP.json
}

bench_build() {
  local name=$1
  if [[ ! -f $BUILD/build.ninja ]] && ! cmake -S "$ROOT" -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DENGRAM_BUILD_TESTS=OFF; then
    echo "run_$name: cannot build $name" >&2
    return 1
  fi
  if ! cmake --build "$BUILD" -j2 --target "$name"; then
    if [[ -x $BUILD/bench/$name ]]; then
      echo "run_$name: build failed; using the existing $BUILD/bench/$name" >&2
    else
      echo "run_$name: cannot build $name" >&2
      return 1
    fi
  fi
}

bench_logged() {
  mkdir -p "$RESULTS"
  "$@" 2>&1 | tee "$LOG"
  return "${PIPESTATUS[0]}"
}
