// CudaGemm (model/gemm_cuda.h) against its CPU twin SgemmAbt (model/gemm.h, OpenBLAS) on the
// same random inputs: f32, and bf16 inputs with f32 accumulation (the CPU twin runs on the
// bf16 values widened to f32, which is exact). Shapes include odd sizes, padded leading
// dimensions, a layer-sized projection, beta 0 over a NaN-poisoned C, beta != 0, and k == 0.
// Device tests skip, saying why, when no CUDA device is usable; the argument checks run
// everywhere (they return before touching the device).
//
// Tolerance, per element of C, from the classic GEMM error bound:
//   |gpu - cpu| <= rel * (sum_k |a_ik * b_jk| + |beta * c_ij|),  rel = 4e-6 (f32), 1e-5 (bf16)
// Both sides accumulate in f32, so only summation order differs: at k = 640 the largest
// difference expected is ~5e-7 of the sum (8x margin). TF32 (inputs rounded to a 10-bit
// mantissa, ~5e-4 per product) gives ~1e-5 of the sum on average and far more at the worst
// element, so the f32 bound also checks that f32 stays f32. bf16 gets 2.5x more room for the
// tensor cores' accumulation order. The padding between rows of C must stay untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "model/cuda_status.h"
#include "model/gemm.h"
#include "model/gemm_cuda.h"
#include "storage/dtype.h"

namespace engram::model {
namespace {

using cuda::DeviceBuffer;

constexpr float kPad = -12345.0f;  // what C's padding holds before and after each call

std::vector<float> RandomNormal(size_t count, float scale, std::mt19937_64& rng) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(count);
  for (float& x : v) x = dist(rng);
  return v;
}

struct GemmCase {
  int64_t m, n, k;
  int64_t pad_a, pad_b, pad_c;  // lda = k + pad_a, ldb = k + pad_b, ldc = n + pad_c
  float beta;
  uint64_t seed;
};

std::string Name(const GemmCase& c) {
  return "gemm m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) +
         " k=" + std::to_string(c.k) + " pads=" + std::to_string(c.pad_a) + "," +
         std::to_string(c.pad_b) + "," + std::to_string(c.pad_c) +
         " beta=" + std::to_string(c.beta);
}

class CudaGemmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto count = cuda::CudaDeviceCount();
    if (!count.ok()) GTEST_SKIP() << "no CUDA device: " << count.status().ToString();
  }
};

