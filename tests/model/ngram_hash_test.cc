// N-gram hashing: bit-equal to the reference algorithm run by numpy + sympy
// (tests/model/data/make_hash_golden.py -> data/hash/), on the reference demo's default
// config, a DeepSeek-V4.1-like 3 orders x 8 heads config, odd sizes and pad ids, the 32-bit
// multiplier path, bound 1, dead tokens, and varlen batches; hashed whole, in pieces with
// carried history, and with speculative drafts of which only the accepted prefix is committed.
#include "model/ngram_hash.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "api/engram_hash.h"
#include "model/engram_config.h"
#include "storage/array_file.h"

namespace engram::model {
namespace {

using Json = nlohmann::json;

std::string DataPath(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path() / "data" / "hash" / name).string();
}

const Json& Golden() {
  static const Json* golden = [] {
    std::ifstream in(DataPath("hash_golden.json"));
    EXPECT_TRUE(in.good()) << "cannot open " << DataPath("hash_golden.json");
    std::stringstream text;
    text << in.rdbuf();
    return new Json(Json::parse(text.str()));
  }();
  return *golden;
}

// A whole .npy of int64 or uint8 (as int64) from the golden directory.
std::vector<int64_t> LoadNpy(const std::string& name, std::vector<uint64_t>* shape = nullptr) {
  Env* env = Env::Default();
  auto info = ReadNpyInfo(env, DataPath(name));
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return {};
  auto file = env->OpenRandomAccess(DataPath(name), false);
  EXPECT_TRUE(file.ok());
  std::vector<uint8_t> bytes(info->data_bytes);
  EXPECT_TRUE((*file)->Read(info->data_offset, bytes.size(), bytes.data()).ok());
  std::vector<int64_t> out;
  if (info->type == ElementType::kI64) {
    out.resize(bytes.size() / 8);
    std::memcpy(out.data(), bytes.data(), bytes.size());
  } else {
    EXPECT_EQ(info->type, ElementType::kU8) << name;
    out.assign(bytes.begin(), bytes.end());
  }
  if (shape) *shape = info->shape;
  return out;
}

std::vector<uint8_t> ToMask(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

const uint8_t* OrNull(const std::vector<uint8_t>& v) { return v.empty() ? nullptr : v.data(); }

// Hashes every request of a varlen batch step by step: at each step every unfinished request
// contributes its next chunk (sizes cycling through a pattern) to one HashVarlen call that
// continues the request's history. speculative: each chunk goes with two draft tokens (one of
// them dead) that are hashed but never committed; only the chunk is committed, by Commit.
std::vector<int64_t> HashStepwise(const NgramHasher& h, const std::vector<int64_t>& ids,
                                  const std::vector<uint8_t>& dead, const std::vector<int64_t>& cu,
                                  bool speculative) {
  static const size_t kPattern[] = {1, 3, 2, 5, 1, 8, 4};
  const size_t requests = cu.size() - 1;
  const size_t cols = static_cast<size_t>(h.num_columns());
  std::vector<NgramHistory> histories(requests, NgramHistory(h));
  std::vector<NgramHistory*> ptrs;
  for (auto& hist : histories) ptrs.push_back(&hist);
  std::vector<size_t> pos(cu.begin(), cu.end() - 1);
  std::vector<int64_t> out(ids.size() * cols, -1);
  for (size_t step = 0;; ++step) {
    std::vector<int64_t> step_ids, step_cu{0};
    std::vector<uint8_t> step_dead;
    std::vector<size_t> take(requests);
    bool any = false;
    for (size_t r = 0; r < requests; ++r) {
      const size_t left = static_cast<size_t>(cu[r + 1]) - pos[r];
      take[r] = std::min(kPattern[(step + r) % 7], left);
      any |= take[r] > 0;
      for (size_t i = 0; i < take[r]; ++i) {
        step_ids.push_back(ids[pos[r] + i]);
        step_dead.push_back(dead.empty() ? 0 : dead[pos[r] + i]);
      }
      if (speculative && take[r] > 0) {
        step_ids.insert(step_ids.end(), {0, 1});
        step_dead.insert(step_dead.end(), {0, 1});
      }
      step_cu.push_back(static_cast<int64_t>(step_ids.size()));
    }
    if (!any) break;
    std::vector<int64_t> step_out(step_ids.size() * cols);
    Status s =
        h.HashVarlen(step_ids.data(), step_cu.data(), requests, ptrs.data(), step_dead.data(),
                     /*add_offsets=*/false, /*commit=*/!speculative, step_out.data());
    EXPECT_TRUE(s.ok()) << s.ToString();
    for (size_t r = 0; r < requests; ++r) {
      std::copy_n(step_out.begin() + step_cu[r] * cols, take[r] * cols,
                  out.begin() + pos[r] * cols);
      if (speculative) {
        EXPECT_TRUE(h.Commit(&histories[r], ids.data() + pos[r],
                             dead.empty() ? nullptr : dead.data() + pos[r], take[r])
                        .ok());
      }
      pos[r] += take[r];
    }
  }
  return out;
}

TEST(NgramHashGoldenTest, GoldenHasAllCases) {
  for (const char* name :
       {"demo", "v41", "odd", "wide32", "bound1", "v41_dead", "demo_varlen", "v41_dead_varlen"}) {
    EXPECT_TRUE(Golden()["cases"].contains(name)) << name;
  }
}

TEST(NgramHashGoldenTest, EveryCaseMatchesTheReference) {
  Env* env = Env::Default();
  for (const auto& [name, rec] : Golden()["cases"].items()) {
    SCOPED_TRACE("case " + name);
    auto config = LoadEngramConfig(env, DataPath(rec["config"].get<std::string>()));
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    std::vector<uint64_t> shape;
    const std::vector<int64_t> ids = LoadNpy(rec["ids"].get<std::string>(), &shape);
    const std::vector<uint8_t> dead = rec.contains("dead")
                                          ? ToMask(LoadNpy(rec["dead"].get<std::string>()))
                                          : std::vector<uint8_t>();
    std::vector<int64_t> cu;
    if (rec.contains("cu_seqlens")) {
      cu = LoadNpy(rec["cu_seqlens"].get<std::string>());
    } else {
      ASSERT_EQ(shape.size(), 2u);
      for (uint64_t b = 0; b <= shape[0]; ++b) cu.push_back(static_cast<int64_t>(b * shape[1]));
    }
    ASSERT_EQ(static_cast<size_t>(cu.back()), ids.size());
    for (const Json& layer : rec["layers"]) {
      const int64_t layer_id = layer["layer_id"].get<int64_t>();
      SCOPED_TRACE("layer " + std::to_string(layer_id));
      auto hasher = NgramHasher::Create(env, *config, layer_id);
      ASSERT_TRUE(hasher.ok()) << hasher.status().ToString();
      const NgramHasher& h = *hasher;
      EXPECT_EQ(h.multipliers(), layer["multipliers"].get<std::vector<int64_t>>());
      EXPECT_EQ(h.table_sizes(), layer["primes"].get<std::vector<int64_t>>());
      EXPECT_EQ(h.offsets(), layer["offsets"].get<std::vector<int64_t>>());
      EXPECT_EQ(h.total_rows(), layer["total_rows"].get<int64_t>());
      EXPECT_EQ(h.compressed_pad_id(), rec["compressed_pad_id"].get<int64_t>());
      EXPECT_EQ(h.compressed_vocab_size(), rec["compressed_vocab_size"].get<int64_t>());

      std::vector<uint64_t> hshape;
      const std::vector<int64_t> expected = LoadNpy(layer["hashes"].get<std::string>(), &hshape);
      const size_t cols = static_cast<size_t>(h.num_columns());
      ASSERT_EQ(hshape.back(), cols);
      ASSERT_EQ(expected.size(), ids.size() * cols);

      // Whole batch at once.
      std::vector<int64_t> got(expected.size(), -1);
      ASSERT_TRUE(h.HashVarlen(ids.data(), cu.data(), cu.size() - 1, nullptr, OrNull(dead), false,
                               false, got.data())
                      .ok());
      EXPECT_EQ(got, expected);
      if (!rec.contains("cu_seqlens")) {  // rectangular: the [B, T] entry point too
        std::fill(got.begin(), got.end(), -1);
        ASSERT_TRUE(
            h.HashBatch(ids.data(), shape[0], shape[1], OrNull(dead), false, got.data()).ok());
        EXPECT_EQ(got, expected);
      }
      // With offsets: row ids.
      ASSERT_TRUE(h.HashVarlen(ids.data(), cu.data(), cu.size() - 1, nullptr, OrNull(dead), true,
                               false, got.data())
                      .ok());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i], expected[i] + h.offsets()[i % cols]) << "value " << i;
        ASSERT_LT(got[i], h.total_rows());
      }
      // In pieces with carried history, and with uncommitted speculative drafts.
      EXPECT_EQ(HashStepwise(h, ids, dead, cu, /*speculative=*/false), expected);
      EXPECT_EQ(HashStepwise(h, ids, dead, cu, /*speculative=*/true), expected);
    }
  }
}

