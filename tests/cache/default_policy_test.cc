// The default policy's own promises (cache/default_policy.h): scan resistance (probation queue,
// sketch admission), adaptation when popularity moves (sketch aging, the tuner's choice between
// its frequency and recency settings), and the metadata budget.
// The invariants every policy shares (capacity, pins) are in policy_test.cc.
#include "cache/default_policy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "cache/row_cache.h"

namespace engram::cache {
namespace {

// One replayed access: a hit, or an insert the policy may refuse.
bool Access(RowCache& cache, uint64_t id) {
  if (cache.Touch(id)) return true;
  (void)cache.Insert(id, nullptr);  // refusal is the policy's call; nothing to check here
  return false;
}

RowCacheOptions DirectoryOptions(uint64_t rows, uint32_t shards,
                                 const DefaultPolicyOptions& policy = {}) {
  RowCacheOptions o;
  o.capacity_rows = rows;
  o.row_bytes = 0;
  o.shards = shards;
  o.policy = NewDefaultPolicyFactory(policy);
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

TEST(DefaultPolicyTest, OneHitScanDoesNotFlushFrequentRows) {
  RowCache cache(DirectoryOptions(1000, 1));
  // 800 hot rows, each read 20 times, interleaved.
  for (int round = 0; round < 20; ++round) {
    for (uint64_t id = 0; id < 800; ++id) Access(cache, id);
  }
  ASSERT_EQ(CountCached(cache, 0, 800), 800u);
  // A scan of 5000 rows (5x the cache) read once each. Longer scans age the sketch until
  // the hot rows' counts fade (by design: popularity that stops is forgotten).
  for (uint64_t id = 1'000'000; id < 1'005'000; ++id) Access(cache, id);
  EXPECT_GE(CountCached(cache, 0, 800), 760u);
  EXPECT_LE(CountCached(cache, 1'000'000, 5'000), 240u);
}

TEST(DefaultPolicyTest, NewHotSetReplacesAnOldOneAfterAging) {
  RowCache cache(DirectoryOptions(1000, 1));
  for (int round = 0; round < 50; ++round) {
    for (uint64_t id = 0; id < 900; ++id) Access(cache, id);
  }
  // Popularity moves to a disjoint set; after enough accesses (sketch halvings) it must own
  // the cache, and the old set must be gone.
  for (int round = 0; round < 100; ++round) {
    for (uint64_t id = 5000; id < 5900; ++id) Access(cache, id);
  }
  EXPECT_GE(CountCached(cache, 5000, 900), 850u);
  EXPECT_LE(CountCached(cache, 0, 900), 150u);
}

TEST(DefaultPolicyTest, ZipfHitRatioBeatsClock) {
  // Skewed ids over 100k rows, cache of 2 %: frequency-aware admission must clearly beat
  // CLOCK, which admits every row.
  auto run = [](std::shared_ptr<const PolicyFactory> policy) {
    RowCacheOptions o = DirectoryOptions(2000, 1);
    o.policy = std::move(policy);
    RowCache cache(o);
    std::mt19937_64 rng(7);
    std::vector<double> weights(100'000);
    for (size_t k = 0; k < weights.size(); ++k) weights[k] = 1.0 / static_cast<double>(k + 1);
    std::discrete_distribution<uint64_t> zipf(weights.begin(), weights.end());
    uint64_t hits = 0;
    const int accesses = 400'000;
    for (int i = 0; i < accesses; ++i) hits += Access(cache, zipf(rng) * 7919 % 100'000);
    return static_cast<double>(hits) / accesses;
  };
  const double ours = run(NewDefaultPolicyFactory());
  const double clock = run(NewClockPolicyFactory());
  EXPECT_GT(ours, clock + 0.03) << "default " << ours << " clock " << clock;
}

TEST(DefaultPolicyTest, MetadataWithin24BytesPerRow) {
  RowCache cache(DirectoryOptions(1'000'000, 64));
  const RowCacheStats stats = cache.stats();
  EXPECT_EQ(stats.capacity_rows, 1'000'000u);
  EXPECT_GT(stats.metadata_bytes_per_row, 16.0);  // ids, pins, index, links, counters, sketch
  EXPECT_LE(stats.metadata_bytes_per_row, 24.0);
}

// A new set of rows, each read twice, replaces a hot set in recency mode (a CLOCK) but not in
// frequency mode (read-twice rows that miss the probation window wait for 4 reads).
TEST(DefaultPolicyModeTest, RecencyModeLetsANewSetInFrequencyModeProtectsTheOld) {
  for (const DefaultPolicyMode mode :
       {DefaultPolicyMode::kFrequency, DefaultPolicyMode::kRecency}) {
    DefaultPolicyOptions p;
    p.mode = mode;
    RowCache cache(DirectoryOptions(1000, 1, p));
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
  RowCache cache(DirectoryOptions(rows, 1, p));
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
  RowCacheOptions o = DirectoryOptions(2048, 4, p);
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
