#!/usr/bin/python3
"""CPU forward of one Engram layer: ours (layer_bench, C++) against PyTorch, same run.

Builds random weights, a random f32 table and inputs for one shape, then times, alternating
rounds (ours, torch, ours, torch, ...), under the same thread count:
  ours   EngramLayer::Forward via bench/layer_bench: rows gathered from a resident store table
         through the C API, one OpenBLAS GEMM for the M+1 projections, fused kernels.
  torch  the reference Engram module's forward (deepseek-ai/Engram engram_demo_v1.py) on the
         same weights: nn.Embedding over the same rows, the per-branch nn.Linear, RMSNorm
         written out (torch 1.13 has no nn.RMSNorm), ShortConv's depthwise dilated Conv1d,
         under torch.no_grad().
Both start from the layer's row ids (hash + head offset): hashing is not timed on either side.
The outputs are compared (max-norm relative error) so a fast wrong answer cannot pass.

Usage (from the repository root, after building layer_bench and tablectl):
  /usr/bin/python3 bench/layer_bench.py [--build build] [--threads 2] [--tokens 4096]
      [--hidden 2560] [--hc-mult 4] [--max-ngram 3] [--n-embed 1280] [--heads 8]
      [--kernel 4] [--table-rows 262144] [--rounds 3] [--iters 2]
Threads: torch.set_num_threads(N) and OMP/OPENBLAS_NUM_THREADS=N for both sides (torch's
nn.Linear calls the system BLAS, which is OpenBLAS here; the script prints which library
torch loaded).
"""
import argparse
import json
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build", help="build directory with layer_bench, tablectl")
    p.add_argument("--layer-bench", help="layer_bench binary (default BUILD/bench/layer_bench)")
    p.add_argument("--tablectl", help="tablectl binary (default BUILD/tools/tablectl/tablectl)")
    p.add_argument("--workdir", default="/var/tmp/engram-layer-bench")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--tokens", type=int, default=4096, help="B * T")
    p.add_argument("--hidden", type=int, default=2560)
    p.add_argument("--hc-mult", type=int, default=4)
    p.add_argument("--max-ngram", type=int, default=3)
    p.add_argument("--n-embed", type=int, default=1280)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kernel", type=int, default=4)
    p.add_argument("--table-rows", type=int, default=262144)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=2, help="timed forwards per round and side")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


ARGS = parse_args()
# Before torch is imported: its OpenMP pool and the BLAS it calls read these.
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def rms_norm(x, weight, eps):
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class ShortConv(nn.Module):  # the reference ShortConv, activation on
    def __init__(self, hidden, kernel, dilation, hc_mult):
        super().__init__()
        c = hidden * hc_mult
        self.hc_mult = hc_mult
        self.conv = nn.Conv1d(c, c, kernel_size=kernel, groups=c, bias=False,
                              padding=(kernel - 1) * dilation, dilation=dilation)
        self.norms = nn.ModuleList([RMSNorm(hidden, 1e-5) for _ in range(hc_mult)])
        self.act_fn = nn.SiLU()

    def forward(self, x):
        B, T, G, C = x.shape
        x = torch.cat([self.norms[i](x[:, :, i, :]) for i in range(G)], dim=-1)
        y = self.act_fn(self.conv(x.transpose(1, 2))[..., :T])
        return y.transpose(1, 2).view(B, T, G, C).contiguous()


class Engram(nn.Module):  # the reference Engram, from row ids (hashing done)
    def __init__(self, rows, dim, e, hidden, hc_mult, kernel, max_ngram):
        super().__init__()
        self.hc_mult, self.hidden = hc_mult, hidden
        self.embedding = nn.Embedding(rows, dim)
        self.short_conv = ShortConv(hidden, kernel, max_ngram, hc_mult)
        self.value_proj = nn.Linear(e, hidden)
        self.key_projs = nn.ModuleList([nn.Linear(e, hidden) for _ in range(hc_mult)])
        self.norm1 = nn.ModuleList([RMSNorm(hidden) for _ in range(hc_mult)])
        self.norm2 = nn.ModuleList([RMSNorm(hidden) for _ in range(hc_mult)])

    def forward(self, hidden_states, row_ids):
        embeddings = self.embedding(row_ids).flatten(start_dim=-2)
        gates = []
        for m in range(self.hc_mult):
            key = self.norm1[m](self.key_projs[m](embeddings))
            query = self.norm2[m](hidden_states[:, :, m, :])
            gate = (key * query).sum(dim=-1) / math.sqrt(self.hidden)
            gate = gate.abs().clamp_min(1e-6).sqrt() * gate.sign()
            gates.append(gate.sigmoid().unsqueeze(-1))
        value = torch.stack(gates, dim=2) * self.value_proj(embeddings).unsqueeze(2)
        return value + self.short_conv(value)


def write_safetensors(path, tensors):
    header, offset = {}, 0
    for name, t in tensors.items():
        n = t.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for t in tensors.values():
            f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())