TEST(NgramHashTest, DemoPrimesMatchTheReferenceDocstring) {
  EngramConfig config;  // the reference demo's defaults
  config.compressed_vocab_size = 129280;
  auto primes = ComputeTablePrimes(config);
  ASSERT_TRUE(primes.ok()) << primes.status().ToString();
  const std::vector<int64_t> layer1 = {646403, 646411, 646421, 646423, 646433, 646453,
                                       646519, 646523, 646537, 646543, 646549, 646571,
                                       646573, 646577, 646609, 646619};
  EXPECT_EQ((*primes)[0], layer1);
  EXPECT_EQ(primes->size(), 2u);
  EXPECT_GT((*primes)[1][0], layer1.back());  // layer 15 never reuses layer 1's primes
}

TEST(NgramHashTest, IsPrime64AgreesWithASieveAndKnownLargeNumbers) {
  const int kLimit = 200000;
  std::vector<bool> composite(kLimit, false);
  for (int i = 2; i < kLimit; ++i) {
    if (!composite[i]) {
      for (int j = 2 * i; j < kLimit; j += i) composite[j] = true;
    }
    ASSERT_EQ(IsPrime64(i), !composite[i]) << i;
  }
  EXPECT_FALSE(IsPrime64(0));
  EXPECT_FALSE(IsPrime64(1));
  EXPECT_TRUE(IsPrime64((uint64_t{1} << 61) - 1));  // Mersenne prime
  EXPECT_TRUE(IsPrime64(18446744073709551557ULL));  // largest 64-bit prime
  EXPECT_TRUE(IsPrime64(9223372036854775783ULL));   // largest prime below 2^63
  EXPECT_FALSE(IsPrime64(3215031751ULL));           // strong pseudoprime, bases 2..7
  EXPECT_FALSE(IsPrime64(3825123056546413051ULL));  // strong pseudoprime, bases <= 23
  EXPECT_FALSE(IsPrime64(561));                     // Carmichael numbers
  EXPECT_FALSE(IsPrime64(41041));
  EXPECT_FALSE(IsPrime64(18446744073709551557ULL - 2));
}

