// tablectl engram-forward: one Engram layer's forward pass over raw token ids (BRIEF section 4).
//
//   config (CFG.json) -> hasher of layer L -> row ids [B, T, cols] with head offsets
//   -> EngramLayer::Forward (rows from TABLE through the C API, weights from W.safetensors)
//   -> Y.npy [B, T, hc_mult, hidden_size] f32, the module output (without the residual).
//
// The table must be the layer's stacked multi-head table: exactly as many rows as the sum of
// the layer's primes, head_dim = n_embed_per_ngram / n_head_per_ngram values per row, any dtype.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "api/engram_store.h"
#include "model/engram_config.h"
#include "model/engram_layer.h"
#include "model/layer_weights.h"
#include "model/ngram_hash.h"
#include "storage/array_file.h"
#include "tools/tablectl/cmd_common.h"
#include "tools/tablectl/commands.h"
#include "tools/tablectl/output.h"

namespace engram::tablectl {
namespace {

struct ForwardOptions {
  std::string config;
  int64_t layer = 0;
  std::string table;
  std::string weights;
  std::string weights_prefix;
  std::string ids;
  std::string hidden;
  std::string out;
  int threads = 0;  // 0: every hardware thread
};

Result<ForwardOptions> ParseForwardOptions(const ParsedArgs& args) {
  ENGRAM_RETURN_IF_ERROR(CheckPositionalCount(args, 0, 0, "(flags only)"));
  ForwardOptions o;
  ENGRAM_ASSIGN_OR_RETURN(o.config, RequiredValue(args, "config", "CFG.json"));
  ENGRAM_ASSIGN_OR_RETURN(std::string layer, RequiredValue(args, "layer", "L"));
  ENGRAM_ASSIGN_OR_RETURN(uint64_t layer_id, ParseUint64(layer, "--layer"));
  if (layer_id > static_cast<uint64_t>(INT64_MAX)) {
    return Status::InvalidArgument("--layer: " + layer + " is too large");
  }
  o.layer = static_cast<int64_t>(layer_id);
  ENGRAM_ASSIGN_OR_RETURN(std::string table, RequiredValue(args, "table", "TABLE"));
  ENGRAM_ASSIGN_OR_RETURN(o.table, TablePath(table));
  ENGRAM_ASSIGN_OR_RETURN(o.weights, RequiredValue(args, "weights", "W.safetensors"));
  o.weights_prefix = args.Value("weights-prefix").value_or("");
  ENGRAM_ASSIGN_OR_RETURN(o.ids, RequiredValue(args, "ids", "IDS.npy"));
  ENGRAM_ASSIGN_OR_RETURN(o.hidden, RequiredValue(args, "hidden", "H.npy"));
  ENGRAM_ASSIGN_OR_RETURN(o.out, RequiredValue(args, "out", "Y.npy"));
  if (std::optional<std::string> threads = args.Value("threads")) {
    ENGRAM_ASSIGN_OR_RETURN(uint32_t n, ParseUint32(*threads, "--threads"));
    if (n < 1 || n > 1024) return Status::InvalidArgument("--threads must be in 1..1024");
    o.threads = static_cast<int>(n);
  }
  return o;
}

model::EngramLayerShape ShapeOf(const model::EngramConfig& c) {
  model::EngramLayerShape s;
  s.hidden_size = c.hidden_size;
  s.hc_mult = c.hc_mult;
  s.max_ngram_size = c.max_ngram_size;
  s.n_embed_per_ngram = c.n_embed_per_ngram;
  s.n_head_per_ngram = c.n_head_per_ngram;
  s.kernel_size = c.kernel_size;
  return s;
}

std::string ShapeText(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Raw token ids [B, T] (integer .npy, non-negative).
Status ReadTokenIds(Env* env, const std::string& path, std::vector<int64_t>* ids, uint64_t* batch,
                    uint64_t* seq_len) {
  ENGRAM_ASSIGN_OR_RETURN(ArrayInfo info, ReadNpyInfo(env, path));
  if (info.shape.size() != 2) {
    return Status::InvalidArgument("--ids " + path + ": shape " + ShapeText(info.shape) +
                                   " is not [B, T]");
  }
  ENGRAM_ASSIGN_OR_RETURN(std::vector<uint64_t> raw, ReadIdsNpy(env, path));
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] > static_cast<uint64_t>(INT64_MAX)) {
      return Status::InvalidArgument("--ids " + path + ": id " + std::to_string(raw[i]) +
                                     " at position " + std::to_string(i) + " is too large");
    }
  }
  ids->assign(raw.begin(), raw.end());
  *batch = info.shape[0];
  *seq_len = info.shape[1];
  return Status::OK();
}

// Hidden states [B, T, hc_mult, hidden_size] (float .npy, converted to f32).
Result<std::vector<float>> ReadHidden(Env* env, const std::string& path,
                                      const std::vector<uint64_t>& expected) {
  ENGRAM_ASSIGN_OR_RETURN(ArrayInfo info, ReadNpyInfo(env, path));
  if (info.shape != expected) {
    return Status::InvalidArgument("--hidden " + path + ": shape " + ShapeText(info.shape) +
                                   ", expected " + ShapeText(expected) +
                                   " [B, T, hc_mult, hidden_size]");
  }
  const ElementType t = info.type;
  if (t != ElementType::kF32 && t != ElementType::kF64 && t != ElementType::kF16 &&
      t != ElementType::kBF16) {
    return Status::InvalidArgument("--hidden " + path + ": dtype " +
                                   std::string(ElementTypeName(t)) + " is not a float type");
  }
  return ReadF32Array(env, info);
}

