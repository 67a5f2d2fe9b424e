// Building the tokenizer-compression map from tokenizer.json: equal to the Python
// re-implementation of the reference (tests/model/data/make_vocab_golden.py) on a small
// byte-level BPE tokenizer and on every BMP code point, plus decoding details, options, malformed
// inputs, and the build time of a real-size (128k-token) vocabulary.
#include "model/vocab_compress.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/token_map.h"

namespace engram::model {
namespace {

using nlohmann::json;

std::string DataPath(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path() / "data" / name).string();
}

json ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::string Utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (c >> 6)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (c >> 12)));
    s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (c >> 18)));
    s.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
  return s;
}

// GPT-2's byte -> char table, written independently of the library's inverse table.
std::vector<std::string> ByteChars() {
  std::vector<std::string> table(256);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    table[b] = Utf8(printable ? b : 0x100 + n++);
  }
  return table;
}

std::string ByteLevelToken(std::string_view bytes) {
  static const std::vector<std::string> table = ByteChars();
  std::string token;
  for (char c : bytes) token += table[static_cast<uint8_t>(c)];
  return token;
}

std::string Normalize(const TextNormalizer& n, std::string_view text) {
  Result<std::string> r = n.Normalize(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : "<error>";
}

TextNormalizer MakeNormalizer() {
  Result<TextNormalizer> n = TextNormalizer::Create();
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return std::move(n).value();
}

// ---- golden ----------------------------------------------------------------------------------

TEST(VocabCompressTest, SmallTokenizerMatchesPythonReference) {
  Result<TokenizerVocab> vocab =
      ReadTokenizerJson(Env::Default(), DataPath("vocab_small_tokenizer.json"));
  ASSERT_TRUE(vocab.ok()) << vocab.status().ToString();
  const json golden = ReadJsonFile(DataPath("vocab_small_keys.json"));
  const json& rows = golden["tokens"];
  ASSERT_EQ(vocab->tokens.size(), rows.size());
  ASSERT_EQ(vocab->decoder, TokenizerVocab::Decoder::kByteLevel);

  // Per token first, so a difference names the token, its text and both keys.
  const TextNormalizer normalizer = MakeNormalizer();
  int failures = 0;
  for (size_t id = 0; id < rows.size() && failures < 20; ++id) {
    const json& row = rows[id];
    ASSERT_EQ(vocab->tokens[id], row["token"].get<std::string>()) << "id " << id;
    const std::string text = DecodeToken(*vocab, static_cast<int64_t>(id), false);
    Result<std::string> key = CompressionKey(normalizer, *vocab, static_cast<int64_t>(id), false);
    ASSERT_TRUE(key.ok());
    if (text != row["text"].get<std::string>() || *key != row["key"].get<std::string>()) {
      ++failures;
      ADD_FAILURE() << "id " << id << " token " << row["token"].dump() << ": text "
                    << json(text).dump() << " key " << json(*key).dump() << ", expected text "
                    << row["text"].dump() << " key " << row["key"].dump();
    }
  }

  Result<TokenMap> built = BuildTokenMap(*vocab, VocabCompressOptions());
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  Result<TokenMap> expected = TokenMap::LoadNpy(Env::Default(), DataPath("vocab_small_map.npy"));
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  EXPECT_EQ(built->table(), expected->table());
  EXPECT_EQ(built->raw_vocab_size(), golden["raw_vocab_size"].get<int64_t>());
  EXPECT_EQ(built->compressed_vocab_size(), golden["compressed_vocab_size"].get<int64_t>());
}

TEST(VocabCompressTest, EveryBmpCodePointNormalisesAsPythonReference) {
  const json sweep = ReadJsonFile(DataPath("vocab_normalize_sweep.json"));
  std::vector<bool> skipped(0x10000, false);
  for (const json& range : sweep["skipped"]) {
    for (uint32_t cp = range[0].get<uint32_t>(); cp <= range[1].get<uint32_t>(); ++cp) {
      skipped[cp] = true;
    }
  }
  const json& changed = sweep["changed"];
  const TextNormalizer normalizer = MakeNormalizer();
  int checked = 0, changed_seen = 0, failures = 0;
  for (uint32_t cp = 0; cp < 0x10000 && failures < 20; ++cp) {
    if (skipped[cp]) continue;
    const std::string in = Utf8(cp);
    auto it = changed.find(std::to_string(cp));
    const std::string expected = it == changed.end() ? in : it->get<std::string>();
    changed_seen += it != changed.end();
    const std::string got = Normalize(normalizer, in);
    ++checked;
    if (got != expected) {
      ++failures;
      ADD_FAILURE() << "U+" << std::hex << cp << std::dec << ": got " << json(got).dump()
                    << ", expected " << json(expected).dump();
    }
  }
  EXPECT_GT(checked, 50000);
  EXPECT_EQ(changed_seen, static_cast<int>(changed.size()));  // the sweep saw every listed change
}

// ---- the normaliser, readable cases ------------------------------------------------------------

TEST(VocabCompressTest, NormaliserSteps) {
  const TextNormalizer n = MakeNormalizer();
  EXPECT_EQ(Normalize(n, "  H\xC3\xA9llo\t\tWORLD \n"), "hello world");  // accents, case, runs
  EXPECT_EQ(Normalize(n, " "), " ");                                     // a lone space is kept
  EXPECT_EQ(Normalize(n, "\n\t \r"), " ");                               // ... after collapsing
  EXPECT_EQ(Normalize(n, "\xE3\x80\x80"), " ");   // U+3000 -> NFKC " " -> kept
  EXPECT_EQ(Normalize(n, "\x0B"), "");            // VT: not collapsed, stripped
  EXPECT_EQ(Normalize(n, "\x1C"), "\x1C");        // not White_Space (str.strip() differs)
  EXPECT_EQ(Normalize(n, "\xEF\xAC\x81"), "fi");  // U+FB01 ligature
  EXPECT_EQ(Normalize(n, "\xEF\xBC\xA1"), "a");   // U+FF21 full-width A
  EXPECT_EQ(Normalize(n, "\xCE\x9F\xCE\xA3"), "\xCE\xBF\xCF\x83");  // "ΟΣ" -> "οσ", no final ς
  EXPECT_EQ(Normalize(n, "\xC4\xB0"), "i");  // U+0130 -> I + U+0307 -> I -> i
  EXPECT_EQ(Normalize(n, "\xE0\xA4\x95\xE0\xA4\xBE"), "\xE0\xA4\x95");  // Mc U+093E dropped
  EXPECT_EQ(Normalize(n, "a\xEE\x80\x80"), "a ");  // the sentinel itself becomes " "
  EXPECT_EQ(Normalize(n, "\xCC\x81"), "");         // a lone combining mark
}

// ---- decoding and keys ----------------------------------------------------------------------

std::string TinyTokenizer(const std::string& vocab_json, const std::string& extra = "") {
  return R"({"version":"1.0",)" + extra + R"("decoder":{"type":"ByteLevel"},)" +
         R"("model":{"type":"BPE","vocab":)" + vocab_json + R"(,"merges":["a b"]}})";
}

TokenizerVocab MustParse(const std::string& text) {
  Result<TokenizerVocab> v = ParseTokenizerJson(text, "test.json");
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? std::move(v).value() : TokenizerVocab();
}

TEST(VocabCompressTest, CompressedIdsFollowFirstAppearance) {
  const TokenizerVocab v = MustParse(TinyTokenizer(
      R"({"B":0,"a":1,"b":2,"A":3,"c":4,"\u0120c":5,"\u0120":6,"\u010a":7,"\u0109":8})"));
  Result<TokenMap> map = BuildTokenMap(v, VocabCompressOptions());
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  // B->"b" 0, a 1, b 0, A 1, c 2, " c" 2, " " 3, "\n" 3, "\t" 3.
  EXPECT_EQ(map->table(), (std::vector<int64_t>{0, 1, 0, 1, 2, 2, 3, 3, 3}));
  EXPECT_EQ(map->compressed_vocab_size(), 4);
}

TEST(VocabCompressTest, PartialUtf8TokensAreKeyedByTheirRawForm) {
  const std::string first_two = ByteLevelToken("\xE4\xBD");  // 2 of the 3 bytes of U+4F60
  const std::string surrogate = ByteLevelToken("\xED\xA0\x80");
  const TokenizerVocab v =
      MustParse(TinyTokenizer(R"({")" + first_two + R"(":0,")" + surrogate + R"(":1,"x":2})"));
  EXPECT_EQ(DecodeToken(v, 0, false), "\xEF\xBF\xBD");  // one U+FFFD for the maximal subpart
  EXPECT_EQ(DecodeToken(v, 1, false), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  const TextNormalizer n = MakeNormalizer();
  EXPECT_EQ(*CompressionKey(n, v, 0, false), first_two);
  EXPECT_EQ(*CompressionKey(n, v, 1, false), surrogate);
}

TEST(VocabCompressTest, AddedTokensDecodeToTheirContentAndWinOverTheVocab) {
  const std::string added = R"("added_tokens":[
      {"id":3,"content":"<|end|>","special":true},
      {"id":1,"content":"\u0120Special","special":false},
      {"id":3,"content":"<|end|>","special":true}],)";
  const TokenizerVocab v = MustParse(TinyTokenizer(R"({"a":0,"b":1,"c":2})", added));
  ASSERT_EQ(v.tokens.size(), 4u);
  EXPECT_EQ(v.tokens[1], "\xC4\xA0Special");  // the added content replaced "b"
  EXPECT_EQ(v.added, (std::vector<uint8_t>{0, 1, 0, 1}));
  EXPECT_EQ(DecodeToken(v, 1, false), "\xC4\xA0Special");  // not run through the byte table
  EXPECT_EQ(DecodeToken(v, 3, false), "<|end|>");
}

