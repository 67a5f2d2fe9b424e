// layer_bench: times EngramLayer::Forward (model/engram_layer.h), the CPU f32 forward of one
// Engram layer with its rows gathered from a resident store table through the C API.
//
// Driven by bench/layer_bench.py, which builds the inputs, runs this program and PyTorch's
// forward of the same module alternately in one run, and prints the ratio. Usable alone:
//
//   layer_bench --config CFG.json --table TABLE --weights W.safetensors --rows ROWS.npy
//               --hidden H.npy [--out Y.npy] [--threads N] [--iters K] [--warmup W]
//               [--chunk TOKENS]
//
// ROWS.npy: [B, T, cols] int64 row ids with head offsets; H.npy [B, T, hc_mult, hidden] f32.
// Prints one JSON object: per-iteration seconds, tokens/s (best and median), the per-phase
// times of the best iteration. Only the CFG.json fields that size the layer are read.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/engram_store.h"
#include "model/engram_layer.h"
#include "model/gemm.h"
#include "model/layer_weights.h"
#include "storage/array_file.h"

namespace engram {
namespace {

struct Flags {
  std::string config, table, weights, rows, hidden, out;
  int threads = 0;
  int iters = 3;
  int warmup = 1;
  int64_t chunk = 0;  // 0: the layer's default
};

int Usage(const char* msg) {
  std::fprintf(stderr, "layer_bench: error: %s\n", msg);
  return 2;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return false;
    const std::string v = argv[++i];
    if (a == "--config")
      f->config = v;
    else if (a == "--table")
      f->table = v;
    else if (a == "--weights")
      f->weights = v;
    else if (a == "--rows")
      f->rows = v;
    else if (a == "--hidden")
      f->hidden = v;
    else if (a == "--out")
      f->out = v;
    else if (a == "--threads")
      f->threads = std::stoi(v);
    else if (a == "--iters")
      f->iters = std::stoi(v);
    else if (a == "--warmup")
      f->warmup = std::stoi(v);
    else if (a == "--chunk")
      f->chunk = std::stoll(v);
    else
      return false;
  }
  return !f->config.empty() && !f->table.empty() && !f->weights.empty() && !f->rows.empty() &&
         !f->hidden.empty() && f->iters >= 1 && f->warmup >= 0 && f->threads >= 0;
}

Result<model::EngramLayerShape> ReadShape(const std::string& path) {
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument(path + ": not a JSON object");
  }
  model::EngramLayerShape s;
  const char* keys[] = {"hidden_size",       "hc_mult",          "max_ngram_size",
                        "n_embed_per_ngram", "n_head_per_ngram", "kernel_size"};
  int* fields[] = {&s.hidden_size,       &s.hc_mult,          &s.max_ngram_size,
                   &s.n_embed_per_ngram, &s.n_head_per_ngram, &s.kernel_size};
  for (int i = 0; i < 6; ++i) {
    if (!j.contains(keys[i]) || !j[keys[i]].is_number_integer()) {
      return Status::InvalidArgument(path + ": missing integer " + keys[i]);
    }
    *fields[i] = j[keys[i]].get<int>();
  }
  ENGRAM_RETURN_IF_ERROR(s.Validate());
  return s;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "layer_bench: error: %s\n", s.ToString().c_str());
  return 1;
}

int Run(const Flags& f) {
  Env* env = Env::Default();
  Result<model::EngramLayerShape> shape = ReadShape(f.config);
  if (!shape.ok()) return Fail(shape.status());
  Result<ArrayInfo> hidden_info = ReadNpyInfo(env, f.hidden);
  if (!hidden_info.ok()) return Fail(hidden_info.status());
  if (hidden_info->shape.size() != 4) return Usage("--hidden must be [B, T, hc_mult, hidden]");
  const int64_t B = hidden_info->shape[0], T = hidden_info->shape[1];
  Result<std::vector<float>> hidden = ReadF32Array(env, *hidden_info);
  if (!hidden.ok()) return Fail(hidden.status());
  Result<std::vector<uint64_t>> ids = ReadIdsNpy(env, f.rows);
  if (!ids.ok()) return Fail(ids.status());
  if (ids->size() != static_cast<size_t>(B * T * shape->columns())) {
    return Usage("--rows must hold B * T * columns ids");
  }
  const std::vector<int64_t> rows(ids->begin(), ids->end());

  Result<model::EngramLayerWeights> weights = model::LoadEngramLayerWeights(env, f.weights, *shape);
  if (!weights.ok()) return Fail(weights.status());
  model::EngramLayerOptions options;
  options.threads = f.threads;
  if (f.chunk > 0) options.chunk_tokens = f.chunk;
  Result<std::unique_ptr<model::EngramLayer>> layer =
      model::EngramLayer::Create(std::move(*weights), options);
  if (!layer.ok()) return Fail(layer.status());

  es_options_t* topt = es_options_create();
  es_options_set_dram_mode(topt, ES_DRAM_RESIDENT);
  char* err = nullptr;
  es_table_t* table = es_table_open(f.table.c_str(), topt, &err);
  es_options_destroy(topt);
  if (table == nullptr) {
    std::fprintf(stderr, "layer_bench: error: %s\n", err ? err : "cannot open table");
    es_free(err);
    return 1;
  }

  std::vector<float> out(hidden->size());
  std::vector<double> seconds;
  std::vector<model::ForwardTimings> timings;
  for (int i = 0; i < f.warmup + f.iters; ++i) {
    model::ForwardTimings t;
    const auto start = std::chrono::steady_clock::now();
    Status s = (*layer)->Forward(table, rows.data(), hidden->data(), B, T, out.data(), &t);
    const double sec =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!s.ok()) {
      es_table_close(table);
      return Fail(s);
    }
    if (i >= f.warmup) {
      seconds.push_back(sec);
      timings.push_back(t);
    }
  }
  es_table_close(table);
  if (!f.out.empty()) {
    Status s = WriteNpy(env, f.out, ElementType::kF32, hidden_info->shape, out.data());
    if (!s.ok()) return Fail(s);
  }

  const size_t best = std::min_element(seconds.begin(), seconds.end()) - seconds.begin();
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double tokens = static_cast<double>(B * T);
  const model::ForwardTimings& t = timings[best];
  nlohmann::ordered_json doc = {{"tokens", B * T},
                                {"threads", (*layer)->options().threads},
                                {"gemm_threads", model::GemmThreads()},
                                {"seconds", seconds},
                                {"tokens_per_s_best", tokens / seconds[best]},
                                {"tokens_per_s_median", tokens / median},
                                {"best_phases_s",
                                 {{"gather", t.gather_s},
                                  {"gemm", t.gemm_s},
                                  {"gating", t.gating_s},
                                  {"fusion", t.fusion_s}}}};
  std::printf("%s\n", doc.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace engram

int main(int argc, char** argv) {
  engram::Flags f;
  bool parsed = false;
  try {
    parsed = engram::ParseFlags(argc, argv, &f);
  } catch (const std::exception&) {  // std::stoi on a non-number
    parsed = false;
  }
  if (!parsed) {
    return engram::Usage(
        "usage: layer_bench --config CFG.json --table TABLE --weights W.safetensors --rows "
        "ROWS.npy --hidden H.npy [--out Y.npy] [--threads N] [--iters K] [--warmup W] "
        "[--chunk TOKENS]");
  }
  return engram::Run(f);
}
