// f32 GEMM for the Engram layer's projections, through OpenBLAS (cblas_sgemm).
//
// The projections of a whole batch of tokens run as one matrix product: activations
// [tokens, in] times the transpose of a torch Linear weight [out, in], so weights are used in
// the layout the checkpoint stores them in, without a transposed copy.
//
// Threads: OpenBLAS keeps ONE process-wide thread count. SetGemmThreads changes it for every
// caller in the process (it is what `openblas_set_num_threads` does); the layer calls it with
// its own option before each batch, so a process running several layers with different thread
// options should give them the same value.
//
// Thread safety: SgemmAbt may be called from several threads at once (OpenBLAS serialises
// use of its worker pool); SetGemmThreads races with nothing but itself.
#pragma once

#include <cstdint>

#include "storage/status.h"

namespace engram::model {

// C[m, n] = A[m, k] * B[n, k]^T + beta * C[m, n], row-major, leading dimensions in floats
// (lda, ldb >= k; ldc >= n). beta 0 ignores C's old contents (NaNs included).
// InvalidArgument when a size or leading dimension is negative, too small, or beyond what the
// BLAS interface takes (2^31 - 1). m, n or k == 0 is valid (k == 0 scales C by beta).
Status SgemmAbt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc);

// Sets OpenBLAS's process-wide thread count (threads >= 1; 0 leaves it unchanged).
void SetGemmThreads(int threads);
// OpenBLAS's current thread count.
int GemmThreads();

}  // namespace engram::model
