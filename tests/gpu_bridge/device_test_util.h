// Helpers shared by the device tests (device_host_test.cc, device_cuda_test.cc): rows of every
// dtype quantised from random floats, with edge values written over some of them; gathers and
// scatters run on any Device and read back through CopyAsync; and the expected gather output
// computed straight from DequantizeRow / FloatToBFloat16.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gpu_bridge/device.h"
#include "storage/dtype.h"

// ASSERT that a Status is OK, printing it otherwise.
#define ENGRAM_ASSERT_OK(expr)               \
  do {                                       \
    const ::engram::Status _st = (expr);     \
    ASSERT_TRUE(_st.ok()) << _st.ToString(); \
  } while (0)

namespace engram::gpu::testing {

inline constexpr uint8_t kPoolGap = 0xee;    // bytes between rows in a pool
inline constexpr uint8_t kUnwritten = 0xa5;  // output bytes no row should touch

// Device memory freed on destruction. Move-only.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(Device* device, void* ptr) : device_(device), ptr_(ptr) {}
  DeviceMemory(DeviceMemory&& o) noexcept
      : device_(std::exchange(o.device_, nullptr)), ptr_(std::exchange(o.ptr_, nullptr)) {}
  DeviceMemory& operator=(DeviceMemory&& o) noexcept {
    std::swap(device_, o.device_);
    std::swap(ptr_, o.ptr_);
    return *this;
  }
  ~DeviceMemory() {
    if (device_ != nullptr) device_->Free(ptr_);
  }
  static Result<DeviceMemory> Allocate(Device* device, size_t bytes) {
    ENGRAM_ASSIGN_OR_RETURN(void* p, device->Malloc(bytes));
    return DeviceMemory(device, p);
  }
  uint8_t* get() const { return static_cast<uint8_t*>(ptr_); }

 private:
  Device* device_ = nullptr;
  void* ptr_ = nullptr;
};

// Uploads `bytes` into fresh device memory (synchronously, on `stream`).
inline Result<DeviceMemory> Upload(Device* device, Stream* stream, const void* data, size_t bytes) {
  ENGRAM_ASSIGN_OR_RETURN(DeviceMemory mem, DeviceMemory::Allocate(device, bytes));
  ENGRAM_RETURN_IF_ERROR(
      device->CopyAsync(mem.get(), data, bytes, CopyKind::kHostToDevice, stream));
  ENGRAM_RETURN_IF_ERROR(device->SynchronizeStream(stream));
  return mem;
}

inline Result<std::vector<uint8_t>> Download(Device* device, Stream* stream, const void* src,
                                             size_t bytes) {
  std::vector<uint8_t> host(bytes);
  ENGRAM_RETURN_IF_ERROR(
      device->CopyAsync(host.data(), src, bytes, CopyKind::kDeviceToHost, stream));
  ENGRAM_RETURN_IF_ERROR(device->SynchronizeStream(stream));
  return host;
}

inline void PutU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void PutU16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

// Writes edge values over one row (variant picks which): NaNs (signalling and quiet, both
// signs), infinities, signed zeros, subnormals, bf16 rounding ties, and int8/fp8 scales that
// are NaN, infinite, subnormal or overflow the product. fp8 blocks with a NaN scale get no NaN
// codes (row_kernels_cuda.h says why).
inline void WriteSpecials(DType dtype, uint32_t dim, uint8_t* row, int variant) {
  switch (dtype) {
    case DType::kF32: {
      const uint32_t v[] = {0x7f800001u, 0xffc00001u, 0x7f800000u, 0xff800000u, 0x80000000u,
                            0x00000001u, 0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0x807fffffu};
      for (uint32_t i = 0; i < dim; ++i) PutU32(row + 4 * i, v[(i + variant) % 10]);
      return;
    }
    case DType::kF16: {
      const uint16_t v[] = {0x7c01, 0xfe00, 0x7c00, 0xfc00, 0x8000, 0x0001, 0x03ff, 0x8001, 0x7bff};
      for (uint32_t i = 0; i < dim; ++i) PutU16(row + 2 * i, v[(i + variant) % 9]);
      return;
    }
    case DType::kBF16: {
      const uint16_t v[] = {0x7f81, 0xffc1, 0x7f80, 0x8000, 0x0001, 0xff80};
      for (uint32_t i = 0; i < dim; ++i) PutU16(row + 2 * i, v[(i + variant) % 6]);
      return;
    }
    case DType::kInt8: {
      // sNaN, +inf (0 * inf too), a subnormal (rounded products), -0, huge (overflow).
      const uint32_t scales[] = {0x7f800001u, 0x7f800000u, 0x000116c2u, 0x80000000u, 0x7f000000u};
      PutU32(row + dim, scales[variant % 5]);
      row[0] = 0;
      if (dim > 1) row[1] = 0x7f;
      if (dim > 2) row[2] = 0x81;
      return;
    }
    case DType::kFp8E4M3Ue8m0: {
      uint8_t* scales = row + dim;
      for (uint32_t b = 0; b < dim / kFp8BlockValues; ++b) {
        uint8_t* block = row + b * kFp8BlockValues;
        switch ((b + variant) % 4) {
          case 0:  // NaN scale, no NaN codes
            scales[b] = 0xff;
            for (uint32_t i = 0; i < kFp8BlockValues; ++i) {
              if ((block[i] & 0x7f) == 0x7f) block[i] = 0x01;
            }
            break;
          case 1:  // the smallest scale (2^-127), subnormal codes
            scales[b] = 0x00;
            block[0] = 0x01;
            block[1] = 0x87;
            break;
          case 2:  // NaN codes, a finite scale
            block[0] = 0x7f;
            block[1] = 0xff;
            block[2] = 0x80;
            break;
          default:  // 448 * 2^127 overflows
            scales[b] = 254;
            block[0] = 0x7e;
            block[1] = 0xfe;
            break;
        }
      }
      return;
    }
  }
}

