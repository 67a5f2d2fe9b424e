// PolicyTuner (cache/policy_tuner.h): it follows the candidate whose shadow hits most, only
// past its margin; and the default policy's modes and adaptive setting (default_policy.h).
#include "cache/policy_tuner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "cache/default_policy.h"
#include "cache/row_cache.h"
#include "cache/row_hash.h"

namespace engram::cache {
namespace {

// A candidate that admits nothing: its shadow never hits.
class RejectAll final : public ShardPolicy {
 public:
  explicit RejectAll(uint32_t) {}
  void OnHit(uint32_t, uint64_t) override {}
  Placement OnMiss(uint64_t, const SlotView&) override { return {}; }
  void OnInsert(uint32_t, uint64_t) override {}
  void OnFree(uint32_t) override {}
  uint64_t memory_bytes() const override { return 0; }
};

class RejectAllFactory final : public PolicyFactory {
 public:
  std::unique_ptr<ShardPolicy> NewShardPolicy(uint32_t slots) const override {
    return std::make_unique<RejectAll>(slots);
  }
  std::string name() const override { return "reject-all"; }
  bool concurrent_hits() const override { return true; }
};

PolicyTunerOptions EveryAccess() {
  PolicyTunerOptions o;
  o.sample_shift = 0;  // every access sampled, shadows as big as the cache
  o.window_samples = 100;
  return o;
}

// Sampled accesses to ids [0, distinct), round robin, `n` of them.
void FeedLoop(PolicyTuner& tuner, uint64_t distinct, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t hash = HashRowId(i % distinct);
    if (tuner.Sampled(hash)) tuner.Record(hash);
  }
}

TEST(PolicyTunerTest, SwitchesToTheCandidateThatHits) {
  PolicyTuner tuner(1000, {std::make_shared<RejectAllFactory>(), NewPolicyFactory("clock")},
                    EveryAccess());
  EXPECT_EQ(tuner.choice(), 0u);
  FeedLoop(tuner, 500, 99);  // less than a window: no decision yet
  EXPECT_EQ(tuner.choice(), 0u);
  FeedLoop(tuner, 500, 2000);  // 500 rows fit: clock hits from the second lap on
  EXPECT_EQ(tuner.choice(), 1u);
  EXPECT_EQ(tuner.switches(), 1u);
}

TEST(PolicyTunerTest, KeepsTheLeaderAndTiesDoNotSwitch) {
  PolicyTuner leader(1000, {NewPolicyFactory("clock"), std::make_shared<RejectAllFactory>()},
                     EveryAccess());
  FeedLoop(leader, 500, 5000);
  EXPECT_EQ(leader.choice(), 0u);
  EXPECT_EQ(leader.switches(), 0u);
  // Two identical candidates hit exactly alike: never more than the margin apart.
  PolicyTuner tie(1000, {NewPolicyFactory("clock"), NewPolicyFactory("clock")}, EveryAccess());
  FeedLoop(tie, 700, 5000);
  EXPECT_EQ(tie.switches(), 0u);
}

TEST(PolicyTunerTest, SamplesAboutOneAccessIn2PowShift) {
  PolicyTunerOptions o;
  o.sample_shift = 7;
  PolicyTuner tuner(1 << 20, {NewPolicyFactory("clock")}, o);
  uint64_t sampled = 0;
  for (uint64_t id = 0; id < 1'280'000; ++id) sampled += tuner.Sampled(HashRowId(id)) ? 1 : 0;
  EXPECT_GT(sampled, 9'000u);  // 10,000 expected
  EXPECT_LT(sampled, 11'000u);
  EXPECT_GT(tuner.memory_bytes(), 0u);
}

// One replayed access through RowCache.
bool Access(RowCache& cache, uint64_t id) {
  if (cache.Touch(id)) return true;
  (void)cache.Insert(id, nullptr);
  return false;
}

RowCacheOptions DefaultWith(uint64_t rows, const DefaultPolicyOptions& p) {
  RowCacheOptions o;
  o.capacity_rows = rows;
  o.row_bytes = 0;
  o.shards = 1;
  o.policy = NewDefaultPolicyFactory(p);
  return o;
}

uint64_t CountCached(RowCache& cache, uint64_t first, uint64_t n) {
  uint64_t cached = 0;
  for (uint64_t id = first; id < first + n; ++id) {
    PinnedRow row;
    if (cache.Pin(id, &row)) {
      ++cached;
      cache.Release(row);
    }
  }
  return cached;
}

// A new set of rows, each read twice, replaces a hot set in recency mode (a CLOCK) but not in
// frequency mode (read-twice rows that miss the probation window wait for 4 reads).
TEST(DefaultPolicyModeTest, RecencyModeLetsANewSetInFrequencyModeProtectsTheOld) {
  for (const DefaultPolicyMode mode :
       {DefaultPolicyMode::kFrequency, DefaultPolicyMode::kRecency}) {
    DefaultPolicyOptions p;
    p.mode = mode;
    RowCache cache(DefaultWith(1000, p));
    for (int round = 0; round < 10; ++round) {
      for (uint64_t id = 0; id < 1000; ++id) Access(cache, id);
    }
    ASSERT_EQ(CountCached(cache, 0, 1000), 1000u);
    for (int lap = 0; lap < 2; ++lap) {
      for (uint64_t id = 5000; id < 7000; ++id) Access(cache, id);
    }
    const uint64_t old_rows = CountCached(cache, 0, 1000);
    if (mode == DefaultPolicyMode::kFrequency) {
      EXPECT_GE(old_rows, 700u) << "frequency mode";
    } else {
      EXPECT_LE(old_rows, 100u) << "recency mode";
    }
  }
}

// Hot sets that change every `period` accesses (each a Zipf-like skew over its own rows).
std::vector<uint64_t> DriftingTrace(uint64_t n, uint64_t period, uint64_t set_rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> trace(n);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t set = i / period;
    // Squaring a uniform draw skews accesses toward the set's first rows.
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    trace[i] = set * 10'000'000 + static_cast<uint64_t>(u * u * u * set_rows);
  }
  return trace;
}

double HitRatio(const DefaultPolicyOptions& p, uint64_t rows, const std::vector<uint64_t>& trace) {
  RowCache cache(DefaultWith(rows, p));
  uint64_t hits = 0;
  for (const uint64_t id : trace) hits += Access(cache, id) ? 1 : 0;
  return static_cast<double>(hits) / static_cast<double>(trace.size());
}

TEST(DefaultPolicyModeTest, AdaptiveFollowsTheBetterModeWhenHotSetsDrift) {
  DefaultPolicyOptions adaptive;
  adaptive.tuner.sample_shift = 2;  // shadows of 1/4: a small cache is adaptive too
  adaptive.tuner.window_samples = 256;
  DefaultPolicyOptions frequency = adaptive;
  frequency.mode = DefaultPolicyMode::kFrequency;
  DefaultPolicyOptions recency = adaptive;
  recency.mode = DefaultPolicyMode::kRecency;
  const uint64_t rows = 4096;
  const std::vector<uint64_t> trace = DriftingTrace(600'000, 30'000, 40'000, 7);
  const double f = HitRatio(frequency, rows, trace);
  const double r = HitRatio(recency, rows, trace);
  const double a = HitRatio(adaptive, rows, trace);
  // The trace is built so that the modes differ; the tuner must be close to the better one.
  ASSERT_GT(std::abs(f - r), 0.01) << "frequency " << f << " recency " << r;
  EXPECT_GE(a, std::max(f, r) - 0.01) << "adaptive " << a << " frequency " << f << " recency " << r;
}

// Hits (lock-free) and misses from several threads record samples and read the tuner's choice
// while it switches: run under ThreadSanitizer in CI. Pinned rows keep their ids throughout.
TEST(DefaultPolicyModeTest, ConcurrentAccessesWhileTheTunerSwitches) {
  DefaultPolicyOptions p;
  p.tuner.sample_shift = 0;
  p.tuner.window_samples = 64;
  p.tuner.switch_margin = 0;
  RowCacheOptions o = DefaultWith(2048, p);
  o.shards = 4;
  RowCache cache(o);
  std::vector<std::thread> threads;
  std::atomic<uint64_t> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::vector<uint64_t> trace = DriftingTrace(40'000, 2'000 + 500 * t, 3'000, t);
      for (const uint64_t id : trace) {
        PinnedRow row;
        if (cache.Pin(id, &row)) {
          if (row.id != id) wrong.fetch_add(1);
          cache.Release(row);
        } else {
          (void)cache.Insert(id, nullptr);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_LE(cache.stats().size_rows, 2048u);
}

TEST(DefaultPolicyModeTest, SmallCachesStayInFrequencyMode) {
  // Under 512 << sample_shift rows there is no tuner: the same hits as fixed frequency mode.
  DefaultPolicyOptions adaptive;
  DefaultPolicyOptions frequency;
  frequency.mode = DefaultPolicyMode::kFrequency;
  const std::vector<uint64_t> trace = DriftingTrace(100'000, 5'000, 5'000, 11);
  EXPECT_EQ(HitRatio(adaptive, 1000, trace), HitRatio(frequency, 1000, trace));
}

}  // namespace
}  // namespace engram::cache
