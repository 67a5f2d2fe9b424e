// CUDA twin of the fusion kernel (fusion_kernel.h, cuda_kernels.h).
//
// Work split: one block per (sequence b, branch m, chunk of chunk_len tokens); its threads
// cover the branch's H channels (V vectors of W elements each), so the row scale
// rsqrt(mean(u^2) + eps) of a row (b, t, m) is one BlockSum and u is read from memory once:
// the normalised x is never stored. Within the chunk the block walks the tokens of each
// residue class r = t mod dilation in order (t = t0 + r, t0 + r + dil, ...): the conv taps of
// a token are then the previous K - 1 tokens of the same walk, which each thread keeps in
// registers (hist). Rows are taken kRows at a time (one BlockSum for all, the next kRows
// rows already being loaded), so each thread keeps 2 * kRows vector loads in flight. Before
// its walk, residue class r loads the K - 1 rows before the chunk that its first tokens
// need (the halo: (K - 1) * dil rows per chunk in all, ~(K - 1) * dil / chunk_len extra
// reads).
//
// In place (out == u): a block writes only its chunk's rows and each thread only its own
// channels, after reading them; the halo rows belong to the chunk before, which another block
// may already have overwritten, so they are copied aside first (HaloCopyKernel) and read from
// the copy.
//
// The kernel is compiled for K padded to KP = 4 or 8 taps (zero taps in front, whose rows are
// never loaded), so kernel_size <= 8.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "model/cuda_device_util.cuh"
#include "model/cuda_kernels.h"
#include "model/cuda_status.h"