// An open C API table, closed on destruction.
struct TableCloser {
  void operator()(es_table_t* t) const { es_table_close(t); }
};
using TableHandle = std::unique_ptr<es_table_t, TableCloser>;

Result<TableHandle> OpenTable(const std::string& path) {
  es_options_t* options = es_options_create();
  // One pass over a batch: read rows straight from NVMe, no cache to fill.
  es_options_set_dram_mode(options, ES_DRAM_NONE);
  char* err = nullptr;
  es_table_t* t = es_table_open(path.c_str(), options, &err);
  es_options_destroy(options);
  if (t == nullptr) {
    Status s = Status::IOError(err != nullptr ? err : ("cannot open table " + path));
    es_free(err);
    return s;
  }
  return TableHandle(t);
}

Status ExecuteForward(const ForwardOptions& o, const CommonOptions& common) {
  Env* env = Env::Default();
  ENGRAM_ASSIGN_OR_RETURN(model::EngramConfig config, model::LoadEngramConfig(env, o.config));
  ENGRAM_ASSIGN_OR_RETURN(model::NgramHasher hasher,
                          model::NgramHasher::Create(env, config, o.layer));
  const model::EngramLayerShape shape = ShapeOf(config);
  ENGRAM_RETURN_IF_ERROR(shape.Validate());

  std::vector<int64_t> ids;
  uint64_t batch = 0, seq_len = 0;
  ENGRAM_RETURN_IF_ERROR(ReadTokenIds(env, o.ids, &ids, &batch, &seq_len));
  const std::vector<uint64_t> hidden_shape = {batch, seq_len, static_cast<uint64_t>(shape.hc_mult),
                                              static_cast<uint64_t>(shape.hidden_size)};
  ENGRAM_ASSIGN_OR_RETURN(std::vector<float> hidden, ReadHidden(env, o.hidden, hidden_shape));

  ENGRAM_ASSIGN_OR_RETURN(TableHandle table, OpenTable(o.table));
  if (es_table_rows(table.get()) != static_cast<uint64_t>(hasher.total_rows())) {
    return Status::InvalidArgument(
        "table " + o.table + " has " + std::to_string(es_table_rows(table.get())) +
        " rows; layer " + std::to_string(o.layer) + " of " + o.config + " needs " +
        std::to_string(hasher.total_rows()) + " (the sum of its heads' primes)");
  }

  const auto start = std::chrono::steady_clock::now();
  std::vector<int64_t> rows(ids.size() * static_cast<size_t>(shape.columns()));
  ENGRAM_RETURN_IF_ERROR(hasher.HashBatch(ids.data(), batch, seq_len, /*dead_mask=*/nullptr,
                                          /*add_offsets=*/true, rows.data()));
  ENGRAM_ASSIGN_OR_RETURN(model::EngramLayerWeights weights,
                          model::LoadEngramLayerWeights(env, o.weights, shape, o.weights_prefix));
  model::EngramLayerOptions layer_options;
  layer_options.threads = o.threads;
  ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<model::EngramLayer> layer,
                          model::EngramLayer::Create(std::move(weights), layer_options));
  std::vector<float> out(hidden.size());
  model::ForwardTimings timings;
  ENGRAM_RETURN_IF_ERROR(layer->Forward(table.get(), rows.data(), hidden.data(),
                                        static_cast<int64_t>(batch), static_cast<int64_t>(seq_len),
                                        out.data(), &timings));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ENGRAM_RETURN_IF_ERROR(WriteNpy(env, o.out, ElementType::kF32, hidden_shape, out.data()));

  const uint64_t tokens = batch * seq_len;
  const double layer_s = timings.gather_s + timings.gemm_s + timings.gating_s + timings.fusion_s;
  if (common.json) {
    PrintJson({{"out", o.out},
               {"shape", hidden_shape},
               {"layer", o.layer},
               {"tokens", tokens},
               {"table_rows", es_table_rows(table.get())},
               {"table_dtype", es_dtype_name(es_table_dtype(table.get()))},
               {"seconds", seconds},
               {"forward_tokens_per_s", layer_s > 0 ? tokens / layer_s : 0.0},
               {"timings_s",
                {{"gather", timings.gather_s},
                 {"gemm", timings.gemm_s},
                 {"gating", timings.gating_s},
                 {"fusion", timings.fusion_s}}}});
  } else {
    std::printf(
        "wrote %s: %s f32 (layer %lld, %llu tokens, forward %.3f s: gather %.3f, gemm "
        "%.3f, gating %.3f, fusion %.3f)\n",
        o.out.c_str(), ShapeText(hidden_shape).c_str(), static_cast<long long>(o.layer),
        static_cast<unsigned long long>(tokens), layer_s, timings.gather_s, timings.gemm_s,
        timings.gating_s, timings.fusion_s);
  }
  return Status::OK();
}

}  // namespace

int RunEngramForward(const ParsedArgs& args) {
  Result<ForwardOptions> o = ParseForwardOptions(args);
  if (!o.ok()) return ReportArgumentError("engram-forward", o.status());
  Status s = ExecuteForward(*o, GetCommonOptions(args));
  return s.ok() ? kExitOk : ReportFailure(s);
}

}  // namespace engram::tablectl
