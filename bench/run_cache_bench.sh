#!/usr/bin/env bash
# Hit-ratio benchmark of the row cache's policies (issue 4): replays row-id traces through
# `tablectl replay` at cache sizes of 1, 5 and 10 % of the table's rows and prints one markdown
# table (rows: trace x cache size, columns: policies' hit ratios in %), then the pinning
# experiment on the real trace (profile the first half, replay the second half with and
# without the hot rows pinned).
#
#   bench/run_cache_bench.sh
#
# Traces (generated when missing, under $TRACES; each X.npy has an X.json with its rows):
#   zipf-0.8, zipf-0.99, zipf-1.2  bench/trace_gen --kind zipf over 10M rows
#   real                           bench/real_trace/make_real_trace.sh (python3.11-doc text,
#                                  cl100k_base, Engram layer 1 row ids, ~10M-row table)
#   drift-0.99                     bench/trace_gen --kind drift: Zipf 0.99 whose hot set is
#                                  replaced every $PERIOD accesses
# Environment (defaults in brackets):
#   BUILD      build directory configured with -DENGRAM_BUILD_BENCH=ON [<repo>/build]
#   TABLECTL   [$BUILD/tools/tablectl/tablectl]      TRACE_GEN  [$BUILD/bench/trace_gen]
#   TRACES     [/var/tmp/engram-bench/traces]        RESULTS    [/var/tmp/engram-bench/results]
#   ROWS       synthetic traces' table rows [10000000]
#   ACCESSES   synthetic traces' length [50000000]   PERIOD     drift period [2500000]
#   SIZES      cache sizes, % of the table's rows ["1 5 10"]
#   PIN_SIZES  hot rows pinned in the real-trace experiment, % of rows ["1 5"]
#   POLICY     --policy of the main table [all]      SHARDS     --shards (unset: tablectl's)
#   JOBS       replays run at once [2]
# Output: the raw JSON of every replay (each line tagged with trace, cache_pct, experiment),
# the trace summaries and the tables go to $RESULTS/cache_bench-DATE.txt; the tables are
# printed last on stdout. Exit status 1 if a trace or a replay failed (the tables still show
# what ran).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
export TABLECTL="${TABLECTL:-$BUILD/tools/tablectl/tablectl}"
TRACE_GEN="${TRACE_GEN:-$BUILD/bench/trace_gen}"
TRACES="${TRACES:-/var/tmp/engram-bench/traces}"
RESULTS="${RESULTS:-/var/tmp/engram-bench/results}"
ROWS="${ROWS:-10000000}"
ACCESSES="${ACCESSES:-50000000}"
PERIOD="${PERIOD:-2500000}"
SIZES="${SIZES:-1 5 10}"
PIN_SIZES="${PIN_SIZES:-1 5}"
POLICY="${POLICY:-all}"
export SHARDS="${SHARDS:-}"
JOBS="${JOBS:-2}"
SEED=42

log() { echo "run_cache_bench: $*" >&2; }
die() { log "$*"; exit 1; }

[[ -x "$TABLECTL" ]] || die "no tablectl at $TABLECTL (build it, or set TABLECTL / BUILD)"
"$TABLECTL" replay --help >/dev/null 2>&1 || die "$TABLECTL has no working 'replay' command"
"$TABLECTL" profile --help >/dev/null 2>&1 || die "$TABLECTL has no working 'profile' command"

mkdir -p "$TRACES" "$RESULTS"
STAMP="$(date +%Y%m%d-%H%M%S)"
RUN="$(mktemp -d "${TMPDIR:-/tmp}/cache_bench.XXXXXX")"
trap 'rm -rf "$RUN"' EXIT
mkdir -p "$RUN/raw"
failed=0

# ---- traces ------------------------------------------------------------------------------------

# A JSON field of a trace's sidecar ("" when absent).
meta() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null || true; }

# gen_synthetic NAME PERIOD ARGS...: (re)generates $TRACES/NAME.npy unless it is there with the
# same rows, length and period (PERIOD "" for a trace without one).
gen_synthetic() {
  local name="$1" period="$2"; shift 2
  local npy="$TRACES/$name.npy" json="$TRACES/$name.json"
  if [[ -f "$npy" && -f "$json" && "$(meta "$json" rows)" == "$ROWS" &&
        "$(meta "$json" accesses)" == "$ACCESSES" && "$(meta "$json" period)" == "$period" ]]; then
    return 0
  fi
  [[ -x "$TRACE_GEN" ]] || die "no trace_gen at $TRACE_GEN (configure with -DENGRAM_BUILD_BENCH=ON)"
  log "generating $name"
  "$TRACE_GEN" "$@" --rows "$ROWS" --accesses "$ACCESSES" --seed "$SEED" --out "$npy" >/dev/null
}

