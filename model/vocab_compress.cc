#include "model/vocab_compress.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include <algorithm>
#include <array>
#include <exception>
#include <new>
#include <nlohmann/json.hpp>
#include <unordered_map>

namespace engram::model {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD in UTF-8
constexpr char32_t kSentinel = 0xE000;  // the reference's SENTINEL, keeps a lone space
constexpr uint64_t kProgressEvery = 4096;

// ---- tokenizer.json ------------------------------------------------------------------------

// Drops model.merges while parsing: the largest part of a real tokenizer.json, never needed.
bool SkipMerges(int depth, Json::parse_event_t event, Json& parsed) {
  return !(event == Json::parse_event_t::key && depth == 2 && parsed == "merges");
}

Result<Json> ParseJson(std::string_view text, const std::string& source) {
  try {
    return Json::parse(text.begin(), text.end(), SkipMerges, /*allow_exceptions=*/true);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted(source + ": out of memory parsing the tokenizer JSON");
  } catch (const std::exception& e) {
    return Status::Corruption(source + ": not valid JSON: " + e.what());
  }
}

// "model.vocab entry "abc"": how a token is named in messages (JSON-escaped, so control bytes
// and odd whitespace stay readable on one line).
std::string Quote(const std::string& token) {
  return Json(token).dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

Result<uint64_t> TokenId(const Json& value, const std::string& source, const std::string& what) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return Status::Corruption(source + ": " + what + " has id " +
                            value.dump(-1, ' ', false, Json::error_handler_t::replace) +
                            ", not a non-negative integer");
}

struct IdEntry {
  uint64_t id;
  const std::string* token;
  bool added;
};

Status CollectModelVocab(const Json& doc, const std::string& source, std::vector<IdEntry>* out) {
  auto model = doc.find("model");
  if (model == doc.end() || !model->is_object()) {
    return Status::Corruption(source + ": no \"model\" object (is this a tokenizer.json?)");
  }
  auto vocab = model->find("vocab");
  if (vocab == model->end()) return Status::Corruption(source + ": no model.vocab");
  if (!vocab->is_object()) {
    return Status::Corruption(source +
                              ": model.vocab is not an object of token -> id (a Unigram model's "
                              "list vocabulary is not supported)");
  }
  out->reserve(vocab->size());
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    ENGRAM_ASSIGN_OR_RETURN(uint64_t id,
                            TokenId(it.value(), source, "model.vocab entry " + Quote(it.key())));
    out->push_back({id, &it.key(), false});
  }
  return Status::OK();
}

Status CollectAddedTokens(const Json& doc, const std::string& source, std::vector<IdEntry>* out) {
  auto added = doc.find("added_tokens");
  if (added == doc.end() || added->is_null()) return Status::OK();
  if (!added->is_array()) return Status::Corruption(source + ": added_tokens is not a list");
  for (size_t i = 0; i < added->size(); ++i) {
    const Json& t = (*added)[i];
    const std::string what = "added_tokens[" + std::to_string(i) + "]";
    if (!t.is_object()) return Status::Corruption(source + ": " + what + " is not an object");
    auto content = t.find("content");
    auto id = t.find("id");
    if (content == t.end() || !content->is_string() || id == t.end()) {
      return Status::Corruption(source + ": " + what + " lacks a string \"content\" or an \"id\"");
    }
    ENGRAM_ASSIGN_OR_RETURN(uint64_t value, TokenId(*id, source, what));
    out->push_back({value, &content->get_ref<const std::string&>(), true});
  }
  return Status::OK();
}

