// Fusion kernel of the Engram layer (BRIEF section 3): the module output from the gated
// values u = gate * v,
//
//   x[b, t, c] = u[b, t, m, d] * rsqrt(mean_d(u[b, t, m, :]^2) + eps) * norm[m, d]
//                                                         (short_conv.norms[m]; c = m*H + d)
//   y[b, t, c] = sum_{j < K} conv[j, c] * x[b, t - (K-1-j)*dilation, c]   (x = 0 before t = 0)
//   out[b, t, m, d] = u[b, t, m, d] + SiLU(y[b, t, c])
//
// i.e. torch's depthwise Conv1d(C, C, K, groups=C, bias=False, dilation, padding=(K-1)*dilation)
// truncated to the first T outputs (causal), per sequence b.
//
// One kernel family, one params struct (see gating_kernel.h): the CUDA twin takes the same
// FusionParams. Full sequences only: position 0 of each sequence has no history (a decode
// step with carried conv state is not part of this kernel).
//
// Thread safety: writes only out and row_scale.
#pragma once

#include <cstdint>

namespace engram::model {

struct FusionParams {
  int64_t batch = 0;            // B
  int64_t seq_len = 0;          // T
  int32_t hidden = 0;           // H
  int32_t hc_mult = 0;          // M
  int32_t kernel_size = 0;      // K
  int32_t dilation = 0;         // the reference's max_ngram_size
  const float* u = nullptr;     // [B, T, M, H]
  const float* norm = nullptr;  // [M, H] short_conv.norms.{m}.weight
  // [K, M*H]: tap-major, the transpose of torch's short_conv.conv.weight [M*H, 1, K].
  const float* conv = nullptr;
  float eps = 1e-5f;           // short_conv.norms eps
  float* row_scale = nullptr;  // scratch [B, T, M]: rsqrt(mean(u^2) + eps)
  float* out = nullptr;        // [B, T, M, H]; may be u itself (computed in place)
};

// Runs the kernel on the CPU with up to `threads` OpenMP threads (>= 1).
// REQUIRES: sizes > 0, pointers valid for the shapes above; out either equal to u or not
// overlapping it.
void FusionCpu(const FusionParams& p, int threads);

}  // namespace engram::model
