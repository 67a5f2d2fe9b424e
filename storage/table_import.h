// Import and export between tables and array files (tablectl import / export).
//
// Import: a 2-D array [rows, cols] becomes a table (created, or replacing an existing one
// atomically: the old table stays intact until the new one is complete).
//   - float sources (f32, f64, f16, bf16) -> any dtype; dim = cols; rows quantised with
//     QuantizeRow (exact for f32->f32, f16->f16, bf16->bf16).
//   - u8/i8 sources of shape [rows, W] with any explicit target dtype are raw rows, copied
//     byte for byte (what export writes for bf16, int8 and fp8): W must equal
//     RowBytes(dtype, dim) for some dim, which is derived from it.
//   - target dtype defaults to the source's (f32, f16, bf16; others need --dtype).
// Export: rows [begin, end) to .npy: f32 -> <f4, f16 -> <f2, bf16/int8/fp8 -> raw |u1
// [rows, row_bytes], so export -> import round-trips bit for bit; `as_f32` dequantises instead.
//
// Thread safety: independent calls may run concurrently on different tables.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "storage/array_file.h"
#include "storage/dtype.h"
#include "storage/env.h"

namespace engram {

using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

Status ImportTable(Env* env, const std::string& table_path, const ArrayInfo& source,
                   std::optional<DType> dtype, const ProgressFn& progress = {});

struct ExportOptions {
  uint64_t begin = 0;
  std::optional<uint64_t> end;  // default: all rows
  bool as_f32 = false;
};
Status ExportTable(Env* env, const std::string& table_path, const std::string& npy_path,
                   const ExportOptions& options, const ProgressFn& progress = {});

}  // namespace engram
