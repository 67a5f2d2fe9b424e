#!/usr/bin/env bash
# Builds the cache benchmark's real row-id trace: python3.11-doc's reStructuredText sources,
# tokenized with a real BPE vocabulary (gpt-tokenizer's cl100k_base), compressed as the Engram
# paper does (tablectl vocab-compress: NFKC, NFD, strip accents, lowercase, collapse
# whitespace), hashed with the project's Engram hashing (2 layers, n-grams of 2 and 3, 8 heads
# per order; tablectl ngram-hash --offsets), and flattened to layer 1's row ids in token order
# (the 16 row ids of a token consecutively).
#
#   bench/real_trace/make_real_trace.sh [OUT_DIR]
#
# OUT_DIR (default /var/tmp/engram-bench/traces) receives real.npy (1-D int64 row ids) and
# real.json (rows of the layer's table, accesses, distinct rows, documents, tokens...);
# intermediate files go to OUT_DIR/real-work. Environment:
#   TABLECTL   tablectl binary (default build/tools/tablectl/tablectl under the repo root)
#   ENCODING   cl100k_base (default) or o200k_base
#   CHUNK      tokens per sequence (default 4096): each document is cut into sequences of at
#              most CHUNK tokens, and hashing restarts at each (one serving request each)
#   VOCAB      engram_vocab_size per order (default 625000: 16 heads of ~625k rows, a ~10M-row
#              table per layer)
#   SAMPLE     also write the first SAMPLE_ACCESSES ids there (tests/data/real_trace_sample.npy
#              is made this way; default: none)
#   SAMPLE_ACCESSES  default 20000
#   PYTHON     a python3 with numpy (default: python3 if it has numpy, else /usr/bin/python3)
# Needs root for `apt-get install python3.11-doc` when the package is missing, and the npm
# registry for `npm ci` when bench/real_trace/node_modules is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT_DIR="${1:-/var/tmp/engram-bench/traces}"
WORK="$OUT_DIR/real-work"
TABLECTL="${TABLECTL:-$ROOT/build/tools/tablectl/tablectl}"
ENCODING="${ENCODING:-cl100k_base}"
CHUNK="${CHUNK:-4096}"
VOCAB="${VOCAB:-625000}"
SAMPLE="${SAMPLE:-}"
SAMPLE_ACCESSES="${SAMPLE_ACCESSES:-20000}"
DOC_SRC=/usr/share/doc/python3.11-doc/html/_sources

log() { echo "make_real_trace: $*" >&2; }
die() { log "$*"; exit 1; }

[[ -x "$TABLECTL" ]] || die "no tablectl at $TABLECTL (build it, or set TABLECTL)"
command -v node >/dev/null || die "node is not installed"

if [[ -z "${PYTHON:-}" ]]; then
  if python3 -c 'import numpy' 2>/dev/null; then PYTHON=python3; else PYTHON=/usr/bin/python3; fi
fi
if ! "$PYTHON" -c 'import numpy' 2>/dev/null; then
  log "installing python3-numpy"
  apt-get install -y -qq python3-numpy >/dev/null || { apt-get update -qq && apt-get install -y -qq python3-numpy >/dev/null; }
  PYTHON=/usr/bin/python3
fi

if [[ ! -d "$DOC_SRC" ]]; then
  log "installing python3.11-doc"
  apt-get install -y -qq python3.11-doc >/dev/null || { apt-get update -qq && apt-get install -y -qq python3.11-doc >/dev/null; }
fi
[[ -d "$DOC_SRC" ]] || die "$DOC_SRC is missing after installing python3.11-doc"

if [[ ! -d "$HERE/node_modules/gpt-tokenizer" ]]; then
  log "npm ci (gpt-tokenizer, pinned in package-lock.json)"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

mkdir -p "$WORK"
start=$(date +%s.%N)

log "tokenizing $DOC_SRC with $ENCODING"
node "$HERE/tokenize.mjs" --src "$DOC_SRC" --out-dir "$WORK" --encoding "$ENCODING" --chunk "$CHUNK" >&2

log "building the compression map"
"$TABLECTL" vocab-compress "$WORK/tokenizer.json" --out "$WORK/token_map.npy" >&2

PAD_ID=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pad_id"])' "$WORK/docs.json")
cat >"$WORK/engram_config.json" <<EOF
{
  "engram_vocab_size": [$VOCAB, $VOCAB],
  "max_ngram_size": 3,
  "n_head_per_ngram": 8,
  "n_embed_per_ngram": 512,
  "layer_ids": [1, 15],
  "pad_id": $PAD_ID,
  "seed": 0,
  "token_map": "token_map.npy"
}
EOF

log "hashing (layer 1, row ids of the layer's stacked table)"
"$TABLECTL" ngram-hash --config "$WORK/engram_config.json" --layer 1 --ids "$WORK/tokens.npy" \
  --out "$WORK/hashes.npy" --offsets --json >"$WORK/hash.json"

log "flattening to $OUT_DIR/real.npy"
sample_args=()
[[ -n "$SAMPLE" ]] && sample_args=(--sample "$SAMPLE" --sample-accesses "$SAMPLE_ACCESSES")
"$PYTHON" "$HERE/flatten_trace.py" --hashes "$WORK/hashes.npy" --lengths "$WORK/lengths.npy" \
  --hash-json "$WORK/hash.json" --docs "$WORK/docs.json" --config "$WORK/engram_config.json" \
  --out "$OUT_DIR/real.npy" "${sample_args[@]}"
rm -f "$WORK/hashes.npy"  # ~0.5 GB; regenerated in seconds

end=$(date +%s.%N)
log "done in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s"
