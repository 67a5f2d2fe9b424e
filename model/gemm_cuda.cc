// CudaGemm (model/gemm_cuda.h): SgemmAbt's row-major C = A * B^T through cuBLAS's column-major
// interface. A row-major [r, c] matrix with leading dimension L is the column-major [c, r]
// matrix with the same L, so C^T[n, m] = B[n, k] * A^T[k, m] is one column-major GEMM with
// op(B^T stored as [k, n]) = transpose and op(A^T stored as [k, m]) = none: no copies.
#include "model/gemm_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <climits>
#include <string>
#include <string_view>
#include <utility>

#include "model/cuda_status.h"

namespace engram::model {
namespace {

// A cuBLAS status as a Status (see gemm_cuda.h for the mapping).
Status CublasStatus(cublasStatus_t st, std::string_view context) {
  if (st == CUBLAS_STATUS_SUCCESS) return Status::OK();
  std::string msg(context);
  msg += ": ";
  msg += cublasGetStatusName(st);
  msg += " (" + std::to_string(static_cast<int>(st)) + "): ";
  msg += cublasGetStatusString(st);
  switch (st) {
    case CUBLAS_STATUS_ALLOC_FAILED:
      return Status::ResourceExhausted(msg);
    case CUBLAS_STATUS_INVALID_VALUE:
      return Status::InvalidArgument(msg);
    case CUBLAS_STATUS_NOT_INITIALIZED:  // cublasCreate without a usable device or driver
    case CUBLAS_STATUS_ARCH_MISMATCH:
    case CUBLAS_STATUS_NOT_SUPPORTED:
    case CUBLAS_STATUS_LICENSE_ERROR:
      return Status::NotSupported(msg);
    default:
      return Status::IOError(msg);
  }
}

#define ENGRAM_CUBLAS_RETURN_IF_ERROR(expr, context) \
  do {                                               \
    const cublasStatus_t _cublas_st = (expr);        \
    if (_cublas_st != CUBLAS_STATUS_SUCCESS) {       \
      return CublasStatus(_cublas_st, (context));    \
    }                                                \
  } while (0)

// model/gemm.cc's checks, plus null pointers (the device cannot be probed for them).
Status CheckArgs(int64_t m, int64_t n, int64_t k, const void* a, int64_t lda, const void* b,
                 int64_t ldb, const void* c, int64_t ldc) {
  const int64_t kMax = INT_MAX;
  if (m < 0 || n < 0 || k < 0 || m > kMax || n > kMax || k > kMax) {
    return Status::InvalidArgument("gemm_cuda: sizes out of range (m " + std::to_string(m) +
                                   ", n " + std::to_string(n) + ", k " + std::to_string(k) + ")");
  }
  if (lda < (k > 0 ? k : 1) || ldb < (k > 0 ? k : 1) || ldc < (n > 0 ? n : 1) || lda > kMax ||
      ldb > kMax || ldc > kMax) {
    return Status::InvalidArgument("gemm_cuda: bad leading dimension (lda " + std::to_string(lda) +
                                   ", ldb " + std::to_string(ldb) + ", ldc " + std::to_string(ldc) +
                                   ")");
  }
  if (m > 0 && n > 0 && (c == nullptr || (k > 0 && (a == nullptr || b == nullptr)))) {
    return Status::InvalidArgument("gemm_cuda: null matrix pointer");
  }
  return Status::OK();
}

}  // namespace

CudaGemm::~CudaGemm() {
  if (handle_ != nullptr) cublasDestroy(handle_);  // result ignored: nothing to report it to
}

CudaGemm::CudaGemm(CudaGemm&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}

CudaGemm& CudaGemm::operator=(CudaGemm&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) cublasDestroy(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

Status CudaGemm::Prepare(cudaStream_t stream) {
  if (handle_ == nullptr) {
    cublasHandle_t h = nullptr;
    const cublasStatus_t st = cublasCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS) {
      cudaGetLastError();  // cublasCreate may leave a (non-sticky) runtime error behind
      return CublasStatus(st, "cublasCreate");
    }
    // Explicit although it is cuBLAS's default: f32 GEMMs stay f32 (no TF32).
    const cublasStatus_t mode = cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);
    if (mode != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(h);
      return CublasStatus(mode, "cublasSetMathMode");
    }
    handle_ = h;
  }
  ENGRAM_CUBLAS_RETURN_IF_ERROR(cublasSetStream(handle_, stream), "cublasSetStream");
  return Status::OK();
}