for alpha in 0.8 0.99 1.2; do
  gen_synthetic "zipf-$alpha" "" --kind zipf --alpha "$alpha" || failed=1
done
gen_synthetic drift-0.99 "$PERIOD" --kind drift --alpha 0.99 --period "$PERIOD" || failed=1
if [[ ! -f "$TRACES/real.npy" || ! -f "$TRACES/real.json" ]]; then
  log "generating real (bench/real_trace/make_real_trace.sh)"
  TABLECTL="$TABLECTL" "$HERE/real_trace/make_real_trace.sh" "$TRACES" >/dev/null || failed=1
fi

TRACE_NAMES=()
for name in zipf-0.8 zipf-0.99 zipf-1.2 real drift-0.99; do
  if [[ -f "$TRACES/$name.npy" && -f "$TRACES/$name.json" ]]; then
    TRACE_NAMES+=("$name")
  else
    log "trace $name is missing; skipped"
    failed=1
  fi
done

# ---- jobs ----------------------------------------------------------------------------------------

# One replay: run_job OUT TRACE ARGS... -> OUT (JSON lines); on failure its stderr is shown.
run_job() {
  local out="$1" trace="$2"; shift 2
  local shard_args=()
  [[ -n "$SHARDS" ]] && shard_args=(--shards "$SHARDS")
  if "$TABLECTL" replay --trace "$trace" "${shard_args[@]}" "$@" --json >"$out.tmp" 2>"$out.err"; then
    mv "$out.tmp" "$out"
  else
    echo "run_cache_bench: tablectl replay --trace $trace $* failed: $(cat "$out.err")" >&2
    return 1
  fi
}
export -f run_job

# One line per replay: its run_job words, shell-quoted (run by xargs through bash).
JOBFILE="$RUN/jobs"
: >"$JOBFILE"
add_job() { printf '%q ' "$@" >>"$JOBFILE"; printf '\n' >>"$JOBFILE"; }

pct_rows() { python3 -c 'import sys; print(max(1, round(int(sys.argv[1]) * float(sys.argv[2]) / 100)))' "$1" "$2"; }

for name in "${TRACE_NAMES[@]}"; do
  rows="$(meta "$TRACES/$name.json" rows)"
  for pct in $SIZES; do
    add_job "$RUN/raw/main__${name}__${pct}.jsonl" "$TRACES/$name.npy" \
      --cache-rows "$(pct_rows "$rows" "$pct")" --policy "$POLICY"
  done
done

# Pinning: profile the first half of the real trace (cut at a token boundary: 16 ids a token),
# replay the second half with the default policy, without and with the hot rows pinned.
if [[ " ${TRACE_NAMES[*]} " == *" real "* ]]; then
  rows="$(meta "$TRACES/real.json" rows)"
  accesses="$(meta "$TRACES/real.json" accesses)"
  cols="$(meta "$TRACES/real.json" columns)"
  half=$(( accesses / 2 / ${cols:-16} * ${cols:-16} ))
  for pin in $PIN_SIZES; do
    k="$(pct_rows "$rows" "$pin")"
    hot="$RUN/hot-$pin.npy"
    log "profiling real[0:$half] for the top $k rows ($pin %)"
    if ! "$TABLECTL" profile --trace "$TRACES/real.npy" --range "0:$half" --top "$k" --out "$hot" \
        >"$RUN/raw/profile__${pin}.txt" 2>"$RUN/raw/profile__${pin}.err"; then
      log "profile failed: $(cat "$RUN/raw/profile__${pin}.err")"
      failed=1; continue
    fi
    for pct in $SIZES; do
      n="$(pct_rows "$rows" "$pct")"
      (( k <= n )) || continue  # more hot rows than the cache holds: not a useful point
      add_job "$RUN/raw/pin__real__${pct}__hot${pin}.jsonl" "$TRACES/real.npy" \
        --range "$half:" --cache-rows "$n" --policy default --hot "$hot"
    done
  done
  for pct in $SIZES; do
    add_job "$RUN/raw/pin__real__${pct}__hot0.jsonl" "$TRACES/real.npy" \
      --range "$half:" --cache-rows "$(pct_rows "$rows" "$pct")" --policy default
  done
fi

njobs=$(grep -c '' "$JOBFILE" || true)
log "running $njobs replays, $JOBS at a time"
start=$(date +%s)
if ! xargs -d '\n' -P "$JOBS" -I{} bash -c 'run_job {}' <"$JOBFILE"; then
  failed=1
fi
log "replays done in $(( $(date +%s) - start )) s"

# ---- report --------------------------------------------------------------------------------------

