// CFG.json parsing and validation (see engram_config.h for the fields).
#include "model/engram_config.h"

#include <nlohmann/json.hpp>
#include <set>

namespace engram::model {
namespace {

using Json = nlohmann::json;

// Reference fields that change neither hashing nor the layer.
const std::set<std::string>& IgnoredKeys() {
  static const auto* keys =
      new std::set<std::string>{"tokenizer_name_or_path", "vocab_size", "num_layers"};
  return *keys;
}

Result<int64_t> ToInt64(const Json& v, const std::string& what) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      return Status::InvalidArgument(what + ": " + std::to_string(u) + " is out of range");
    }
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return Status::InvalidArgument(what + " must be an integer, not " + v.dump());
}

Result<int> ToInt(const Json& v, const std::string& what) {
  ENGRAM_ASSIGN_OR_RETURN(int64_t x, ToInt64(v, what));
  if (x < INT32_MIN || x > INT32_MAX) {
    return Status::InvalidArgument(what + ": " + std::to_string(x) + " is out of range");
  }
  return static_cast<int>(x);
}

Result<std::vector<int64_t>> ToInt64List(const Json& v, const std::string& what) {
  if (!v.is_array()) return Status::InvalidArgument(what + " must be a list of integers");
  std::vector<int64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    ENGRAM_ASSIGN_OR_RETURN(int64_t x, ToInt64(v[i], what + "[" + std::to_string(i) + "]"));
    out.push_back(x);
  }
  return out;
}

Status CheckAtLeast(int64_t value, int64_t min, const std::string& what) {
  if (value >= min) return Status::OK();
  return Status::InvalidArgument(what + " must be >= " + std::to_string(min) + ", not " +
                                 std::to_string(value));
}

Status ApplyField(const std::string& key, const Json& v, EngramConfig* c) {
  if (key == "engram_vocab_size") {
    ENGRAM_ASSIGN_OR_RETURN(c->engram_vocab_size, ToInt64List(v, key));
  } else if (key == "max_ngram_size") {
    ENGRAM_ASSIGN_OR_RETURN(c->max_ngram_size, ToInt(v, key));
  } else if (key == "n_embed_per_ngram") {
    ENGRAM_ASSIGN_OR_RETURN(c->n_embed_per_ngram, ToInt(v, key));
  } else if (key == "n_head_per_ngram") {
    ENGRAM_ASSIGN_OR_RETURN(c->n_head_per_ngram, ToInt(v, key));
  } else if (key == "layer_ids") {
    ENGRAM_ASSIGN_OR_RETURN(c->layer_ids, ToInt64List(v, key));
  } else if (key == "pad_id") {
    ENGRAM_ASSIGN_OR_RETURN(c->pad_id, ToInt64(v, key));
  } else if (key == "seed") {
    ENGRAM_ASSIGN_OR_RETURN(c->seed, ToInt64(v, key));
  } else if (key == "kernel_size") {
    ENGRAM_ASSIGN_OR_RETURN(c->kernel_size, ToInt(v, key));
  } else if (key == "hidden_size") {
    ENGRAM_ASSIGN_OR_RETURN(c->hidden_size, ToInt(v, key));
  } else if (key == "hc_mult") {
    ENGRAM_ASSIGN_OR_RETURN(c->hc_mult, ToInt(v, key));
  } else if (key == "token_map") {
    if (!v.is_string() || v.get<std::string>().empty()) {
      return Status::InvalidArgument("token_map must be a non-empty path string");
    }
    c->token_map = v.get<std::string>();
  } else if (key == "compressed_vocab_size") {
    ENGRAM_ASSIGN_OR_RETURN(c->compressed_vocab_size, ToInt64(v, key));
    ENGRAM_RETURN_IF_ERROR(CheckAtLeast(c->compressed_vocab_size, 1, key));
  } else if (key == "dead_token_ids") {
    ENGRAM_ASSIGN_OR_RETURN(c->dead_token_ids, ToInt64List(v, key));
  } else if (IgnoredKeys().count(key) == 0) {
    return Status::InvalidArgument("unknown field '" + key + "'");
  }
  return Status::OK();
}

}  // namespace