// `count` rows of (dtype, dim), `slot_bytes` apart (the gap filled with kPoolGap), quantised
// with QuantizeRow from random floats whose magnitude varies by row; with `specials`, every
// fifth row gets WriteSpecials.
inline std::vector<uint8_t> MakeRows(DType dtype, uint32_t dim, size_t count, size_t slot_bytes,
                                     uint64_t seed, bool specials = true) {
  std::vector<uint8_t> pool(count * slot_bytes, kPoolGap);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const float magnitudes[] = {1e-3f, 1.0f, 300.0f, 1e-30f};
  std::vector<float> values(dim);
  for (size_t r = 0; r < count; ++r) {
    const float m = magnitudes[rng() % 4];
    for (float& v : values) v = uniform(rng) * m;
    uint8_t* row = pool.data() + r * slot_bytes;
    QuantizeRow(dtype, dim, values.data(), row);
    if (specials && r % 5 == 3) WriteSpecials(dtype, dim, row, static_cast<int>(r / 5));
  }
  return pool;
}

// One gather: rows of (dtype, dim) `slot_bytes` apart in a pool placed `pool_offset` bytes into
// a device buffer; output row i is pool slot slots[i].
struct GatherCase {
  DType dtype = DType::kF32;
  uint32_t dim = 0;
  OutType out_type = OutType::kRaw;
  size_t slot_bytes = 0;
  size_t pool_offset = 0;
  size_t out_stride = 0;
  std::vector<size_t> slots;
  std::optional<uint64_t> device_n;  // stored in device memory when set
  uint32_t raw_bytes = 0;            // kRaw only: row_bytes when set (else RowBytes(dtype, dim))

  uint32_t row_bytes() const { return raw_bytes != 0 ? raw_bytes : *RowBytes(dtype, dim); }
  std::string Name() const {
    return std::string(DTypeName(dtype)) + " dim " + std::to_string(dim) + " row_bytes " +
           std::to_string(row_bytes()) + " -> " + OutTypeName(out_type) + ", slot " +
           std::to_string(slot_bytes) + ", offset " + std::to_string(pool_offset) + ", stride " +
           std::to_string(out_stride) + ", n " + std::to_string(slots.size()) +
           (device_n ? ", device_n " + std::to_string(*device_n) : std::string());
  }
};

// Runs `c` on `device` and returns its whole output buffer (slots.size() * out_stride bytes,
// filled with kUnwritten before the gather).
inline Result<std::vector<uint8_t>> RunGather(Device* device, const std::vector<uint8_t>& pool,
                                              const GatherCase& c) {
  ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<Stream> stream, device->NewStream());
  std::vector<uint8_t> padded(c.pool_offset, 0);
  padded.insert(padded.end(), pool.begin(), pool.end());
  ENGRAM_ASSIGN_OR_RETURN(DeviceMemory d_pool,
                          Upload(device, stream.get(), padded.data(), padded.size()));
  std::vector<const void*> rows(c.slots.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i] = d_pool.get() + c.pool_offset + c.slots[i] * c.slot_bytes;
  }
  ENGRAM_ASSIGN_OR_RETURN(DeviceMemory d_rows,
                          Upload(device, stream.get(), rows.data(), rows.size() * sizeof(void*)));
  const std::vector<uint8_t> unwritten(c.slots.size() * c.out_stride, kUnwritten);
  ENGRAM_ASSIGN_OR_RETURN(DeviceMemory d_out,
                          Upload(device, stream.get(), unwritten.data(), unwritten.size()));
  DeviceMemory d_n;
  if (c.device_n) {
    ENGRAM_ASSIGN_OR_RETURN(d_n, Upload(device, stream.get(), &*c.device_n, sizeof(uint64_t)));
  }
  GatherArgs args;
  args.rows = reinterpret_cast<const void* const*>(d_rows.get());
  args.n = c.slots.size();
  args.dtype = c.dtype;
  args.dim = c.dim;
  args.row_bytes = c.row_bytes();
  args.out_type = c.out_type;
  args.out = d_out.get();
  args.out_stride = c.out_stride;
  args.device_n = reinterpret_cast<const uint64_t*>(d_n.get());
  ENGRAM_RETURN_IF_ERROR(device->GatherAsync(args, stream.get()));
  ENGRAM_RETURN_IF_ERROR(device->SynchronizeStream(stream.get()));
  return Download(device, stream.get(), d_out.get(), unwritten.size());
}

