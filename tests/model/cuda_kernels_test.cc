// CUDA kernels (model/cuda_kernels.h) against their CPU twins on the same random inputs:
// gating and fusion, f32 and bf16, vectorised and scalar paths (odd hidden sizes, misaligned
// pointers), more than 8 branches, kernel_size 1..7, fusion in place and out of place over
// several chunks. Device tests skip, saying why, when no CUDA device is usable; the argument
// checks run everywhere (they return before touching the device).
//
// Tolerances (f32 arithmetic on both sides; only summation order and libm differ):
//   gates           |gpu - cpu| <= 1e-4, or 2e-3 where |x| < 1e-3 (x the sigmoid's argument
//                   before signed_sqrt, computed here in double): signed_sqrt's slope is
//                   unbounded near 0, so a 1e-6 difference in x moves such a gate by up to 5e-4
//   u (gating)      |gpu - cpu| <= 1e-5 + tol_gate(n, m) * |v| (u = gate * v)
//   fusion out      |gpu - cpu| <= 1e-5 + 1e-5 * |cpu|;  row scales 1e-5 relative
//   bf16 outputs    the f32 bound plus one bf16 ulp (a rounding flip), and at most 1 % of the
//                   elements may differ at all
// Outputs are poisoned (NaN) before each kernel so an unwritten element fails.
#include "model/cuda_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "model/cuda_status.h"
#include "model/fusion_kernel.h"
#include "model/gating_kernel.h"
#include "storage/dtype.h"

namespace engram::model {
namespace {

using cuda::DeviceBuffer;

constexpr int kCpuThreads = 2;

// ---- element types ----------------------------------------------------------------------

template <typename E>
float ToF32(E v) {
  if constexpr (std::is_same_v<E, float>) {
    return v;
  } else {
    return BFloat16ToFloat(v);
  }
}

template <typename E>
E FromF32(float v) {
  if constexpr (std::is_same_v<E, float>) {
    return v;
  } else {
    return FloatToBFloat16(v);
  }
}

template <typename E>
constexpr bool kIsBf16 = std::is_same_v<E, Bf16>;

template <typename E>
const char* TypeName() {
  return kIsBf16<E> ? "bf16" : "f32";
}

// One bf16 ulp at |v| (the spacing of bf16 values around v), 0 for f32.
template <typename E>
double Ulp(double v) {
  if constexpr (!kIsBf16<E>) {
    return 0.0;
  } else {
    const double a = std::max(std::fabs(v), 1e-30);
    return std::ldexp(1.0, std::ilogb(a) - 7);
  }
}

// ---- random inputs ----------------------------------------------------------------------

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  std::vector<float> Normal(size_t n, float mean, float stddev) {
    std::normal_distribution<float> dist(mean, stddev);
    std::vector<float> v(n);
    for (float& x : v) x = dist(gen_);
    return v;
  }
  template <typename E>
  std::vector<E> NormalAs(size_t n, float mean, float stddev) {
    const std::vector<float> f = Normal(n, mean, stddev);
    std::vector<E> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = FromF32<E>(f[i]);
    return v;
  }