namespace engram::model {
namespace {

using cuda_detail::BlockSum;
using cuda_detail::kMaxWarps;
using cuda_detail::LoadF;
using cuda_detail::StoreF;

constexpr int kThreadCap = 640;  // threads per block at most (H = 2560: 640 x 4 channels)
constexpr int kWidth = 4;        // elements per vector access: 16 bytes f32, 8 bytes bf16

// Rows per BlockSum (and per prefetch) for V vectors per thread: 4 / V, so each thread keeps
// 8 vector loads in flight (kRows current + kRows prefetched) whatever V.
template <int V>
constexpr int kRowsPerStep = V >= 4 ? 1 : 4 / V;
constexpr int kMaxK = 8;

template <typename T>
struct FusionArgs {
  int64_t batch, seq_len;
  int32_t hidden, hc_mult, kernel_size, dilation;
  const T* u;  // not __restrict__: may be out
  const float* norm;
  const float* conv;
  float eps;
  float* row_scale;
  T* out;
  // In place: [B, chunks - 1, (K-1)*dil, M*H] copies of the rows before chunks 1..; else null.
  const T* halo;
  int64_t chunk_len;  // tokens per chunk
  int64_t chunks;     // chunks per sequence
};

// Loads R rows (row[g] == nullptr: zeros) of this thread's channels and their partial sums of
// squares; a BlockSum of `sq` then gives the rows' sums.
template <typename T, int W, int V, int R>
__device__ __forceinline__ void LoadRows(const T* const (&row)[R], const int (&d)[V],
                                         const bool (&on)[V], float (&x)[R][V][W]) {
#pragma unroll
  for (int g = 0; g < R; ++g) {
#pragma unroll
    for (int v = 0; v < V; ++v) {
      if (row[g] != nullptr && on[v]) {
        LoadF<W>(row[g] + d[v], x[g][v]);
      } else {
#pragma unroll
        for (int e = 0; e < W; ++e) x[g][v][e] = 0.0f;
      }
    }
  }
}

template <int W, int V, int R>
__device__ __forceinline__ void SumSquares(const float (&x)[R][V][W], float (&sq)[R]) {
#pragma unroll
  for (int g = 0; g < R; ++g) {
    float s = 0.0f;
#pragma unroll
    for (int v = 0; v < V; ++v) {
#pragma unroll
      for (int e = 0; e < W; ++e) s += x[g][v][e] * x[g][v][e];
    }
    sq[g] = s;
  }
}

__device__ __forceinline__ float RowScale(float sum_sq, float h, float eps) {
  return 1.0f / sqrtf(sum_sq / h + eps);  // as fusion_kernel_cpu.cc RowScales
}

__device__ __forceinline__ float Silu(float x) { return x / (1.0f + expf(-x)); }

template <typename T, int W, int V, int KP>
__global__ void __launch_bounds__(kThreadCap) FusionKernel(const FusionArgs<T> a) {
  constexpr int kRows = kRowsPerStep<V>;
  constexpr int kRedRows = KP - 1 > kRows ? KP - 1 : kRows;
  __shared__ float red[2][kRedRows][kMaxWarps];
  const int64_t chunk = blockIdx.x % a.chunks;
  const int64_t bm = blockIdx.x / a.chunks;
  const int M = a.hc_mult, H = a.hidden, dil = a.dilation;
  const int m = static_cast<int>(bm % M);
  const int64_t b = bm / M;
  const int64_t len = a.seq_len, C = static_cast<int64_t>(M) * H;
  const int64_t t0 = chunk * a.chunk_len;
  const int64_t t1 = t0 + a.chunk_len < len ? t0 + a.chunk_len : len;
  const int skip = KP - a.kernel_size;  // padded taps in front
  const int64_t p1 = static_cast<int64_t>(a.kernel_size - 1) * dil;
  const float h = static_cast<float>(H);

  int d[V];
  bool on[V];
#pragma unroll
  for (int v = 0; v < V; ++v) {
    d[v] = (v * static_cast<int>(blockDim.x) + static_cast<int>(threadIdx.x)) * W;
    on[v] = d[v] < H;
  }
  float w[KP][V][W];  // tap i of this thread's channels (zero for padded taps)
  float nw[V][W];
#pragma unroll
  for (int v = 0; v < V; ++v) {
#pragma unroll
    for (int i = 0; i < KP; ++i) {
      if (i >= skip && on[v]) {
        LoadF<W>(a.conv + (i - skip) * C + static_cast<int64_t>(m) * H + d[v], w[i][v]);
      } else {
#pragma unroll
        for (int e = 0; e < W; ++e) w[i][v][e] = 0.0f;
      }
    }
    if (on[v]) {
      LoadF<W>(a.norm + static_cast<int64_t>(m) * H + d[v], nw[v]);
    } else {
#pragma unroll
      for (int e = 0; e < W; ++e) nw[v][e] = 0.0f;
    }
  }

  const int64_t seq_row0 = b * len * M + m;  // row index of (b, t = 0, m) in [B*T*M]
  const T* ubase = a.u + seq_row0 * H;       // row t at ubase + t * C
  T* obase = a.out + seq_row0 * H;
  const T* halo_base =
      (a.halo != nullptr && chunk > 0)
          ? a.halo + ((b * (a.chunks - 1) + chunk - 1) * p1) * C + static_cast<int64_t>(m) * H
          : nullptr;
  int parity = 0;

  for (int r = 0; r < dil; ++r) {
    const int64_t first = t0 + r;
    if (first >= t1) break;  // uniform over the block

    // History: hist[i] = x at first - (KP-1-i)*dil, i < KP-1 (all before t0: the halo).
    float hist[KP - 1][V][W];
    {
      const T* row[KP - 1];
#pragma unroll
      for (int i = 0; i < KP - 1; ++i) {
        const int64_t th = first - static_cast<int64_t>(KP - 1 - i) * dil;
        if (i < skip || th < 0) {
          row[i] = nullptr;
        } else if (halo_base != nullptr) {
          row[i] = halo_base + (th - (t0 - p1)) * C;
        } else {
          row[i] = ubase + th * C;
        }
      }
      LoadRows<T, W, V, KP - 1>(row, d, on, hist);
      float sq[KP - 1];
      SumSquares<W, V, KP - 1>(hist, sq);
      BlockSum<KP - 1>(sq, red[parity]);
      parity ^= 1;
#pragma unroll
      for (int i = 0; i < KP - 1; ++i) {
        const float s = RowScale(sq[i], h, a.eps);
#pragma unroll
        for (int v = 0; v < V; ++v) {
#pragma unroll
          for (int e = 0; e < W; ++e) hist[i][v][e] = (hist[i][v][e] * s) * nw[v][e];
        }
      }
    }

    const int64_t step = static_cast<int64_t>(kRows) * dil;
    float cur[kRows][V][W];
    {
      const T* row[kRows];
#pragma unroll
      for (int g = 0; g < kRows; ++g) {
        const int64_t tg = first + static_cast<int64_t>(g) * dil;
        row[g] = tg < t1 ? ubase + tg * C : nullptr;
      }
      LoadRows<T, W, V, kRows>(row, d, on, cur);
    }
    for (int64_t t = first; t < t1; t += step) {
      // Prefetch the next kRows rows before this group's reduction.
      float nxt[kRows][V][W];
      {
        const T* row[kRows];
#pragma unroll
        for (int g = 0; g < kRows; ++g) {
          const int64_t tg = t + step + static_cast<int64_t>(g) * dil;
          row[g] = tg < t1 ? ubase + tg * C : nullptr;
        }
        LoadRows<T, W, V, kRows>(row, d, on, nxt);
      }
      float sq[kRows];
      SumSquares<W, V, kRows>(cur, sq);
      BlockSum<kRows>(sq, red[parity]);
      parity ^= 1;
#pragma unroll
      for (int g = 0; g < kRows; ++g) {
        const int64_t tg = t + static_cast<int64_t>(g) * dil;
        if (tg >= t1) break;  // uniform
        const float s = RowScale(sq[g], h, a.eps);
#pragma unroll
        for (int v = 0; v < V; ++v) {
          float o[W];
#pragma unroll
          for (int e = 0; e < W; ++e) {
            const float x = (cur[g][v][e] * s) * nw[v][e];
            float acc = 0.0f;
#pragma unroll
            for (int i = 0; i < KP - 1; ++i) acc += w[i][v][e] * hist[i][v][e];
            acc += w[KP - 1][v][e] * x;
            o[e] = cur[g][v][e] + Silu(acc);
#pragma unroll
            for (int i = 0; i + 1 < KP - 1; ++i) hist[i][v][e] = hist[i + 1][v][e];
            hist[KP - 2][v][e] = x;
          }
          if (on[v]) StoreF<W>(obase + tg * C + d[v], o);
        }
        if (threadIdx.x == 0) a.row_scale[seq_row0 + tg * M] = s;
      }
#pragma unroll
      for (int g = 0; g < kRows; ++g) {
#pragma unroll
        for (int v = 0; v < V; ++v) {
#pragma unroll
          for (int e = 0; e < W; ++e) cur[g][v][e] = nxt[g][v][e];
        }
      }
    }
  }
}

// Copies rows [c * chunk_len - p1, c * chunk_len) of every chunk c >= 1 of every sequence into
// halo [B, chunks - 1, p1, row_units], in units U (16 bytes, or one element).
template <typename U>
__global__ void HaloCopyKernel(const U* src, U* dst, int64_t seq_len, int64_t row_units,
                               int64_t chunks, int64_t chunk_len, int64_t p1, int64_t total) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += stride) {
    const int64_t col = e % row_units;
    int64_t row = e / row_units;
    const int64_t i = row % p1;
    row /= p1;
    const int64_t c = row % (chunks - 1) + 1;
    const int64_t b = row / (chunks - 1);
    const int64_t t = c * chunk_len - p1 + i;
    dst[e] = src[(b * seq_len + t) * row_units + col];
  }
}