Status CudaGemm::ScaleC(int64_t m, int64_t n, float beta, float* c, int64_t ldc,
                        cudaStream_t stream) {
  if (beta == 0.0f) {  // clears NaNs too, as SgemmAbt does
    ENGRAM_CUDA_RETURN_IF_ERROR(
        cudaMemset2DAsync(c, static_cast<size_t>(ldc) * sizeof(float), 0,
                          static_cast<size_t>(n) * sizeof(float), static_cast<size_t>(m), stream),
        "gemm_cuda: cudaMemset2DAsync");
    return Status::OK();
  }
  ENGRAM_RETURN_IF_ERROR(Prepare(stream));
  if (ldc == n) {  // contiguous: a few long scalings
    int64_t left = m * n;
    float* p = c;
    while (left > 0) {
      const int chunk = static_cast<int>(left < INT_MAX ? left : INT_MAX);
      ENGRAM_CUBLAS_RETURN_IF_ERROR(cublasSscal(handle_, chunk, &beta, p, 1), "cublasSscal");
      p += chunk;
      left -= chunk;
    }
    return Status::OK();
  }
  for (int64_t i = 0; i < m; ++i) {
    ENGRAM_CUBLAS_RETURN_IF_ERROR(cublasSscal(handle_, static_cast<int>(n), &beta, c + i * ldc, 1),
                                  "cublasSscal");
  }
  return Status::OK();
}

Status CudaGemm::SgemmAbt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                          const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                          cudaStream_t stream) {
  ENGRAM_RETURN_IF_ERROR(CheckArgs(m, n, k, a, lda, b, ldb, c, ldc));
  if (m == 0 || n == 0) return Status::OK();
  if (k == 0) return ScaleC(m, n, beta, c, ldc, stream);
  ENGRAM_RETURN_IF_ERROR(Prepare(stream));
  const float alpha = 1.0f;
  ENGRAM_CUBLAS_RETURN_IF_ERROR(
      cublasSgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                  static_cast<int>(k), &alpha, b, static_cast<int>(ldb), a, static_cast<int>(lda),
                  &beta, c, static_cast<int>(ldc)),
      "cublasSgemm");
  return Status::OK();
}

Status CudaGemm::GemmAbtBf16(int64_t m, int64_t n, int64_t k, const Bf16* a, int64_t lda,
                             const Bf16* b, int64_t ldb, float beta, float* c, int64_t ldc,
                             cudaStream_t stream) {
  ENGRAM_RETURN_IF_ERROR(CheckArgs(m, n, k, a, lda, b, ldb, c, ldc));
  if (m == 0 || n == 0) return Status::OK();
  if (k == 0) return ScaleC(m, n, beta, c, ldc, stream);
  ENGRAM_RETURN_IF_ERROR(Prepare(stream));
  const float alpha = 1.0f;
  ENGRAM_CUBLAS_RETURN_IF_ERROR(
      cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                   static_cast<int>(k), &alpha, b, CUDA_R_16BF, static_cast<int>(ldb), a,
                   CUDA_R_16BF, static_cast<int>(lda), &beta, c, CUDA_R_32F, static_cast<int>(ldc),
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      "cublasGemmEx (bf16 x bf16 -> f32)");
  return Status::OK();
}

}  // namespace engram::model
