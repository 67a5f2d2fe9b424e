// Building the tokenizer-compression map (model/token_map.h) from a Hugging Face tokenizer.json,
// as the Engram reference's CompressedTokenizer does (deepseek-ai/Engram engram_demo_v1.py):
//
//   for id in 0 .. raw_vocab-1, in order:
//     text = tokenizer.decode([id], skip_special_tokens=False)
//     key  = the raw token string (convert_ids_to_tokens)   if text contains U+FFFD
//            NormalizeText(text), or text when that is ""     otherwise
//     map[id] = the number of distinct keys seen before this key first appeared
//
// Decoding: the ByteLevel decoder (GPT-2 byte-to-unicode table; a token with a char outside the
// table contributes its own UTF-8 bytes), UTF-8 with invalid sequences replaced by U+FFFD; no
// decoder: the token string itself. An added token (added_tokens) decodes to its content.
// Other decoders (Metaspace, WordPiece, ByteFallback...) are NotSupported.
//
// NormalizeText is the reference's `tokenizers` normalizer Sequence, step for step: NFKC, NFD,
// StripAccents (drops General_Category Mark: Mn, Mc and Me, as `tokenizers` does), Lowercase (each
// code point on its own, full mapping, no final-sigma context), runs of [ \t\r\n] -> " ", a
// string that is exactly " " is kept (sentinel), Strip (Unicode White_Space at both ends), then
// the sentinel U+E000 -> " ". Implemented with ICU.
//
// Thread safety: free functions and const methods; safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/token_map.h"
#include "storage/env.h"
#include "storage/status.h"

namespace engram::model {

struct VocabCompressOptions {
  // Apply transformers' clean_up_tokenization_spaces (" ." -> ".", " n't" -> "n't", ...) to each
  // decoded token before normalising, as decode() does when tokenizer_config.json sets it. It
  // changes a key only where such a pattern sits inside a token (a leading one is stripped
  // anyway), which byte-level pre-tokenizers rarely produce. Default false.
  bool clean_up_tokenization_spaces = false;
  // Called as progress(tokens done, total tokens) every 4096 tokens and at the end; may be empty.
  std::function<void(uint64_t, uint64_t)> progress;
};

// The id -> token table of a tokenizer.json.
struct TokenizerVocab {
  enum class Decoder { kNone, kByteLevel };
  // tokens[id]: an added token's content where added_tokens has the id (it wins over
  // model.vocab, as in `tokenizers`), else model.vocab's token string.
  std::vector<std::string> tokens;
  std::vector<uint8_t> added;  // 1 where tokens[id] comes from added_tokens
  Decoder decoder = Decoder::kNone;
};

// Parses tokenizer.json text. Corruption naming the problem for: not JSON, no model.vocab object
// (Unigram's list vocab included), an id that is not a non-negative integer, two tokens with one
// id, ids with a gap (naming the first missing id). NotSupported for a decoder other than
// ByteLevel or none. `source` names the input in messages.
Result<TokenizerVocab> ParseTokenizerJson(std::string_view json_text, const std::string& source);
Result<TokenizerVocab> ReadTokenizerJson(Env* env, const std::string& path);

// tokenizer.decode([id]): UTF-8, invalid sequences replaced by U+FFFD (one per maximal invalid
// subpart, as Rust's from_utf8_lossy and Python's errors="replace" do).
// REQUIRES: 0 <= id < vocab.tokens.size().
std::string DecodeToken(const TokenizerVocab& vocab, int64_t id, bool clean_up_tokenization_spaces);

// The reference's normalizer (see the file comment). Holds ICU's normalizer singletons.
class TextNormalizer {
 public:
  // Fails (NotSupported) only when ICU's normalization data cannot be loaded.
  static Result<TextNormalizer> Create();
  // REQUIRES: `utf8` is valid UTF-8 (invalid bytes would be read as U+FFFD). Fails only when
  // ICU does (out of memory).
  Result<std::string> Normalize(std::string_view utf8) const;

 private:
  struct Impl;
  explicit TextNormalizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// The dedupe key of token `id` (see the file comment).
// REQUIRES: 0 <= id < vocab.tokens.size().
Result<std::string> CompressionKey(const TextNormalizer& normalizer, const TokenizerVocab& vocab,
                                   int64_t id, bool clean_up_tokenization_spaces);

// The map for a parsed vocabulary; compressed ids in order of first appearance.
Result<TokenMap> BuildTokenMap(const TokenizerVocab& vocab, const VocabCompressOptions& options);
// ReadTokenizerJson + BuildTokenMap.
Result<TokenMap> BuildTokenMapFromFile(Env* env, const std::string& tokenizer_json_path,
                                       const VocabCompressOptions& options);

}  // namespace engram::model