// Runs one case through the device (f32 or bf16 inputs) and the CPU twin and compares them.
void RunCase(const GemmCase& c, bool bf16) {
  SCOPED_TRACE(Name(c) + (bf16 ? " bf16" : " f32"));
  const int64_t lda = c.k + c.pad_a, ldb = c.k + c.pad_b, ldc = c.n + c.pad_c;
  std::mt19937_64 rng(c.seed);
  std::vector<float> a = RandomNormal(static_cast<size_t>(c.m * lda), 1.0f, rng);
  std::vector<float> b = RandomNormal(static_cast<size_t>(c.n * ldb), 0.05f, rng);
  std::vector<uint16_t> a16, b16;
  if (bf16) {  // the CPU twin sees exactly the values the device sees
    for (float& x : a) {
      a16.push_back(FloatToBFloat16(x));
      x = BFloat16ToFloat(a16.back());
    }
    for (float& x : b) {
      b16.push_back(FloatToBFloat16(x));
      x = BFloat16ToFloat(b16.back());
    }
  }
  // Old C: NaN when beta is 0 (must be ignored), random otherwise; padding holds kPad.
  std::vector<float> c0 =
      RandomNormal(static_cast<size_t>(std::max<int64_t>(c.m * ldc, 1)), 1.0f, rng);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      float& x = c0[i * ldc + j];
      if (j >= c.n) {
        x = kPad;
      } else if (c.beta == 0.0f) {
        x = std::numeric_limits<float>::quiet_NaN();
      }
    }
  }

  std::vector<float> want = c0;
  ASSERT_TRUE(SgemmAbt(c.m, c.n, c.k, a.data(), lda, b.data(), ldb, c.beta, want.data(), ldc).ok());

  auto dc = DeviceBuffer<float>::FromHost(c0);
  ASSERT_TRUE(dc.ok()) << dc.status().ToString();
  CudaGemm gemm;
  Status st;
  if (bf16) {
    auto da = DeviceBuffer<uint16_t>::FromHost(a16);
    auto db = DeviceBuffer<uint16_t>::FromHost(b16);
    ASSERT_TRUE(da.ok() && db.ok());
    st = gemm.GemmAbtBf16(c.m, c.n, c.k, da->get(), lda, db->get(), ldb, c.beta, dc->get(), ldc,
                          nullptr);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  } else {
    auto da = DeviceBuffer<float>::FromHost(a);
    auto db = DeviceBuffer<float>::FromHost(b);
    ASSERT_TRUE(da.ok() && db.ok());
    st = gemm.SgemmAbt(c.m, c.n, c.k, da->get(), lda, db->get(), ldb, c.beta, dc->get(), ldc,
                       nullptr);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  auto got = dc->Download();
  ASSERT_TRUE(got.ok()) << got.status().ToString();

  const double rel = bf16 ? 1e-5 : 4e-6;
  size_t bad = 0;
  double worst_ratio = 0.0;
  int64_t worst = -1;
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const float g = (*got)[i * ldc + j], w = want[i * ldc + j];
      if (j >= c.n) {  // padding: untouched
        if (g != kPad) ++bad;
        continue;
      }
      double mag = c.beta == 0.0f ? 0.0 : std::fabs(static_cast<double>(c.beta) * c0[i * ldc + j]);
      for (int64_t p = 0; p < c.k; ++p) {
        mag += std::fabs(static_cast<double>(a[i * lda + p]) * b[j * ldb + p]);
      }
      const double err = std::fabs(static_cast<double>(g) - w);
      const double bound = rel * mag + 1e-30;
      if (!(err <= bound)) ++bad;  // NaN fails
      if (!(err / bound <= worst_ratio)) {
        worst_ratio = err / bound;
        worst = i * ldc + j;
      }
    }
  }
  EXPECT_EQ(bad, 0u) << bad << " elements out of tolerance or padding overwritten; worst at "
                     << worst << ": gpu " << (worst >= 0 ? (*got)[worst] : 0.0f) << " cpu "
                     << (worst >= 0 ? want[worst] : 0.0f) << " (err/bound " << worst_ratio << ")";
}

const GemmCase kCases[] = {
    {1, 1, 1, 0, 0, 0, 0.0f, 1},
    {7, 13, 5, 0, 0, 0, 0.0f, 2},
    {7, 13, 5, 3, 1, 2, 0.5f, 3},
    {33, 65, 129, 0, 0, 0, 0.0f, 4},
    {64, 96, 128, 8, 16, 4, 1.0f, 5},
    // A layer-sized projection: 130 tokens, embed dim 640 -> (M + 1) * H = 5 * 256.
    {130, 1280, 640, 0, 0, 0, 0.0f, 6},
    {130, 1280, 640, 1, 3, 5, -0.25f, 7},
    // k == 0: C = beta * C (beta 0 clears NaNs), contiguous and padded.
    {5, 9, 0, 1, 1, 0, 0.0f, 8},
    {5, 9, 0, 1, 1, 3, 0.0f, 9},
    {5, 9, 0, 1, 1, 0, 2.0f, 10},
    {5, 9, 0, 1, 1, 3, 2.0f, 11},
};

TEST_F(CudaGemmTest, F32MatchesCpu) {
  for (const GemmCase& c : kCases) RunCase(c, /*bf16=*/false);
}

TEST_F(CudaGemmTest, Bf16MatchesCpu) {
  for (const GemmCase& c : kCases) RunCase(c, /*bf16=*/true);
}

