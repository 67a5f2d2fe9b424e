#!/usr/bin/python3
"""The Engram-layer part of `bash scripts/quickstart.sh demo`: inputs for one layer's forward
over a real sentence, and a readable report of what `tablectl` made of them.

Needs only Debian's python3 + python3-numpy (no torch, no network).

  make_demo_layer.py inputs DIR        writes DIR/cfg.json, ids.npy, weights.safetensors,
                                       hidden.npy (random weights and hidden states, seeded)
  make_demo_layer.py table-rows J      prints total_rows from `tablectl ngram-hash --json` output
                                       J: the layer's stacked-table row count (sum of its primes)
  make_demo_layer.py report DIR        reads DIR/hash.json, rows.npy, forward.json, y.npy and
                                       prints the row ids, the output and the times

The config is the reference demo's default (deepseek-ai/Engram engram_demo_v1.py, the same as
tests/model/data/hash/demo.json): 2- and 3-grams x 8 heads, rows of 512 / 8 = 64 values,
hidden_size 1024, hc_mult 4, kernel 4, with the identity token map over DeepSeek-V3's 129280 ids.
The weights use the reference module's state_dict names (model/layer_weights.h) and the
initialisation of its torch modules (Linear and depthwise Conv1d: uniform(+-1/sqrt(fan_in)),
RMSNorm weights: ones); they are random, so the output is a shape and a speed, not a meaning.
"""
import json
import os
import struct
import sys

import numpy as np

LAYER = 1

# "It was the best of times, it was the worst of times." in GPT-4's tokenizer (tiktoken's
# cl100k_base, computed once with the npm package gpt-tokenizer 4.0.0; all ids < 100277, so they
# fit the identity map over 129280 ids). " was the" and " of times" occur twice, preceded by
# different words.
SENTENCE = "It was the best of times, it was the worst of times."
TOKENS = ["It", " was", " the", " best", " of", " times", ",", " it", " was", " the", " worst",
          " of", " times", "."]
IDS = [2181, 574, 279, 1888, 315, 3115, 11, 433, 574, 279, 12047, 315, 3115, 13]

CONFIG = {
    "engram_vocab_size": [646400, 646400],
    "max_ngram_size": 3,
    "n_embed_per_ngram": 512,
    "n_head_per_ngram": 8,
    "layer_ids": [1, 15],
    "pad_id": 2,
    "seed": 0,
    "kernel_size": 4,
    "hidden_size": 1024,
    "hc_mult": 4,
    "compressed_vocab_size": 129280,
}


