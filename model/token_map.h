// TokenMap: the tokenizer-compression table of the Engram n-gram hashing (BRIEF section 3).
//
// Raw token ids (the tokenizer's) map to compressed ids before hashing: tokens that differ only
// in case, accents, width or surrounding whitespace share one compressed id. The table is an
// int64 .npy of shape [raw_vocab] (the reference's CompressedTokenizer.lookup_table), loaded here
// or built from a tokenizer.json by model/vocab_compress.h. compressed_vocab_size() is the
// largest value + 1 (the reference's len(CompressedTokenizer)); it feeds the multiplier bound.
//
// Thread safety: immutable after construction; const methods may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "storage/env.h"
#include "storage/status.h"

namespace engram::model {

class TokenMap {  // raw token id -> compressed id
 public:
  // An empty map (raw and compressed vocab size 0); every Compress() fails.
  TokenMap() = default;

  // Reads a 1-D int64 or int32 .npy. A file of another dtype or rank is InvalidArgument; a
  // negative value is Corruption naming its position; an empty array is Corruption.
  static Result<TokenMap> LoadNpy(Env* env, const std::string& path);
  // raw id i -> i for i < vocab_size (the config's `compressed_vocab_size` without a token_map).
  // A negative vocab_size gives an empty map.
  static TokenMap Identity(int64_t vocab_size);
  // Takes ownership of `table`; a negative value is InvalidArgument naming its position.
  static Result<TokenMap> FromTable(std::vector<int64_t> table);

  // Writes the table as a 1-D int64 .npy.
  Status SaveNpy(Env* env, const std::string& path) const;

  int64_t raw_vocab_size() const { return static_cast<int64_t>(table_.size()); }
  // max + 1 of the table (0 when empty).
  int64_t compressed_vocab_size() const { return compressed_vocab_size_; }

  // InvalidArgument naming the id when it is outside [0, raw_vocab_size()).
  Result<int64_t> Compress(int64_t raw_id) const;
  // REQUIRES: 0 <= raw_id < raw_vocab_size(). For loops that checked the range already.
  int64_t CompressUnchecked(int64_t raw_id) const { return table_[static_cast<size_t>(raw_id)]; }

  const std::vector<int64_t>& table() const { return table_; }

 private:
  explicit TokenMap(std::vector<int64_t> table, int64_t compressed_vocab_size)
      : table_(std::move(table)), compressed_vocab_size_(compressed_vocab_size) {}

  std::vector<int64_t> table_;
  int64_t compressed_vocab_size_ = 0;
};

}  // namespace engram::model
