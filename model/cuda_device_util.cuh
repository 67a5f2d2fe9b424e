// Device helpers shared by the Engram layer's CUDA kernels (gating_kernel_cuda.cu,
// fusion_kernel_cuda.cu); internal to those files.
//
//   - bf16 <-> f32 with the store's rounding (storage/dtype.cc FloatToBFloat16: round to
//     nearest even, NaN kept quiet), so a kernel's bf16 output rounds exactly as the CPU twin's.
//   - LoadF / StoreF: W contiguous elements of f32 or bf16 as floats: 16-byte accesses for f32
//     with W % 4 == 0 and bf16 with W % 8 == 0, 8-byte ones for bf16 with W % 4 == 0 (the
//     caller guarantees that alignment), scalar ones otherwise.
//   - BlockSum: sums N floats over the block; every thread gets the totals.
//
// Thread safety: device code; no global or __constant__ state.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace engram::model::cuda_detail {

// The most threads a kernel here launches with (BlockSum's shared arrays are sized by it).
constexpr int kMaxThreads = 1024;
constexpr int kMaxWarps = kMaxThreads / 32;

__device__ __forceinline__ float Bf16ToF32(uint16_t b) {
  return __uint_as_float(static_cast<uint32_t>(b) << 16);
}

__device__ __forceinline__ uint32_t F32ToBf16(float f) {
  uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (x >> 16) | 0x40u;  // NaN stays a quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return x >> 16;
}

template <int W>
__device__ __forceinline__ void LoadF(const float* p, float (&v)[W]) {
  if constexpr (W % 4 == 0) {
#pragma unroll
    for (int i = 0; i < W / 4; ++i) {
      const float4 q = reinterpret_cast<const float4*>(p)[i];
      v[4 * i] = q.x;
      v[4 * i + 1] = q.y;
      v[4 * i + 2] = q.z;
      v[4 * i + 3] = q.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < W; ++i) v[i] = p[i];
  }
}

template <int W>
__device__ __forceinline__ void LoadF(const uint16_t* p, float (&v)[W]) {
  if constexpr (W % 8 == 0) {
#pragma unroll
    for (int i = 0; i < W / 8; ++i) {
      const uint4 q = reinterpret_cast<const uint4*>(p)[i];
      const uint32_t words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        v[8 * i + 2 * k] = __uint_as_float(words[k] << 16);
        v[8 * i + 2 * k + 1] = __uint_as_float(words[k] & 0xffff0000u);
      }
    }
  } else if constexpr (W % 4 == 0) {
#pragma unroll
    for (int i = 0; i < W / 4; ++i) {
      const uint2 q = reinterpret_cast<const uint2*>(p)[i];
      v[4 * i] = __uint_as_float(q.x << 16);
      v[4 * i + 1] = __uint_as_float(q.x & 0xffff0000u);
      v[4 * i + 2] = __uint_as_float(q.y << 16);
      v[4 * i + 3] = __uint_as_float(q.y & 0xffff0000u);
    }
  } else {
#pragma unroll
    for (int i = 0; i < W; ++i) v[i] = Bf16ToF32(p[i]);
  }
}

template <int W>
__device__ __forceinline__ void StoreF(float* p, const float (&v)[W]) {
  if constexpr (W % 4 == 0) {
#pragma unroll
    for (int i = 0; i < W / 4; ++i) {
      reinterpret_cast<float4*>(p)[i] =
          make_float4(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < W; ++i) p[i] = v[i];
  }
}

template <int W>
__device__ __forceinline__ void StoreF(uint16_t* p, const float (&v)[W]) {
  if constexpr (W % 8 == 0) {
#pragma unroll
    for (int i = 0; i < W / 8; ++i) {
      uint32_t words[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        words[k] = F32ToBf16(v[8 * i + 2 * k]) | (F32ToBf16(v[8 * i + 2 * k + 1]) << 16);
      }
      reinterpret_cast<uint4*>(p)[i] = make_uint4(words[0], words[1], words[2], words[3]);
    }
  } else if constexpr (W % 4 == 0) {
#pragma unroll
    for (int i = 0; i < W / 4; ++i) {
      reinterpret_cast<uint2*>(p)[i] =
          make_uint2(F32ToBf16(v[4 * i]) | (F32ToBf16(v[4 * i + 1]) << 16),
                     F32ToBf16(v[4 * i + 2]) | (F32ToBf16(v[4 * i + 3]) << 16));
    }
  } else {
#pragma unroll
    for (int i = 0; i < W; ++i) p[i] = static_cast<uint16_t>(F32ToBf16(v[i]));
  }
}

// Sums v[0..N) over the block and leaves the totals in v on every thread. `red` is one of two
// shared buffers the caller alternates between consecutive calls: with two, one barrier per
// call suffices (a thread can only write a buffer again after every thread has passed the
// barrier of the call in between, i.e. finished reading it). Every thread of the block must
// call it; blockDim.x must be a multiple of 32. The summation order is fixed (lanes by a
// butterfly, then warps 0, 1, ...), so every thread gets bit-identical totals.
template <int N>
__device__ __forceinline__ void BlockSum(float (&v)[N], float (*red)[kMaxWarps]) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
#pragma unroll
  for (int i = 0; i < N; ++i) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v[i] += __shfl_xor_sync(0xffffffffu, v[i], o);
  }
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < N; ++i) red[i][warp] = v[i];
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < N; ++i) {
    float s = 0.0f;
    for (int w = 0; w < warps; ++w) s += red[i][w];
    v[i] = s;
  }
}

}  // namespace engram::model::cuda_detail