// Runs on the same handle through a non-default stream, twice, so handle reuse and
// cublasSetStream are exercised.
TEST_F(CudaGemmTest, ReusesHandleOnStream) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  const int64_t m = 17, n = 23, k = 31;
  std::mt19937_64 rng(99);
  const std::vector<float> a = RandomNormal(m * k, 1.0f, rng);
  const std::vector<float> b = RandomNormal(n * k, 1.0f, rng);
  std::vector<float> want(m * n, 0.0f);
  ASSERT_TRUE(SgemmAbt(m, n, k, a.data(), k, b.data(), k, 0.0f, want.data(), n).ok());
  auto da = DeviceBuffer<float>::FromHost(a);
  auto db = DeviceBuffer<float>::FromHost(b);
  auto dc = DeviceBuffer<float>::Allocate(m * n);
  ASSERT_TRUE(da.ok() && db.ok() && dc.ok());
  CudaGemm gemm;
  for (int round = 0; round < 2; ++round) {
    // Round 1 accumulates onto round 0's result: C = AB^T + 1 * AB^T.
    const float beta = round == 0 ? 0.0f : 1.0f;
    const Status st =
        gemm.SgemmAbt(m, n, k, da->get(), k, db->get(), k, beta, dc->get(), n, stream);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  auto got = dc->Download();
  ASSERT_TRUE(got.ok());
  for (int64_t i = 0; i < m * n; ++i) {
    EXPECT_NEAR((*got)[i], 2.0f * want[i], 1e-4f * (1.0f + std::fabs(want[i]))) << "at " << i;
  }
}

// Argument checks return before any device work, so they run (and pass) without a device.
TEST(CudaGemmArgsTest, RejectsBadArguments) {
  CudaGemm gemm;
  float dummy = 0.0f;
  float* p = &dummy;  // never dereferenced: every call below fails its checks first
  EXPECT_TRUE(gemm.SgemmAbt(-1, 2, 2, p, 2, p, 2, 0.0f, p, 2, nullptr).IsInvalidArgument());
  EXPECT_TRUE(gemm.SgemmAbt(2, 2, 4, p, 3, p, 4, 0.0f, p, 2, nullptr).IsInvalidArgument());
  EXPECT_TRUE(gemm.SgemmAbt(2, 2, 4, p, 4, p, 3, 0.0f, p, 2, nullptr).IsInvalidArgument());
  EXPECT_TRUE(gemm.SgemmAbt(2, 3, 4, p, 4, p, 4, 0.0f, p, 2, nullptr).IsInvalidArgument());
  EXPECT_TRUE(
      gemm.SgemmAbt(int64_t{1} << 31, 2, 2, p, 2, p, 2, 0.0f, p, 2, nullptr).IsInvalidArgument());
  EXPECT_TRUE(gemm.SgemmAbt(2, 2, 2, nullptr, 2, p, 2, 0.0f, p, 2, nullptr).IsInvalidArgument());
  EXPECT_TRUE(gemm.SgemmAbt(2, 2, 2, p, 2, p, 2, 0.0f, nullptr, 2, nullptr).IsInvalidArgument());
  const Bf16* q = nullptr;
  EXPECT_TRUE(gemm.GemmAbtBf16(2, 2, 2, q, 2, q, 2, 0.0f, p, 2, nullptr).IsInvalidArgument());
  EXPECT_TRUE(gemm.GemmAbtBf16(2, 2, 4, q, 2, q, 4, 0.0f, p, 2, nullptr).IsInvalidArgument());
  // Empty products are valid and touch nothing (null pointers included).
  EXPECT_TRUE(gemm.SgemmAbt(0, 5, 3, nullptr, 3, nullptr, 3, 0.0f, nullptr, 5, nullptr).ok());
  EXPECT_TRUE(gemm.SgemmAbt(4, 0, 3, nullptr, 3, nullptr, 3, 0.0f, nullptr, 1, nullptr).ok());
  EXPECT_TRUE(gemm.GemmAbtBf16(0, 5, 3, nullptr, 3, nullptr, 3, 0.0f, nullptr, 5, nullptr).ok());
}

}  // namespace
}  // namespace engram::model