TEST(VocabCompressTest, NoDecoderUsesTheTokenString) {
  const TokenizerVocab v = MustParse(R"({"decoder":null,"model":{"vocab":{"\u0120A":0}}})");
  EXPECT_EQ(v.decoder, TokenizerVocab::Decoder::kNone);
  EXPECT_EQ(DecodeToken(v, 0, false),
            "\xC4\xA0"
            "A");
}

TEST(VocabCompressTest, CleanUpTokenizationSpacesOption) {
  const TokenizerVocab v = MustParse(TinyTokenizer(R"({"a\u0120.":0,"a.":1,"\u0120n't":2})"));
  VocabCompressOptions options;
  EXPECT_EQ(BuildTokenMap(v, options)->table(), (std::vector<int64_t>{0, 1, 2}));
  options.clean_up_tokenization_spaces = true;  // "a ." -> "a."
  EXPECT_EQ(DecodeToken(v, 0, true), "a.");
  EXPECT_EQ(BuildTokenMap(v, options)->table(), (std::vector<int64_t>{0, 0, 1}));
}

TEST(VocabCompressTest, ReportsProgressUpToTheTotal) {
  std::string vocab = "{";
  for (int i = 0; i < 10000; ++i)
    vocab += (i ? ",\"t" : "\"t") + std::to_string(i) + "\":" + std::to_string(i);
  vocab += "}";
  const TokenizerVocab v = MustParse(TinyTokenizer(vocab));
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  VocabCompressOptions options;
  options.progress = [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  ASSERT_TRUE(BuildTokenMap(v, options).ok());
  ASSERT_EQ(calls.size(), 3u);  // 4096, 8192, 10000
  EXPECT_EQ(calls.back(), (std::pair<uint64_t, uint64_t>{10000, 10000}));
  EXPECT_LT(calls[0].first, calls[1].first);
}

// ---- malformed input ------------------------------------------------------------------------

void ExpectError(const std::string& text, Status::Code code, const std::string& needle) {
  Result<TokenizerVocab> v = ParseTokenizerJson(text, "tok.json");
  ASSERT_FALSE(v.ok()) << text;
  EXPECT_EQ(v.status().code(), code) << v.status().ToString();
  EXPECT_NE(v.status().message().find(needle), std::string::npos) << v.status().ToString();
  EXPECT_EQ(v.status().message().rfind("tok.json", 0), 0u) << v.status().ToString();
}

TEST(VocabCompressTest, MalformedTokenizerJsonIsAClearError) {
  const auto kCorrupt = Status::Code::kCorruption;
  ExpectError("{\"model\": {\"vocab\": {\"a\": 0}", kCorrupt, "not valid JSON");
  ExpectError("not json at all", kCorrupt, "not valid JSON");
  ExpectError("[1, 2]", kCorrupt, "not an object");
  ExpectError("{\"version\": \"1.0\"}", kCorrupt, "no \"model\"");
  ExpectError("{\"model\": {\"type\": \"BPE\"}}", kCorrupt, "no model.vocab");
  ExpectError("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]]}}", kCorrupt,
              "Unigram");
  ExpectError(TinyTokenizer(R"({"a":0,"b":-1})"), kCorrupt, "\"b\" has id -1");
  ExpectError(TinyTokenizer(R"({"a":0,"b":"1"})"), kCorrupt, "not a non-negative integer");
  ExpectError(TinyTokenizer(R"({"a":0,"b":1.5})"), kCorrupt, "not a non-negative integer");
  ExpectError(TinyTokenizer(R"({"a":0,"b":1,"c":1})"), kCorrupt,
              "model.vocab gives id 1 to both \"b\" and \"c\"");
  ExpectError(TinyTokenizer(R"({"a":0,"b":1,"d":3})"), kCorrupt, "no token has id 2");
  ExpectError(TinyTokenizer(R"({"a":0,"b":1,"z":4000000000})"), kCorrupt,
              "no token has id 2 (ids go up to 4000000000)");
  ExpectError(TinyTokenizer(R"({"b":1})"), kCorrupt, "no token has id 0");
  ExpectError(TinyTokenizer(R"({})"), kCorrupt, "no tokens");
  ExpectError(TinyTokenizer(R"({"a":0})", R"("added_tokens":[{"id":1,"content":"x"},)"
                                          R"({"id":1,"content":"y"}],)"),
              kCorrupt, "added_tokens gives id 1 to both \"x\" and \"y\"");
  ExpectError(TinyTokenizer(R"({"a":0})", R"("added_tokens":[{"id":1}],)"), kCorrupt,
              "added_tokens[0] lacks");
  ExpectError(R"({"decoder":{"type":"Metaspace"},"model":{"vocab":{"a":0}}})",
              Status::Code::kNotSupported, "\"Metaspace\"");
}

TEST(VocabCompressTest, MissingFileIsAnError) {
  Result<TokenMap> map =
      BuildTokenMapFromFile(Env::Default(), DataPath("no_such_tokenizer.json"), {});
  EXPECT_FALSE(map.ok());
}

// ---- a real-size vocabulary -----------------------------------------------------------------

// A 128,256-token byte-level tokenizer.json shaped like DeepSeek-V3's: the 256 byte tokens, then
// 30,000 words in four spellings that normalise together ("wabc", " Wabc", " WABC", full-width
// "ＷＡＢＣ"), 4,000 two-character CJK tokens and 4,000 tokens ending in a partial UTF-8
// sequence. The compressed size is known from the structure.
std::string SyntheticTokenizer(int words, int cjk, int partial) {
  std::string vocab = "{";
  int64_t id = 0;
  auto add = [&](const std::string& token) {
    vocab += (id ? ",\"" : "\"") + token + "\":" + std::to_string(id);
    ++id;
  };
  std::vector<int> byte_order;  // GPT-2's: the printable bytes first, as in the golden
  for (int pass = 0; pass < 2; ++pass) {
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      if (printable == (pass == 0)) byte_order.push_back(b);
    }
  }
  for (int b : byte_order) {
    const std::string t = ByteLevelToken(std::string(1, static_cast<char>(b)));
    add(t == "\"" ? "\\\"" : t == "\\" ? "\\\\" : t);
  }
  for (int w = 0; w < words; ++w) {
    std::string lower = "w";
    for (int k = 0, v = w; k < 4; ++k, v /= 26) lower += static_cast<char>('a' + v % 26);
    std::string upper = lower, title = lower, wide;
    for (char& c : upper) c = static_cast<char>(c - 32);
    title[0] = 'W';
    for (char c : upper) wide += Utf8(0xFF21 + (c - 'A'));
    add(ByteLevelToken(lower));
    add(ByteLevelToken(" " + title));
    add(ByteLevelToken(" " + upper));
    add(ByteLevelToken(wide));
  }
  for (int i = 0; i < cjk; ++i) add(ByteLevelToken(Utf8(0x4E00 + 2 * i) + Utf8(0x4E01 + 2 * i)));
  for (int i = 0; i < partial; ++i) add(ByteLevelToken(Utf8(0x6000 + i) + "\xE4\xBD"));
  vocab += "}";
  // As many merges as tokens, as in a real file (the parser skips them).
  std::string merges = "[";
  for (int64_t i = 0; i < id; ++i) merges += (i ? ",\"" : "\"") + std::to_string(i) + " \u0120t\"";
  merges += "]";
  return R"({"version":"1.0","added_tokens":[],"decoder":{"type":"ByteLevel"},)"
         R"("model":{"type":"BPE","vocab":)" +
         vocab + R"(,"merges":)" + merges + "}}";
}

// A synthetic vocabulary of tens of thousands of tokens: every spelling of a word (case,
// full width, accents) compresses to one id, in order of first appearance. (Build time of a
// 128k vocabulary is a benchmark figure, not a test: about 1 s here.)
TEST(VocabCompressTest, LargeVocabularyMergesEverySpellingOfAWord) {
  constexpr int kWords = 8000, kCjk = 2000, kPartial = 2000;
  const std::string text = SyntheticTokenizer(kWords, kCjk, kPartial);
  Result<TokenizerVocab> vocab = ParseTokenizerJson(text, "synthetic.json");
  ASSERT_TRUE(vocab.ok()) << vocab.status().ToString();
  Result<TokenMap> map = BuildTokenMap(*vocab, VocabCompressOptions());
  ASSERT_TRUE(map.ok()) << map.status().ToString();

  ASSERT_EQ(map->raw_vocab_size(), 256 + 4 * kWords + kCjk + kPartial);
  // The 256 byte tokens compress as in the Python golden (its first 256 tokens are the same).
  Result<TokenMap> golden = TokenMap::LoadNpy(Env::Default(), DataPath("vocab_small_map.npy"));
  ASSERT_TRUE(golden.ok());
  const std::vector<int64_t> bytes_golden(golden->table().begin(), golden->table().begin() + 256);
  const std::vector<int64_t> bytes_built(map->table().begin(), map->table().begin() + 256);
  ASSERT_EQ(bytes_built, bytes_golden);
  const int64_t byte_keys = *std::max_element(bytes_golden.begin(), bytes_golden.end()) + 1;
  EXPECT_EQ(map->compressed_vocab_size(), byte_keys + kWords + kCjk + kPartial);
  for (int w = 0; w < kWords; ++w) {  // the four spellings of each word share one new id
    const int64_t base = 256 + 4 * w;
    ASSERT_EQ(map->table()[base], byte_keys + w);
    ASSERT_EQ(map->table()[base + 3], byte_keys + w) << "full-width spelling of word " << w;
  }
}

}  // namespace
}  // namespace engram::model
