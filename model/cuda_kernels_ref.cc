// CPU twins of the bf16 CUDA kernels (cuda_kernels.h): widen the bf16 inputs to f32 (exact),
// run the f32 CPU kernel, round the outputs to bf16 with the store's rounding (the rounding
// the CUDA kernels use too).
#include <cstddef>
#include <vector>

#include "model/cuda_kernels.h"
#include "storage/dtype.h"

namespace engram::model {
namespace {

std::vector<float> Widen(const Bf16* in, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = BFloat16ToFloat(in[i]);
  return out;
}

void Narrow(const std::vector<float>& in, Bf16* out) {
  for (size_t i = 0; i < in.size(); ++i) out[i] = FloatToBFloat16(in[i]);
}

}  // namespace

void GatingBf16Cpu(const GatingParamsBf16& p, int threads) {
  const size_t rows = static_cast<size_t>(p.tokens) * p.hc_mult;
  // proj: up to the last token's value projection (the stride's tail past it may not exist).
  const size_t proj_elems = static_cast<size_t>(p.tokens - 1) * p.proj_stride +
                            static_cast<size_t>(p.hc_mult + 1) * p.hidden;
  const std::vector<float> proj = Widen(p.proj, proj_elems);
  const std::vector<float> hidden = Widen(p.hidden_states, rows * p.hidden);
  std::vector<float> u(rows * p.hidden);
  GatingParams f;
  f.tokens = p.tokens;
  f.hidden = p.hidden;
  f.hc_mult = p.hc_mult;
  f.proj = proj.data();
  f.proj_stride = p.proj_stride;
  f.key_bias = p.key_bias;
  f.value_bias = p.value_bias;
  f.norm1 = p.norm1;
  f.norm2 = p.norm2;
  f.hidden_states = hidden.data();
  f.eps_key = p.eps_key;
  f.eps_query = p.eps_query;
  f.out_u = u.data();
  f.out_gate = p.out_gate;
  GatingCpu(f, threads);
  Narrow(u, p.out_u);
}

void FusionBf16Cpu(const FusionParamsBf16& p, int threads) {
  const size_t n = static_cast<size_t>(p.batch) * p.seq_len * p.hc_mult * p.hidden;
  std::vector<float> u = Widen(p.u, n);
  FusionParams f;
  f.batch = p.batch;
  f.seq_len = p.seq_len;
  f.hidden = p.hidden;
  f.hc_mult = p.hc_mult;
  f.kernel_size = p.kernel_size;
  f.dilation = p.dilation;
  f.u = u.data();
  f.norm = p.norm;
  f.conv = p.conv;
  f.eps = p.eps;
  f.row_scale = p.row_scale;
  f.out = u.data();  // in place on the private f32 copy, so p.out may be p.u
  FusionCpu(f, threads);
  Narrow(u, p.out);
}

}  // namespace engram::model
