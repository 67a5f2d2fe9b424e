#!/usr/bin/python3
"""Turns `tablectl ngram-hash --offsets` output into the cache benchmark's 1-D row-id trace.

  flatten_trace.py --hashes HASHES.npy --lengths LENGTHS.npy --hash-json HASH.json
                   --docs DOCS.json --config CFG.json --out TRACE.npy
                   [--sample SAMPLE.npy --sample-accesses 20000]

HASHES.npy is [B, T, C] int64 row ids of one layer's stacked table (C = hash columns); row b
holds LENGTHS[b] real tokens followed by padding. The trace is every real token's C row ids, in
token order and column order: hashes[0, :len0, :], hashes[1, :len1, :], ... flattened.
Writes TRACE.npy (int64) and TRACE.json (TRACE without .npy): rows (the layer table's rows),
accesses, distinct rows, the share of accesses taken by the hottest 1/5/10 % of the rows, and
where the trace came from. --sample also writes the first --sample-accesses ids to SAMPLE.npy.
"""
import argparse
import json
import math
import os
import sys

import numpy as np


def top_shares(trace, rows, fractions):
    counts = np.bincount(trace, minlength=rows)
    if counts.size > rows:
        sys.exit(f"flatten_trace.py: row id {trace.max()} >= table rows {rows}")
    nz = np.sort(counts[counts > 0])[::-1]
    prefix = np.concatenate([[0], np.cumsum(nz)])
    shares = []
    for f in fractions:
        k = min(int(math.ceil(f * rows - 1e-6)), nz.size)
        shares.append(float(prefix[k]) / trace.size if trace.size else 0.0)
    return int(nz.size), shares


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hashes", required=True)
    ap.add_argument("--lengths", required=True)
    ap.add_argument("--hash-json", required=True, help="tablectl ngram-hash --json output")
    ap.add_argument("--docs", required=True, help="tokenize.mjs docs.json")
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sample")
    ap.add_argument("--sample-accesses", type=int, default=20000)
    a = ap.parse_args()

    hashes = np.load(a.hashes, mmap_mode="r")
    lengths = np.load(a.lengths)
    if hashes.ndim != 3 or hashes.shape[0] != lengths.size:
        sys.exit(f"flatten_trace.py: hashes {hashes.shape} do not match lengths {lengths.shape}")
    with open(a.hash_json) as f:
        info = json.load(f)
    with open(a.docs) as f:
        docs = json.load(f)
    with open(a.config) as f:
        config = json.load(f)
    rows = int(info["total_rows"])
    cols = hashes.shape[2]

    trace = np.empty(int(lengths.sum()) * cols, dtype=np.int64)
    pos = 0
    for b, n in enumerate(lengths):
        n = int(n)
        trace[pos:pos + n * cols] = hashes[b, :n, :].reshape(-1)
        pos += n * cols
    assert pos == trace.size
    if trace.size and (trace.min() < 0 or trace.max() >= rows):
        sys.exit(f"flatten_trace.py: row ids outside [0, {rows})")
    np.save(a.out, trace)

    distinct, shares = top_shares(trace, rows, [0.01, 0.05, 0.10])
    meta = {
        "kind": "real",
        "trace": a.out,
        "rows": rows,
        "accesses": int(trace.size),
        "distinct": distinct,
        "top_1pct_share": shares[0],
        "top_5pct_share": shares[1],
        "top_10pct_share": shares[2],
        "layer": info["layer"],
        "columns": cols,
        "table_sizes": info["table_sizes"],
        "row_offsets": info["row_offsets"],
        "config": config,
        "encoding": docs["encoding"],
        "raw_vocab_size": docs["raw_vocab_size"],
        "documents": docs["documents"],
        "tokens": docs["tokens"],
        "sequences": docs["sequences"],
        "sequence_tokens": docs["chunk"],
    }
    stem = a.out[:-4] if a.out.endswith(".npy") else a.out
    with open(stem + ".json", "w") as f:
        json.dump(meta, f)
        f.write("\n")
    if a.sample:
        np.save(a.sample, trace[:a.sample_accesses])
    print(json.dumps({k: v for k, v in meta.items() if k not in ("config", "table_sizes",
                                                                  "row_offsets")}))


if __name__ == "__main__":
    main()
