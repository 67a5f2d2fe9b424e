// tablectl replay and profile: the real binary (TABLECTL_PATH) on small generated traces,
// checked against the library calls (cache/replay.h, cache/trace_profile.h).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/replay.h"
#include "gtest/gtest.h"
#include "storage/array_file.h"
#include "storage/env.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/run_tablectl.h"

namespace engram {
namespace {

using nlohmann::json;
using testing::ReadFile;
using testing::RunResult;
using testing::SplitLines;

class TablectlCacheTest : public ::testing::Test {
 protected:
  // tablectl with `args` in dir_ (tests/tools/run_tablectl.h); RunOk: it must succeed quietly.
  RunResult Run(const std::vector<std::string>& args) { return testing::RunTablectl(dir_, args); }
  RunResult RunOk(const std::vector<std::string>& args) {
    return testing::RunTablectlOk(dir_, args);
  }

  // A failed command: the exit code, nothing on stdout, one "tablectl: error:" line naming
  // `needle`.
  void ExpectError(const std::vector<std::string>& args, int exit_code, const std::string& needle) {
    const RunResult r = Run(args);
    EXPECT_EQ(r.exit_code, exit_code) << "stderr: " << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(SplitLines(r.err).size(), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("tablectl: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "'" << needle << "' not in: " << r.err;
  }

  // Writes `ids` as a 1-D int64 .npy in dir_; returns its path.
  std::string WriteTrace(const std::string& name, const std::vector<uint64_t>& ids) {
    const std::string path = dir_.Sub(name);
    std::vector<int64_t> values(ids.begin(), ids.end());
    Status s = WriteNpy(Env::Default(), path, ElementType::kI64, {values.size()}, values.data());
    EXPECT_TRUE(s.ok()) << s.ToString();
    return path;
  }

  testing::TempDir dir_;
};

std::vector<uint64_t> SkewedTrace(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> trace(n);
  for (uint64_t& id : trace) {
    const double u = static_cast<double>(rng() >> 11) * 0x1p-53;
    id = static_cast<uint64_t>(u * u * u * 3000) * 7 + 1;  // skewed towards small ids
  }
  return trace;
}

TEST_F(TablectlCacheTest, ReplayJsonMatchesTheLibrary) {
  const std::vector<uint64_t> trace = SkewedTrace(20'000, 1);
  const std::string path = WriteTrace("trace.npy", trace);
  const std::vector<uint64_t> hot = {1, 8, 15, 1};
  const std::string hot_path = WriteTrace("hot.npy", hot);
  const RunResult r =
      RunOk({"replay", "--trace", path, "--cache-rows", "300", "--policy", "all", "--shards", "2",
             "--hot", hot_path, "--range", "1000:15000", "--json"});
  std::vector<std::string> expected_policies = cache::PolicyNames();
  expected_policies.push_back("opt");
  const std::vector<std::string> lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), expected_policies.size()) << r.out;
  const std::vector<uint64_t> selected(trace.begin() + 1000, trace.begin() + 15000);
  for (size_t i = 0; i < lines.size(); ++i) {
    const json j = json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << lines[i];
    EXPECT_EQ(j["command"], "replay");
    EXPECT_EQ(j["policy"], expected_policies[i]);
    EXPECT_EQ(j["cache_rows"], 300);
    EXPECT_EQ(j["accesses"], 14'000);
    EXPECT_EQ(j["trace"], path);
    EXPECT_EQ(j["hot_rows_pinned"], 3);
    ASSERT_TRUE(j["hit_ratio"].is_number());
    const double ratio = j["hit_ratio"];
    EXPECT_GE(ratio, 0.0);
    EXPECT_LE(ratio, 1.0);
    EXPECT_TRUE(j["seconds"].is_number());
    EXPECT_TRUE(j["metadata_bytes_per_row"].is_number());

    cache::ReplayOptions o;
    o.cache_rows = 300;
    o.policy = expected_policies[i];
    o.shards = 2;
    o.hot_rows = hot;
    Result<cache::ReplayResult> lib = cache::Replay(selected, o);
    ASSERT_TRUE(lib.ok()) << lib.status().ToString();
    EXPECT_EQ(j["hits"], lib->hits) << o.policy;
    EXPECT_DOUBLE_EQ(ratio, lib->hit_ratio) << o.policy;
  }
}

TEST_F(TablectlCacheTest, ReplayTextIsOneLinePerPolicy) {
  // A 2-D uint32 trace is read flattened.
  const std::vector<uint32_t> ids = {1, 2, 3, 1, 2, 3, 4, 1};
  const std::string path = dir_.Sub("trace32.npy");
  ASSERT_TRUE(WriteNpy(Env::Default(), path, ElementType::kU32, {4, 2}, ids.data()).ok());
  const RunResult r =
      RunOk({"replay", "--trace", path, "--cache-rows", "2", "--policy", "lru,opt,lru"});
  const std::vector<std::string> lines = SplitLines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;  // the duplicate is dropped
  EXPECT_EQ(lines[0].rfind("lru ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("opt ", 0), 0u) << lines[1];
  // OPT, cache 2, trace 1 2 3 1 2 3 4 1: 1 2 in; 3 bypassed (next used after 1 and 2); 1 hit;
  // 2 hit (its last use); 3 and 4 bypassed (never used again); 1 hit: 3 hits of 8.
  EXPECT_NE(lines[1].find("(3 of 8)"), std::string::npos) << lines[1];
}

TEST_F(TablectlCacheTest, ProfileWritesTheMostFrequentIds) {
  // 5 x3, 9 x2, 2 x2, 7 x1: ties go to the smaller id.
  const std::string path = WriteTrace("trace.npy", {5, 9, 5, 2, 9, 5, 2, 7});
  const std::string out = dir_.Sub("hot.npy");
  const RunResult r = RunOk({"profile", "--trace", path, "--top", "3", "--out", out, "--json"});
  const json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["command"], "profile");
  EXPECT_EQ(j["accesses"], 8);
  EXPECT_EQ(j["distinct"], 4);
  EXPECT_EQ(j["rows"], 3);
  EXPECT_DOUBLE_EQ(j["top_share"].get<double>(), 7.0 / 8.0);
  EXPECT_EQ(j["out"], out);
  Result<ArrayInfo> info = ReadNpyInfo(Env::Default(), out);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->type, ElementType::kI64);
  EXPECT_EQ(info->shape, std::vector<uint64_t>{3});
  Result<std::vector<uint64_t>> ids = ReadIdsNpy(Env::Default(), out);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ(*ids, (std::vector<uint64_t>{5, 2, 9}));

  // --range 3: keeps 2 9 5 2 7; more rows asked than distinct ids: all 4 written.
  const RunResult text =
      RunOk({"profile", "--trace", path, "--top", "10", "--out", out, "--range", "3:"});
  EXPECT_NE(text.out.find("5 accesses, 4 distinct ids"), std::string::npos) << text.out;
  ids = ReadIdsNpy(Env::Default(), out);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<uint64_t>{2, 5, 7, 9}));
}

TEST_F(TablectlCacheTest, BadInputGivesOneLineErrors) {
  const std::string path = WriteTrace("trace.npy", {1, 2, 3, 4, 5});
  ExpectError({"replay", "--trace", dir_.Sub("missing.npy"), "--cache-rows", "10"}, 1,
              "missing.npy");
  ExpectError({"replay", "--trace", path, "--cache-rows", "0"}, 2, "--cache-rows");
  ExpectError({"replay", "--trace", path, "--cache-rows", "x"}, 2, "--cache-rows");
  ExpectError({"replay", "--trace", path, "--cache-rows", "10", "--policy", "lru,fifo"}, 2,
              "unknown policy 'fifo'");
  ExpectError({"replay", "--trace", path, "--cache-rows", "10", "--range", "4:2"}, 2, "--range");
  ExpectError({"replay", "--trace", path, "--cache-rows", "10", "--range", "3"}, 2, "--range");
  ExpectError({"replay", "--trace", path, "--cache-rows", "10", "--range", "2:6"}, 1, "5 accesses");
  ExpectError({"replay", "--trace", path, "--cache-rows", "10", "--shards", "0"}, 2, "--shards");
  ExpectError({"replay", "--cache-rows", "10"}, 2, "--trace");
  ExpectError({"profile", "--trace", path, "--top", "0", "--out", dir_.Sub("x.npy")}, 2, "--top");
  ExpectError({"profile", "--trace", path, "--top", "2"}, 2, "--out");
  ExpectError(
      {"profile", "--trace", dir_.Sub("missing.npy"), "--top", "2", "--out", dir_.Sub("x.npy")}, 1,
      "missing.npy");
  // A float array is not a trace.
  const std::vector<float> floats = {1, 2};
  const std::string float_path = dir_.Sub("floats.npy");
  ASSERT_TRUE(WriteNpy(Env::Default(), float_path, ElementType::kF32, {2}, floats.data()).ok());
  ExpectError({"replay", "--trace", float_path, "--cache-rows", "10"}, 1, "integer");
}

}  // namespace
}  // namespace engram