bool Aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }
bool Aligned16(const void* p) { return Aligned(p, 16); }

template <typename T>
using KernelFn = void (*)(FusionArgs<T>);

template <typename T, int W, int KP>
KernelFn<T> PickV(int v) {
  switch (v) {
    case 1:
      return FusionKernel<T, W, 1, KP>;
    case 2:
      return FusionKernel<T, W, 2, KP>;
    default:
      return FusionKernel<T, W, 4, KP>;
  }
}

template <typename T, int W>
KernelFn<T> PickKernel(int v, int kp) {
  return kp == 4 ? PickV<T, W, 4>(v) : PickV<T, W, 8>(v);
}

// Owns the halo scratch: stream-ordered (cudaMallocAsync / cudaFreeAsync), or, where memory
// pools are unsupported, cudaMalloc freed after synchronising the stream.
class HaloScratch {
 public:
  explicit HaloScratch(cudaStream_t stream) : stream_(stream) {}
  ~HaloScratch() {
    if (ptr_ == nullptr) return;
    // Results deliberately ignored: a destructor cannot report, and a failure here can only
    // repeat an error the caller's next CUDA call reports anyway.
    if (async_) {
      cudaFreeAsync(ptr_, stream_);
    } else {
      cudaStreamSynchronize(stream_);
      cudaFree(ptr_);
    }
  }
  HaloScratch(const HaloScratch&) = delete;
  HaloScratch& operator=(const HaloScratch&) = delete;

