// CPU twin of the fusion kernel (fusion_kernel.h).
//
// The per-row loops are compiled for AVX2 and the baseline (ENGRAM_SIMD_CLONES, cpu_math.h).
// Pass 1 (OpenMP over rows): row_scale[b, t, m] = rsqrt(mean(u^2) + eps).
// Pass 2 (OpenMP over (sequence, branch, block of kBlock channels)): walks t from T-1 down to
// 0, accumulating the K dilated taps of the normalised u for the block in a local buffer,
// then writes out[t] = u[t] + SiLU(acc). Going backwards makes out == u safe: step t reads
// u at t and earlier positions only, and only out[t] is written, after those reads. The
// normalised x is never stored: each tap recomputes u * row_scale * norm.
#include <algorithm>
#include <cmath>

#include "model/cpu_math.h"
#include "model/fusion_kernel.h"

namespace engram::model {
namespace {

constexpr int64_t kBlock = 256;  // channels per task: 1 KiB rows stay in L1 across the taps

// sum of squares of x[0, n).
ENGRAM_SIMD_CLONES float SumSquares(const float* __restrict x, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t d = 0; d < n; ++d) sum += x[d] * x[d];
  return sum;
}

void RowScales(const FusionParams& p, int threads) {
  const int64_t rows = p.batch * p.seq_len * p.hc_mult;
  const int64_t H = p.hidden;
  const float h = static_cast<float>(p.hidden);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    p.row_scale[r] = 1.0f / std::sqrt(SumSquares(p.u + r * H, H) / h + p.eps);
  }
}

// One task: sequence b, branch m, channels [d0, d0 + len) of that branch.
ENGRAM_SIMD_CLONES void ConvBlock(const FusionParams& p, int64_t b, int64_t m, int64_t d0,
                                  int64_t len) {
  const int64_t T = p.seq_len, H = p.hidden, M = p.hc_mult, K = p.kernel_size;
  const int64_t C = M * H, dil = p.dilation;
  const float* __restrict norm = p.norm + m * H + d0;
  float acc[kBlock];
  for (int64_t t = T - 1; t >= 0; --t) {
    std::fill(acc, acc + len, 0.0f);
    for (int64_t j = 0; j < K; ++j) {
      const int64_t tj = t - (K - 1 - j) * dil;
      if (tj < 0) continue;
      const int64_t row = (b * T + tj) * M + m;
      const float s = p.row_scale[row];
      const float* x = p.u + row * H + d0;
      const float* __restrict w = p.conv + j * C + m * H + d0;
#pragma omp simd
      for (int64_t d = 0; d < len; ++d) acc[d] += w[d] * ((x[d] * s) * norm[d]);
    }
    const int64_t row = (b * T + t) * M + m;
    const float* ut = p.u + row * H + d0;
    float* o = p.out + row * H + d0;
    // o and ut are either the same array or disjoint; element d reads ut[d] before o[d].
#pragma omp simd
    for (int64_t d = 0; d < len; ++d) o[d] = ut[d] + SiluVec(acc[d]);
  }
}

}  // namespace

void FusionCpu(const FusionParams& p, int threads) {
  RowScales(p, threads);
  const int64_t blocks_per_branch = (p.hidden + kBlock - 1) / kBlock;
  const int64_t tasks = p.batch * p.hc_mult * blocks_per_branch;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t blk = task % blocks_per_branch;
    const int64_t m = (task / blocks_per_branch) % p.hc_mult;
    const int64_t b = task / (blocks_per_branch * p.hc_mult);
    const int64_t d0 = blk * kBlock;
    ConvBlock(p, b, m, d0, std::min<int64_t>(kBlock, p.hidden - d0));
  }
}

}  // namespace engram::model
