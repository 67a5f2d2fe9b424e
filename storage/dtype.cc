#include "storage/dtype.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>

namespace engram {
namespace {

constexpr std::array<std::string_view, kNumDTypes> kNames = {"f32", "f16", "bf16", "int8",
                                                             "fp8_e4m3_ue8m0"};

// The 127 non-negative finite e4m3 magnitudes, indexed by code 0x00..0x7e (monotonic).
const std::array<float, 127>& Fp8Magnitudes() {
  static const std::array<float, 127> table = [] {
    std::array<float, 127> t{};
    for (int code = 0; code < 127; ++code) t[code] = Fp8E4M3ToFloat(static_cast<uint8_t>(code));
    return t;
  }();
  return table;
}

// All 256 e4m3 codes decoded (the dequantisation table).
const std::array<float, 256>& Fp8Values() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int code = 0; code < 256; ++code) t[code] = Fp8E4M3ToFloat(static_cast<uint8_t>(code));
    return t;
  }();
  return table;
}

uint16_t ReadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

std::string_view DTypeName(DType dtype) { return kNames[static_cast<int>(dtype)]; }

Result<DType> ParseDType(std::string_view name) {
  for (int i = 0; i < kNumDTypes; ++i) {
    if (kNames[i] == name) return static_cast<DType>(i);
  }
  return Status::InvalidArgument("unknown dtype '" + std::string(name) +
                                 "' (expected f32, f16, bf16, int8 or fp8_e4m3_ue8m0)");
}

Result<uint32_t> RowBytes(DType dtype, uint32_t dim) {
  if (dim == 0) return Status::InvalidArgument("dim must be at least 1");
  switch (dtype) {
    case DType::kF32:
      return dim * 4u;
    case DType::kF16:
    case DType::kBF16:
      return dim * 2u;
    case DType::kInt8:
      return dim + 4u;
    case DType::kFp8E4M3Ue8m0:
      if (dim % kFp8BlockValues != 0) {
        return Status::InvalidArgument("fp8_e4m3_ue8m0 needs dim to be a multiple of 32, got " +
                                       std::to_string(dim));
      }
      return dim + dim / kFp8BlockValues;
  }
  return Status::InvalidArgument("unknown dtype code");
}

float HalfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t FloatToHalf(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | (abs > 0x7f800000u ? 0x7e00 : 0x7c00);  // NaN / inf
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // rounds past 65504: inf
  if (abs < 0x38800000u) {                       // subnormal half (or zero)
    float v = std::bit_cast<float>(abs);
    return sign | static_cast<uint16_t>(std::nearbyint(v * 16777216.0f));
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);  // round to nearest even
  return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
}

float BFloat16ToFloat(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t FloatToBFloat16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

float Fp8E4M3ToFloat(uint8_t v) {
  const bool neg = v & 0x80;
  const int exp = (v >> 3) & 0xf;
  const int mant = v & 0x7;
  float mag;
  if (exp == 0xf && mant == 0x7) {
    mag = std::nanf("");
  } else if (exp == 0) {
    mag = std::ldexp(static_cast<float>(mant), -9);  // 2^-6 * m/8
  } else {
    mag = std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
  }
  return neg ? -mag : mag;
}

uint8_t FloatToFp8E4M3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  const float a = std::fabs(f);
  const auto& mags = Fp8Magnitudes();
  if (a >= mags[126]) return sign | 126;  // saturate at 448
  // First magnitude >= a, then pick the nearer neighbour (ties to the even code).
  auto it = std::lower_bound(mags.begin(), mags.end(), a);
  int hi = static_cast<int>(it - mags.begin());
  if (hi == 0) return sign;
  int lo = hi - 1;
  float dlo = a - mags[lo], dhi = mags[hi] - a;
  int code = (dlo < dhi || (dlo == dhi && (lo % 2 == 0))) ? lo : hi;
  return sign | static_cast<uint8_t>(code);
}

float Ue8m0ToFloat(uint8_t e) {
  if (e == 0xff) return std::nanf("");
  return std::ldexp(1.0f, static_cast<int>(e) - 127);
}

void DequantizeRow(DType dtype, uint32_t dim, const void* row, float* out) {
  const auto* bytes = static_cast<const uint8_t*>(row);
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out, row, dim * sizeof(float));
      return;
    case DType::kF16:
      for (uint32_t i = 0; i < dim; ++i) out[i] = HalfToFloat(ReadU16(bytes + 2 * i));
      return;
    case DType::kBF16:
      for (uint32_t i = 0; i < dim; ++i) out[i] = BFloat16ToFloat(ReadU16(bytes + 2 * i));
      return;
    case DType::kInt8: {
      float scale;
      std::memcpy(&scale, bytes + dim, sizeof(scale));
      for (uint32_t i = 0; i < dim; ++i) out[i] = static_cast<int8_t>(bytes[i]) * scale;
      return;
    }
    case DType::kFp8E4M3Ue8m0: {
      const auto& values = Fp8Values();
      const uint8_t* scales = bytes + dim;
      for (uint32_t b = 0; b < dim / kFp8BlockValues; ++b) {
        const float scale = Ue8m0ToFloat(scales[b]);
        const uint8_t* in = bytes + b * kFp8BlockValues;
        float* dst = out + b * kFp8BlockValues;
        for (uint32_t i = 0; i < kFp8BlockValues; ++i) dst[i] = values[in[i]] * scale;
      }
      return;
    }
  }
}

void QuantizeRow(DType dtype, uint32_t dim, const float* in, void* row) {
  auto* bytes = static_cast<uint8_t*>(row);
  switch (dtype) {
    case DType::kF32:
      std::memcpy(row, in, dim * sizeof(float));
      return;
    case DType::kF16:
    case DType::kBF16:
      for (uint32_t i = 0; i < dim; ++i) {
        uint16_t v = dtype == DType::kF16 ? FloatToHalf(in[i]) : FloatToBFloat16(in[i]);
        std::memcpy(bytes + 2 * i, &v, 2);
      }
      return;
    case DType::kInt8: {
      float amax = 0.0f;
      for (uint32_t i = 0; i < dim; ++i) amax = std::max(amax, std::fabs(in[i]));
      const float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
      for (uint32_t i = 0; i < dim; ++i) {
        float q = std::nearbyint(in[i] / scale);
        bytes[i] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f)));
      }
      std::memcpy(bytes + dim, &scale, sizeof(scale));
      return;
    }
    case DType::kFp8E4M3Ue8m0: {
      uint8_t* scales = bytes + dim;
      for (uint32_t b = 0; b < dim / kFp8BlockValues; ++b) {
        const float* block = in + b * kFp8BlockValues;
        float amax = 0.0f;
        for (uint32_t i = 0; i < kFp8BlockValues; ++i) amax = std::max(amax, std::fabs(block[i]));
        // Smallest power of two s with amax / s <= 448.
        int e = amax > 0.0f ? static_cast<int>(std::ceil(std::log2(amax / 448.0f))) : 0;
        e = std::clamp(e, -127, 127);
        scales[b] = static_cast<uint8_t>(e + 127);
        const float inv = std::ldexp(1.0f, -e);
        for (uint32_t i = 0; i < kFp8BlockValues; ++i) {
          bytes[b * kFp8BlockValues + i] = FloatToFp8E4M3(block[i] * inv);
        }
      }
      return;
    }
  }
}

}  // namespace engram
