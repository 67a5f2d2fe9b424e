// EngramLayer: the Engram module's forward pass on the CPU in f32 (BRIEF section 3), with the
// embedding rows read from a store table through the C API (api/engram_store.h).
//
//   e[n]   = concat_c rows[row_ids[n, c]]        c < columns, each row head_dim values
//   Z[n]   = e[n] W^T    W = [key_projs.0; ...; key_projs.{M-1}; value_proj]   (one GEMM)
//   u      = gating(Z, hidden)      model/gating_kernel.h
//   out    = u + SiLU(conv(norm(u)))  model/fusion_kernel.h
//
// Tokens are processed in chunks of options.chunk_tokens: gather the chunk's rows (in
// parallel, through es_table_lookup + es_dequantize for non-f32 tables), one OpenBLAS GEMM,
// the gating kernel writing u into `out`; after the last chunk the fusion kernel turns out
// into the module output in place. Scratch memory is O(chunk_tokens * ((M+1)*H + E)) plus
// B*T*M floats, independent of the table's size.
//
// Row ids are the layer's table rows (hash + head offset, model/ngram_hash.h), so a call does
// no hashing; Y is the module output, which the caller adds to the hidden state.
//
// Thread safety: Forward calls on one layer are serialised by an internal mutex (they share
// scratch buffers); use one layer object per thread to run them concurrently. The layer
// calls SetGemmThreads (model/gemm.h: OpenBLAS's process-wide thread count) with
// options.threads before each GEMM.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "api/engram_store.h"
#include "model/layer_weights.h"
#include "storage/status.h"

namespace engram::model {

struct EngramLayerOptions {
  // Threads for the row gather, the kernels (OpenMP) and the GEMM (OpenBLAS).
  // 0: every hardware thread (std::thread::hardware_concurrency()).
  int threads = 0;
  // Tokens per gather + GEMM + gating step. 1024 keeps the GEMM near its peak (OpenBLAS is
  // as fast from ~256 rows on) while the projection scratch stays at ~50 MB for the
  // realistic shape (hidden 2560, hc_mult 4).
  int64_t chunk_tokens = 1024;
  // RMSNorm eps of norm1 / norm2: torch's default for f32, the machine epsilon 2^-23.
  float eps_key = 1.1920928955078125e-07f;
  float eps_query = 1.1920928955078125e-07f;
  // RMSNorm eps of short_conv.norms (the reference ShortConv's norm_eps).
  float eps_conv = 1e-5f;
};

// Seconds spent in each phase of the last Forward (summed over chunks).
struct ForwardTimings {
  double gather_s = 0;  // es_table_lookup + es_dequantize
  double gemm_s = 0;
  double gating_s = 0;
  double fusion_s = 0;
};

class EngramLayer {
 public:
  // Takes the weights (InvalidArgument when they do not match their shape) and repacks them
  // for the kernels.
  static Result<std::unique_ptr<EngramLayer>> Create(EngramLayerWeights weights,
                                                     const EngramLayerOptions& options = {});

  const EngramLayerShape& shape() const { return shape_; }
  const EngramLayerOptions& options() const { return options_; }

  // out = the module output for `batch` sequences of `seq_len` tokens.
  //   table    rows of head_dim values, any dtype (dequantised); not owned. Its dim must be
  //            head_dim (InvalidArgument otherwise).
  //   row_ids  [batch, seq_len, columns] int64 rows of `table`; a negative or out-of-range id
  //            is InvalidArgument naming it, and `out` is then unspecified.
  //   hidden   [batch, seq_len, hc_mult, hidden_size]
  //   out      [batch, seq_len, hc_mult, hidden_size]; must not overlap hidden.
  // timings, when not null, receives the per-phase times.
  Status Forward(es_table_t* table, const int64_t* row_ids, const float* hidden, int64_t batch,
                 int64_t seq_len, float* out, ForwardTimings* timings = nullptr);

  // As Forward, with the concatenated rows given: embeddings [batch, seq_len, embed_dim].
  Status ForwardEmbeddings(const float* embeddings, const float* hidden, int64_t batch,
                           int64_t seq_len, float* out, ForwardTimings* timings = nullptr);

 private:
  EngramLayer(EngramLayerWeights weights, const EngramLayerOptions& options);

  // One phase-1 step (GEMM + gating) on tokens [begin, begin + n) whose rows are in e.
  Status ProjectAndGate(const float* e, const float* hidden, int64_t begin, int64_t n, float* out,
                        ForwardTimings* t);
  // Gathers the rows of tokens [begin, begin + n) into gather_ (f32).
  Status Gather(es_table_t* table, const int64_t* row_ids, int64_t begin, int64_t n);
  Status Run(es_table_t* table, const int64_t* row_ids, const float* embeddings,
             const float* hidden, int64_t batch, int64_t seq_len, float* out,
             ForwardTimings* timings);

  // Constant after construction.
  const EngramLayerShape shape_;
  const EngramLayerOptions options_;
  const int threads_;
  const EngramLayerWeights weights_;  // conv replaced by its [K, M*H] transpose
  std::vector<float> conv_tap_major_;

  // Scratch, protected by mu_.
  std::mutex mu_;
  std::vector<float> gather_;      // [chunk, E]
  std::vector<uint8_t> raw_rows_;  // [chunk * columns, row_bytes] for non-f32 tables
  std::vector<float> proj_;        // [chunk, (M + 1) * H]
  std::vector<float> row_scale_;   // [B * T * M]
};

}  // namespace engram::model
