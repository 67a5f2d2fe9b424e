// Small float helpers for the layer's CPU kernels, written so that loops calling them
// vectorise (no libm calls, no branches): the compiler turns a `#pragma omp simd` loop over
// ExpVec into packed arithmetic even at the x86-64 baseline.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <cstring>

// Marks a hot loop function to be compiled twice, for AVX2 and for the x86-64 baseline, the
// copy picked once at load time from the CPU (GCC function multi-versioning, an ifunc). The
// build targets the baseline, so without this the `omp simd` loops would be 4 floats wide.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__ELF__)
#define ENGRAM_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ENGRAM_SIMD_CLONES
#endif

namespace engram::model {

// e^x for float x, relative error below 2e-7 on [-87, 88] (range reduction by ln 2, a degree-7
// polynomial with the Cephes expf coefficients). Inputs are clamped to [-87, 88], so the result
// stays finite and normal: e^-87 ~ 1.6e-38, e^88 ~ 1.7e38. NaN in gives an unspecified value.
inline float ExpVec(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // n = round(x / ln 2) by the 1.5 * 2^23 trick (exact for |x / ln 2| < 2^22).
  const float kRound = 12582912.0f;
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  // r = x - n ln 2, with ln 2 split in two so n * ln2_hi is exact.
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // Multiply by 2^n through the exponent bits (n in [-126, 127]: a normal float).
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// x * sigmoid(x) = x / (1 + e^-x) (torch's SiLU), with ExpVec.
inline float SiluVec(float x) { return x / (1.0f + ExpVec(-x)); }

}  // namespace engram::model
