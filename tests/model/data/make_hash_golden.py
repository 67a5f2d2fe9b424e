#!/usr/bin/env python3
"""Golden vectors for the n-gram hashing tests (tests/model/ngram_hash_test.cc and
tests/model/numpy_rng_test.cc), made by numpy and sympy themselves.

Run with Debian's python3 (python3-numpy, python3-sympy) from any directory:
    /usr/bin/python3 tests/model/data/make_hash_golden.py
It rewrites tests/model/data/hash/ (small files; CI only reads them):

  rng_golden.json     numpy.random: SeedSequence pools, generate_state(4, uint64), PCG64
                      state/inc after seeding, raw 64-bit outputs, and
                      default_rng(seed).integers(low, high, size, dtype=int64) for bounds on
                      both of numpy's paths (32-bit buffered Lemire, 64-bit Lemire), with
                      rejections, and the special cases (bound 1, bound 2**32, bound 2**63).
  <case>.json         an Engram config in the reference's field names (BRIEF section 4)
  <case>_map.npy      its raw -> compressed token map, when it has one
  hash_golden.json    per case: the layers' multipliers, primes (table sizes) and offsets,
                      and the files below
  <case>_ids.npy      [B, T] int64 raw ids
  <case>_L<l>.npy     [B, T, (max_ngram_size-1) * n_head_per_ngram] int64 hashes, no offsets
  <case>_dead.npy     [B, T] uint8 dead-token mask (dead cases only)
  <case>_cu.npy       varlen cases: cu_seqlens (int64, num_requests + 1), ids flattened

The hashing below follows the reference demo (deepseek-ai/Engram engram_demo_v1.py,
NgramHashMapping) step by step in numpy int64 arithmetic: same multiplier draws, same prime
search with sympy.isprime, same shift/XOR/% formulation. Dead tokens (DeepSeek-V4.1) and
varlen batches are not in the reference; they are written in the same style from their
definitions: a dead token at lookback k (k = 0 is the current token) makes component k and
every longer component the compressed pad id; a varlen request hashes exactly like that
request alone as a [1, T] batch.
"""
import json
import os

import numpy as np
from sympy import isprime

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "hash")
INT64_MAX = np.iinfo(np.int64).max


