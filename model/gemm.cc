#include "model/gemm.h"

#include <cblas.h>  // OpenBLAS's (pkg-config openblas); declares openblas_set_num_threads

#include <climits>
#include <string>

namespace engram::model {
namespace {

Status CheckDims(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  const int64_t kMax = INT_MAX;
  if (m < 0 || n < 0 || k < 0 || m > kMax || n > kMax || k > kMax) {
    return Status::InvalidArgument("gemm: sizes out of range (m " + std::to_string(m) + ", n " +
                                   std::to_string(n) + ", k " + std::to_string(k) + ")");
  }
  if (lda < (k > 0 ? k : 1) || ldb < (k > 0 ? k : 1) || ldc < (n > 0 ? n : 1) || lda > kMax ||
      ldb > kMax || ldc > kMax) {
    return Status::InvalidArgument("gemm: bad leading dimension (lda " + std::to_string(lda) +
                                   ", ldb " + std::to_string(ldb) + ", ldc " + std::to_string(ldc) +
                                   ")");
  }
  return Status::OK();
}

}  // namespace

Status SgemmAbt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc) {
  ENGRAM_RETURN_IF_ERROR(CheckDims(m, n, k, lda, ldb, ldc));
  if (m == 0 || n == 0) return Status::OK();
  if (k == 0) {
    // BLAS would scale C by beta; do it here so beta == 0 also clears NaNs.
    for (int64_t i = 0; i < m; ++i) {
      float* row = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
    }
    return Status::OK();
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(lda),
              b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
  return Status::OK();
}

void SetGemmThreads(int threads) {
  if (threads >= 1 && threads != openblas_get_num_threads()) openblas_set_num_threads(threads);
}

int GemmThreads() { return openblas_get_num_threads(); }

}  // namespace engram::model
