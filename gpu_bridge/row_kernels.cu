// CUDA row kernels: gather (raw copy, or dequantise to f32 / bf16) and scatter; launchers in
// row_kernels_cuda.h, CPU twins in row_kernels_cpu.cc.
//
// Raw rows (gather kRaw, scatter): a group of G lanes per row, G the power of two nearest
// above row_bytes / 16 (at most a warp), so a 128-byte row takes 8 lanes and a warp moves four
// rows at once. Each group copies the row's body in the widest of 16/8/4-byte words that both
// ends are aligned to (two loads in flight per lane), then its tail bytes.
// Dequantising gathers: a warp per row, lane e converting elements e, e + 32, ... exactly as
// storage/dtype.cc's DequantizeRow and FloatToBFloat16 do (bit patterns built with integer
// operations, one IEEE multiply for the int8 / fp8 scale, the host's NaN rules; see
// row_kernels_cuda.h). Loads of 2- and 4-byte elements are byte-assembled when the row is not
// aligned to them.
// Rows are walked grid-stride, at most kMaxBlocks blocks; with device_n the grid is sized for
// the capacity n and each thread reads the count itself (graph replays need no relaunch).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "gpu_bridge/row_kernels_cuda.h"
#include "model/cuda_status.h"

namespace engram::gpu {
namespace {

constexpr int kThreads = 256;
constexpr uint64_t kMaxBlocks = uint64_t{1} << 20;

// The NaN the host's FPU makes for an invalid operation (0 * inf): x86 SSE's "QNaN floating
// point indefinite" is negative; AArch64's default NaN is positive.
#if defined(__aarch64__)
constexpr uint32_t kHostDefaultNaN = 0x7fc00000u;
#else
constexpr uint32_t kHostDefaultNaN = 0xffc00000u;
#endif
#define ENGRAM_ROW_KERNELS_STR2(x) #x
#define ENGRAM_ROW_KERNELS_STR(x) ENGRAM_ROW_KERNELS_STR2(x)
#if defined(__CUDA_ARCH_LIST__)
constexpr const char* kArchList = ENGRAM_ROW_KERNELS_STR(__CUDA_ARCH_LIST__);
#else
constexpr const char* kArchList = "unknown";
#endif
constexpr uint32_t kQuietNaN = 0x7fc00000u;  // std::nanf("")
constexpr uint32_t kSignBit = 0x80000000u;

struct GatherParams {
  const void* const* rows;
  uint64_t n;
  const uint64_t* device_n;
  uint8_t* out;
  uint64_t out_stride;
  uint32_t dim;
  uint32_t row_bytes;
  uint32_t group;  // lanes per row: a power of two <= 32
};

struct ScatterParams {
  const uint8_t* src;
  void* const* dst;
  uint64_t n;
  uint32_t row_bytes;
  uint32_t group;
};

// ---- scalar conversions (storage/dtype.cc, bit for bit) ---------------------------------

__device__ __forceinline__ bool IsNaN(uint32_t bits) { return (bits & 0x7fffffffu) > 0x7f800000u; }

// a * b with the host's NaN rules: a NaN operand propagates quieted (a's first), an invalid
// product is the host's default NaN; otherwise the IEEE round-to-nearest product (no FMA).
__device__ __forceinline__ float HostMul(float a, float b) {
  const uint32_t ua = __float_as_uint(a), ub = __float_as_uint(b);
  if (IsNaN(ua)) return __uint_as_float(ua | 0x00400000u);
  if (IsNaN(ub)) return __uint_as_float(ub | 0x00400000u);
  const float r = __fmul_rn(a, b);
  return IsNaN(__float_as_uint(r)) ? __uint_as_float(kHostDefaultNaN) : r;
}

__device__ __forceinline__ float WithSign(float mag, bool negative) {
  return negative ? __uint_as_float(__float_as_uint(mag) | kSignBit) : mag;
}

__device__ __forceinline__ float HalfToFloatDev(uint16_t h) {
  const bool negative = h & 0x8000u;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0)
    return WithSign(__fmul_rn(__uint2float_rn(mant), 5.9604644775390625e-08f), negative);
  const uint32_t sign = negative ? kSignBit : 0u;
  if (exp == 31) return __uint_as_float(sign | 0x7f800000u | (mant << 13));
  return __uint_as_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

__device__ __forceinline__ float Fp8E4M3ToFloatDev(uint8_t v) {
  const uint32_t exp = (v >> 3) & 0xfu;
  const uint32_t mant = v & 0x7u;
  float mag;
  if (exp == 0xf && mant == 0x7) {
    mag = __uint_as_float(kQuietNaN);
  } else if (exp == 0) {
    mag = __fmul_rn(__uint2float_rn(mant), 0.001953125f);  // m * 2^-9
  } else {
    mag = __uint_as_float(((exp + 120u) << 23) | (mant << 20));  // (1 + m/8) * 2^(exp-7)
  }
  return WithSign(mag, v & 0x80u);
}

__device__ __forceinline__ float Ue8m0ToFloatDev(uint8_t e) {
  if (e == 0xff) return __uint_as_float(kQuietNaN);
  if (e == 0) return __uint_as_float(0x00400000u);  // 2^-127, subnormal
  return __uint_as_float(static_cast<uint32_t>(e) << 23);
}

__device__ __forceinline__ uint16_t FloatToBFloat16Dev(float f) {
  uint32_t x = __float_as_uint(f);
  if (IsNaN(x)) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// Little-endian loads, byte-assembled unless `aligned`.
__device__ __forceinline__ uint32_t LoadU16(const uint8_t* p, bool aligned) {
  if (aligned) return *reinterpret_cast<const uint16_t*>(p);
  return p[0] | (static_cast<uint32_t>(p[1]) << 8);
}

__device__ __forceinline__ uint32_t LoadU32(const uint8_t* p, bool aligned) {
  if (aligned) return *reinterpret_cast<const uint32_t*>(p);
  return p[0] | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

// Element e of a row of dtype D (DequantizeRow). `scale` is the int8 row scale.
template <DType D>
__device__ __forceinline__ float ValueAt(const uint8_t* row, uint32_t dim, uint32_t e, bool aligned,
                                         float scale) {
  if constexpr (D == DType::kF32) {
    return __uint_as_float(LoadU32(row + 4 * e, aligned));
  } else if constexpr (D == DType::kF16) {
    return HalfToFloatDev(static_cast<uint16_t>(LoadU16(row + 2 * e, aligned)));
  } else if constexpr (D == DType::kBF16) {
    return __uint_as_float(LoadU16(row + 2 * e, aligned) << 16);
  } else if constexpr (D == DType::kInt8) {
    return HostMul(__int2float_rn(static_cast<int8_t>(row[e])), scale);
  } else {
    return HostMul(Fp8E4M3ToFloatDev(row[e]), Ue8m0ToFloatDev(row[dim + e / kFp8BlockValues]));
  }
}

// ---- raw copies ------------------------------------------------------------------------

// The first `bytes` bytes (a multiple of sizeof(V)) in words V, two loads in flight per lane.
template <typename V>
__device__ __forceinline__ void CopyWords(const uint8_t* src, uint8_t* dst, uint32_t bytes,
                                          uint32_t lane, uint32_t group) {
  const uint32_t words = bytes / sizeof(V);
  const V* s = reinterpret_cast<const V*>(src);
  V* d = reinterpret_cast<V*>(dst);
  uint32_t j = lane;
  for (; j + group < words; j += 2 * group) {
    const V a = s[j];
    const V b = s[j + group];
    d[j] = a;
    d[j + group] = b;
  }
  if (j < words) d[j] = s[j];
}

// One row, by the `group` lanes of a group (this thread is `lane`).
__device__ __forceinline__ void CopyRow(const uint8_t* src, uint8_t* dst, uint32_t bytes,
                                        uint32_t lane, uint32_t group) {
  const uint32_t align =
      static_cast<uint32_t>(reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst));
  uint32_t body = 0;
  if ((align & 15u) == 0) {
    body = bytes & ~15u;
    CopyWords<uint4>(src, dst, body, lane, group);
  } else if ((align & 7u) == 0) {
    body = bytes & ~7u;
    CopyWords<uint2>(src, dst, body, lane, group);
  } else if ((align & 3u) == 0) {
    body = bytes & ~3u;
    CopyWords<uint32_t>(src, dst, body, lane, group);
  }
  for (uint32_t j = body + lane; j < bytes; j += group) dst[j] = src[j];
}

__device__ __forceinline__ uint64_t RowCount(uint64_t n, const uint64_t* device_n) {
  if (device_n == nullptr) return n;
  const uint64_t count = *device_n;
  return count < n ? count : n;
}

__global__ void __launch_bounds__(kThreads) GatherRawKernel(const GatherParams p) {
  const uint64_t count = RowCount(p.n, p.device_n);
  const uint32_t lane = threadIdx.x & (p.group - 1);
  const uint64_t per_block = kThreads / p.group;
  const uint64_t step = per_block * gridDim.x;
  for (uint64_t i = blockIdx.x * per_block + threadIdx.x / p.group; i < count; i += step) {
    CopyRow(static_cast<const uint8_t*>(p.rows[i]), p.out + i * p.out_stride, p.row_bytes, lane,
            p.group);
  }
}

__global__ void __launch_bounds__(kThreads) ScatterKernel(const ScatterParams p) {
  const uint32_t lane = threadIdx.x & (p.group - 1);
  const uint64_t per_block = kThreads / p.group;
  const uint64_t step = per_block * gridDim.x;
  for (uint64_t i = blockIdx.x * per_block + threadIdx.x / p.group; i < p.n; i += step) {
    CopyRow(p.src + i * p.row_bytes, static_cast<uint8_t*>(p.dst[i]), p.row_bytes, lane, p.group);
  }
}

// A warp per row.
template <DType D, OutType O>
__global__ void __launch_bounds__(kThreads) GatherDequantKernel(const GatherParams p) {
  const uint64_t count = RowCount(p.n, p.device_n);
  const uint32_t lane = threadIdx.x & 31u;
  const uint64_t per_block = kThreads / 32;
  const uint64_t step = per_block * gridDim.x;
  for (uint64_t i = blockIdx.x * per_block + threadIdx.x / 32; i < count; i += step) {
    const auto* row = static_cast<const uint8_t*>(p.rows[i]);
    uint8_t* dst = p.out + i * p.out_stride;
    const uintptr_t addr = reinterpret_cast<uintptr_t>(row);
    const bool aligned = D == DType::kF32 ? (addr & 3u) == 0 : (addr & 1u) == 0;
    float scale = 0.0f;
    if constexpr (D == DType::kInt8)
      scale = __uint_as_float(LoadU32(row + p.dim, (addr + p.dim) % 4 == 0));
    for (uint32_t e = lane; e < p.dim; e += 32) {
      const float v = ValueAt<D>(row, p.dim, e, aligned, scale);
      if constexpr (O == OutType::kF32) {
        reinterpret_cast<uint32_t*>(dst)[e] = __float_as_uint(v);
      } else {
        reinterpret_cast<uint16_t*>(dst)[e] = FloatToBFloat16Dev(v);
      }
    }
  }
}

uint32_t Blocks(uint64_t rows, uint32_t group) {
  const uint64_t per_block = kThreads / group;
  return static_cast<uint32_t>(std::min(kMaxBlocks, (rows + per_block - 1) / per_block));
}

// Lanes per raw row: the power of two at or above row_bytes / 16, at most 32.
uint32_t RawGroup(uint32_t row_bytes) {
  const uint32_t words = (row_bytes + 15) / 16;
  uint32_t group = 1;
  while (group < words && group < 32) group *= 2;
  return group;
}

template <DType D>
void LaunchDequant(const GatherParams& p, OutType out, cudaStream_t stream) {
  if (out == OutType::kF32) {
    GatherDequantKernel<D, OutType::kF32><<<Blocks(p.n, 32), kThreads, 0, stream>>>(p);
  } else {
    GatherDequantKernel<D, OutType::kBF16><<<Blocks(p.n, 32), kThreads, 0, stream>>>(p);
  }
}

}  // namespace

Status GatherRowsCuda(const GatherArgs& args, cudaStream_t stream) {
  if (args.n == 0) return Status::OK();
  cudaGetLastError();  // a stale error of an earlier failed call is not this launch's
  GatherParams p{args.rows,       args.n,   args.device_n,  static_cast<uint8_t*>(args.out),
                 args.out_stride, args.dim, args.row_bytes, 32};
  switch (args.out_type == OutType::kRaw ? -1 : static_cast<int>(args.dtype)) {
    case -1:
      p.group = RawGroup(args.row_bytes);
      GatherRawKernel<<<Blocks(p.n, p.group), kThreads, 0, stream>>>(p);
      break;
    case static_cast<int>(DType::kF32):
      LaunchDequant<DType::kF32>(p, args.out_type, stream);
      break;
    case static_cast<int>(DType::kF16):
      LaunchDequant<DType::kF16>(p, args.out_type, stream);
      break;
    case static_cast<int>(DType::kBF16):
      LaunchDequant<DType::kBF16>(p, args.out_type, stream);
      break;
    case static_cast<int>(DType::kInt8):
      LaunchDequant<DType::kInt8>(p, args.out_type, stream);
      break;
    case static_cast<int>(DType::kFp8E4M3Ue8m0):
      LaunchDequant<DType::kFp8E4M3Ue8m0>(p, args.out_type, stream);
      break;
    default:
      return Status::InvalidArgument("GatherRowsCuda: unknown dtype");
  }
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "gather kernel launch");
  return Status::OK();
}

Status ScatterRowsCuda(const ScatterArgs& args, cudaStream_t stream) {
  if (args.n == 0) return Status::OK();
  cudaGetLastError();  // as above
  const ScatterParams p{static_cast<const uint8_t*>(args.src), args.dst, args.n, args.row_bytes,
                        RawGroup(args.row_bytes)};
  ScatterKernel<<<Blocks(p.n, p.group), kThreads, 0, stream>>>(p);
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaGetLastError(), "scatter kernel launch");
  return Status::OK();
}

Status CheckRowKernelsLoadable() {
  cudaFuncAttributes attr{};
  const cudaError_t err = cudaFuncGetAttributes(&attr, GatherRawKernel);
  if (err == cudaSuccess) return Status::OK();
  cudaGetLastError();  // clears the (non-sticky) error; the result is deliberately unused
  return Status::NotSupported(std::string("the row kernels have no image for this device (built "
                                          "for compute capabilities ") +
                              kArchList + "): " + cudaGetErrorString(err));
}

}  // namespace engram::gpu