 private:
  std::mt19937_64 gen_;
};

// ---- device helpers ---------------------------------------------------------------------

template <typename T>
DeviceBuffer<T> ToDevice(const std::vector<T>& host) {
  auto buf = DeviceBuffer<T>::FromHost(host);
  EXPECT_TRUE(buf.ok()) << buf.status().ToString();
  return buf.ok() ? std::move(buf).value() : DeviceBuffer<T>();
}

// A device buffer of n elements filled with 0xff bytes (NaN for f32 and bf16).
template <typename T>
DeviceBuffer<T> Poisoned(size_t n) {
  auto buf = DeviceBuffer<T>::Allocate(n);
  EXPECT_TRUE(buf.ok()) << buf.status().ToString();
  if (!buf.ok()) return DeviceBuffer<T>();
  EXPECT_EQ(cudaMemset(buf->get(), 0xff, buf->bytes()), cudaSuccess);
  return std::move(buf).value();
}

template <typename T>
std::vector<T> ToHost(const DeviceBuffer<T>& buf, size_t n) {
  auto host = buf.Download(n);
  EXPECT_TRUE(host.ok()) << host.status().ToString();
  return host.ok() ? std::move(host).value() : std::vector<T>(n);
}

void Synchronize() {
  const Status s = cuda::CudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// Counts elements outside got ~ want within tol(i) (+ one ulp for bf16) and elements that
// differ at all; reports the worst.
template <typename E, typename Tol>
void ExpectClose(const std::string& what, const std::vector<E>& got, const std::vector<E>& want,
                 Tol tol) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0, differ = 0, worst = 0;
  double worst_excess = -1.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = ToF32(got[i]), w = ToF32(want[i]);
    if (std::memcmp(&got[i], &want[i], sizeof(E)) != 0) ++differ;
    const double err = std::fabs(g - w);
    const double bound = tol(i) + Ulp<E>(w);
    const double excess = std::isnan(err) ? 1e30 : err - bound;
    if (excess > 0) ++bad;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size()
                     << " elements out of tolerance; worst at " << worst << ": gpu "
                     << ToF32(got[worst]) << " cpu " << ToF32(want[worst]) << " bound "
                     << tol(worst) + Ulp<E>(ToF32(want[worst]));
  if constexpr (kIsBf16<E>) {
    EXPECT_LE(differ, got.size() / 100) << what << ": " << differ << " of " << got.size()
                                        << " bf16 values differ (rounding flips should be rare)";
  }
}

class CudaKernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto count = cuda::CudaDeviceCount();
    if (!count.ok()) GTEST_SKIP() << "no CUDA device: " << count.status().ToString();
  }
};

// ---- gating -----------------------------------------------------------------------------

struct GatingCase {
  int64_t tokens;
  int hidden, hc_mult;
  int64_t stride_pad;  // proj_stride = (M + 1) * H + stride_pad
  int offset;          // elements before proj's first token (misaligns it when odd)
  float eps_key, eps_query;
  uint64_t seed;
};

std::string Name(const GatingCase& c) {
  return "gating N=" + std::to_string(c.tokens) + " H=" + std::to_string(c.hidden) +
         " M=" + std::to_string(c.hc_mult) + " pad=" + std::to_string(c.stride_pad) +
         " offset=" + std::to_string(c.offset);
}

template <typename E>
using GatingParamsOf = std::conditional_t<kIsBf16<E>, GatingParamsBf16, GatingParams>;

