// Row dtypes: names, byte sizes, dequantisation to f32 and quantisation from f32.
//
// The store treats rows as opaque bytes; these routines serve readers that want floats
// (tablectl get/export, the Engram layer) and writers that import float data.
// Row layouts (little-endian):
//   f32   dim x float32                       f16  dim x IEEE binary16
//   bf16  dim x bfloat16                       int8 dim x int8, then one float32 scale
//   fp8_e4m3_ue8m0  dim x FP8 e4m3 (finite, NaN = 0x7f/0xff), then dim/32 ue8m0 scale bytes
//                   (2^(e-127)), one per 32 values; DeepSeek-V4.1's 256 + 8 = 264 bytes.
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace engram {

enum class DType : uint8_t { kF32 = 0, kF16 = 1, kBF16 = 2, kInt8 = 3, kFp8E4M3Ue8m0 = 4 };

inline constexpr int kNumDTypes = 5;
// Values per ue8m0 scale in fp8_e4m3_ue8m0 rows.
inline constexpr uint32_t kFp8BlockValues = 32;

// "f32", "f16", "bf16", "int8", "fp8_e4m3_ue8m0".
std::string_view DTypeName(DType dtype);
Result<DType> ParseDType(std::string_view name);
// Bytes of one row of `dim` values; InvalidArgument when dim is 0 or (fp8) not a multiple of
// 32, naming the dtype and dim.
Result<uint32_t> RowBytes(DType dtype, uint32_t dim);

// Writes `dim` floats for one row. REQUIRES: row holds RowBytes(dtype, dim) bytes.
void DequantizeRow(DType dtype, uint32_t dim, const void* row, float* out);
// Encodes `dim` floats as one row (int8: per-row absmax scale; fp8: per-32 power-of-two scale
// covering the block's absmax, values rounded to nearest even, saturating at 448).
void QuantizeRow(DType dtype, uint32_t dim, const float* in, void* row);

// Scalar conversions used above and by import/export.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float BFloat16ToFloat(uint16_t b);
uint16_t FloatToBFloat16(float f);
float Fp8E4M3ToFloat(uint8_t v);
uint8_t FloatToFp8E4M3(float f);
float Ue8m0ToFloat(uint8_t e);

}  // namespace engram
