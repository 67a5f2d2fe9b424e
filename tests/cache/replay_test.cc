// Trace replay (cache/replay.h): Belady's OPT on hand-checked traces and against an exhaustive
// search, OPT as an upper bound of every policy, determinism, hot rows, argument errors.
#include "cache/replay.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cache/cache_policy.h"

namespace engram::cache {
namespace {

ReplayResult MustReplay(const std::vector<uint64_t>& trace, const std::string& policy,
                        uint64_t cache_rows, std::vector<uint64_t> hot = {}, uint32_t shards = 1) {
  ReplayOptions o;
  o.cache_rows = cache_rows;
  o.policy = policy;
  o.shards = shards;
  o.hot_rows = std::move(hot);
  Result<ReplayResult> r = Replay(trace, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : ReplayResult{};
}

uint64_t OptHits(const std::vector<uint64_t>& trace, uint64_t cache_rows,
                 std::vector<uint64_t> hot = {}) {
  return MustReplay(trace, "opt", cache_rows, std::move(hot)).hits;
}

// Skewed ids in [0, n): id k drawn with probability ~ 1 / (k + 1) (roughly Zipf 1), scattered.
std::vector<uint64_t> SkewedTrace(size_t length, uint64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> trace(length);
  for (uint64_t& id : trace) {
    const double u = static_cast<double>(rng() >> 11) * 0x1p-53;
    const uint64_t rank = static_cast<uint64_t>(std::pow(static_cast<double>(n), u)) - 1;
    id = std::min(rank, n - 1) * 2654435761u % 1'000'003;
  }
  return trace;
}

std::vector<uint64_t> UniformTrace(size_t length, uint64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> trace(length);
  for (uint64_t& id : trace) id = rng() % n;
  return trace;
}

// The most hits any policy can get: every choice at every miss (bypass, take a free place, or
// evict any resident), memoised on (position, residents). Ids must be < 16.
uint64_t ExhaustiveBest(const std::vector<uint64_t>& trace, uint64_t capacity) {
  std::map<std::pair<size_t, uint32_t>, uint64_t> memo;
  auto best = [&](auto&& self, size_t i, uint32_t residents) -> uint64_t {
    if (i == trace.size()) return 0;
    const auto key = std::make_pair(i, residents);
    if (auto it = memo.find(key); it != memo.end()) return it->second;
    const uint32_t bit = 1u << trace[i];
    uint64_t result;
    if (residents & bit) {
      result = 1 + self(self, i + 1, residents);
    } else {
      result = self(self, i + 1, residents);  // bypass
      if (static_cast<uint64_t>(__builtin_popcount(residents)) < capacity) {
        result = std::max(result, self(self, i + 1, residents | bit));
      } else {
        for (uint32_t r = residents; r != 0; r &= r - 1) {
          const uint32_t victim = r & -r;
          result = std::max(result, self(self, i + 1, (residents & ~victim) | bit));
        }
      }
    }
    memo[key] = result;
    return result;
  };
  return best(best, 0, 0);
}

TEST(OptReplayTest, CyclicTraceKeepsWhatComesBackFirst) {
  // Cache 2, trace 1 2 3 1 2 3:
  //   1 miss, in (next use 3); 2 miss, in (next 4);
  //   3 miss, full: its next use (5) is later than every resident's (4): bypass;
  //   1 hit (its last use: it leaves); 2 hit (leaves); 3 miss, never used again: bypass.
  // 2 hits (LRU gets 0 on this trace).
  EXPECT_EQ(OptHits({1, 2, 3, 1, 2, 3}, 2), 2u);
  EXPECT_EQ(MustReplay({1, 2, 3, 1, 2, 3}, "lru", 2).hits, 0u);
}

TEST(OptReplayTest, TextbookReferenceString) {
  // The classic string, cache 3: 7 0 1 2 0 3 0 4 2 3 0 3 2 1 2 0 1 7 0 1
  //   7 0 1 miss, in. 2 miss: evict 7 (next use 17, furthest) -> {0 1 2}. 0 hit.
  //   3 miss: evict 1 (next 13) -> {0 2 3}. 0 hit. 4 miss, never used again: bypass.
  //   2 3 0 3 2 hit (3 leaves after its last use). 1 miss, in -> {0 1 2}.
  //   2 0 1 hit. 7 miss, never used again: bypass. 0 1 hit.
  // 12 hits (demand paging, which must admit 4 and 7, gets the textbook's 11).
  const std::vector<uint64_t> trace = {7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1};
  EXPECT_EQ(OptHits(trace, 3), 12u);
  EXPECT_EQ(ExhaustiveBest(trace, 3), 12u);
}

TEST(OptReplayTest, HotRowsArePinnedAndTakeCapacity) {
  // Cache 2 with hot row 5 pinned: one place left for the others. Trace 5 1 2 1 5 2:
  //   5 hit (hot); 1 miss, in (next 3); 2 miss, full: next use 5 > 3: bypass;
  //   1 hit (leaves); 5 hit; 2 miss, never used again: bypass. 3 hits.
  const ReplayResult r = MustReplay({5, 1, 2, 1, 5, 2}, "opt", 2, {5});
  EXPECT_EQ(r.hits, 3u);
  EXPECT_EQ(r.hot_rows_pinned, 1u);
  EXPECT_EQ(r.accesses, 6u);
  // Hot rows beyond the capacity are not pinned; duplicates count once.
  const ReplayResult full = MustReplay({9, 8, 7}, "opt", 2, {9, 9, 8, 7});
  EXPECT_EQ(full.hot_rows_pinned, 2u);
  EXPECT_EQ(full.hits, 2u);  // 9 and 8; 7 has no room
}

TEST(OptReplayTest, MatchesExhaustiveSearchOnSmallRandomTraces) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 300; ++round) {
    const size_t length = 4 + rng() % 12;
    const uint64_t ids = 2 + rng() % 5;
    const uint64_t capacity = 1 + rng() % 3;
    std::vector<uint64_t> trace(length);
    for (uint64_t& id : trace) id = rng() % ids;
    ASSERT_EQ(OptHits(trace, capacity), ExhaustiveBest(trace, capacity))
        << "round " << round << " capacity " << capacity;
  }
}

TEST(OptReplayTest, IsAnUpperBoundOfEveryPolicy) {
  struct Case {
    std::vector<uint64_t> trace;
    uint64_t cache_rows;
    std::vector<uint64_t> hot;
  };
  const std::vector<uint64_t> skewed = SkewedTrace(20'000, 10'000, 11);
  const std::vector<Case> cases = {
      {UniformTrace(15'000, 2000, 12), 200, {}},
      {skewed, 50, {}},
      {skewed, 500, {}},
      {skewed, 500, {skewed[0], skewed[1], skewed[2], skewed[3]}},
  };
  for (const Case& c : cases) {
    const ReplayResult opt = MustReplay(c.trace, "opt", c.cache_rows, c.hot);
    for (const std::string& policy : PolicyNames()) {
      for (uint32_t shards : {1u, 8u}) {
        const ReplayResult r = MustReplay(c.trace, policy, c.cache_rows, c.hot, shards);
        EXPECT_LE(r.hits, opt.hits) << policy << " cache " << c.cache_rows << " shards " << shards;
        EXPECT_GT(r.hits, 0u) << policy;
      }
    }
  }
}

TEST(ReplayTest, SameInputsGiveTheSameHits) {
  const std::vector<uint64_t> trace = SkewedTrace(40'000, 10'000, 21);
  std::vector<std::string> names = PolicyNames();
  names.push_back("opt");
  for (const std::string& policy : names) {
    const ReplayResult a = MustReplay(trace, policy, 500, {trace[5], trace[6]}, 4);
    const ReplayResult b = MustReplay(trace, policy, 500, {trace[5], trace[6]}, 4);
    EXPECT_EQ(a.hits, b.hits) << policy;
    EXPECT_EQ(a.hot_rows_pinned, b.hot_rows_pinned) << policy;
    EXPECT_EQ(a.policy, policy);
    EXPECT_EQ(a.accesses, trace.size());
    EXPECT_EQ(a.cache_rows, 500u);
    EXPECT_DOUBLE_EQ(a.hit_ratio, static_cast<double>(a.hits) / trace.size());
    EXPECT_GE(a.seconds, 0.0);
    if (policy == "opt") {
      EXPECT_EQ(a.metadata_bytes_per_row, 0.0);
    } else {
      EXPECT_GT(a.metadata_bytes_per_row, 8.0) << policy;  // ids alone take 8 B per row
    }
  }
}

TEST(ReplayTest, HotRowsAreCountedAndNeverMissed) {
  // 40 hot rows (listed twice: duplicates are ignored) in a cache of 100, and a trace where
  // they are a third of the accesses among a stream of one-off rows.
  std::vector<uint64_t> hot;
  for (uint64_t id = 0; id < 40; ++id) hot.push_back(1'000'000 + id * 13);
  std::vector<uint64_t> hot_twice = hot;
  hot_twice.insert(hot_twice.end(), hot.begin(), hot.end());
  std::vector<uint64_t> trace;
  for (uint64_t i = 0; i < 30'000; ++i) {
    trace.push_back(i % 3 == 0 ? hot[i % hot.size()] : i);
  }
  std::vector<std::string> names = PolicyNames();
  names.push_back("opt");
  for (const std::string& policy : names) {
    const ReplayResult r = MustReplay(trace, policy, 100, hot_twice);
    EXPECT_EQ(r.hot_rows_pinned, 40u) << policy;
    EXPECT_EQ(r.hits, 10'000u) << policy;  // every hot access, and no one-off row twice
  }
  // Only hot rows: every access hits.
  for (const std::string& policy : names) {
    EXPECT_EQ(MustReplay(hot, policy, 100, hot).hits, hot.size()) << policy;
  }
}

TEST(ReplayTest, EmptyTrace) {
  const ReplayResult r = MustReplay({}, "lru", 10);
  EXPECT_EQ(r.accesses, 0u);
  EXPECT_EQ(r.hit_ratio, 0.0);
  EXPECT_EQ(MustReplay({}, "opt", 10).hit_ratio, 0.0);
}

TEST(ReplayTest, RejectsUnknownPolicyAndEmptyCache) {
  ReplayOptions o;
  o.cache_rows = 10;
  o.policy = "fifo";
  Result<ReplayResult> r = Replay(std::vector<uint64_t>{1, 2}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("fifo"), std::string::npos);
  for (const std::string& name : PolicyNames()) {
    EXPECT_NE(r.status().message().find(name), std::string::npos) << name;
  }
  EXPECT_NE(r.status().message().find("opt"), std::string::npos);

  o.policy = "opt";
  o.cache_rows = 0;
  r = Replay(std::vector<uint64_t>{1, 2}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
}

TEST(ReplayTest, RejectsIdsFromTwoToThe63) {
  for (const std::string policy : {"default", "opt"}) {
    ReplayOptions o;
    o.cache_rows = 10;
    o.policy = policy;
    Result<ReplayResult> r = Replay(std::vector<uint64_t>{1, 2, uint64_t{1} << 63}, o);
    ASSERT_FALSE(r.ok()) << policy;
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_NE(r.status().message().find("9223372036854775808"), std::string::npos);
    EXPECT_NE(r.status().message().find("position 2"), std::string::npos);
  }
}

}  // namespace
}  // namespace engram::cache