template <typename E>
void RunGating(const GatingCase& c) {
  SCOPED_TRACE(Name(c) + " " + TypeName<E>());
  const int64_t N = c.tokens, H = c.hidden, M = c.hc_mult;
  const int64_t stride = (M + 1) * H + c.stride_pad;
  Rng rng(c.seed);
  const std::vector<E> proj = rng.NormalAs<E>(c.offset + N * stride, 0.0f, 1.0f);
  const std::vector<E> hidden = rng.NormalAs<E>(N * M * H, 0.0f, 1.0f);
  const std::vector<float> key_bias = rng.Normal(M * H, 0.0f, 0.3f);
  const std::vector<float> value_bias = rng.Normal(H, 0.0f, 0.3f);
  const std::vector<float> norm1 = rng.Normal(M * H, 1.0f, 0.2f);
  const std::vector<float> norm2 = rng.Normal(M * H, 1.0f, 0.2f);

  GatingParamsOf<E> p;
  p.tokens = N;
  p.hidden = c.hidden;
  p.hc_mult = c.hc_mult;
  p.proj_stride = stride;
  p.eps_key = c.eps_key;
  p.eps_query = c.eps_query;

  // CPU twin.
  std::vector<E> u_ref(N * M * H);
  std::vector<float> gate_ref(N * M);
  p.proj = proj.data() + c.offset;
  p.key_bias = key_bias.data();
  p.value_bias = value_bias.data();
  p.norm1 = norm1.data();
  p.norm2 = norm2.data();
  p.hidden_states = hidden.data();
  p.out_u = u_ref.data();
  p.out_gate = gate_ref.data();
  if constexpr (kIsBf16<E>) {
    GatingBf16Cpu(p, kCpuThreads);
  } else {
    GatingCpu(p, kCpuThreads);
  }

  // CUDA.
  auto d_proj = ToDevice(proj);
  auto d_hidden = ToDevice(hidden);
  auto d_kb = ToDevice(key_bias);
  auto d_vb = ToDevice(value_bias);
  auto d_n1 = ToDevice(norm1);
  auto d_n2 = ToDevice(norm2);
  auto d_u = Poisoned<E>(N * M * H);
  auto d_gate = Poisoned<float>(N * M);
  p.proj = d_proj.get() + c.offset;
  p.key_bias = d_kb.get();
  p.value_bias = d_vb.get();
  p.norm1 = d_n1.get();
  p.norm2 = d_n2.get();
  p.hidden_states = d_hidden.get();
  p.out_u = d_u.get();
  p.out_gate = d_gate.get();
  const Status s = GatingCuda(p, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Synchronize();
  const std::vector<E> u = ToHost(d_u, N * M * H);
  const std::vector<float> gate = ToHost(d_gate, N * M);

  // Per (token, branch): the gate tolerance from x (double), and |v| per channel.
  std::vector<double> gate_tol(N * M);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t m = 0; m < M; ++m) {
      double kk = 0, qq = 0, dot = 0;
      for (int64_t d = 0; d < H; ++d) {
        const double k =
            double(ToF32(proj[c.offset + n * stride + m * H + d])) + key_bias[m * H + d];
        const double q = ToF32(hidden[(n * M + m) * H + d]);
        kk += k * k;
        qq += q * q;
        dot += (k * norm1[m * H + d]) * (q * norm2[m * H + d]);
      }
      const double x = dot / std::sqrt(kk / H + c.eps_key) / std::sqrt(qq / H + c.eps_query) /
                       std::sqrt(double(H));
      gate_tol[n * M + m] = std::fabs(x) < 1e-3 ? 2e-3 : 1e-4;
    }
  }
  ExpectClose("gates", gate, gate_ref, [&](size_t i) { return gate_tol[i]; });
  ExpectClose("u", u, u_ref, [&](size_t i) {
    const int64_t n = i / (M * H), m = (i / H) % M, d = i % H;
    const double v = double(ToF32(proj[c.offset + n * stride + M * H + d])) + value_bias[d];
    return 1e-5 + gate_tol[n * M + m] * std::fabs(v);
  });
}

const GatingCase kGatingCases[] = {
    // tokens, H, M, pad, offset, eps_key, eps_query, seed
    {7, 64, 4, 0, 0, 1e-5f, 1.1920929e-07f, 1},     // small, vectorised
    {33, 320, 2, 8, 0, 1e-5f, 1.1920929e-07f, 2},   // proj_stride > (M + 1) H
    {9, 30, 3, 2, 0, 1e-5f, 1.1920929e-07f, 3},     // H % 4 != 0: scalar path
    {5, 64, 4, 0, 1, 1e-5f, 1.1920929e-07f, 4},     // proj misaligned: scalar path
    {3, 64, 11, 0, 0, 1e-5f, 1.1920929e-07f, 5},    // M > 8: two gate groups
    {6, 48, 2, 0, 0, 0.75f, 0.05f, 6},              // large eps: eps_key / eps_query distinct
    {64, 2560, 4, 0, 0, 1e-5f, 1.1920929e-07f, 7},  // the realistic row shape
    {2, 4100, 1, 4, 0, 1e-5f, 1.1920929e-07f, 8},   // more vectors than threads
};

