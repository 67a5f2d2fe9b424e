// EngramConfig: the Engram layer configuration (CFG.json of `tablectl ngram-hash` and
// `tablectl engram-forward`, and of the C API's hasher), in the reference demo's field names
// (BRIEF section 4; deepseek-ai/Engram engram_demo_v1.py, EngramConfig + BackBoneConfig).
//
// CFG.json is one flat JSON object:
//   engram_vocab_size   list of ints >= 1, one per n-gram order n = 2..max_ngram_size: where
//                       the prime search of that order starts (entries past max_ngram_size-1
//                       are ignored, as the reference ignores them)     default [646400, 646400]
//   max_ngram_size      2..kMaxNgramSize                                 default 3
//   n_embed_per_ngram   >= 1; each head's row has n_embed_per_ngram / n_head_per_ngram values
//                                                                        default 512
//   n_head_per_ngram    >= 1                                             default 8
//   layer_ids           distinct ints >= 0, in the order the primes are taken   default [1, 15]
//   pad_id              raw token id >= 0 (compressed like any token)    default 2
//   seed                int >= 0                                         default 0
//   kernel_size         >= 1 (short conv)                                default 4
//   hidden_size         >= 1                                             default 1024
//   hc_mult             >= 1                                             default 4
//   token_map           path of the raw -> compressed map (.npy, 1-D int64); a relative path
//                       is resolved against the directory of the config file
//   compressed_vocab_size   instead of token_map: the identity map over [0, V)
//   dead_token_ids      optional (our addition, DeepSeek-V4.1): raw ids that are dead wherever
//                       they occur (see ngram_hash.h for what dead means)    default []
// Exactly one of token_map and compressed_vocab_size is required. The defaults are the
// reference demo's. The reference's fields that do not change hashing or the layer
// (tokenizer_name_or_path, vocab_size, num_layers) are accepted and ignored; any other key is
// InvalidArgument (a misspelt field would otherwise silently take a default and shift every
// row id).
//
// Thread safety: values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/env.h"
#include "storage/status.h"

namespace engram::model {

// Largest max_ngram_size accepted (request histories are fixed arrays of kMaxNgramSize - 1).
inline constexpr int kMaxNgramSize = 16;

struct EngramConfig {
  std::vector<int64_t> engram_vocab_size = {129280 * 5, 129280 * 5};
  int max_ngram_size = 3;
  int n_embed_per_ngram = 512;
  int n_head_per_ngram = 8;
  std::vector<int64_t> layer_ids = {1, 15};
  int64_t pad_id = 2;
  int64_t seed = 0;
  int kernel_size = 4;
  int hidden_size = 1024;
  int hc_mult = 4;
  // Exactly one of these is set: a map path (already resolved against the config's
  // directory), or the size of the identity map (> 0).
  std::string token_map;
  int64_t compressed_vocab_size = 0;
  std::vector<int64_t> dead_token_ids;

  // Hash columns per position: (max_ngram_size - 1) * n_head_per_ngram.
  int num_columns() const { return (max_ngram_size - 1) * n_head_per_ngram; }
  // Values per head row (the reference's D = n_embed_per_ngram // n_head_per_ngram).
  int head_dim() const { return n_embed_per_ngram / n_head_per_ngram; }
};

// Parses CFG.json text. `base_dir` resolves a relative token_map ("" leaves it as written).
// Errors name the field: InvalidArgument for a wrong type, value or unknown key.
Result<EngramConfig> ParseEngramConfig(std::string_view json, const std::string& base_dir);

// Reads and parses a config file; token_map is resolved against the file's directory.
Result<EngramConfig> LoadEngramConfig(Env* env, const std::string& path);

// Checks the cross-field rules (also applied by the parser): sizes, ranges, distinct layers,
// exactly one of token_map / compressed_vocab_size.
Status ValidateEngramConfig(const EngramConfig& config);

}  // namespace engram::model
