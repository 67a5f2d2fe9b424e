// CUDA twin of the gating kernel (gating_kernel.h, cuda_kernels.h).
//
// One block per token, all M branches: per branch one pass over the H channels for the three
// reductions (sum k^2, sum q^2, dot(k * norm1, q * norm2)) and one BlockSum, which leaves the
// sums, hence the gate, on every thread; then one pass over the value projection writes
// u[n, m, :] = gate_m * v for up to kGroup branches at once, so v is read once per token for
// M <= kGroup. Bytes per token: (2M + 1) H read + M H written, weights from cache.
//
// Threads: enough 32-lane warps that each covers an equal share of the H / W vectors (W = 4
// f32 or 8 bf16: one 16-byte access), at most kBlockCap.
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

constexpr int kBlockCap = 512;  // threads per block at most (H = 2560 f32: 320 threads)
constexpr int kGroup = 8;       // branches whose gates are held at once (register array)

template <typename T>
struct GatingArgs {
  int64_t tokens;
  int32_t hidden, hc_mult;
  const T* proj;
  int64_t proj_stride;
  const float* key_bias;
  const float* value_bias;
  const float* norm1;
  const float* norm2;
  const T* hidden_states;
  float eps_key, eps_query;
  T* out_u;
  float* out_gate;
};

// GateFromSums (gating_kernel_cpu.cc) on the device, same operations in the same order.
__device__ __forceinline__ float GateDevice(float sum_kk, float sum_qq, float dot, int hidden,
                                            float eps_key, float eps_query) {
  const float h = static_cast<float>(hidden);
  const float rk = 1.0f / sqrtf(sum_kk / h + eps_key);
  const float rq = 1.0f / sqrtf(sum_qq / h + eps_query);
  const float x = dot * rk * rq / sqrtf(h);
  float s;
  if (x > 0.0f) {
    s = sqrtf(fmaxf(x, 1e-6f));
  } else if (x < 0.0f) {
    s = -sqrtf(fmaxf(-x, 1e-6f));
  } else {
    s = x;  // +-0 or NaN
  }
  return 1.0f / (1.0f + expf(-s));
}

// W elements per access: 4 (f32) / 8 (bf16) on the vectorised path, 1 on the scalar one.
template <typename T, int W>
__global__ void __launch_bounds__(kBlockCap) GatingKernel(const GatingArgs<T> a) {
  __shared__ float red[2][3][kMaxWarps];
  const int64_t n = blockIdx.x;
  const int H = a.hidden, M = a.hc_mult;
  const int nvec = H / W;
  const T* z = a.proj + n * a.proj_stride;
  const T* v = z + static_cast<int64_t>(M) * H;
  int parity = 0;
  for (int m0 = 0; m0 < M; m0 += kGroup) {
    float gate[kGroup];
#pragma unroll
    for (int j = 0; j < kGroup; ++j) {
      gate[j] = 0.0f;
      const int m = m0 + j;
      if (m >= M) break;  // uniform over the block
      const T* k = z + static_cast<int64_t>(m) * H;
      const T* q = a.hidden_states + (n * M + m) * H;
      const float* kb = a.key_bias + static_cast<int64_t>(m) * H;
      const float* w1 = a.norm1 + static_cast<int64_t>(m) * H;
      const float* w2 = a.norm2 + static_cast<int64_t>(m) * H;
      float s[3] = {0.0f, 0.0f, 0.0f};  // sum k^2, sum q^2, dot
      for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
        float kv[W], qv[W], kbv[W], w1v[W], w2v[W];
        LoadF<W>(k + i * W, kv);
        LoadF<W>(q + i * W, qv);
        LoadF<W>(kb + i * W, kbv);
        LoadF<W>(w1 + i * W, w1v);
        LoadF<W>(w2 + i * W, w2v);
#pragma unroll
        for (int e = 0; e < W; ++e) {
          const float kk = kv[e] + kbv[e];
          s[0] += kk * kk;
          s[1] += qv[e] * qv[e];
          s[2] += (kk * w1v[e]) * (qv[e] * w2v[e]);
        }
      }
      BlockSum<3>(s, red[parity]);
      parity ^= 1;
      gate[j] = GateDevice(s[0], s[1], s[2], H, a.eps_key, a.eps_query);
      if (threadIdx.x == 0 && a.out_gate != nullptr) a.out_gate[n * M + m] = gate[j];
    }
    for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
      float vv[W], vb[W];
      LoadF<W>(v + i * W, vv);
      LoadF<W>(a.value_bias + i * W, vb);
#pragma unroll
      for (int e = 0; e < W; ++e) vv[e] += vb[e];
#pragma unroll
      for (int j = 0; j < kGroup; ++j) {
        const int m = m0 + j;
        if (m >= M) break;
        float o[W];
#pragma unroll
        for (int e = 0; e < W; ++e) o[e] = gate[j] * vv[e];
        StoreF<W>(a.out_u + (n * M + m) * H + static_cast<int64_t>(i) * W, o);
      }
    }
  }
}