// numpy's int64 %: the remainder takes the divisor's sign. Reference computed with / and %.
int64_t FloorMod(int64_t a, int64_t p) {
  const int64_t r = a % p;
  return r < 0 ? r + p : r;
}

TEST(NgramHashTest, Int64ModulusEqualsFloorModForEveryKindOfOperand) {
  std::mt19937_64 rng(7);
  std::vector<int64_t> divisors = {1,
                                   2,
                                   3,
                                   5,
                                   7,
                                   646403,
                                   1000003,
                                   (int64_t{1} << 31) - 1,
                                   (int64_t{1} << 32) + 15,
                                   (int64_t{1} << 61) - 1,
                                   9223372036854775783LL,
                                   INT64_MAX};
  for (int i = 0; i < 20; ++i) divisors.push_back(static_cast<int64_t>(rng() >> (1 + i % 60)) | 1);
  std::vector<int64_t> values = {0, 1, -1, 2, -2, INT64_MAX, INT64_MIN, INT64_MIN + 1};
  for (int i = 0; i < 2000; ++i) values.push_back(static_cast<int64_t>(rng()));
  for (int64_t p : divisors) {
    const Int64Modulus mod(p);
    for (int64_t a : values) ASSERT_EQ(mod.Mod(a), FloorMod(a, p)) << a << " mod " << p;
    for (int64_t k = -3; k <= 3; ++k) {  // multiples of p and their neighbours
      const int64_t a = static_cast<int64_t>(static_cast<uint64_t>(p) * static_cast<uint64_t>(k));
      for (int64_t d : {-1, 0, 1}) {
        const int64_t v = static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(d));
        ASSERT_EQ(mod.Mod(v), FloorMod(v, p)) << v << " mod " << p;
      }
    }
  }
}