  Status Allocate(size_t bytes) {
    cudaError_t err = cudaMallocAsync(&ptr_, bytes, stream_);
    if (err == cudaErrorNotSupported) {
      cudaGetLastError();  // clear it; fall back to a plain allocation
      async_ = false;
      err = cudaMalloc(&ptr_, bytes);
    }
    if (err != cudaSuccess) ptr_ = nullptr;
    return cuda::CudaStatus(
        err, "FusionCuda: halo scratch of " + std::to_string(bytes) + " bytes for out == u");
  }
  void* get() const { return ptr_; }

 private:
  cudaStream_t stream_;
  void* ptr_ = nullptr;
  bool async_ = true;
};

template <typename T>
Status CopyHalo(const FusionArgs<T>& a, int64_t p1, T* halo, int sms, cudaStream_t stream) {
  const int64_t C = static_cast<int64_t>(a.hc_mult) * a.hidden;
  const int64_t rows = a.batch * (a.chunks - 1) * p1;
  const bool wide = (C * static_cast<int64_t>(sizeof(T))) % 16 == 0 && Aligned16(a.u);
  const int64_t row_units = wide ? C * static_cast<int64_t>(sizeof(T)) / 16 : C;
  const int64_t total = rows * row_units;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, int64_t{8} * sms);
  if (wide) {
    HaloCopyKernel<uint4><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        reinterpret_cast<const uint4*>(a.u), reinterpret_cast<uint4*>(halo), a.seq_len, row_units,
        a.chunks, a.chunk_len, p1, total);
  } else {
    HaloCopyKernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        a.u, halo, a.seq_len, row_units, a.chunks, a.chunk_len, p1, total);
  }
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "FusionCuda: halo copy launch");
  return Status::OK();
}

template <typename T>
Status Validate(const FusionArgs<T>& a) {
  if (a.batch <= 0 || a.seq_len <= 0 || a.hidden <= 0 || a.hc_mult <= 0 || a.kernel_size <= 0 ||
      a.dilation <= 0) {
    return Status::InvalidArgument(
        "FusionCuda: batch, seq_len, hidden, hc_mult, kernel_size and dilation must be > 0");
  }
  if (a.u == nullptr || a.norm == nullptr || a.conv == nullptr || a.row_scale == nullptr ||
      a.out == nullptr) {
    return Status::InvalidArgument("FusionCuda: null array");
  }
  if (a.kernel_size > kMaxK) {
    return Status::NotSupported("FusionCuda: kernel_size " + std::to_string(a.kernel_size) + " > " +
                                std::to_string(kMaxK));
  }
  return Status::OK();
}