OUT="$RESULTS/cache_bench-$STAMP.txt"
BENCH_HEADER="$STAMP git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') \
tablectl $TABLECTL, sizes [$SIZES] %, pin sizes [$PIN_SIZES] %, policy $POLICY, \
shards ${SHARDS:-default}, synthetic rows $ROWS accesses $ACCESSES period $PERIOD" \
python3 - "$RUN/raw" "$TRACES" "$OUT" "$SIZES" "$PIN_SIZES" "${TRACE_NAMES[@]}" <<'EOF'
import json, os, sys

raw_dir, traces, out_path, sizes, pin_sizes = sys.argv[1:6]
names = sys.argv[6:]
sizes = sizes.split()
pin_sizes = pin_sizes.split()

def load(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]

raw_lines = []
main = {}  # (trace, pct) -> {policy: result}
for name in names:
    for pct in sizes:
        rs = load(f"{raw_dir}/main__{name}__{pct}.jsonl")
        main[(name, pct)] = {r["policy"]: r for r in rs}
        raw_lines += [dict(r, trace=name, cache_pct=float(pct), experiment="policies") for r in rs]
pin = {}  # (pct, hot pct) -> result
for pct in sizes:
    for hot in ["0"] + pin_sizes:
        rs = load(f"{raw_dir}/pin__real__{pct}__hot{hot}.jsonl")
        if rs:
            pin[(pct, hot)] = rs[0]
            raw_lines += [dict(r, trace="real[second half]", cache_pct=float(pct),
                               hot_pct=float(hot), experiment="pinning") for r in rs]
profiles = {}
for hot in pin_sizes:
    p = f"{raw_dir}/profile__{hot}.txt"
    if os.path.exists(p) and os.path.getsize(p):
        profiles[hot] = open(p).read().strip()

policies = []
for res in main.values():
    for p in res:
        if p not in policies:
            policies.append(p)
candidates = [p for p in policies if p not in ("default", "opt")]

def pct(x):
    return f"{100 * x:.2f}"

lines = []
lines.append("## Traces\n")
lines.append("| trace | table rows | accesses | distinct rows | top 1 % rows | top 5 % | top 10 % |")
lines.append("|---|---:|---:|---:|---:|---:|---:|")
for name in names:
    m = json.load(open(f"{traces}/{name}.json"))
    lines.append(f"| {name} | {m['rows']} | {m['accesses']} | {m['distinct']} | "
                 f"{pct(m['top_1pct_share'])} % | {pct(m['top_5pct_share'])} % | "
                 f"{pct(m['top_10pct_share'])} % |")
lines.append("\n(top N % rows: share of accesses to the N % most accessed rows, with hindsight.)\n")

lines.append("## Hit ratio (%) by policy\n")
head = ["trace", "cache"] + policies + ["default - max(lru, wtinylfu) (pp)",
                                        "default - best candidate (pp)"]
lines.append("| " + " | ".join(head) + " |")
lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
for name in names:
    for size in sizes:
        res = main[(name, size)]
        cells = [name, f"{size} %"]
        cells += [pct(res[p]["hit_ratio"]) if p in res else "-" for p in policies]
        d = res.get("default")
        base = [res[p]["hit_ratio"] for p in ("lru", "wtinylfu") if p in res]
        cells.append(f"{100 * (d['hit_ratio'] - max(base)):+.2f}" if d and base else "-")
        best = [(res[p]["hit_ratio"], p) for p in candidates if p in res]
        if d and best:
            b, bp = max(best)
            cells.append(f"{100 * (d['hit_ratio'] - b):+.2f} ({bp})")
        else:
            cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")

if pin:
    lines.append("\n## Pinning on the real trace (default policy, second half replayed)\n")
    lines.append("| cache | hot rows pinned (profile of the first half) | hot_rows_pinned | "
                 "hit ratio (%) | vs unpinned (pp) |")
    lines.append("|---|---|---:|---:|---:|")
    for size in sizes:
        base = pin.get((size, "0"))
        for hot in ["0"] + pin_sizes:
            r = pin.get((size, hot))
            if not r:
                continue
            what = "none" if hot == "0" else f"top {hot} % of rows"
            delta = "" if hot == "0" or not base else \
                f"{100 * (r['hit_ratio'] - base['hit_ratio']):+.2f}"
            lines.append(f"| {size} % | {what} | {r.get('hot_rows_pinned', 0)} | "
                         f"{pct(r['hit_ratio'])} | {delta} |")
    for hot, p in profiles.items():
        lines.append(f"\nprofile for the top {hot} % (tablectl profile): {p}")

table = "\n".join(lines) + "\n"
with open(out_path, "w") as f:
    f.write("# cache_bench " + os.environ.get("BENCH_HEADER", "") + "\n")
    f.write("# raw results: one JSON object per replay and policy\n")
    for r in raw_lines:
        f.write(json.dumps(r) + "\n")
    f.write("\n")
    f.write(table)
print(table)
print(f"(raw JSON and tables: {out_path})")
EOF

exit "$failed"