EngramConfig SmallConfig() {
  EngramConfig c;
  c.engram_vocab_size = {101, 103};
  c.max_ngram_size = 3;
  c.n_head_per_ngram = 2;
  c.n_embed_per_ngram = 8;
  c.layer_ids = {4};
  c.pad_id = 2;
  c.compressed_vocab_size = 1000;
  return c;
}

// Dead semantics by hand: a dead token at lookback d makes components k >= d the pad id.
TEST(NgramHashTest, DeadTokensReplaceTheirAndLongerComponentsWithPad) {
  EngramConfig c = SmallConfig();
  c.max_ngram_size = 4;
  c.engram_vocab_size = {101, 103, 107};
  auto h = NgramHasher::Create(c, 4, nullptr);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  const auto& m = h->multipliers();
  const int64_t pad = h->compressed_pad_id();
  const std::vector<int64_t> ids = {10, 11, 12, 13, 14, 15};
  const std::vector<uint8_t> dead = {0, 0, 1, 0, 0, 0};  // position 2 dead
  std::vector<int64_t> out(ids.size() * h->num_columns());
  ASSERT_TRUE(h->HashBatch(ids.data(), 1, ids.size(), dead.data(), false, out.data()).ok());
  auto expect_position = [&](size_t t, std::vector<int64_t> comps) {
    uint64_t mix = static_cast<uint64_t>(comps[0]) * static_cast<uint64_t>(m[0]);
    for (int k = 1; k < 4; ++k) {
      mix ^= static_cast<uint64_t>(comps[k]) * static_cast<uint64_t>(m[k]);
      for (int j = 0; j < 2; ++j) {
        const int col = (k - 1) * 2 + j;
        EXPECT_EQ(out[t * 6 + col], FloorMod(static_cast<int64_t>(mix), h->table_sizes()[col]))
            << "position " << t << " column " << col;
      }
    }
  };
  expect_position(1, {11, 10, pad, pad});    // before the dead token: plain
  expect_position(2, {pad, pad, pad, pad});  // the dead token itself
  expect_position(3, {13, pad, pad, pad});   // dead one step back
  expect_position(4, {14, 13, pad, pad});    // dead two steps back
  expect_position(5, {15, 14, 13, pad});     // dead three steps back
}

TEST(NgramHashTest, NegativeIdsPassThroughAndTooLargeIdsAreNamed) {
  auto h = NgramHasher::Create(SmallConfig(), 4, nullptr);
  ASSERT_TRUE(h.ok());
  std::vector<int64_t> ids = {5, -1, 7};
  std::vector<int64_t> out(3 * h->num_columns());
  EXPECT_TRUE(h->HashBatch(ids.data(), 1, 3, nullptr, false, out.data()).ok());
  ids[2] = 1000;
  Status s = h->HashBatch(ids.data(), 1, 3, nullptr, false, out.data());
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("1000"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("position 2"), std::string::npos) << s.ToString();
}