template <typename T>
Status Run(FusionArgs<T> a, cudaStream_t stream) {
  ENGRAM_RETURN_IF_ERROR(Validate(a));
  const bool vec = a.hidden % kWidth == 0 && Aligned(a.u, kWidth * sizeof(T)) &&
                   Aligned(a.out, kWidth * sizeof(T)) && Aligned16(a.norm) && Aligned16(a.conv);
  const int width = vec ? kWidth : 1;
  const int nvec = a.hidden / width;
  int v = 1;
  while (v < 4 && (nvec + v - 1) / v > kThreadCap) v *= 2;
  if ((nvec + v - 1) / v > kThreadCap) {
    return Status::NotSupported("FusionCuda: hidden " + std::to_string(a.hidden) +
                                " too large (at most " + std::to_string(4 * kThreadCap * width) +
                                " on this path)");
  }
  const int threads = std::max(32, ((nvec + v - 1) / v + 31) / 32 * 32);
  const int kp = a.kernel_size <= 4 ? 4 : 8;
  const KernelFn<T> kernel = vec ? PickKernel<T, kWidth>(v, kp) : PickKernel<T, 1>(v, kp);

  // Chunks: enough blocks for one full wave of resident blocks, each chunk at least 4 halos
  // long (halo reads <= 25 %) and 16 tokens.
  int device = 0, sms = 0, per_sm = 0;
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device), "FusionCuda: cudaGetDevice");
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                              "FusionCuda: multiprocessor count");
  ENGRAM_CUDA_RETURN_IF_ERROR(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0),
      "FusionCuda: occupancy");
  const int64_t p1 = static_cast<int64_t>(a.kernel_size - 1) * a.dilation;
  const int64_t target = static_cast<int64_t>(sms) * std::max(per_sm, 1);
  const int64_t streams = a.batch * a.hc_mult;  // (b, m) pairs
  const int64_t per_seq = std::max<int64_t>(1, (target + streams - 1) / streams);
  int64_t chunk_len = (a.seq_len + per_seq - 1) / per_seq;
  chunk_len = std::max<int64_t>(chunk_len, std::max<int64_t>(4 * p1, 16));
  chunk_len = std::min<int64_t>(chunk_len, a.seq_len);
  a.chunk_len = chunk_len;
  a.chunks = (a.seq_len + chunk_len - 1) / chunk_len;
  const int64_t blocks = streams * a.chunks;
  if (blocks > 0x7fffffff) {
    return Status::InvalidArgument("FusionCuda: batch * hc_mult * chunks exceeds 2^31 - 1");
  }

  HaloScratch scratch(stream);
  a.halo = nullptr;
  if (static_cast<const void*>(a.out) == static_cast<const void*>(a.u) && a.chunks > 1 && p1 > 0) {
    const size_t bytes = static_cast<size_t>(a.batch * (a.chunks - 1) * p1) *
                         static_cast<size_t>(a.hc_mult) * a.hidden * sizeof(T);
    ENGRAM_RETURN_IF_ERROR(scratch.Allocate(bytes));
    T* halo = static_cast<T*>(scratch.get());
    ENGRAM_RETURN_IF_ERROR(CopyHalo(a, p1, halo, sms, stream));
    a.halo = halo;
  }
  kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(a);
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "FusionCuda: kernel launch");
  return Status::OK();
}

template <typename T, typename P>
FusionArgs<T> ArgsOf(const P& p) {
  FusionArgs<T> a{};
  a.batch = p.batch;
  a.seq_len = p.seq_len;
  a.hidden = p.hidden;
  a.hc_mult = p.hc_mult;
  a.kernel_size = p.kernel_size;
  a.dilation = p.dilation;
  a.u = p.u;
  a.norm = p.norm;
  a.conv = p.conv;
  a.eps = p.eps;
  a.row_scale = p.row_scale;
  a.out = p.out;
  return a;
}

}  // namespace

Status FusionCuda(const FusionParams& p, cudaStream_t stream) {
  return Run(ArgsOf<float>(p), stream);
}

Status FusionCuda(const FusionParamsBf16& p, cudaStream_t stream) {
  return Run(ArgsOf<uint16_t>(p), stream);
}

}  // namespace engram::model