def write_safetensors(path, tensors):
    """tensors: {name: float32 numpy array}, stored as F32."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt", "source": "scripts/make_demo_layer.py"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def make_inputs(d):
    os.makedirs(d, exist_ok=True)
    c = CONFIG
    H, M, K = c["hidden_size"], c["hc_mult"], c["kernel_size"]
    E = (c["max_ngram_size"] - 1) * c["n_embed_per_ngram"]
    rng = np.random.default_rng(2024)

    def uniform(shape, fan_in):
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape).astype(np.float32)

    w = {"value_proj.weight": uniform((H, E), E), "value_proj.bias": uniform((H,), E),
         "short_conv.conv.weight": uniform((M * H, 1, K), K)}
    for m in range(M):
        w[f"key_projs.{m}.weight"] = uniform((H, E), E)
        w[f"key_projs.{m}.bias"] = uniform((H,), E)
        w[f"norm1.{m}.weight"] = np.ones(H, np.float32)
        w[f"norm2.{m}.weight"] = np.ones(H, np.float32)
        w[f"short_conv.norms.{m}.weight"] = np.ones(H, np.float32)
    write_safetensors(os.path.join(d, "weights.safetensors"), w)

    with open(os.path.join(d, "cfg.json"), "w") as f:
        json.dump(c, f, indent=2)
    ids = np.array([IDS], dtype=np.int64)  # [B=1, T]
    np.save(os.path.join(d, "ids.npy"), ids)
    hidden = rng.standard_normal((1, len(IDS), M, H)).astype(np.float32)
    np.save(os.path.join(d, "hidden.npy"), hidden)
    print(f"wrote {d}/cfg.json (reference demo config, layer {LAYER}), ids.npy [1, {len(IDS)}], "
          f"weights.safetensors ({sum(a.size for a in w.values()):,} f32 values), "
          f"hidden.npy [1, {len(IDS)}, {M}, {H}]")


def table_rows(path):
    with open(path) as f:
        print(json.load(f)["total_rows"])


def report(d):
    with open(os.path.join(d, "hash.json")) as f:
        h = json.load(f)
    with open(os.path.join(d, "forward.json")) as f:
        fw = json.load(f)
    rows = np.load(os.path.join(d, "rows.npy"))[0]  # [T, cols], row ids (offsets added)
    y = np.load(os.path.join(d, "y.npy"))  # [1, T, M, H]
    hidden = np.load(os.path.join(d, "hidden.npy"))
    heads = h["heads_per_ngram"]
    T, cols = rows.shape
    assert len(TOKENS) == T and cols == (h["max_ngram_size"] - 1) * heads

    print(f'sentence: "{SENTENCE}"')
    print(f"  {T} tokens (GPT-4 cl100k_base ids), hashed for layer {h['layer']}: "
          f"{cols} table rows per token = orders 2..{h['max_ngram_size']} x {heads} heads")
    sizes = h["table_sizes"]
    print(f"  stacked table: {h['total_rows']:,} rows = sum of {len(sizes)} head primes "
          f"({sizes[0]:,} .. {sizes[-1]:,})")
    shown = 3
    print(f"row ids of the first tokens (first {shown} of {heads} heads per order):")
    print(f"  {'t':>2}  {'token':<8} {'id':>6}   {'2-gram rows':<26}   3-gram rows")
    for t in range(min(8, T)):
        two = " ".join(f"{r:>8}" for r in rows[t, :shown])
        three = " ".join(f"{r:>8}" for r in rows[t, heads:heads + shown])
        print(f"  {t:>2}  {TOKENS[t]!r:<8} {IDS[t]:>6}   {two}   {three}")
    # The same bigram twice -> the same 2-gram rows; different preceding words -> other 3-grams.
    ok = True
    for t in range(1, T):
        for u in range(t + 1, T):
            if IDS[t - 1:t + 1] != IDS[u - 1:u + 1]:
                continue
            same2 = bool((rows[t, :heads] == rows[u, :heads]).all())
            same3 = bool((rows[t, heads:] == rows[u, heads:]).all())
            want3 = t >= 2 and IDS[t - 2] == IDS[u - 2]
            ok &= same2 and same3 == want3
            print(f"  bigram {''.join(TOKENS[t - 1:t + 1])!r} at t={t} and t={u}: 2-gram rows "
                  f"{'identical' if same2 else 'DIFFERENT'}, 3-gram rows "
                  f"{'identical' if same3 else 'different'} "
                  f"({''.join(TOKENS[max(t - 2, 0):t + 1])!r} vs "
                  f"{''.join(TOKENS[u - 2:u + 1])!r})")

    t_s = fw["timings_s"]
    print(f"output Y: {fw['shape']} f32 (batch, tokens, hc_mult, hidden), from the "
          f"table of {fw['table_rows']:,} {fw['table_dtype']} rows")
    norms = np.linalg.norm(y[0].reshape(T, -1), axis=1)
    hnorms = np.linalg.norm(hidden[0].reshape(T, -1), axis=1)
    print("  |Y[t]|      " + " ".join(f"{v:6.2f}" for v in norms[:8]) + " ...")
    print("  |hidden[t]| " + " ".join(f"{v:6.2f}" for v in hnorms[:8]) + " ...")
    print("  Y[0, 0, 0, :6] = " + " ".join(f"{v:+.5f}" for v in y[0, 0, 0, :6]))
    finite = bool(np.isfinite(y).all())
    print(f"  all {y.size:,} values finite: {'yes' if finite else 'NO'}")
    print(f"time: {fw['seconds'] * 1e3:.1f} ms for hashing + loading weights + forward; forward "
          f"{sum(t_s.values()) * 1e3:.1f} ms (gather from NVMe {t_s['gather'] * 1e3:.2f}, "
          f"GEMM {t_s['gemm'] * 1e3:.2f}, gating {t_s['gating'] * 1e3:.2f}, "
          f"fusion {t_s['fusion'] * 1e3:.2f} ms)")
    if not (ok and finite):
        print("make_demo_layer.py: unexpected result (see above)", file=sys.stderr)
        sys.exit(1)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("inputs", "table-rows", "report"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    {"inputs": make_inputs, "table-rows": table_rows, "report": report}[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
