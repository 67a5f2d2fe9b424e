// Gating kernel of the Engram layer (BRIEF section 3), fused per token and branch:
//
//   k_m  = proj[n, m*H : (m+1)*H] + key_bias[m]          (key_projs[m](e), GEMM done already)
//   v    = proj[n, M*H : (M+1)*H] + value_bias           (value_proj(e))
//   x    = sum_d (k_m * rsqrt(mean(k_m^2) + eps_key) * norm1[m])
//                * (q_m * rsqrt(mean(q_m^2) + eps_query) * norm2[m]) / sqrt(H)   q_m = h[n, m]
//   gate = sigmoid(sign(x) * sqrt(max(|x|, 1e-6)))
//   u[n, m, :] = gate * v
//
// One kernel family, one params struct: the CPU function here and its CUDA twin (a later .cu
// beside this header) take the same GatingParams, so a test can run both on the same arrays.
// All arrays are f32, row-major, contiguous unless a stride says otherwise.
//
// Thread safety: the kernel writes only out_u / out_gate; distinct calls on distinct outputs
// may run concurrently.
#pragma once

#include <cstdint>

namespace engram::model {

struct GatingParams {
  int64_t tokens = 0;   // N: rows of proj, hidden_states and out_u
  int32_t hidden = 0;   // H (hidden_size)
  int32_t hc_mult = 0;  // M (branches)
  // [N, proj_stride]: per token the M key projections then the value projection, bias not
  // yet added (the layer's fused GEMM output).
  const float* proj = nullptr;
  int64_t proj_stride = 0;               // floats between tokens in proj, >= (M + 1) * H
  const float* key_bias = nullptr;       // [M, H] key_projs.{m}.bias
  const float* value_bias = nullptr;     // [H] value_proj.bias
  const float* norm1 = nullptr;          // [M, H] norm1.{m}.weight (keys)
  const float* norm2 = nullptr;          // [M, H] norm2.{m}.weight (queries)
  const float* hidden_states = nullptr;  // [N, M, H]
  float eps_key = 0;                     // norm1 eps (torch's default for f32: 2^-23)
  float eps_query = 0;                   // norm2 eps (same default)
  float* out_u = nullptr;                // [N, M, H]; must not overlap the inputs
  float* out_gate = nullptr;             // optional [N, M]: the gates (nullptr: not written)
};

// Runs the kernel on the CPU with up to `threads` OpenMP threads (>= 1), split over tokens.
// REQUIRES: sizes > 0 and every pointer (but out_gate) valid for the shapes above.
void GatingCpu(const GatingParams& p, int threads);

// The gate of one (token, branch) from its reductions; shared by the CPU kernel and the tests.
// sum_kk = sum k^2, sum_qq = sum q^2, dot = sum k*norm1 * q*norm2 (k with bias added).
float GateFromSums(float sum_kk, float sum_qq, float dot, int32_t hidden, float eps_key,
                   float eps_query);

}  // namespace engram::model
