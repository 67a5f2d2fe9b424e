// Array files: .npy (format 1.0/2.0/3.0, little-endian, C order) and .safetensors, read
// streaming (header first, data in chunks at data_offset) so multi-GB sources import without
// holding them in memory, and written by NpyWriter (streaming) or the small helpers below.
//
// Lengths and offsets read from a file are checked against the file size before use: a
// truncated or malformed file is a Corruption naming the path and what is wrong.
//
// Thread safety: functions are independent; an NpyWriter is used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/env.h"
#include "storage/status.h"

namespace engram {

enum class ElementType {
  kF32,
  kF64,
  kF16,
  kBF16,
  kI8,
  kU8,
  kI16,
  kU16,
  kI32,
  kU32,
  kI64,
  kU64,
  kF8E4M3
};

// Bytes per element.
size_t ElementSize(ElementType t);
// "f32", "bf16", ... (for messages).
std::string_view ElementTypeName(ElementType t);

// One little-endian element at `p` as a float (integers converted, f64 rounded).
float ElementToFloat(ElementType t, const uint8_t* p);

struct ArrayInfo {
  std::string path;
  std::string tensor;  // safetensors tensor name ("" for .npy)
  ElementType type = ElementType::kF32;
  std::vector<uint64_t> shape;
  uint64_t data_offset = 0;  // of the first element in the file
  uint64_t data_bytes = 0;   // product(shape) * ElementSize(type)
};

// .npy header: descr (<f4 <f8 <f2 |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8; bf16 has no numpy descr),
// shape; C order (fortran_order True only where at most one dimension exceeds 1, since the
// bytes are then the same; otherwise NotSupported).
Result<ArrayInfo> ReadNpyInfo(Env* env, const std::string& path);
// .safetensors: `tensor` names one tensor; empty picks the only tensor (InvalidArgument listing
// the names when there are several). dtypes F32 F64 F16 BF16 I8 U8 I16 U16 I32 U32 I64 U64
// F8_E4M3.
Result<ArrayInfo> ReadSafetensorsInfo(Env* env, const std::string& path, const std::string& tensor);
// Dispatches on the extension; "FILE.safetensors:TENSOR" selects a tensor.
Result<ArrayInfo> ReadArrayInfo(Env* env, const std::string& path_and_tensor);

// Whole small arrays. Integer ids (.npy of i64/u64/i32/u32) widened to uint64; negative ids are
// InvalidArgument naming the position.
Result<std::vector<uint64_t>> ReadIdsNpy(Env* env, const std::string& path);
// Reads the whole array converted to f32 (from f32/f64/f16/bf16/int types).
Result<std::vector<float>> ReadF32Array(Env* env, const ArrayInfo& info);

// Streaming .npy writer: the header is written first, for exactly product(shape) elements.
class NpyWriter {
 public:
  static Result<std::unique_ptr<NpyWriter>> Create(Env* env, const std::string& path,
                                                   ElementType type, std::vector<uint64_t> shape);
  Status Append(const void* data, size_t bytes);
  // Fails if fewer bytes than the shape needs were appended.
  Status Finish();

 private:
  NpyWriter() = default;
  std::unique_ptr<WritableFile> file_;
  std::string path_;
  uint64_t expected_bytes_ = 0;
  uint64_t written_bytes_ = 0;
};

Status WriteNpy(Env* env, const std::string& path, ElementType type,
                const std::vector<uint64_t>& shape, const void* data);

struct TensorView {
  std::string name;
  ElementType type;
  std::vector<uint64_t> shape;
  const void* data;
};
Status WriteSafetensors(Env* env, const std::string& path, const std::vector<TensorView>& tensors);

}  // namespace engram
