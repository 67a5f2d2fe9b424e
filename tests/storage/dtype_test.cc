#include "storage/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace engram {
namespace {

TEST(DTypeTest, NamesRoundTrip) {
  for (int i = 0; i < kNumDTypes; ++i) {
    auto d = static_cast<DType>(i);
    auto parsed = ParseDType(DTypeName(d));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, d);
  }
  auto bad = ParseDType("f64");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("f64"), std::string::npos);
}

TEST(DTypeTest, RowBytesMatchLayouts) {
  EXPECT_EQ(*RowBytes(DType::kF32, 64), 256u);
  EXPECT_EQ(*RowBytes(DType::kF16, 64), 128u);
  EXPECT_EQ(*RowBytes(DType::kBF16, 64), 128u);
  EXPECT_EQ(*RowBytes(DType::kInt8, 64), 68u);
  EXPECT_EQ(*RowBytes(DType::kFp8E4M3Ue8m0, 256), 264u);  // DeepSeek-V4.1's row
  EXPECT_FALSE(RowBytes(DType::kFp8E4M3Ue8m0, 100).ok());
  EXPECT_FALSE(RowBytes(DType::kF32, 0).ok());
}

TEST(DTypeTest, HalfConversionsAreExactOnRepresentableValues) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(FloatToHalf(f), h) << "half bits " << h;
  }
  EXPECT_EQ(HalfToFloat(FloatToHalf(1.0f / 3.0f)), HalfToFloat(0x3555));  // nearest
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);                                   // overflow -> inf
}

TEST(DTypeTest, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
  EXPECT_EQ(FloatToBFloat16(1.0f + 1.0f / 256), 0x3f80);
  EXPECT_EQ(FloatToBFloat16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_FLOAT_EQ(BFloat16ToFloat(0xc000), -2.0f);
}

TEST(DTypeTest, Fp8E4M3DecodesTheStandardTable) {
  EXPECT_EQ(Fp8E4M3ToFloat(0x00), 0.0f);
  EXPECT_EQ(Fp8E4M3ToFloat(0x38), 1.0f);                  // exp 7, mant 0
  EXPECT_EQ(Fp8E4M3ToFloat(0x7e), 448.0f);                // largest finite
  EXPECT_EQ(Fp8E4M3ToFloat(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(Fp8E4M3ToFloat(0xb8), -1.0f);
  EXPECT_TRUE(std::isnan(Fp8E4M3ToFloat(0x7f)));
  for (int code = 0; code < 0x7f; ++code) {
    EXPECT_EQ(FloatToFp8E4M3(Fp8E4M3ToFloat(code)), code);
  }
  EXPECT_EQ(FloatToFp8E4M3(1000.0f), 0x7e);  // saturates
  EXPECT_EQ(Ue8m0ToFloat(127), 1.0f);
  EXPECT_EQ(Ue8m0ToFloat(130), 8.0f);
}

// Quantise then dequantise random rows: every dtype stays within its own resolution.
TEST(DTypeTest, QuantizeDequantizeRoundTripEveryDType) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  const uint32_t dim = 256;
  std::vector<float> in(dim), back(dim);
  for (float& v : in) v = dist(rng);
  in[5] = 0.0f;
  for (int i = 0; i < kNumDTypes; ++i) {
    const DType d = static_cast<DType>(i);
    std::vector<uint8_t> row(*RowBytes(d, dim));
    QuantizeRow(d, dim, in.data(), row.data());
    DequantizeRow(d, dim, row.data(), back.data());
    float amax = 3.0f;
    for (uint32_t k = 0; k < dim; ++k) {
      float tol = 0.0f;
      switch (d) {
        case DType::kF32:
          tol = 0.0f;
          break;
        case DType::kF16:
          tol = std::fabs(in[k]) * 1e-3f;
          break;
        case DType::kBF16:
          tol = std::fabs(in[k]) * 8e-3f;
          break;
        case DType::kInt8:
          tol = amax / 127.0f;
          break;
        case DType::kFp8E4M3Ue8m0:
          tol = std::max(std::fabs(in[k]) / 16.0f, 1.0f / 64);
          break;
      }
      EXPECT_NEAR(back[k], in[k], tol) << DTypeName(d) << " value " << k;
    }
    EXPECT_EQ(back[5], 0.0f) << DTypeName(d);
  }
}

}  // namespace
}  // namespace engram
