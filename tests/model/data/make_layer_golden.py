#!/usr/bin/python3
"""Golden vectors for the Engram layer forward (tests/model/engram_layer_test.cc).

Run from anywhere: /usr/bin/python3 tests/model/data/make_layer_golden.py. Needs numpy, torch
(Debian's 1.13, which predates nn.RMSNorm, so RMSNorm is written out here) and sympy. The
outputs are checked in; CI never runs this script.

For each case it writes, under layer_<case>/:
  config.json        the reference's field names (BRIEF section 4), identity token map
                     (compressed_vocab_size); the layer each case is for is in CASES below
                     (and repeated in the test)
  weights.safetensors the module's state_dict with the reference names, stored as the case's
                     weight dtype (f32, f16 or bf16; the reference computes in f32 with exactly
                     those values), including multi_head_embedding.embedding.weight (f32)
  ids.npy            raw token ids [B, T] int64
  rows.npy           row ids into the layer's table [B, T, cols] int64 (hash + head offset),
                     from the reference n-gram hashing below
  hidden.npy         hidden states [B, T, hc_mult, hidden] f32
  y.npy              the module output [B, T, hc_mult, hidden] f32 (torch, float32)

The module below follows the reference `Engram` module of DeepSeek's demo (engram_demo_v1.py)
and BRIEF section 3: same parameter names, same order of operations, f32 throughout. A float64
run of the same module is compared with the float32 one and printed, to show how much of the
1e-5 test tolerance plain f32 rounding uses. Cases whose gate pre-activation comes within 1e-3 of
0 (where signed_sqrt is ill-conditioned and two correct f32 implementations can differ by more
than 1e-5) are rejected and redrawn with the next seed.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
from sympy import isprime

HERE = os.path.dirname(os.path.abspath(__file__))

# Every case has a pad token inside a sequence, an all-zero query row (gate exactly 0.5), a query
# row scaled by 1e-3 and (hc_mult >= 2) a branch whose keys are scaled by 1e-3, so that the eps
# of norm1 / norm2 visibly changes the output.
CASES = [
    # name, config, batch, seq_len, layer, weight dtype, embedding rounded to bf16
    dict(name="hc4", batch=2, seq_len=13, layer=5, weight_dtype="f32", bf16_table=False,
         cfg=dict(engram_vocab_size=[37, 53], max_ngram_size=3, n_embed_per_ngram=16,
                  n_head_per_ngram=4, layer_ids=[1, 5], pad_id=2, seed=0, kernel_size=4,
                  hidden_size=32, hc_mult=4, compressed_vocab_size=50)),
    dict(name="hc1", batch=3, seq_len=7, layer=2, weight_dtype="f16", bf16_table=True,
         cfg=dict(engram_vocab_size=[29], max_ngram_size=2, n_embed_per_ngram=24,
                  n_head_per_ngram=3, layer_ids=[2], pad_id=0, seed=7, kernel_size=3,
                  hidden_size=40, hc_mult=1, compressed_vocab_size=31)),
    dict(name="ngram4", batch=1, seq_len=37, layer=0, weight_dtype="bf16", bf16_table=False,
         cfg=dict(engram_vocab_size=[41, 43, 61], max_ngram_size=4, n_embed_per_ngram=12,
                  n_head_per_ngram=2, layer_ids=[0], pad_id=5, seed=3, kernel_size=2,
                  hidden_size=24, hc_mult=2, compressed_vocab_size=40)),
    dict(name="wide", batch=2, seq_len=11, layer=1, weight_dtype="f32", bf16_table=False,
         cfg=dict(engram_vocab_size=[31, 37], max_ngram_size=3, n_embed_per_ngram=32,
                  n_head_per_ngram=2, layer_ids=[1], pad_id=1, seed=11, kernel_size=4,
                  hidden_size=128, hc_mult=4, compressed_vocab_size=33)),
]


# ---- Reference n-gram hashing (BRIEF section 3), numpy ---------------------------------------
def layer_multipliers(cfg, layer):
    max_long = np.iinfo(np.int64).max
    bound = max(1, (max_long // cfg["compressed_vocab_size"]) // 2)
    rng = np.random.default_rng(int(cfg["seed"] + 10007 * layer))
    return rng.integers(0, bound, size=(cfg["max_ngram_size"],), dtype=np.int64) * 2 + 1


def head_primes_by_layer(cfg):
    seen, out = set(), {}
    for layer in cfg["layer_ids"]:
        primes = []
        for n in range(2, cfg["max_ngram_size"] + 1):
            start = cfg["engram_vocab_size"][n - 2] - 1
            for _ in range(cfg["n_head_per_ngram"]):
                c = start + 1
                while not (isprime(c) and c not in seen):
                    c += 1
                seen.add(c)
                primes.append(c)
                start = c
        out[layer] = primes
    return out


def ngram_hashes(cfg, layer, ids):
    """Hash ids [B, T, cols] without offsets (identity token map: compressed id = raw id)."""
    x = ids.astype(np.int64)
    B, T = x.shape
    mult = layer_multipliers(cfg, layer)
    primes = head_primes_by_layer(cfg)[layer]
    pad = cfg["pad_id"]
    shifts = [x] + [np.pad(x, ((0, 0), (k, 0)), constant_values=pad)[:, :T]
                    for k in range(1, cfg["max_ngram_size"])]
    out, col = [], 0
    with np.errstate(over="ignore"):
        for n in range(2, cfg["max_ngram_size"] + 1):
            mix = shifts[0] * mult[0]
            for k in range(1, n):
                mix = np.bitwise_xor(mix, shifts[k] * mult[k])
            for _ in range(cfg["n_head_per_ngram"]):
                out.append(mix % primes[col])
                col += 1
    return np.stack(out, axis=2), primes


# ---- Reference module (f32 or f64), written out for torch 1.13 -------------------------------
# nn.RMSNorm(H) (eps=None) uses the input dtype's machine epsilon: 2^-23 for the f32 module.
# Kept at the f32 value in the float64 comparison run too, so that run is the same function.
F32_EPS = torch.finfo(torch.float32).eps


def rms_norm(x, weight, eps):
    # What torch 2.x nn.RMSNorm computes: x * rsqrt(mean(x^2) + eps) * weight.
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


class EngramRef(nn.Module):
    def __init__(self, cfg, table_rows):
        super().__init__()
        H, M = cfg["hidden_size"], cfg["hc_mult"]
        D = cfg["n_embed_per_ngram"] // cfg["n_head_per_ngram"]
        E = (cfg["max_ngram_size"] - 1) * cfg["n_embed_per_ngram"]
        self.cfg = cfg
        self.embedding = nn.Embedding(table_rows, D)
        self.value_proj = nn.Linear(E, H)
        self.key_projs = nn.ModuleList([nn.Linear(E, H) for _ in range(M)])
        self.norm1 = nn.ParameterList([nn.Parameter(torch.ones(H)) for _ in range(M)])
        self.norm2 = nn.ParameterList([nn.Parameter(torch.ones(H)) for _ in range(M)])
        self.conv = nn.Conv1d(H * M, H * M, kernel_size=cfg["kernel_size"], groups=H * M,
                              bias=False, padding=(cfg["kernel_size"] - 1) * cfg["max_ngram_size"],
                              dilation=cfg["max_ngram_size"])
        self.conv_norms = nn.ParameterList([nn.Parameter(torch.ones(H)) for _ in range(M)])

    def state_dict_reference_names(self):
        """The tensors under the reference module's state_dict names."""
        M = self.cfg["hc_mult"]
        sd = {"multi_head_embedding.embedding.weight": self.embedding.weight,
              "value_proj.weight": self.value_proj.weight,
              "value_proj.bias": self.value_proj.bias,
              "short_conv.conv.weight": self.conv.weight}
        for m in range(M):
            sd[f"key_projs.{m}.weight"] = self.key_projs[m].weight
            sd[f"key_projs.{m}.bias"] = self.key_projs[m].bias
            sd[f"norm1.{m}.weight"] = self.norm1[m]
            sd[f"norm2.{m}.weight"] = self.norm2[m]
            sd[f"short_conv.norms.{m}.weight"] = self.conv_norms[m]
        return {k: v.detach() for k, v in sd.items()}

    def forward(self, hidden, rows):
        """hidden [B, T, M, H]; rows [B, T, cols] (with offsets). Returns (Y, gate pre-acts)."""
        H, M = self.cfg["hidden_size"], self.cfg["hc_mult"]
        B, T = rows.shape[:2]
        e = self.embedding(rows).flatten(start_dim=-2)               # [B, T, E]
        gates, pre = [], []
        for m in range(M):
            k = rms_norm(self.key_projs[m](e), self.norm1[m], F32_EPS)
            q = rms_norm(hidden[:, :, m, :], self.norm2[m], F32_EPS)
            g = (k * q).sum(dim=-1) / math.sqrt(H)
            pre.append(g)
            g = g.abs().clamp_min(1e-6).sqrt() * g.sign()
            gates.append(g.sigmoid().unsqueeze(-1))
        u = torch.stack(gates, dim=2) * self.value_proj(e).unsqueeze(2)  # [B, T, M, H]
        x = torch.cat([rms_norm(u[:, :, m, :], self.conv_norms[m], 1e-5) for m in range(M)],
                      dim=-1)                                          # [B, T, M*H]
        y = self.conv(x.transpose(1, 2))[..., :T]                       # causal
        y = torch.nn.functional.silu(y).transpose(1, 2).reshape(B, T, M, H)
        return u + y, torch.stack(pre, dim=-1)