def build_inputs(a, d):
    torch.manual_seed(a.seed)
    dim = a.n_embed // a.heads
    e = (a.max_ngram - 1) * a.n_embed
    cols = (a.max_ngram - 1) * a.heads
    model = Engram(a.table_rows, dim, e, a.hidden, a.hc_mult, a.kernel, a.max_ngram)
    with torch.no_grad():
        for p in model.parameters():  # norms away from 1 so they matter
            if p.dim() == 1 and p.shape[0] == a.hidden and (p == 1).all():
                p.copy_(1 + 0.2 * torch.randn_like(p))
    model.eval()
    sd = {"value_proj.weight": model.value_proj.weight, "value_proj.bias": model.value_proj.bias,
          "short_conv.conv.weight": model.short_conv.conv.weight}
    for m in range(a.hc_mult):
        sd[f"key_projs.{m}.weight"] = model.key_projs[m].weight
        sd[f"key_projs.{m}.bias"] = model.key_projs[m].bias
        sd[f"norm1.{m}.weight"] = model.norm1[m].weight
        sd[f"norm2.{m}.weight"] = model.norm2[m].weight
        sd[f"short_conv.norms.{m}.weight"] = model.short_conv.norms[m].weight
    write_safetensors(os.path.join(d, "weights.safetensors"), sd)
    np.save(os.path.join(d, "table.npy"), model.embedding.weight.detach().numpy())
    cfg = {"engram_vocab_size": [a.table_rows // 2] * (a.max_ngram - 1),
           "max_ngram_size": a.max_ngram, "n_embed_per_ngram": a.n_embed,
           "n_head_per_ngram": a.heads, "layer_ids": [1], "pad_id": 0, "seed": 0,
           "kernel_size": a.kernel, "hidden_size": a.hidden, "hc_mult": a.hc_mult,
           "compressed_vocab_size": 1000}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    T = a.tokens // a.batch
    gen = np.random.default_rng(a.seed)
    rows = gen.integers(0, a.table_rows, size=(a.batch, T, cols), dtype=np.int64)
    hidden = torch.randn(a.batch, T, a.hc_mult, a.hidden)
    np.save(os.path.join(d, "rows.npy"), rows)
    np.save(os.path.join(d, "hidden.npy"), hidden.numpy())
    return model, torch.from_numpy(rows), hidden


def torch_blas():
    torch.ones(64, 64) @ torch.ones(64, 64)
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if ".so" in line}
    hits = sorted(os.path.basename(x) for x in libs if "blas" in x or "mkl" in x)
    return ", ".join(hits) or "unknown"


def run_ours(a, d, out=None):
    cmd = [a.layer_bench or os.path.join(a.build, "bench", "layer_bench"), "--config", os.path.join(d, "config.json"),
           "--table", os.path.join(d, "table"), "--weights", os.path.join(d, "weights.safetensors"),
           "--rows", os.path.join(d, "rows.npy"), "--hidden", os.path.join(d, "hidden.npy"),
           "--threads", str(a.threads), "--iters", str(a.iters), "--warmup", "1"]
    if out:
        cmd += ["--out", out]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout)


def run_torch(a, model, rows, hidden):
    times = []
    with torch.no_grad():
        model(hidden, rows)  # warm-up
        for _ in range(a.iters):
            t0 = time.perf_counter()
            y = model(hidden, rows)
            times.append(time.perf_counter() - t0)
    return times, y


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    d = a.workdir
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    print(f"shape: tokens {a.tokens} (B {a.batch}), hidden {a.hidden}, hc_mult {a.hc_mult}, "
          f"max_ngram {a.max_ngram}, n_embed {a.n_embed}, heads {a.heads} "
          f"(row dim {a.n_embed // a.heads}), kernel {a.kernel}, table rows {a.table_rows}; "
          f"threads {a.threads}")
    model, rows, hidden = build_inputs(a, d)
    subprocess.run([a.tablectl or os.path.join(a.build, "tools", "tablectl", "tablectl"), "import",
                    os.path.join(d, "table"), os.path.join(d, "table.npy"), "--no-progress"],
                   check=True, capture_output=True)
    print(f"torch {torch.__version__}: threads {torch.get_num_threads()}, BLAS {torch_blas()}")

    ours_s, torch_s, phases = [], [], []
    y_ours_path = os.path.join(d, "y_ours.npy")
    y_torch = None
    for r in range(a.rounds):
        res = run_ours(a, d, out=y_ours_path if r == 0 else None)
        ours_s += res["seconds"]
        phases.append(res["best_phases_s"])
        t, y_torch = run_torch(a, model, rows, hidden)
        torch_s += t
        print(f"round {r}: ours {[round(x, 3) for x in res['seconds']]} s, "
              f"torch {[round(x, 3) for x in t]} s")

    y_ours = np.load(y_ours_path)
    ref = y_torch.numpy()
    err = float(np.abs(y_ours - ref).max() / np.abs(ref).max())
    ours_med, torch_med = statistics.median(ours_s), statistics.median(torch_s)
    ratio = torch_med / ours_med
    ph = min(phases, key=lambda p: sum(p.values()))
    print()
    print(f"{'side':<8}{'median s':>10}{'best s':>10}{'tokens/s':>12}")
    print(f"{'ours':<8}{ours_med:>10.3f}{min(ours_s):>10.3f}{a.tokens / ours_med:>12.0f}")
    print(f"{'torch':<8}{torch_med:>10.3f}{min(torch_s):>10.3f}{a.tokens / torch_med:>12.0f}")
    print(f"ours phases (best round): " + ", ".join(f"{k} {v:.3f}s" for k, v in ph.items()))
    print(f"output max-norm relative difference ours vs torch: {err:.2e}")
    print(f"speed-up (median tokens/s, ours / torch): {ratio:.2f}x (target >= 2x): "
          f"{'PASS' if ratio >= 2 else 'BELOW TARGET'}")
    if err > 1e-4:
        print("ERROR: outputs differ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
