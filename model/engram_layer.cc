#include "model/engram_layer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "model/fusion_kernel.h"
#include "model/gating_kernel.h"
#include "model/gemm.h"

namespace engram::model {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

// Turns an es_* error message (freed here) back into a Status: the C API writes
// Status::ToString(), "Invalid argument: ...", "IO error: ...", so the code survives.
Status FromCError(char* err, const std::string& context) {
  const std::string text = err != nullptr ? err : "Internal error: unknown";
  es_free(err);
  struct Prefix {
    const char* name;
    Status (*make)(std::string_view);
  };
  static const Prefix kPrefixes[] = {{"Invalid argument: ", Status::InvalidArgument},
                                     {"Not found: ", Status::NotFound},
                                     {"Corruption: ", Status::Corruption},
                                     {"IO error: ", Status::IOError},
                                     {"Not supported: ", Status::NotSupported},
                                     {"Resource exhausted: ", Status::ResourceExhausted}};
  for (const Prefix& p : kPrefixes) {
    const size_t len = std::strlen(p.name);
    if (text.compare(0, len, p.name) == 0) return p.make(context + ": " + text.substr(len));
  }
  return Status::IOError(context + ": " + text);
}

// Threads for a kernel over `elements` floats: below ~32K floats per thread, waking another
// thread costs more than it saves (decode steps of a few tokens run on one).
int KernelThreads(int threads, int64_t elements) {
  constexpr int64_t kMinPerThread = 32768;
  return static_cast<int>(std::clamp<int64_t>(elements / kMinPerThread, 1, threads));
}

std::vector<float> TapMajor(const std::vector<float>& conv, int64_t channels, int64_t taps) {
  std::vector<float> out(conv.size());
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t j = 0; j < taps; ++j) out[j * channels + c] = conv[c * taps + j];
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<EngramLayer>> EngramLayer::Create(EngramLayerWeights weights,
                                                         const EngramLayerOptions& options) {
  ENGRAM_RETURN_IF_ERROR(weights.Validate());
  if (options.threads < 0 || options.chunk_tokens < 1) {
    return Status::InvalidArgument("layer options: threads must be >= 0 and chunk_tokens >= 1");
  }
  return std::unique_ptr<EngramLayer>(new EngramLayer(std::move(weights), options));
}

EngramLayer::EngramLayer(EngramLayerWeights weights, const EngramLayerOptions& options)
    : shape_(weights.shape),
      options_(options),
      threads_(ResolveThreads(options.threads)),
      weights_(std::move(weights)),
      conv_tap_major_(TapMajor(weights_.conv, int64_t{shape_.hc_mult} * shape_.hidden_size,
                               shape_.kernel_size)) {}

Status EngramLayer::Gather(es_table_t* table, const int64_t* row_ids, int64_t begin, int64_t n) {
  const int64_t cols = shape_.columns(), dim = shape_.head_dim();
  const int64_t count = n * cols;  // rows to fetch
  const int64_t* ids = row_ids + begin * cols;
  for (int64_t i = 0; i < count; ++i) {
    if (ids[i] < 0) {
      return Status::InvalidArgument("row id " + std::to_string(ids[i]) + " at position " +
                                     std::to_string(begin * cols + i) + " is negative");
    }
  }
  const es_dtype_t dtype = es_table_dtype(table);
  const size_t row_bytes = es_table_row_bytes(table);
  const bool direct = dtype == ES_DTYPE_F32;
  const size_t raw_bytes = static_cast<size_t>(count) * row_bytes;
  if (!direct && raw_rows_.size() < raw_bytes) raw_rows_.resize(raw_bytes);
  // Signed and unsigned variants of one integer type may alias; ids were checked >= 0.
  const uint64_t* uids = reinterpret_cast<const uint64_t*>(ids);
  const int parts = static_cast<int>(std::min<int64_t>(threads_, (count + 255) / 256));
  std::vector<char*> errors(std::max(parts, 1), nullptr);
#pragma omp parallel for num_threads(parts) schedule(static)
  for (int part = 0; part < parts; ++part) {
    const int64_t lo = count * part / parts, hi = count * (part + 1) / parts;
    float* dst = gather_.data() + lo * dim;
    char* err = nullptr;
    if (direct) {
      es_table_lookup(table, uids + lo, hi - lo, dst, dim * sizeof(float), &err);
    } else {
      uint8_t* raw = raw_rows_.data() + lo * row_bytes;
      es_table_lookup(table, uids + lo, hi - lo, raw, row_bytes, &err);
      if (err == nullptr) {
        es_dequantize(dtype, static_cast<uint32_t>(dim), raw, hi - lo, row_bytes, dst,
                      dim * sizeof(float), &err);
      }
    }
    errors[part] = err;
  }
  Status status;
  for (char* err : errors) {
    if (err != nullptr && status.ok()) {
      status = FromCError(err, "row lookup");
    } else {
      es_free(err);
    }
  }
  return status;
}

Status EngramLayer::ProjectAndGate(const float* e, const float* hidden, int64_t begin, int64_t n,
                                   float* out, ForwardTimings* t) {
  const int64_t H = shape_.hidden_size, M = shape_.hc_mult, E = shape_.embed_dim();
  const int64_t width = (M + 1) * H;
  auto start = Clock::now();
  SetGemmThreads(threads_);
  ENGRAM_RETURN_IF_ERROR(
      SgemmAbt(n, width, E, e, E, weights_.proj_weight.data(), E, 0.0f, proj_.data(), width));
  t->gemm_s += Seconds(start);

  start = Clock::now();
  GatingParams g;
  g.tokens = n;
  g.hidden = shape_.hidden_size;
  g.hc_mult = shape_.hc_mult;
  g.proj = proj_.data();
  g.proj_stride = width;
  g.key_bias = weights_.proj_bias.data();
  g.value_bias = weights_.proj_bias.data() + M * H;
  g.norm1 = weights_.norm1.data();
  g.norm2 = weights_.norm2.data();
  g.hidden_states = hidden + begin * M * H;
  g.eps_key = options_.eps_key;
  g.eps_query = options_.eps_query;
  g.out_u = out + begin * M * H;
  GatingCpu(g, KernelThreads(threads_, n * M * H));
  t->gating_s += Seconds(start);
  return Status::OK();
}

Status EngramLayer::Run(es_table_t* table, const int64_t* row_ids, const float* embeddings,
                        const float* hidden, int64_t batch, int64_t seq_len, float* out,
                        ForwardTimings* timings) {
  if (batch < 0 || seq_len < 0) {
    return Status::InvalidArgument("forward: negative batch or seq_len");
  }
  if (batch > 0 && seq_len > (int64_t{1} << 40) / batch) {
    return Status::InvalidArgument("forward: batch * seq_len too large");
  }
  const int64_t N = batch * seq_len;
  if (N == 0) return Status::OK();
  if (hidden == nullptr || out == nullptr || (table == nullptr && embeddings == nullptr) ||
      (table != nullptr && row_ids == nullptr)) {
    return Status::InvalidArgument("forward: null array");
  }
  if (table != nullptr && es_table_dim(table) != static_cast<uint32_t>(shape_.head_dim())) {
    return Status::InvalidArgument(
        "forward: table rows have " + std::to_string(es_table_dim(table)) +
        " values, the layer's heads " + std::to_string(shape_.head_dim()) +
        " (n_embed_per_ngram / n_head_per_ngram)");
  }
  std::lock_guard<std::mutex> lock(mu_);
  ForwardTimings local;
  ForwardTimings* t = timings != nullptr ? timings : &local;
  *t = ForwardTimings{};
  const int64_t H = shape_.hidden_size, M = shape_.hc_mult, E = shape_.embed_dim();
  const int64_t chunk = std::min(options_.chunk_tokens, N);
  proj_.resize(chunk * (M + 1) * H);
  if (table != nullptr) gather_.resize(chunk * E);
  for (int64_t begin = 0; begin < N; begin += chunk) {
    const int64_t n = std::min(chunk, N - begin);
    const float* e = embeddings != nullptr ? embeddings + begin * E : gather_.data();
    if (table != nullptr) {
      const auto start = Clock::now();
      ENGRAM_RETURN_IF_ERROR(Gather(table, row_ids, begin, n));
      t->gather_s += Seconds(start);
    }
    ENGRAM_RETURN_IF_ERROR(ProjectAndGate(e, hidden, begin, n, out, t));
  }

  const auto start = Clock::now();
  row_scale_.resize(N * M);
  FusionParams f;
  f.batch = batch;
  f.seq_len = seq_len;
  f.hidden = shape_.hidden_size;
  f.hc_mult = shape_.hc_mult;
  f.kernel_size = shape_.kernel_size;
  f.dilation = shape_.dilation();
  f.u = out;
  f.norm = weights_.conv_norm.data();
  f.conv = conv_tap_major_.data();
  f.eps = options_.eps_conv;
  f.row_scale = row_scale_.data();
  f.out = out;
  FusionCpu(f, KernelThreads(threads_, N * M * H));
  t->fusion_s = Seconds(start);
  return Status::OK();
}

Status EngramLayer::Forward(es_table_t* table, const int64_t* row_ids, const float* hidden,
                            int64_t batch, int64_t seq_len, float* out, ForwardTimings* timings) {
  if (table == nullptr) return Status::InvalidArgument("forward: null table");
  return Run(table, row_ids, nullptr, hidden, batch, seq_len, out, timings);
}

Status EngramLayer::ForwardEmbeddings(const float* embeddings, const float* hidden, int64_t batch,
                                      int64_t seq_len, float* out, ForwardTimings* timings) {
  if (embeddings == nullptr) return Status::InvalidArgument("forward: null embeddings");
  return Run(nullptr, nullptr, embeddings, hidden, batch, seq_len, out, timings);
}

}  // namespace engram::model