TEST(NgramHashTest, FailedVarlenCommitLeavesHistoriesUnchanged) {
  auto h = NgramHasher::Create(SmallConfig(), 4, nullptr);
  ASSERT_TRUE(h.ok());
  NgramHistory a(*h), b(*h);
  const std::vector<int64_t> ids = {1, 2, 3, 4, 5000};  // the last id is out of range
  const std::vector<int64_t> cu = {0, 2, 5};
  NgramHistory* histories[] = {&a, &b};
  std::vector<int64_t> out(ids.size() * h->num_columns());
  EXPECT_FALSE(
      h->HashVarlen(ids.data(), cu.data(), 2, histories, nullptr, false, true, out.data()).ok());
  for (int i = 0; i < a.size(); ++i) EXPECT_EQ(a.token(i), h->compressed_pad_id());
  // A good call commits the last history_size() tokens of each request.
  const std::vector<int64_t> good = {1, 2, 3, 4, 5};
  ASSERT_TRUE(
      h->HashVarlen(good.data(), cu.data(), 2, histories, nullptr, false, true, out.data()).ok());
  EXPECT_EQ(a.token(0), 1);
  EXPECT_EQ(a.token(1), 2);
  EXPECT_EQ(b.token(0), 4);
  EXPECT_EQ(b.token(1), 5);
}

TEST(NgramHashTest, BadArgumentsAreRejected) {
  auto h = NgramHasher::Create(SmallConfig(), 4, nullptr);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(NgramHasher::Create(SmallConfig(), 5, nullptr).status().IsInvalidArgument());
  EngramConfig bad_pad = SmallConfig();
  bad_pad.pad_id = 1000;
  EXPECT_TRUE(NgramHasher::Create(bad_pad, 4, nullptr).status().IsInvalidArgument());
  EngramConfig bad_dead = SmallConfig();
  bad_dead.dead_token_ids = {1000};
  EXPECT_TRUE(NgramHasher::Create(bad_dead, 4, nullptr).status().IsInvalidArgument());

  EngramConfig wider = SmallConfig();
  wider.max_ngram_size = 4;
  wider.engram_vocab_size = {101, 103, 107};
  auto h4 = NgramHasher::Create(wider, 4, nullptr);
  ASSERT_TRUE(h4.ok());
  NgramHistory short_history(*h);  // 2 tokens; h4 needs 3
  const int64_t ids[] = {1};
  EXPECT_TRUE(h4->Commit(&short_history, ids, nullptr, 1).IsInvalidArgument());

  std::vector<int64_t> out(8);
  const int64_t bad_cu[] = {1, 2};
  EXPECT_TRUE(h->HashVarlen(ids, bad_cu, 1, nullptr, nullptr, false, false, out.data())
                  .IsInvalidArgument());
  const int64_t decreasing[] = {0, 1, 0};
  EXPECT_TRUE(h->HashVarlen(ids, decreasing, 2, nullptr, nullptr, false, false, out.data())
                  .IsInvalidArgument());
}