// Places entries by id: model entries first, added ones over them. Checks duplicate ids within
// each kind and that the ids are exactly 0..N-1.
Status PlaceTokens(const std::vector<IdEntry>& entries, const std::string& source,
                   TokenizerVocab* vocab) {
  if (entries.empty()) return Status::Corruption(source + ": the vocabulary has no tokens");
  // N distinct ids need N entries at least, so an id >= entries.size() implies a gap below it.
  const uint64_t cap = entries.size();
  std::vector<const IdEntry*> slot(cap, nullptr);
  uint64_t max_id = 0;
  for (const IdEntry& e : entries) {
    max_id = std::max(max_id, e.id);
    if (e.id >= cap) continue;  // reported as the gap below it
    const IdEntry* prev = slot[e.id];
    if (prev != nullptr && prev->added == e.added && *prev->token != *e.token) {
      return Status::Corruption(source + ": " + (e.added ? "added_tokens" : "model.vocab") +
                                " gives id " + std::to_string(e.id) + " to both " +
                                Quote(*prev->token) + " and " + Quote(*e.token));
    }
    if (prev == nullptr || e.added) slot[e.id] = &e;
  }
  const uint64_t size = std::min(max_id + 1, cap);
  for (uint64_t id = 0; id < size; ++id) {
    if (slot[id] == nullptr) {
      return Status::Corruption(source + ": token ids have a gap: no token has id " +
                                std::to_string(id) + " (ids go up to " + std::to_string(max_id) +
                                ")");
    }
  }
  vocab->tokens.resize(size);
  vocab->added.resize(size);
  for (uint64_t id = 0; id < size; ++id) {
    vocab->tokens[id] = *slot[id]->token;
    vocab->added[id] = slot[id]->added ? 1 : 0;
  }
  return Status::OK();
}

Result<TokenizerVocab::Decoder> ReadDecoder(const Json& doc, const std::string& source) {
  auto decoder = doc.find("decoder");
  if (decoder == doc.end() || decoder->is_null()) return TokenizerVocab::Decoder::kNone;
  auto type = decoder->is_object() ? decoder->find("type") : decoder->end();
  if (type == decoder->end() || !type->is_string()) {
    return Status::Corruption(source + ": decoder has no \"type\"");
  }
  if (*type == "ByteLevel") return TokenizerVocab::Decoder::kByteLevel;
  return Status::NotSupported(source + ": decoder type \"" + type->get<std::string>() +
                              "\" is not supported (ByteLevel or none)");
}

// ---- decoding --------------------------------------------------------------------------------

// GPT-2's bytes_to_unicode, inverted: code point -> byte, -1 for chars outside the table.
// Printable Latin-1 bytes map to themselves; the other 68 bytes, in order, to U+0100 + n.
constexpr int kByteCharLimit = 0x100 + 68;
constexpr std::array<int16_t, kByteCharLimit> MakeCharToByte() {
  std::array<int16_t, kByteCharLimit> table{};
  for (auto& v : table) v = -1;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (printable) {
      table[b] = static_cast<int16_t>(b);
    } else {
      table[0x100 + n++] = static_cast<int16_t>(b);
    }
  }
  return table;
}
constexpr std::array<int16_t, kByteCharLimit> kCharToByte = MakeCharToByte();

// Next code point of valid UTF-8 at s[*i] (advancing *i); U+FFFD for a malformed byte.
char32_t NextCodePoint(std::string_view s, size_t* i) {
  const auto b = static_cast<uint8_t>(s[*i]);
  int len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  if (b >= 0x80 && b < 0xC0) len = 1;  // stray continuation byte
  if (*i + len > s.size()) {
    ++*i;
    return 0xFFFD;
  }
  char32_t c = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (int k = 1; k < len; ++k) c = (c << 6) | (static_cast<uint8_t>(s[*i + k]) & 0x3F);
  *i += len;
  return (b >= 0x80 && b < 0xC0) ? 0xFFFD : c;
}

// ByteLevel decoder on one token: all chars in the table -> those bytes, else the token's own
// UTF-8 bytes.
std::string ByteLevelBytes(const std::string& token) {
  std::string bytes;
  bytes.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    const char32_t c = NextCodePoint(token, &i);
    if (c >= static_cast<char32_t>(kByteCharLimit) || kCharToByte[c] < 0) return token;
    bytes.push_back(static_cast<char>(kCharToByte[c]));
  }
  return bytes;
}