Status ValidateEngramConfig(const EngramConfig& c) {
  if (c.max_ngram_size < 2 || c.max_ngram_size > kMaxNgramSize) {
    return Status::InvalidArgument("max_ngram_size must be in [2, " +
                                   std::to_string(kMaxNgramSize) + "], not " +
                                   std::to_string(c.max_ngram_size));
  }
  if (c.engram_vocab_size.size() < static_cast<size_t>(c.max_ngram_size - 1)) {
    return Status::InvalidArgument("engram_vocab_size has " +
                                   std::to_string(c.engram_vocab_size.size()) +
                                   " entries; max_ngram_size " + std::to_string(c.max_ngram_size) +
                                   " needs " + std::to_string(c.max_ngram_size - 1) +
                                   " (one per order 2.." + std::to_string(c.max_ngram_size) + ")");
  }
  for (size_t i = 0; i + 1 < static_cast<size_t>(c.max_ngram_size); ++i) {
    ENGRAM_RETURN_IF_ERROR(
        CheckAtLeast(c.engram_vocab_size[i], 1, "engram_vocab_size[" + std::to_string(i) + "]"));
  }
  ENGRAM_RETURN_IF_ERROR(CheckAtLeast(c.n_head_per_ngram, 1, "n_head_per_ngram"));
  ENGRAM_RETURN_IF_ERROR(CheckAtLeast(c.n_embed_per_ngram, 1, "n_embed_per_ngram"));
  if (c.n_embed_per_ngram % c.n_head_per_ngram != 0) {
    return Status::InvalidArgument("n_embed_per_ngram " + std::to_string(c.n_embed_per_ngram) +
                                   " is not a multiple of n_head_per_ngram " +
                                   std::to_string(c.n_head_per_ngram));
  }
  if (c.layer_ids.empty()) return Status::InvalidArgument("layer_ids is empty");
  std::set<int64_t> seen;
  for (int64_t id : c.layer_ids) {
    ENGRAM_RETURN_IF_ERROR(CheckAtLeast(id, 0, "layer id"));
    if (!seen.insert(id).second) {
      return Status::InvalidArgument("layer_ids lists layer " + std::to_string(id) + " twice");
    }
  }
  ENGRAM_RETURN_IF_ERROR(CheckAtLeast(c.pad_id, 0, "pad_id"));
  ENGRAM_RETURN_IF_ERROR(CheckAtLeast(c.seed, 0, "seed"));
  ENGRAM_RETURN_IF_ERROR(CheckAtLeast(c.kernel_size, 1, "kernel_size"));
  ENGRAM_RETURN_IF_ERROR(CheckAtLeast(c.hidden_size, 1, "hidden_size"));
  ENGRAM_RETURN_IF_ERROR(CheckAtLeast(c.hc_mult, 1, "hc_mult"));
  const bool has_map = !c.token_map.empty();
  const bool has_identity = c.compressed_vocab_size > 0;
  if (has_map == has_identity) {
    return Status::InvalidArgument(
        has_map ? "give token_map or compressed_vocab_size, not both"
                : "the config needs token_map (a .npy map) or compressed_vocab_size (identity)");
  }
  for (int64_t id : c.dead_token_ids) ENGRAM_RETURN_IF_ERROR(CheckAtLeast(id, 0, "dead token id"));
  return Status::OK();
}

Result<EngramConfig> ParseEngramConfig(std::string_view json, const std::string& base_dir) {
  Json doc = Json::parse(json, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::InvalidArgument("config is not valid JSON");
  if (!doc.is_object()) return Status::InvalidArgument("config must be a JSON object");
  EngramConfig config;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    ENGRAM_RETURN_IF_ERROR(ApplyField(it.key(), it.value(), &config));
  }
  if (!config.token_map.empty() && config.token_map[0] != '/' && !base_dir.empty()) {
    config.token_map = JoinPath(base_dir, config.token_map);
  }
  ENGRAM_RETURN_IF_ERROR(ValidateEngramConfig(config));
  return config;
}

Result<EngramConfig> LoadEngramConfig(Env* env, const std::string& path) {
  Result<std::string> text = env->ReadFileToString(path);
  if (!text.ok()) return text.status();
  Result<EngramConfig> config = ParseEngramConfig(*text, DirName(path));
  if (!config.ok()) return config.status().WithContext("config " + path);
  return config;
}

}  // namespace engram::model