TEST(EngramConfigTest, DefaultsAreTheReferenceDemo) {
  auto c = ParseEngramConfig(R"({"compressed_vocab_size": 129280})", "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->engram_vocab_size, (std::vector<int64_t>{646400, 646400}));
  EXPECT_EQ(c->max_ngram_size, 3);
  EXPECT_EQ(c->n_embed_per_ngram, 512);
  EXPECT_EQ(c->n_head_per_ngram, 8);
  EXPECT_EQ(c->layer_ids, (std::vector<int64_t>{1, 15}));
  EXPECT_EQ(c->pad_id, 2);
  EXPECT_EQ(c->seed, 0);
  EXPECT_EQ(c->kernel_size, 4);
  EXPECT_EQ(c->hidden_size, 1024);
  EXPECT_EQ(c->hc_mult, 4);
  EXPECT_EQ(c->num_columns(), 16);
  EXPECT_EQ(c->head_dim(), 64);
}

TEST(EngramConfigTest, RelativeTokenMapResolvesAgainstTheConfigDirectory) {
  auto c = ParseEngramConfig(R"({"token_map": "m.npy", "tokenizer_name_or_path": "x"})", "/a/b");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->token_map, "/a/b/m.npy");
  auto abs = ParseEngramConfig(R"({"token_map": "/m.npy"})", "/a/b");
  ASSERT_TRUE(abs.ok());
  EXPECT_EQ(abs->token_map, "/m.npy");
}

TEST(EngramConfigTest, MistakesAreNamed) {
  struct Case {
    const char* json;
    const char* mentions;
  };
  const Case cases[] = {
      {R"({"compressed_vocab_size": 10, "n_heads_per_ngram": 4})", "n_heads_per_ngram"},
      {R"({"compressed_vocab_size": 10, "token_map": "m.npy"})", "not both"},
      {R"({"seed": 1})", "token_map"},
      {R"({"compressed_vocab_size": 10, "layer_ids": [1, 1]})", "twice"},
      {R"({"compressed_vocab_size": 10, "max_ngram_size": 4})", "engram_vocab_size"},
      {R"({"compressed_vocab_size": 10, "max_ngram_size": 1})", "max_ngram_size"},
      {R"({"compressed_vocab_size": 10, "seed": 1.5})", "seed"},
      {R"({"compressed_vocab_size": 10, "pad_id": -1})", "pad_id"},
      {R"({"compressed_vocab_size": 10, "n_embed_per_ngram": 100})", "multiple"},
      {R"({"compressed_vocab_size": 0})", "compressed_vocab_size"},
      {R"([1, 2])", "object"},
      {R"({"compressed_vocab_size": )", "JSON"},
  };
  for (const Case& c : cases) {
    auto r = ParseEngramConfig(c.json, "");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << c.json;
    EXPECT_NE(r.status().message().find(c.mentions), std::string::npos)
        << c.json << " -> " << r.status().ToString();
  }
}