bool Aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Threads for nvec vectors: the fewest passes of at most kBlockCap threads, then the fewest
// whole warps that cover the vectors in that many passes.
int BlockThreads(int nvec) {
  const int passes = (nvec + kBlockCap - 1) / kBlockCap;
  const int per_pass = (nvec + passes - 1) / passes;
  return std::max(32, (per_pass + 31) / 32 * 32);
}

template <typename T, int W>
Status Launch(const GatingArgs<T>& a, cudaStream_t stream) {
  const int threads = BlockThreads(a.hidden / W);
  GatingKernel<T, W><<<static_cast<unsigned>(a.tokens), threads, 0, stream>>>(a);
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "gating kernel launch");
  return Status::OK();
}

template <typename T>
Status Run(const GatingArgs<T>& a, cudaStream_t stream) {
  if (a.tokens <= 0 || a.hidden <= 0 || a.hc_mult <= 0) {
    return Status::InvalidArgument("GatingCuda: tokens, hidden and hc_mult must be > 0");
  }
  if (a.proj == nullptr || a.key_bias == nullptr || a.value_bias == nullptr || a.norm1 == nullptr ||
      a.norm2 == nullptr || a.hidden_states == nullptr || a.out_u == nullptr) {
    return Status::InvalidArgument("GatingCuda: null array");
  }
  const int64_t width = static_cast<int64_t>(a.hc_mult + 1) * a.hidden;
  if (a.proj_stride < width) {
    return Status::InvalidArgument("GatingCuda: proj_stride " + std::to_string(a.proj_stride) +
                                   " < (hc_mult + 1) * hidden = " + std::to_string(width));
  }
  if (a.tokens > 0x7fffffff) {
    return Status::InvalidArgument("GatingCuda: more than 2^31 - 1 tokens in one call");
  }
  constexpr int kVec = 16 / sizeof(T);  // elements per 16-byte access
  const bool vec = a.hidden % kVec == 0 && a.proj_stride % kVec == 0 && Aligned16(a.proj) &&
                   Aligned16(a.hidden_states) && Aligned16(a.out_u) && Aligned16(a.key_bias) &&
                   Aligned16(a.value_bias) && Aligned16(a.norm1) && Aligned16(a.norm2);
  return vec ? Launch<T, kVec>(a, stream) : Launch<T, 1>(a, stream);
}

template <typename T, typename P>
GatingArgs<T> ArgsOf(const P& p) {
  return GatingArgs<T>{p.tokens,   p.hidden,     p.hc_mult, p.proj,    p.proj_stride,
                       p.key_bias, p.value_bias, p.norm1,   p.norm2,   p.hidden_states,
                       p.eps_key,  p.eps_query,  p.out_u,   p.out_gate};
}

}  // namespace

Status GatingCuda(const GatingParams& p, cudaStream_t stream) {
  return Run(ArgsOf<float>(p), stream);
}

Status GatingCuda(const GatingParamsBf16& p, cudaStream_t stream) {
  return Run(ArgsOf<uint16_t>(p), stream);
}

}  // namespace engram::model