TEST_F(CudaKernelsTest, GatingF32MatchesCpu) {
  for (const GatingCase& c : kGatingCases) RunGating<float>(c);
}

TEST_F(CudaKernelsTest, GatingBf16MatchesCpuTwin) {
  for (const GatingCase& c : kGatingCases) RunGating<Bf16>(c);
}

// ---- fusion -----------------------------------------------------------------------------

struct FusionCase {
  int64_t batch, seq_len;
  int hidden, hc_mult, kernel_size, dilation;
  uint64_t seed;
};

std::string Name(const FusionCase& c) {
  return "fusion B=" + std::to_string(c.batch) + " T=" + std::to_string(c.seq_len) +
         " H=" + std::to_string(c.hidden) + " M=" + std::to_string(c.hc_mult) +
         " K=" + std::to_string(c.kernel_size) + " dil=" + std::to_string(c.dilation);
}

template <typename E>
using FusionParamsOf = std::conditional_t<kIsBf16<E>, FusionParamsBf16, FusionParams>;

template <typename E>
void RunFusion(const FusionCase& c, bool in_place, int offset = 0) {
  SCOPED_TRACE(Name(c) + " " + TypeName<E>() + (in_place ? " in place" : " out of place") +
               " offset=" + std::to_string(offset));
  const int64_t rows = c.batch * c.seq_len * c.hc_mult;
  const int64_t n = rows * c.hidden, C = int64_t{c.hc_mult} * c.hidden;
  Rng rng(c.seed);
  // u = gate * v: magnitudes vary by row (gates in (0, 1)), as the layer's do.
  std::vector<E> u = rng.NormalAs<E>(offset + n, 0.0f, 1.0f);
  const std::vector<float> row_gain = rng.Normal(rows, 0.0f, 1.0f);
  for (int64_t i = 0; i < n; ++i) {
    const float g = 1.0f / (1.0f + std::exp(-row_gain[i / c.hidden]));
    u[offset + i] = FromF32<E>(ToF32(u[offset + i]) * g);
  }
  const std::vector<float> norm = rng.Normal(C, 1.0f, 0.2f);
  const std::vector<float> conv = rng.Normal(int64_t{c.kernel_size} * C, 0.0f, 0.5f);

  FusionParamsOf<E> p;
  p.batch = c.batch;
  p.seq_len = c.seq_len;
  p.hidden = c.hidden;
  p.hc_mult = c.hc_mult;
  p.kernel_size = c.kernel_size;
  p.dilation = c.dilation;
  p.eps = 1e-5f;

  std::vector<E> out_ref(n);
  std::vector<float> scale_ref(rows);
  p.u = u.data() + offset;
  p.norm = norm.data();
  p.conv = conv.data();
  p.row_scale = scale_ref.data();
  p.out = out_ref.data();
  if constexpr (kIsBf16<E>) {
    FusionBf16Cpu(p, kCpuThreads);
  } else {
    FusionCpu(p, kCpuThreads);
  }

  auto d_u = ToDevice(u);
  auto d_norm = ToDevice(norm);
  auto d_conv = ToDevice(conv);
  auto d_scale = Poisoned<float>(rows);
  DeviceBuffer<E> d_out = in_place ? DeviceBuffer<E>() : Poisoned<E>(n);
  p.u = d_u.get() + offset;
  p.norm = d_norm.get();
  p.conv = d_conv.get();
  p.row_scale = d_scale.get();
  p.out = in_place ? d_u.get() + offset : d_out.get();
  const Status s = FusionCuda(p, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Synchronize();
  std::vector<E> out;
  if (in_place) {
    std::vector<E> all = ToHost(d_u, offset + n);
    out.assign(all.begin() + offset, all.end());
  } else {
    out = ToHost(d_out, n);
  }
  const std::vector<float> scale = ToHost(d_scale, rows);

  ExpectClose("row_scale", scale, scale_ref,
              [&](size_t i) { return 1e-5 * std::fabs(scale_ref[i]); });
  ExpectClose("out", out, out_ref,
              [&](size_t i) { return 1e-5 + 1e-5 * std::fabs(ToF32(out_ref[i])); });
}

const FusionCase kFusionCases[] = {
    // B, T, H, M, K, dil, seed
    {2, 37, 64, 4, 4, 3, 11},     // the reference's K and dilation
    {1, 300, 256, 2, 4, 3, 12},   // long sequence: several chunks, halos
    {3, 50, 30, 2, 3, 2, 13},     // H % 4 != 0: scalar path
    {1, 129, 64, 2, 7, 3, 14},    // K in 5..8: 8-tap kernel
    {2, 40, 64, 3, 1, 3, 15},     // K = 1: no conv history
    {1, 5, 64, 2, 4, 3, 16},      // shorter than the conv's reach
    {2, 700, 2560, 4, 4, 3, 17},  // the realistic row shape
    {1, 64, 3000, 1, 2, 2, 18},   // V = 2 vectors per thread
};

TEST_F(CudaKernelsTest, FusionF32MatchesCpu) {
  for (const FusionCase& c : kFusionCases) RunFusion<float>(c, /*in_place=*/false);
}

TEST_F(CudaKernelsTest, FusionF32InPlaceMatchesCpu) {
  for (const FusionCase& c : kFusionCases) RunFusion<float>(c, /*in_place=*/true);
}

TEST_F(CudaKernelsTest, FusionBf16MatchesCpuTwin) {
  for (const FusionCase& c : kFusionCases) {
    RunFusion<Bf16>(c, /*in_place=*/false);
    RunFusion<Bf16>(c, /*in_place=*/true);
  }
}

TEST_F(CudaKernelsTest, FusionMisalignedTakesScalarPath) {
  const FusionCase c{2, 90, 64, 2, 4, 3, 19};
  RunFusion<float>(c, /*in_place=*/false, /*offset=*/1);
  RunFusion<float>(c, /*in_place=*/true, /*offset=*/1);
  RunFusion<Bf16>(c, /*in_place=*/true, /*offset=*/2);  // 4-byte aligned, not 8
}

// ---- argument checks (no device needed: they return before any CUDA call) ---------------

TEST(CudaKernelsArgs, GatingRejectsBadArguments) {
  float dummy[16] = {};
  GatingParams p;
  p.tokens = 1;
  p.hidden = 4;
  p.hc_mult = 1;
  p.proj = p.key_bias = p.value_bias = p.norm1 = p.norm2 = p.hidden_states = dummy;
  p.out_u = dummy;
  p.proj_stride = 7;  // < (1 + 1) * 4
  EXPECT_TRUE(GatingCuda(p, nullptr).IsInvalidArgument());
  p.proj_stride = 8;
  p.norm2 = nullptr;
  EXPECT_TRUE(GatingCuda(p, nullptr).IsInvalidArgument());
  p.norm2 = dummy;
  p.tokens = 0;
  EXPECT_TRUE(GatingCuda(p, nullptr).IsInvalidArgument());
}

TEST(CudaKernelsArgs, FusionRejectsBadArguments) {
  float dummy[16] = {};
  FusionParams p;
  p.batch = p.seq_len = 1;
  p.hidden = 4;
  p.hc_mult = 1;
  p.kernel_size = 9;  // > 8 taps
  p.dilation = 3;
  p.u = p.norm = p.conv = dummy;
  p.row_scale = p.out = dummy;
  EXPECT_TRUE(FusionCuda(p, nullptr).IsNotSupported());
  p.kernel_size = 4;
  p.dilation = 0;
  EXPECT_TRUE(FusionCuda(p, nullptr).IsInvalidArgument());
  p.dilation = 3;
  p.row_scale = nullptr;
  EXPECT_TRUE(FusionCuda(p, nullptr).IsInvalidArgument());
}

}  // namespace
}  // namespace engram::model
