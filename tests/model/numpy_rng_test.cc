// numpy's SeedSequence, PCG64 and Generator.integers(dtype=int64), checked against vectors
// numpy itself wrote (tests/model/data/make_hash_golden.py -> data/hash/rng_golden.json).
#include "model/numpy_rng.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace engram::model {
namespace {

using Json = nlohmann::json;

const Json& Golden() {
  static const Json* golden = [] {
    const auto path =
        std::filesystem::path(__FILE__).parent_path() / "data" / "hash" / "rng_golden.json";
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << "cannot open " << path;
    std::stringstream text;
    text << in.rdbuf();
    return new Json(Json::parse(text.str()));
  }();
  return *golden;
}

std::string Hex128(unsigned __int128 v) {
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx",
                static_cast<unsigned long long>(static_cast<uint64_t>(v >> 64)),
                static_cast<unsigned long long>(static_cast<uint64_t>(v)));
  return buf;
}

TEST(NumpyRngTest, GoldenCoversEnoughCases) {
  EXPECT_GE(Golden()["seeds"].size(), 10u);
  EXPECT_GE(Golden()["integers"].size(), 100u);
}

TEST(NumpyRngTest, SeedSequencePoolAndStateMatchNumpy) {
  for (const Json& rec : Golden()["seeds"]) {
    const uint64_t seed = rec["seed"].get<uint64_t>();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const SeedSequence seq(SeedSequence::EntropyWords(seed));
    for (int i = 0; i < SeedSequence::kPoolSize; ++i) {
      EXPECT_EQ(seq.pool()[i], rec["pool"][i].get<uint32_t>()) << "pool word " << i;
    }
    EXPECT_EQ(seq.GenerateState32(8), rec["state32"].get<std::vector<uint32_t>>());
    EXPECT_EQ(seq.GenerateState64(4), rec["state64"].get<std::vector<uint64_t>>());
  }
}

TEST(NumpyRngTest, SeedSequenceWithMoreWordsThanThePool) {
  const Json& rec = Golden()["multiword"];
  const auto words = rec["entropy"].get<std::vector<uint32_t>>();
  ASSERT_GT(words.size(), static_cast<size_t>(SeedSequence::kPoolSize));
  const SeedSequence seq(words);
  for (int i = 0; i < SeedSequence::kPoolSize; ++i) {
    EXPECT_EQ(seq.pool()[i], rec["pool"][i].get<uint32_t>());
  }
  EXPECT_EQ(seq.GenerateState64(4), rec["state64"].get<std::vector<uint64_t>>());
}

TEST(NumpyRngTest, Pcg64SeedingAndRawOutputMatchNumpy) {
  for (const Json& rec : Golden()["seeds"]) {
    const uint64_t seed = rec["seed"].get<uint64_t>();
    SCOPED_TRACE("seed " + std::to_string(seed));
    Pcg64 gen(seed);
    EXPECT_EQ(Hex128(gen.state()), rec["pcg_state"].get<std::string>());
    EXPECT_EQ(Hex128(gen.inc()), rec["pcg_inc"].get<std::string>());
    for (const Json& v : rec["raw64"]) EXPECT_EQ(gen.NextUint64(), v.get<uint64_t>());
  }
}

TEST(NumpyRngTest, NextUint32GivesLowHalfThenHighHalf) {
  const Json& rec = Golden()["seeds"][0];
  Pcg64 gen(rec["seed"].get<uint64_t>());
  for (int i = 0; i < 3; ++i) {
    const uint64_t raw = rec["raw64"][i].get<uint64_t>();
    EXPECT_EQ(gen.NextUint32(), static_cast<uint32_t>(raw));
    EXPECT_EQ(gen.NextUint32(), static_cast<uint32_t>(raw >> 32));
  }
}

// Every (seed, bound) of the golden: 32-bit and 64-bit Lemire paths, bound 1 (no draws),
// bound 2**32 (raw 32-bit words), bound 2**63 (the largest int64 high).
TEST(NumpyRngTest, IntegersInt64MatchNumpy) {
  for (const Json& rec : Golden()["integers"]) {
    const uint64_t seed = rec["seed"].get<uint64_t>();
    const int64_t low = rec["low"].get<int64_t>();
    const uint64_t high_u = rec["high"].is_number_unsigned() ? rec["high"].get<uint64_t>() : 0;
    const auto expected = rec["values"].get<std::vector<int64_t>>();
    SCOPED_TRACE("seed " + std::to_string(seed) + " low " + std::to_string(low) + " high " +
                 rec["high"].dump());
    Pcg64 gen(seed);
    Result<std::vector<int64_t>> got =
        high_u > static_cast<uint64_t>(INT64_MAX)
            ? IntegersInt64Closed(&gen, low, INT64_MAX, expected.size())
            : IntegersInt64(&gen, low, rec["high"].get<int64_t>(), expected.size());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, expected);
  }
}

TEST(NumpyRngTest, ConsecutiveCallsContinueTheStream) {
  const Json& seq = Golden()["sequential"];
  Pcg64 gen(seq["seed"].get<uint64_t>());
  for (const Json& call : seq["calls"]) {
    const auto expected = call["values"].get<std::vector<int64_t>>();
    auto got = IntegersInt64(&gen, 0, call["high"].get<int64_t>(), expected.size());
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, expected) << "high " << call["high"];
  }
}

// The golden must exercise the rejection loops, or a broken loop would go unnoticed: for a
// bound whose rejection rate is 25 %, drawing without rejection gives other numbers.
TEST(NumpyRngTest, GoldenExercisesRejectionOnBothPaths) {
  for (const int64_t bound : {int64_t{3} << 30, int64_t{3} << 61}) {
    bool found = false;
    for (const Json& rec : Golden()["integers"]) {
      if (rec["low"].get<int64_t>() != 0 || !rec["high"].is_number_integer() ||
          rec["high"].get<uint64_t>() != static_cast<uint64_t>(bound)) {
        continue;
      }
      Pcg64 gen(rec["seed"].get<uint64_t>());
      std::vector<int64_t> naive;
      for (size_t i = 0; i < rec["values"].size(); ++i) {
        if (bound < (int64_t{1} << 32)) {
          naive.push_back(static_cast<int64_t>(
              (static_cast<uint64_t>(gen.NextUint32()) * static_cast<uint64_t>(bound)) >> 32));
        } else {
          naive.push_back(static_cast<int64_t>(
              (static_cast<unsigned __int128>(gen.NextUint64()) * static_cast<uint64_t>(bound)) >>
              64));
        }
      }
      if (naive != rec["values"].get<std::vector<int64_t>>()) found = true;
    }
    EXPECT_TRUE(found) << "no golden record for bound " << bound << " rejected a draw";
  }
}

TEST(NumpyRngTest, EmptyRangeIsInvalid) {
  Pcg64 gen(0);
  EXPECT_TRUE(IntegersInt64(&gen, 5, 5, 3).status().IsInvalidArgument());
  EXPECT_TRUE(IntegersInt64Closed(&gen, 6, 5, 3).status().IsInvalidArgument());
  auto none = IntegersInt64(&gen, 0, 10, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(NumpyRngTest, EntropyWordsSplitLikeNumpy) {
  EXPECT_EQ(SeedSequence::EntropyWords(0), std::vector<uint32_t>{0});
  EXPECT_EQ(SeedSequence::EntropyWords(5), std::vector<uint32_t>{5});
  EXPECT_EQ(SeedSequence::EntropyWords((uint64_t{7} << 32) | 9), (std::vector<uint32_t>{9, 7}));
}

}  // namespace
}  // namespace engram::model
