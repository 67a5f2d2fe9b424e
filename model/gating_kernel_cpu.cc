// CPU twin of the gating kernel (gating_kernel.h): one token per loop iteration, OpenMP over
// tokens; per branch one pass for the three reductions and one for u. GateToken is compiled for
// AVX2 and the baseline (ENGRAM_SIMD_CLONES, cpu_math.h).
#include <cmath>

#include "model/cpu_math.h"
#include "model/gating_kernel.h"

namespace engram::model {

float GateFromSums(float sum_kk, float sum_qq, float dot, int32_t hidden, float eps_key,
                   float eps_query) {
  const float h = static_cast<float>(hidden);
  const float rk = 1.0f / std::sqrt(sum_kk / h + eps_key);
  const float rq = 1.0f / std::sqrt(sum_qq / h + eps_query);
  const float x = dot * rk * rq / std::sqrt(h);
  // signed_sqrt: sign(x) * sqrt(max(|x|, 1e-6)); sign(0) = 0 and NaN stays NaN, as in torch.
  float s;
  if (x > 0.0f) {
    s = std::sqrt(std::fmax(x, 1e-6f));
  } else if (x < 0.0f) {
    s = -std::sqrt(std::fmax(-x, 1e-6f));
  } else {
    s = x;  // +-0 or NaN
  }
  return 1.0f / (1.0f + std::exp(-s));
}

namespace {

ENGRAM_SIMD_CLONES void GateToken(const GatingParams& p, int64_t n) {
  const int64_t H = p.hidden, M = p.hc_mult;
  const float* __restrict z = p.proj + n * p.proj_stride;
  const float* __restrict v = z + M * H;
  const float* __restrict vb = p.value_bias;
  for (int64_t m = 0; m < M; ++m) {
    const float* __restrict k = z + m * H;
    const float* __restrict kb = p.key_bias + m * H;
    const float* __restrict w1 = p.norm1 + m * H;
    const float* __restrict w2 = p.norm2 + m * H;
    const float* __restrict q = p.hidden_states + (n * M + m) * H;
    float sum_kk = 0.0f, sum_qq = 0.0f, dot = 0.0f;
#pragma omp simd reduction(+ : sum_kk, sum_qq, dot)
    for (int64_t d = 0; d < H; ++d) {
      const float kk = k[d] + kb[d];
      sum_kk += kk * kk;
      sum_qq += q[d] * q[d];
      dot += (kk * w1[d]) * (q[d] * w2[d]);
    }
    const float gate = GateFromSums(sum_kk, sum_qq, dot, p.hidden, p.eps_key, p.eps_query);
    float* __restrict u = p.out_u + (n * M + m) * H;
#pragma omp simd
    for (int64_t d = 0; d < H; ++d) u[d] = gate * (v[d] + vb[d]);
    if (p.out_gate != nullptr) p.out_gate[n * M + m] = gate;
  }
}

}  // namespace

void GatingCpu(const GatingParams& p, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t n = 0; n < p.tokens; ++n) GateToken(p, n);
}

}  // namespace engram::model