# ---------------------------------------------------------------------------------------------
# numpy RNG golden
# ---------------------------------------------------------------------------------------------
def rng_golden():
    seeds = [0, 1, 2, 42, 10007, 10007 * 15 + 3, 2**31 - 1, 2**32 - 1, 2**32, 2**32 + 1,
             2**40 + 12345, 2**63 - 1, 2**63, 2**64 - 1]
    seed_records = []
    for s in seeds:
        ss = np.random.SeedSequence(s)
        pcg = np.random.PCG64(s)
        st = pcg.state["state"]
        raw = np.random.PCG64(s).random_raw(12)
        seed_records.append({
            "seed": s,
            "pool": [int(v) for v in ss.pool],
            "state32": [int(v) for v in ss.generate_state(8, np.uint32)],
            "state64": [int(v) for v in ss.generate_state(4, np.uint64)],
            "pcg_state": "%032x" % st["state"],
            "pcg_inc": "%032x" % st["inc"],
            "raw64": [int(v) for v in raw],
        })
    # Multi-word entropy beyond the pool size (5 words: the extra mixing loop).
    big = 2**140 + 2**70 + 99
    ss = np.random.SeedSequence(big)
    entropy_words = [int(v) for v in np.random.bit_generator._coerce_to_uint32_array(big)]
    multiword = {"entropy": entropy_words, "pool": [int(v) for v in ss.pool],
                 "state64": [int(v) for v in ss.generate_state(4, np.uint64)]}

    bounds = [1, 2, 3, 5, 7, 10, 1000, 129280, 2**31, 3 * 2**30, 2**32 - 1, 2**32, 2**32 + 1,
              2**33, 3 * 2**61, 2**62 + 1, 2**63 - 1, 2**63,
              # The reference's half_bound for a few compressed vocab sizes.
              (INT64_MAX // 129280) // 2, (INT64_MAX // 100000) // 2, (INT64_MAX // 20) // 2,
              (INT64_MAX // 3_000_000_000) // 2]
    int_records = []
    for s in [0, 1, 7, 10007, 10007 * 15, 123456789, 2**33 + 5]:
        for b in bounds:
            n = 40
            vals = np.random.default_rng(s).integers(0, b, size=n, dtype=np.int64)
            int_records.append({"seed": s, "low": 0, "high": b,
                                "values": [int(v) for v in vals]})
    # Non-zero low (numpy's `off`), including negative.
    for s, lo, hi in [(3, -50, 50), (4, -2**62, 2**62), (5, 10, 11), (6, 100, 2**40)]:
        vals = np.random.default_rng(s).integers(lo, hi, size=20, dtype=np.int64)
        int_records.append({"seed": s, "low": lo, "high": hi, "values": [int(v) for v in vals]})
    # Draws in consecutive calls on one generator continue the stream (32-bit buffering state
    # carries over between calls of the 32-bit path).
    g = np.random.default_rng(99)
    sequential = []
    for b in [7, 2**20, 2**40, 5, 3 * 2**30]:
        sequential.append({"high": b, "values": [int(v) for v in g.integers(0, b, size=5,
                                                                              dtype=np.int64)]})
    return {"numpy_version": np.__version__, "seeds": seed_records, "multiword": multiword,
            "integers": int_records, "sequential": {"seed": 99, "calls": sequential}}


# ---------------------------------------------------------------------------------------------
# The reference hashing (NgramHashMapping), on a given raw -> compressed lookup table
# ---------------------------------------------------------------------------------------------
def find_next_prime(start, seen_primes):
    candidate = start + 1
    while True:
        if isprime(candidate) and candidate not in seen_primes:
            return candidate
        candidate += 1


class ReferenceHashMapping:
    """NgramHashMapping with the tokenizer replaced by its lookup table (or identity)."""

    def __init__(self, cfg, lookup_table, compressed_vocab_size):
        self.vocab_size_per_ngram = cfg["engram_vocab_size"]
        self.max_ngram_size = cfg["max_ngram_size"]
        self.n_head_per_ngram = cfg["n_head_per_ngram"]
        self.layer_ids = cfg["layer_ids"]
        self.lookup_table = lookup_table  # None: identity
        self.tokenizer_vocab_size = compressed_vocab_size
        pad_id = cfg["pad_id"]
        self.pad_id = int(self.compress(np.array([pad_id]))[0])

        max_long = np.iinfo(np.int64).max
        M_max = int(max_long // self.tokenizer_vocab_size)
        half_bound = max(1, M_max // 2)
        PRIME_1 = 10007
        self.layer_multipliers = {}
        for layer_id in self.layer_ids:
            base_seed = int(cfg["seed"] + PRIME_1 * int(layer_id))
            g = np.random.default_rng(base_seed)
            r = g.integers(low=0, high=half_bound, size=(self.max_ngram_size,), dtype=np.int64)
            self.layer_multipliers[layer_id] = r * 2 + 1
        self.vocab_size_across_layers = self.calculate_vocab_size_across_layers()

    def compress(self, input_ids):
        arr = np.asarray(input_ids, dtype=np.int64)
        if self.lookup_table is None:
            return arr.copy()
        pos_mask = arr >= 0
        out = arr.copy()
        out[pos_mask] = self.lookup_table[arr[pos_mask]]
        return out

    def calculate_vocab_size_across_layers(self):
        seen_primes = set()
        result = {}
        for layer_id in self.layer_ids:
            all_sizes = []
            for ngram in range(2, self.max_ngram_size + 1):
                heads = []
                start = self.vocab_size_per_ngram[ngram - 2] - 1
                for _ in range(self.n_head_per_ngram):
                    p = find_next_prime(start, seen_primes)
                    seen_primes.add(p)
                    heads.append(p)
                    start = p
                all_sizes.append(heads)
            result[layer_id] = all_sizes
        return result

    def get_ngram_hashes(self, x, layer_id, dead=None):
        """x: compressed [B, T]. dead: optional [B, T] bool (the DeepSeek-V4.1 extension)."""
        x = np.asarray(x, dtype=np.int64)
        B, T = x.shape
        multipliers = self.layer_multipliers[layer_id]

        def shift_k(a, k, fill):
            if k == 0:
                return a
            return np.pad(a, ((0, 0), (k, 0)), mode="constant", constant_values=fill)[:, :T]

        base_shifts = [shift_k(x, k, self.pad_id) for k in range(self.max_ngram_size)]
        if dead is not None:
            dead = np.asarray(dead, dtype=bool)
            hit = np.zeros_like(dead)
            for k in range(self.max_ngram_size):
                hit = hit | shift_k(dead, k, False)  # a dead token at lookback <= k
                base_shifts[k] = np.where(hit, np.int64(self.pad_id), base_shifts[k])

        all_hashes = []
        for n in range(2, self.max_ngram_size + 1):
            tokens = base_shifts[:n]
            mix = tokens[0] * multipliers[0]
            for k in range(1, n):
                mix = np.bitwise_xor(mix, tokens[k] * multipliers[k])
            head_vocab_sizes = self.vocab_size_across_layers[layer_id][n - 2]
            for j in range(self.n_head_per_ngram):
                mod = int(head_vocab_sizes[j])
                all_hashes.append((mix % mod).astype(np.int64, copy=False))
        return np.stack(all_hashes, axis=2)

    def hash(self, input_ids, layer_id, dead=None):
        return self.get_ngram_hashes(self.compress(input_ids), layer_id, dead)


def offsets_of(primes_2d):
    flat = [p for heads in primes_2d for p in heads]
    offs = [0]
    for p in flat[:-1]:
        offs.append(offs[-1] + p)
    return flat, offs


def save(name, arr):
    np.save(os.path.join(OUT, name), arr)


def make_case(name, cfg, ids_fn, lookup_table=None, map_name=None, dead_fn=None, varlen=None,
              rng_seed=0):
    """Writes one case. lookup_table: raw->compressed int64 map saved as map_name (None:
    identity of cfg['compressed_vocab_size']). dead_fn: the explicit dead mask (the config's
    dead_token_ids are added to it). varlen: list of request lengths (ids flattened)."""
    cfg = dict(cfg)
    if lookup_table is not None:
        save(map_name, lookup_table.astype(np.int64))
        cfg["token_map"] = map_name
        cvs = int(lookup_table.max()) + 1
    else:
        cvs = cfg["compressed_vocab_size"]
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    ref = ReferenceHashMapping(cfg, lookup_table, cvs)
    rng = np.random.default_rng(rng_seed)
    record = {"config": name + ".json", "compressed_vocab_size": cvs,
              "compressed_pad_id": ref.pad_id, "layers": []}

    ids = ids_fn(rng)  # [B, T] raw, or flattened for varlen
    save(name + "_ids.npy", ids.astype(np.int64))
    record["ids"] = name + "_ids.npy"
    dead = None
    if dead_fn is not None:
        mask = dead_fn(rng, ids)
        save(name + "_dead.npy", mask.astype(np.uint8))
        record["dead"] = name + "_dead.npy"
        dead = mask | np.isin(ids, cfg.get("dead_token_ids", []))
    if varlen is not None:
        cu = np.concatenate([[0], np.cumsum(varlen)]).astype(np.int64)
        save(name + "_cu.npy", cu)
        record["cu_seqlens"] = name + "_cu.npy"

    for layer in cfg["layer_ids"]:
        if varlen is None:
            h = ref.hash(ids, layer, dead)
        else:  # each request alone, as the reference would hash it, then concatenated
            parts = []
            for r in range(len(varlen)):
                seg = slice(cu[r], cu[r + 1])
                d = None if dead is None else dead[seg][None, :]
                parts.append(ref.hash(ids[seg][None, :], layer, d)[0])
            h = np.concatenate(parts, axis=0)
        fname = "%s_L%d.npy" % (name, layer)
        save(fname, h)
        primes, offs = offsets_of(ref.vocab_size_across_layers[layer])
        record["layers"].append({
            "layer_id": layer,
            "multipliers": [int(v) for v in ref.layer_multipliers[layer]],
            "primes": primes, "offsets": offs, "total_rows": int(sum(primes)),
            "hashes": fname})
    return record


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    with open(os.path.join(OUT, "rng_golden.json"), "w") as f:
        json.dump(rng_golden(), f)
        f.write("\n")

    cases = {}
    # 1. The reference demo's defaults (EngramConfig/BackBoneConfig in engram_demo_v1.py). The
    #    real DeepSeek-V3 compression map needs the tokenizer; an identity map of the raw vocab
    #    stands in (same code path, 64-bit multiplier draws).
    demo = {"engram_vocab_size": [129280 * 5, 129280 * 5], "max_ngram_size": 3,
            "n_embed_per_ngram": 512, "n_head_per_ngram": 8, "layer_ids": [1, 15],
            "pad_id": 2, "seed": 0, "kernel_size": 4, "hidden_size": 1024, "hc_mult": 4,
            "compressed_vocab_size": 129280}
    cases["demo"] = make_case("demo", demo, lambda r: r.integers(0, 129280, size=(3, 40)),
                              rng_seed=1)

    # 2. DeepSeek-V4.1-like: 3 orders x 8 heads (max_ngram_size 4), odd per-order sizes, a
    #    compression map (raw 6000 -> ~2400 compressed, many-to-one), three layers.
    rng = np.random.default_rng(2024)
    v41_map = rng.integers(0, 2400, size=6000)
    v41_map[0] = 2399  # the maximum is taken
    v41 = {"engram_vocab_size": [1000003, 800011, 600001], "max_ngram_size": 4,
           "n_embed_per_ngram": 1024, "n_head_per_ngram": 8, "layer_ids": [2, 9, 17],
           "pad_id": 1, "seed": 7, "kernel_size": 4, "hidden_size": 2560, "hc_mult": 4}
    cases["v41"] = make_case("v41", v41, lambda r: r.integers(0, 6000, size=(2, 37)),
                             lookup_table=v41_map, map_name="v41_map.npy", rng_seed=3)

    # 3. Odd small sizes: tables of 7 and 5 rows (the heads' primes collide across orders and
    #    layers, so the search skips taken primes), 3 heads, layer 0, a large seed, a pad id
    #    that compresses to a non-trivial id, and negative raw ids (the reference passes them
    #    through uncompressed).
    odd_map = np.random.default_rng(5).integers(0, 20, size=50)
    odd_map[49] = 19
    odd_map[17] = 13  # pad_id 17 compresses to 13
    odd = {"engram_vocab_size": [7, 5], "max_ngram_size": 3, "n_embed_per_ngram": 48,
           "n_head_per_ngram": 3, "layer_ids": [0, 3, 5], "pad_id": 17, "seed": 2**40 + 3,
           "kernel_size": 2, "hidden_size": 64, "hc_mult": 2}

    def odd_ids(r):
        x = r.integers(0, 50, size=(4, 9))
        x[1, 2] = -1
        x[3, 0] = -7
        return x
    cases["odd"] = make_case("odd", odd, odd_ids, lookup_table=odd_map, map_name="odd_map.npy",
                            rng_seed=4)

    # 4. A compressed vocabulary so large that the multiplier bound is < 2**32: numpy's 32-bit
    #    buffered draw path (identity map of 3e9 ids).
    wide = {"engram_vocab_size": [5000011, 4000037], "max_ngram_size": 3,
            "n_embed_per_ngram": 64, "n_head_per_ngram": 4, "layer_ids": [4, 6],
            "pad_id": 0, "seed": 11, "kernel_size": 4, "hidden_size": 32, "hc_mult": 1,
            "compressed_vocab_size": 3_000_000_000}
    cases["wide32"] = make_case("wide32", wide,
                                lambda r: r.integers(0, 3_000_000_000, size=(2, 25)),
                                rng_seed=6)

    # 5. bound == 1 (compressed vocab > INT64_MAX / 4): every multiplier is 1.
    b1 = {"engram_vocab_size": [101, 103, 107], "max_ngram_size": 4, "n_embed_per_ngram": 8,
          "n_head_per_ngram": 2, "layer_ids": [1], "pad_id": 5, "seed": 0, "kernel_size": 4,
          "hidden_size": 8, "hc_mult": 1, "compressed_vocab_size": 2**62 + 1}
    cases["bound1"] = make_case("bound1", b1,
                                lambda r: r.integers(0, 2**62, size=(2, 11)), rng_seed=8)

    # 6. Dead tokens (DeepSeek-V4.1), with the v41 config plus dead raw ids in the config:
    #    runs of dead tokens, a dead first token, a dead last token, isolated ones.
    def dead_mask(r, ids):
        d = r.random(ids.shape) < 0.15
        d[0, 0] = True
        d[1, 5:9] = True
        d[1, -1] = True
        return d
    v41_dead = dict(v41, dead_token_ids=[3, 4, 5])

    def dead_ids(r):
        x = r.integers(0, 6000, size=(2, 41))
        x[0, 10] = 3
        x[0, 20:22] = 5
        x[1, 30] = 4
        return x
    cases["v41_dead"] = make_case("v41_dead", v41_dead, dead_ids, lookup_table=v41_map,
                                  map_name="v41_map.npy", dead_fn=dead_mask, rng_seed=9)

    # 7. Varlen: requests of lengths 1..70 flattened (cu_seqlens), demo config; and v41 with
    #    dead tokens. The C++ test also hashes each request in pieces with carried history.
    lens = [1, 2, 3, 70, 17, 5, 33]
    cases["demo_varlen"] = make_case("demo_varlen", demo,
                                     lambda r: r.integers(0, 129280, size=sum(lens)),
                                     varlen=lens, rng_seed=10)
    lens2 = [9, 1, 40, 4, 23]
    cases["v41_dead_varlen"] = make_case(
        "v41_dead_varlen", v41, lambda r: r.integers(0, 6000, size=sum(lens2)),
        lookup_table=v41_map, map_name="v41_map.npy", varlen=lens2, rng_seed=11,
        dead_fn=lambda r, ids: r.random(ids.shape) < 0.12)

    with open(os.path.join(OUT, "hash_golden.json"), "w") as f:
        json.dump({"numpy_version": np.__version__, "cases": cases}, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %d files, %d bytes, to %s" % (len(os.listdir(OUT)), total, OUT))


if __name__ == "__main__":
    main()