# ---- File writers ----------------------------------------------------------------------------
def write_safetensors(path, tensors):
    """tensors: {name: (dtype string, shape, raw bytes)}."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt", "source": "make_layer_golden.py"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def encode_tensor(t, dtype):
    t = t.contiguous()
    if dtype == "f32":
        return "F32", t.float().numpy().astype("<f4").tobytes()
    if dtype == "f16":
        return "F16", t.half().numpy().astype("<f2").tobytes()
    if dtype == "bf16":
        return "BF16", t.bfloat16().view(torch.int16).numpy().astype("<i2").tobytes()
    if dtype == "i64":
        return "I64", t.numpy().astype("<i8").tobytes()
    raise ValueError(dtype)


def round_to(t, dtype):
    return {"f32": t.float(), "f16": t.half().float(), "bf16": t.bfloat16().float()}[dtype]


# ---- Cases -----------------------------------------------------------------------------------
def build_case(case, seed):
    cfg, B, T, layer = case["cfg"], case["batch"], case["seq_len"], case["layer"]
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    ids = gen.integers(0, cfg["compressed_vocab_size"], size=(B, T), dtype=np.int64)
    ids[0, T // 2] = cfg["pad_id"]  # a pad token inside the sequence
    hashes, primes = ngram_hashes(cfg, layer, ids)
    offsets = np.concatenate([[0], np.cumsum(primes)[:-1]]).astype(np.int64)
    rows = hashes + offsets
    model = EngramRef(cfg, int(sum(primes)))
    with torch.no_grad():
        nn.init.normal_(model.embedding.weight)
        if case["bf16_table"]:
            model.embedding.weight.copy_(model.embedding.weight.bfloat16().float())
        for p in list(model.norm1) + list(model.norm2) + list(model.conv_norms):
            p.copy_(1.0 + 0.3 * torch.randn_like(p))
        if cfg["hc_mult"] >= 2:
            # Branch 1's keys ~1e-3 of the others: mean(k^2) ~ 1e-7, where norm1's eps
            # (2^-23) decides the scale, so a wrong eps shows.
            model.key_projs[1].weight.mul_(1e-3)
            model.key_projs[1].bias.mul_(1e-3)
        # Weights in the dtype they are stored in, so f32 compute sees exactly the stored values.
        for name, p in model.named_parameters():
            if name != "embedding.weight":
                p.copy_(round_to(p, case["weight_dtype"]))
    H, M = cfg["hidden_size"], cfg["hc_mult"]
    hidden = torch.randn(B, T, M, H, dtype=torch.float32)
    hidden[0, 0, 0, :] = 0.0  # an all-zero query row: RMSNorm of zeros through eps
    hidden[B - 1, 2, M - 1, :] *= 1e-3  # a tiny query row: norm2's eps matters
    with torch.no_grad():
        y, pre = model(hidden, torch.from_numpy(rows))
        y64, _ = model.double()(hidden.double(), torch.from_numpy(rows))
        model.float()
    return dict(ids=ids, rows=rows, hidden=hidden, y=y, y64=y64, pre=pre, model=model,
                primes=primes)


def write_case(case):
    seed = 1000 + sum(map(ord, case["name"]))
    while True:
        out = build_case(case, seed)
        pre = out["pre"].abs()
        if pre[pre != 0].min().item() > 1e-3:  # exact zeros (zero query row) are exact
            break
        seed += 1
    d = os.path.join(HERE, "layer_" + case["name"])
    os.makedirs(d, exist_ok=True)
    cfg = dict(case["cfg"])
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")
    tensors = {}
    for name, t in out["model"].state_dict_reference_names().items():
        dtype = "f32" if name.endswith("embedding.weight") else case["weight_dtype"]
        code, raw = encode_tensor(t, dtype)
        tensors[name] = (code, tuple(t.shape), raw)
    offsets = torch.tensor([0] + list(np.cumsum(out["primes"])[:-1]), dtype=torch.int64)
    tensors["multi_head_embedding.offsets"] = ("I64", (len(offsets),), offsets.numpy().tobytes())
    write_safetensors(os.path.join(d, "weights.safetensors"), tensors)
    np.save(os.path.join(d, "ids.npy"), out["ids"])
    np.save(os.path.join(d, "rows.npy"), out["rows"].astype(np.int64))
    np.save(os.path.join(d, "hidden.npy"), out["hidden"].numpy().astype(np.float32))
    y = out["y"].numpy().astype(np.float32)
    np.save(os.path.join(d, "y.npy"), y)
    err64 = np.abs(y - out["y64"].numpy()).max() / np.abs(out["y64"].numpy()).max()
    print(f"{case['name']}: seed {seed}, Y {y.shape}, table rows {sum(out['primes'])}, "
          f"min nonzero |gate pre-act| {pre[pre != 0].min().item():.3g}, "
          f"f32 vs f64 max-norm rel err {err64:.2e}")


def main():
    for case in CASES:
        write_case(case)


if __name__ == "__main__":
    main()
