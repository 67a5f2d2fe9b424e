// The Engram layer's projection GEMM on the device, through cuBLAS: the CUDA twin of
// model/gemm.h's SgemmAbt (same shapes, transposes, leading dimensions and beta semantics),
// plus a bf16-input variant with f32 accumulation and an f32 output.
//
//   C[m, n] = A[m, k] * B[n, k]^T + beta * C[m, n]    row-major, leading dimensions in elements
//
// B is a torch Linear weight [out, in] as the checkpoint stores it; no transposed copy is made.
// Every pointer is a DEVICE pointer. beta 0 ignores C's old contents (NaNs included); k == 0
// scales C by beta (0 clears it); m or n == 0 does nothing and touches no device.
//
// Precision: f32 is true f32. The handle's math mode is CUBLAS_DEFAULT_MATH (no TF32 tensor
// cores); only NVIDIA_TF32_OVERRIDE can change that and it only ever disables TF32. The bf16
// variant converts nothing on the host: products of bf16 values are exact in f32 and are
// accumulated in f32 (cublasGemmEx, CUBLAS_COMPUTE_32F), the same arithmetic as SgemmAbt on the
// inputs widened to f32 up to summation order.
//
// Each call enqueues its work on `stream` (nullptr: the legacy default stream) and returns
// without waiting: OK means cuBLAS accepted the work. Errors are Status values; no cuBLAS or
// CUDA code crosses this edge:
//   InvalidArgument    a size or leading dimension negative, too small (lda, ldb >= k;
//                      ldc >= n) or above 2^31 - 1; a null A, B (k > 0) or C (m, n > 0)
//   NotSupported       no usable device or driver (cuBLAS could not be initialised), or the
//                      device cannot run the requested GEMM (bf16 needs sm_80 or later)
//   ResourceExhausted  cuBLAS could not allocate its workspace or handle
//   IOError            anything else cuBLAS or the CUDA runtime reported
//
// Thread safety: a CudaGemm owns one cuBLAS handle, created on first use on the device current
// then, and must be used by one thread at a time, with that device current (a cuBLAS handle is
// bound to its device). Use one CudaGemm per host thread to issue GEMMs concurrently.
#pragma once

#include <cstdint>

#include "model/cuda_kernels.h"  // Bf16, cudaStream_t without the CUDA headers
#include "storage/status.h"

// cublasHandle_t's pointee, as cuBLAS's cublas_api.h declares it.
struct cublasContext;

namespace engram::model {

class CudaGemm {
 public:
  CudaGemm() = default;  // creates no handle: cheap, and needs no device
  ~CudaGemm();
  CudaGemm(CudaGemm&& other) noexcept;
  CudaGemm& operator=(CudaGemm&& other) noexcept;
  CudaGemm(const CudaGemm&) = delete;
  CudaGemm& operator=(const CudaGemm&) = delete;

  // SgemmAbt (model/gemm.h) on the device, all f32.
  Status SgemmAbt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                  int64_t ldb, float beta, float* c, int64_t ldc, cudaStream_t stream);

  // The same product with A and B in bf16 and C in f32 (f32 accumulation). Its CPU twin is
  // SgemmAbt on A and B widened to f32 (BFloat16ToFloat is exact).
  Status GemmAbtBf16(int64_t m, int64_t n, int64_t k, const Bf16* a, int64_t lda, const Bf16* b,
                     int64_t ldb, float beta, float* c, int64_t ldc, cudaStream_t stream);

 private:
  // Creates the handle on first use; binds it to `stream`.
  Status Prepare(cudaStream_t stream);
  // The k == 0 case: C = beta * C (beta 0 clears it).
  Status ScaleC(int64_t m, int64_t n, float beta, float* c, int64_t ldc, cudaStream_t stream);

  cublasContext* handle_ = nullptr;
};

}  // namespace engram::model
