// CPU twins of the row kernels (row_kernels.h) and the argument checks both devices share.
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gpu_bridge/row_kernels.h"

namespace engram::gpu {
namespace {

// Rows GatherRowsCpu converts: n, or *device_n clamped to n.
size_t RowCount(const GatherArgs& args) {
  if (args.device_n == nullptr) return args.n;
  const uint64_t count = *args.device_n;
  return count < args.n ? static_cast<size_t>(count) : args.n;
}

bool Aligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

Status Invalid(const char* op, const std::string& what) {
  return Status::InvalidArgument(std::string(op) + ": " + what);
}

}  // namespace

void GatherRowsCpu(const GatherArgs& args) {
  const size_t count = RowCount(args);
  auto* out = static_cast<uint8_t*>(args.out);
  if (args.out_type == OutType::kRaw) {
    for (size_t i = 0; i < count; ++i) {
      std::memcpy(out + i * args.out_stride, args.rows[i], args.row_bytes);
    }
    return;
  }
  std::vector<float> values(args.dim);
  std::vector<uint16_t> bf16(args.out_type == OutType::kBF16 ? args.dim : 0);
  for (size_t i = 0; i < count; ++i) {
    DequantizeRow(args.dtype, args.dim, args.rows[i], values.data());
    uint8_t* dst = out + i * args.out_stride;
    if (args.out_type == OutType::kF32) {
      std::memcpy(dst, values.data(), values.size() * sizeof(float));
    } else {
      for (uint32_t e = 0; e < args.dim; ++e) bf16[e] = FloatToBFloat16(values[e]);
      std::memcpy(dst, bf16.data(), bf16.size() * sizeof(uint16_t));
    }
  }
}

void ScatterRowsCpu(const ScatterArgs& args) {
  const auto* src = static_cast<const uint8_t*>(args.src);
  for (size_t i = 0; i < args.n; ++i) {
    std::memcpy(args.dst[i], src + i * args.row_bytes, args.row_bytes);
  }
}

Status CheckGatherArgs(const GatherArgs& args, const char* op) {
  if (args.n == 0) return Status::OK();
  if (args.rows == nullptr) return Invalid(op, "rows is null (n = " + std::to_string(args.n) + ")");
  if (!Aligned(args.rows, alignof(void*))) return Invalid(op, "rows is not 8-byte aligned");
  if (args.out == nullptr) return Invalid(op, "out is null");
  if (args.device_n != nullptr && !Aligned(args.device_n, alignof(uint64_t))) {
    return Invalid(op, "device_n is not 8-byte aligned");
  }
  if (args.out_type != OutType::kRaw && args.out_type != OutType::kF32 &&
      args.out_type != OutType::kBF16) {
    return Invalid(op, "unknown out_type " + std::to_string(static_cast<int>(args.out_type)));
  }
  if (args.row_bytes == 0) return Invalid(op, "row_bytes is 0");
  if (args.out_type != OutType::kRaw) {
    if (static_cast<int>(args.dtype) >= kNumDTypes) {
      return Invalid(op, "unknown dtype code " + std::to_string(static_cast<int>(args.dtype)));
    }
    const Result<uint32_t> need = RowBytes(args.dtype, args.dim);
    if (!need.ok()) return need.status().WithContext(op);
    if (args.row_bytes < *need) {
      return Invalid(op, "row_bytes " + std::to_string(args.row_bytes) + " < " +
                             std::to_string(*need) + " bytes of a " +
                             std::string(DTypeName(args.dtype)) + " row of dim " +
                             std::to_string(args.dim));
    }
  }
  const size_t out_row = OutRowBytes(args.out_type, args.dim, args.row_bytes);
  if (args.out_stride < out_row) {
    return Invalid(op, "out_stride " + std::to_string(args.out_stride) + " < " +
                           std::to_string(out_row) + " bytes of a " + OutTypeName(args.out_type) +
                           " output row");
  }
  const size_t element = args.out_type == OutType::kF32    ? sizeof(float)
                         : args.out_type == OutType::kBF16 ? sizeof(uint16_t)
                                                           : 1;
  if (!Aligned(args.out, element) || args.out_stride % element != 0) {
    return Invalid(op, std::string("out and out_stride must be ") + std::to_string(element) +
                           "-byte aligned for " + OutTypeName(args.out_type) + " output");
  }
  constexpr size_t kMax = std::numeric_limits<size_t>::max();
  if (args.n > kMax / sizeof(void*) || args.n - 1 > (kMax - out_row) / args.out_stride) {
    return Invalid(op, "n = " + std::to_string(args.n) + " rows overflow the address space");
  }
  return Status::OK();
}

Status CheckScatterArgs(const ScatterArgs& args, const char* op) {
  if (args.n == 0) return Status::OK();
  if (args.src == nullptr) return Invalid(op, "src is null (n = " + std::to_string(args.n) + ")");
  if (args.dst == nullptr) return Invalid(op, "dst is null");
  if (!Aligned(args.dst, alignof(void*))) return Invalid(op, "dst is not 8-byte aligned");
  if (args.row_bytes == 0) return Invalid(op, "row_bytes is 0");
  constexpr size_t kMax = std::numeric_limits<size_t>::max();
  if (args.n > kMax / sizeof(void*) || args.n > kMax / args.row_bytes) {
    return Invalid(op, "n = " + std::to_string(args.n) + " rows overflow the address space");
  }
  return Status::OK();
}

}  // namespace engram::gpu
