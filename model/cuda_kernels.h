// CUDA twins of the Engram layer's gating and fusion kernels (model/gating_kernel.h,
// model/fusion_kernel.h), in f32 and bf16, plus the CPU twins of the bf16 variants.
//
// The f32 entry points take the CPU kernels' own params structs, with every array pointer a
// DEVICE pointer; the bf16 ones take the *Bf16 structs below, the same fields with the
// activations (proj, hidden_states, out_u; u, out) in bf16 and everything else (biases, norm
// weights, conv taps, gates, row scales) in f32. Arithmetic is f32 throughout; bf16 outputs
// are rounded to nearest even once, at the store.
//
// Each call enqueues its work on `stream` (nullptr: the legacy default stream) and returns
// without waiting: OK means the launch was accepted, not that the kernel ran; an error of the
// kernel itself (say an illegal address) surfaces at the caller's next synchronising CUDA
// call. Errors are Status values (model/cuda_status.h maps CUDA's codes):
//   InvalidArgument  a size <= 0, a required null pointer, proj_stride < (M + 1) * H, more
//                    than 2^31 - 1 tokens (gating) or blocks (fusion) in one call
//   NotSupported     fusion with kernel_size > 8, or hidden_size > 10240 (vectorised path) /
//                    2560 (scalar path); no usable device
//   others           what the CUDA runtime reported (launch failures: IOError)
// Vectorised path: gating when H and proj_stride are multiples of 4 (f32) / 8 (bf16) and every
// array is 16-byte aligned (16-byte accesses); fusion when H % 4 == 0, u and out are aligned to
// 4 elements and norm and conv to 16 bytes (16-byte f32 / 8-byte bf16 accesses). Otherwise the
// same kernels run with scalar accesses.
//
// Fusion in place (out == u) is supported as on the CPU: the kernel splits each sequence into
// chunks of tokens processed in parallel, so before it runs, the (kernel_size - 1) * dilation
// rows of u preceding each chunk are copied aside (stream-ordered cudaMallocAsync scratch,
// freed with cudaFreeAsync on the same stream; ResourceExhausted when it cannot be had).
// out == u costs that extra copy, ~(K-1)*dil / chunk of the bytes; out disjoint from u needs
// no scratch.
//
// No global or __constant__ state: calls on distinct outputs may run concurrently on distinct
// streams (the usual CUDA rules on the current device apply; the kernels run on the device
// current at the call).
#pragma once

#include <cstdint>

#include "model/fusion_kernel.h"
#include "model/gating_kernel.h"
#include "storage/status.h"

// cudaStream_t without the CUDA headers (the same declaration as CUDA's driver_types.h), so
// plain C++ (the CPU twins, their callers) can include this header.
struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;

namespace engram::model {

// A bfloat16 value as its bit pattern, the upper half of an f32's: layout-compatible with
// CUDA's __nv_bfloat16 and with the store's bf16 rows (storage/dtype.h BFloat16ToFloat).
using Bf16 = uint16_t;

// GatingParams with proj, hidden_states and out_u in bf16 (see gating_kernel.h for shapes).
struct GatingParamsBf16 {
  int64_t tokens = 0;
  int32_t hidden = 0;
  int32_t hc_mult = 0;
  const Bf16* proj = nullptr;           // [N, proj_stride]
  int64_t proj_stride = 0;              // elements between tokens, >= (M + 1) * H
  const float* key_bias = nullptr;      // [M, H]
  const float* value_bias = nullptr;    // [H]
  const float* norm1 = nullptr;         // [M, H]
  const float* norm2 = nullptr;         // [M, H]
  const Bf16* hidden_states = nullptr;  // [N, M, H]
  float eps_key = 0;
  float eps_query = 0;
  Bf16* out_u = nullptr;      // [N, M, H]; must not overlap the inputs
  float* out_gate = nullptr;  // optional [N, M]
};

// FusionParams with u and out in bf16 (see fusion_kernel.h for shapes).
struct FusionParamsBf16 {
  int64_t batch = 0;
  int64_t seq_len = 0;
  int32_t hidden = 0;
  int32_t hc_mult = 0;
  int32_t kernel_size = 0;
  int32_t dilation = 0;
  const Bf16* u = nullptr;      // [B, T, M, H]
  const float* norm = nullptr;  // [M, H]
  const float* conv = nullptr;  // [K, M*H] tap-major
  float eps = 1e-5f;
  float* row_scale = nullptr;  // [B, T, M], written (rsqrt(mean(u^2) + eps) per row)
  Bf16* out = nullptr;         // [B, T, M, H]; u itself or disjoint from it
};

// Gating on the device. REQUIRES: as GatingCpu, with device pointers.
Status GatingCuda(const GatingParams& p, cudaStream_t stream);
Status GatingCuda(const GatingParamsBf16& p, cudaStream_t stream);

// Fusion on the device; writes out and row_scale. REQUIRES: as FusionCpu, with device
// pointers.
Status FusionCuda(const FusionParams& p, cudaStream_t stream);
Status FusionCuda(const FusionParamsBf16& p, cudaStream_t stream);

// CPU twins of the bf16 variants (cuda_kernels_ref.cc): the bf16 inputs converted to f32
// exactly, the f32 CPU kernel (GatingCpu / FusionCpu) run on them, the outputs rounded to bf16
// (round to nearest even). Host pointers; `threads` as for the f32 kernels. Fusion in place
// (out == u) is allowed.
void GatingBf16Cpu(const GatingParamsBf16& p, int threads);
void FusionBf16Cpu(const FusionParamsBf16& p, int threads);

}  // namespace engram::model