// UTF-8 with each maximal ill-formed subpart replaced by U+FFFD (Unicode 3.9, "U+FFFD
// substitution of maximal subparts"; what Rust's from_utf8_lossy and Python do).
std::string Utf8Lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    int need = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;  // no surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    }
    size_t j = i + 1;
    int got = 0;
    while (got < need && j < s.size()) {
      const auto c = static_cast<uint8_t>(s[j]);
      const bool ok = got == 0 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
      if (!ok) break;
      ++j;
      ++got;
    }
    if (need > 0 && got == need) {
      out.append(s.substr(i, j - i));
    } else {
      out.append(kReplacementChar);
    }
    i = j;
  }
  return out;
}

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s->find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(*s, pos, hit - pos);
    out.append(to);
  }
  if (pos == 0) return;
  out.append(*s, pos, std::string::npos);
  *s = std::move(out);
}

// transformers' PreTrainedTokenizerBase.clean_up_tokenization.
void CleanUpTokenization(std::string* s) {
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) ReplaceAll(s, from, to);
}

// ---- normalising -----------------------------------------------------------------------------

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

bool IsMark(UChar32 c) {
  const int8_t t = u_charType(c);
  return t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_COMBINING_SPACING_MARK;
}

// Full lower-case mapping of one code point on its own (root locale, so no context: a lone
// capital sigma is never final). Rust's char::to_lowercase, as `tokenizers` Lowercase uses.
Status AppendLower(UChar32 c, std::u32string* out) {
  if (c < 0x80) {
    out->push_back(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    return Status::OK();
  }
  UChar src[2];
  int32_t src_len = 0;
  U16_APPEND_UNSAFE(src, src_len, c);
  UChar dst[8];
  UErrorCode status = U_ZERO_ERROR;
  const int32_t n = u_strToLower(dst, 8, src, src_len, "", &status);
  if (U_FAILURE(status)) {
    return Status::NotSupported(std::string("ICU u_strToLower failed: ") + u_errorName(status));
  }
  for (int32_t i = 0; i < n;) {
    UChar32 d;
    U16_NEXT(dst, i, n, d);
    out->push_back(static_cast<char32_t>(d));
  }
  return Status::OK();
}

bool IsAsciiRunSpace(char32_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

// ---- public ------------------------------------------------------------------------------------

Result<TokenizerVocab> ParseTokenizerJson(std::string_view json_text, const std::string& source) {
  ENGRAM_ASSIGN_OR_RETURN(Json doc, ParseJson(json_text, source));
  if (!doc.is_object()) return Status::Corruption(source + ": the JSON document is not an object");
  std::vector<IdEntry> entries;
  ENGRAM_RETURN_IF_ERROR(CollectModelVocab(doc, source, &entries));
  ENGRAM_RETURN_IF_ERROR(CollectAddedTokens(doc, source, &entries));
  TokenizerVocab vocab;
  ENGRAM_ASSIGN_OR_RETURN(vocab.decoder, ReadDecoder(doc, source));
  ENGRAM_RETURN_IF_ERROR(PlaceTokens(entries, source, &vocab));
  return vocab;
}

Result<TokenizerVocab> ReadTokenizerJson(Env* env, const std::string& path) {
  ENGRAM_ASSIGN_OR_RETURN(std::string text, env->ReadFileToString(path));
  return ParseTokenizerJson(text, path);
}

std::string DecodeToken(const TokenizerVocab& vocab, int64_t id,
                        bool clean_up_tokenization_spaces) {
  const std::string& token = vocab.tokens[static_cast<size_t>(id)];
  std::string text;
  if (vocab.added[static_cast<size_t>(id)] || vocab.decoder == TokenizerVocab::Decoder::kNone) {
    text = token;
  } else {
    text = Utf8Lossy(ByteLevelBytes(token));
  }
  if (clean_up_tokenization_spaces) CleanUpTokenization(&text);
  return text;
}

struct TextNormalizer::Impl {
  const icu::Normalizer2* nfkc;  // ICU singletons, never deleted
  const icu::Normalizer2* nfd;
};

Result<TextNormalizer> TextNormalizer::Create() {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(status);
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  if (U_FAILURE(status)) {
    return Status::NotSupported(std::string("ICU normalization data unavailable: ") +
                                u_errorName(status));
  }
  return TextNormalizer(std::make_shared<const Impl>(Impl{nfkc, nfd}));
}

Result<std::string> TextNormalizer::Normalize(std::string_view utf8) const {
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeString src = icu::UnicodeString::fromUTF8(
      icu::StringPiece(utf8.data(), static_cast<int32_t>(utf8.size())));
  const icu::UnicodeString nfkc = impl_->nfkc->normalize(src, status);
  const icu::UnicodeString nfd = impl_->nfd->normalize(nfkc, status);
  if (U_FAILURE(status)) {
    return Status::NotSupported(std::string("ICU normalization failed: ") + u_errorName(status));
  }
  // StripAccents + Lowercase.
  std::u32string lowered;
  lowered.reserve(static_cast<size_t>(nfd.length()));
  for (int32_t i = 0; i < nfd.length();) {
    const UChar32 c = nfd.char32At(i);
    i += U16_LENGTH(c);
    if (IsMark(c)) continue;
    ENGRAM_RETURN_IF_ERROR(AppendLower(c, &lowered));
  }
  // Replace(Regex("[ \t\r\n]+"), " ").
  std::u32string s;
  s.reserve(lowered.size());
  bool in_run = false;
  for (char32_t c : lowered) {
    const bool space = IsAsciiRunSpace(c);
    if (!space) {
      s.push_back(c);
    } else if (!in_run) {
      s.push_back(' ');
    }
    in_run = space;
  }
  // Replace(Regex("^ $"), SENTINEL), Strip, Replace(SENTINEL, " ").
  if (s == U" ") s = std::u32string(1, kSentinel);
  size_t begin = 0, end = s.size();
  while (begin < end && u_isUWhiteSpace(static_cast<UChar32>(s[begin]))) ++begin;
  while (end > begin && u_isUWhiteSpace(static_cast<UChar32>(s[end - 1]))) --end;
  std::string out;
  out.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) AppendUtf8(s[i] == kSentinel ? U' ' : s[i], &out);
  return out;
}

Result<std::string> CompressionKey(const TextNormalizer& normalizer, const TokenizerVocab& vocab,
                                   int64_t id, bool clean_up_tokenization_spaces) {
  std::string text = DecodeToken(vocab, id, clean_up_tokenization_spaces);
  if (text.find(kReplacementChar) != std::string::npos) {
    return vocab.tokens[static_cast<size_t>(id)];  // convert_ids_to_tokens: the raw form
  }
  ENGRAM_ASSIGN_OR_RETURN(std::string norm, normalizer.Normalize(text));
  return norm.empty() ? text : norm;
}

Result<TokenMap> BuildTokenMap(const TokenizerVocab& vocab, const VocabCompressOptions& options) {
  ENGRAM_ASSIGN_OR_RETURN(TextNormalizer normalizer, TextNormalizer::Create());
  const uint64_t n = vocab.tokens.size();
  std::vector<int64_t> table(n);
  std::unordered_map<std::string, int64_t> key_to_id;
  key_to_id.reserve(n);
  for (uint64_t id = 0; id < n; ++id) {
    ENGRAM_ASSIGN_OR_RETURN(std::string key,
                            CompressionKey(normalizer, vocab, static_cast<int64_t>(id),
                                           options.clean_up_tokenization_spaces));
    const auto next = static_cast<int64_t>(key_to_id.size());
    table[id] = key_to_id.try_emplace(std::move(key), next).first->second;
    if (options.progress && ((id + 1) % kProgressEvery == 0 || id + 1 == n)) {
      options.progress(id + 1, n);
    }
  }
  return TokenMap::FromTable(std::move(table));
}

Result<TokenMap> BuildTokenMapFromFile(Env* env, const std::string& tokenizer_json_path,
                                       const VocabCompressOptions& options) {
  ENGRAM_ASSIGN_OR_RETURN(TokenizerVocab vocab, ReadTokenizerJson(env, tokenizer_json_path));
  return BuildTokenMap(vocab, options);
}

}  // namespace engram::model