// The C API (api/engram_hash.h) on the demo golden: geometry, [B, T] hashing with and without
// offsets, varlen with states (pieces committed), errors through errptr, NULL-safe destroy.
TEST(HasherCApiTest, HashesTheDemoGoldenAndReportsErrors) {
  const Json& rec = Golden()["cases"]["demo"];
  const Json& layer = rec["layers"][1];  // layer 15
  char* err = nullptr;
  es_hasher_t* h = es_hasher_create_from_file(DataPath("demo.json").c_str(),
                                              layer["layer_id"].get<int64_t>(), &err);
  ASSERT_NE(h, nullptr) << err;
  const uint32_t cols = es_hasher_num_columns(h);
  ASSERT_EQ(cols, 16u);
  EXPECT_EQ(es_hasher_max_ngram_size(h), 3u);
  EXPECT_EQ(es_hasher_heads_per_ngram(h), 8u);
  EXPECT_EQ(es_hasher_layer_id(h), 15);
  EXPECT_EQ(es_hasher_compressed_pad_id(h), 2);
  EXPECT_EQ(es_hasher_total_rows(h), layer["total_rows"].get<uint64_t>());
  std::vector<int64_t> sizes(cols), offsets(cols), mult(3);
  es_hasher_table_sizes(h, sizes.data());
  es_hasher_offsets(h, offsets.data());
  es_hasher_multipliers(h, mult.data());
  EXPECT_EQ(sizes, layer["primes"].get<std::vector<int64_t>>());
  EXPECT_EQ(offsets, layer["offsets"].get<std::vector<int64_t>>());
  EXPECT_EQ(mult, layer["multipliers"].get<std::vector<int64_t>>());

  std::vector<uint64_t> shape;
  const std::vector<int64_t> ids = LoadNpy(rec["ids"].get<std::string>(), &shape);
  const std::vector<int64_t> expected = LoadNpy(layer["hashes"].get<std::string>());
  std::vector<int64_t> out(expected.size());
  es_hasher_hash(h, ids.data(), shape[0], shape[1], nullptr, 0, out.data(), &err);
  ASSERT_EQ(err, nullptr) << err;
  EXPECT_EQ(out, expected);
  es_hasher_hash(h, ids.data(), shape[0], shape[1], nullptr, 1, out.data(), &err);
  ASSERT_EQ(err, nullptr) << err;
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], expected[i] + offsets[i % cols]);

  // Row 0 in pieces of 7 through a state, committing each piece.
  es_hash_state_t* state = es_hash_state_create(h, &err);
  ASSERT_NE(state, nullptr) << err;
  const size_t seq = shape[1];
  std::vector<int64_t> pieces(seq * cols);
  for (size_t begin = 0; begin < seq; begin += 7) {
    const size_t len = std::min<size_t>(7, seq - begin);
    const int64_t cu[2] = {0, static_cast<int64_t>(len)};
    es_hasher_hash_varlen(h, ids.data() + begin, cu, 1, &state, nullptr, 0, 1,
                          pieces.data() + begin * cols, &err);
    ASSERT_EQ(err, nullptr) << err;
  }
  EXPECT_TRUE(std::equal(pieces.begin(), pieces.end(), expected.begin()));
  // Reset: the first piece again hashes like the sequence start.
  es_hash_state_reset(state);
  const int64_t cu1[2] = {0, 3};
  es_hasher_hash_varlen(h, ids.data(), cu1, 1, &state, nullptr, 0, 0, pieces.data(), &err);
  EXPECT_TRUE(std::equal(pieces.begin(), pieces.begin() + 3 * cols, expected.begin()));
  es_hash_state_commit(state, h, ids.data(), nullptr, 3, &err);
  ASSERT_EQ(err, nullptr) << err;

  // Errors: an id outside the map, a layer not in the config, bad JSON. The message names it;
  // a second error replaces the first message.
  const int64_t bad[2] = {1, 129280};
  es_hasher_hash(h, bad, 1, 2, nullptr, 0, out.data(), &err);
  ASSERT_NE(err, nullptr);
  EXPECT_NE(std::string(err).find("129280"), std::string::npos) << err;
  EXPECT_EQ(es_hasher_create_from_file(DataPath("demo.json").c_str(), 2, &err), nullptr);
  EXPECT_NE(std::string(err).find("layer 2"), std::string::npos) << err;
  const std::string json = R"({"compressed_vocab_size": 10, "layer_ids": [3]})";
  es_hasher_t* small = es_hasher_create_from_json(json.data(), json.size(), nullptr, 3, &err);
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(es_hasher_create_from_json("{", 1, nullptr, 3, &err), nullptr);
  ASSERT_NE(err, nullptr);
  es_free(err);
  err = nullptr;
  // A state of a 3-gram hasher does not fit a 4-gram one.
  const std::string json4 =
      R"({"compressed_vocab_size": 10, "layer_ids": [3], "max_ngram_size": 4,
          "engram_vocab_size": [20, 20, 20]})";
  es_hasher_t* h4 = es_hasher_create_from_json(json4.data(), json4.size(), "", 3, &err);
  ASSERT_NE(h4, nullptr) << err;
  es_hash_state_commit(state, h4, ids.data(), nullptr, 1, &err);
  ASSERT_NE(err, nullptr);
  es_free(err);

  es_hasher_destroy(h4);
  es_hasher_destroy(small);
  es_hash_state_destroy(state);
  es_hasher_destroy(h);
  es_hasher_destroy(nullptr);
  es_hash_state_destroy(nullptr);
}

}  // namespace
}  // namespace engram::model