// What RunGather must return, from DequantizeRow / FloatToBFloat16 directly.
inline std::vector<uint8_t> ExpectedGather(const std::vector<uint8_t>& pool, const GatherCase& c) {
  std::vector<uint8_t> out(c.slots.size() * c.out_stride, kUnwritten);
  const size_t count = std::min<uint64_t>(c.device_n.value_or(c.slots.size()), c.slots.size());
  std::vector<float> values(c.dim);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* row = pool.data() + c.slots[i] * c.slot_bytes;
    uint8_t* dst = out.data() + i * c.out_stride;
    if (c.out_type == OutType::kRaw) {
      std::memcpy(dst, row, c.row_bytes());
      continue;
    }
    DequantizeRow(c.dtype, c.dim, row, values.data());
    for (uint32_t e = 0; e < c.dim; ++e) {
      if (c.out_type == OutType::kF32) {
        std::memcpy(dst + 4 * e, &values[e], 4);
      } else {
        PutU16(dst + 2 * e, FloatToBFloat16(values[e]));
      }
    }
  }
  return out;
}

// Scatters `rows` (count rows of row_bytes, packed) into pool slots `slots` (slot_bytes apart)
// of a device copy of `pool`; returns the pool afterwards.
inline Result<std::vector<uint8_t>> RunScatter(Device* device, const std::vector<uint8_t>& pool,
                                               size_t slot_bytes, const std::vector<uint8_t>& rows,
                                               uint32_t row_bytes,
                                               const std::vector<size_t>& slots) {
  ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<Stream> stream, device->NewStream());
  ENGRAM_ASSIGN_OR_RETURN(DeviceMemory d_pool,
                          Upload(device, stream.get(), pool.data(), pool.size()));
  ENGRAM_ASSIGN_OR_RETURN(DeviceMemory d_src,
                          Upload(device, stream.get(), rows.data(), rows.size()));
  std::vector<void*> dst(slots.size());
  for (size_t i = 0; i < dst.size(); ++i) dst[i] = d_pool.get() + slots[i] * slot_bytes;
  ENGRAM_ASSIGN_OR_RETURN(DeviceMemory d_dst,
                          Upload(device, stream.get(), dst.data(), dst.size() * sizeof(void*)));
  ScatterArgs args;
  args.src = d_src.get();
  args.dst = reinterpret_cast<void* const*>(d_dst.get());
  args.n = slots.size();
  args.row_bytes = row_bytes;
  ENGRAM_RETURN_IF_ERROR(device->ScatterAsync(args, stream.get()));
  ENGRAM_RETURN_IF_ERROR(device->SynchronizeStream(stream.get()));
  return Download(device, stream.get(), d_pool.get(), pool.size());
}

// The gathers both test files run: every dtype x OutType, over dims, pool layouts (tight,
// misaligned slots, an odd pool offset), output strides (exact, padded) and device_n values.
inline std::vector<GatherCase> AllGatherCases() {
  std::vector<GatherCase> cases;
  std::mt19937_64 rng(42);
  for (int d = 0; d < kNumDTypes; ++d) {
    const auto dtype = static_cast<DType>(d);
    const std::vector<uint32_t> dims = dtype == DType::kFp8E4M3Ue8m0
                                           ? std::vector<uint32_t>{32, 256}
                                           : std::vector<uint32_t>{1, 7, 64, 129};
    for (uint32_t dim : dims) {
      for (OutType out : {OutType::kRaw, OutType::kF32, OutType::kBF16}) {
        for (int layout = 0; layout < 3; ++layout) {
          GatherCase c;
          c.dtype = dtype;
          c.dim = dim;
          c.out_type = out;
          const uint32_t rb = c.row_bytes();
          c.slot_bytes = layout == 0 ? rb : rb + 13;
          c.pool_offset = layout == 2 ? 1 : 0;
          const size_t out_row = OutRowBytes(out, dim, rb);
          c.out_stride = layout == 0 ? out_row : out_row + (out == OutType::kRaw ? 5 : 24);
          const size_t pool_rows = 23;
          const size_t n = layout == 1 ? 300 : 41;
          for (size_t i = 0; i < n; ++i) c.slots.push_back(rng() % pool_rows);
          cases.push_back(c);
        }
      }
    }
  }
  return cases;
}

// Pool rows of AllGatherCases (they address slots < 23).
inline std::vector<uint8_t> PoolFor(const GatherCase& c) {
  return MakeRows(c.dtype, c.dim, 23, c.slot_bytes, 1000 + c.dim * 7 + static_cast<int>(c.dtype));
}

}  // namespace engram::gpu::testing
