// The default policy's own promises (cache/default_policy.h): scan resistance (probation queue,
// sketch admission), adaptation when popularity moves (sketch aging), and the metadata budget.
// The invariants every policy shares (capacity, pins) are in policy_test.cc.
#include "cache/default_policy.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "cache/row_cache.h"

namespace engram::cache {
namespace {

// One replayed access: a hit, or an insert the policy may refuse.
bool Access(RowCache& cache, uint64_t id) {
  if (cache.Touch(id)) return true;
  (void)cache.Insert(id, nullptr);  // refusal is the policy's call; nothing to check here
  return false;
}

RowCacheOptions DirectoryOptions(uint64_t rows, uint32_t shards) {
  RowCacheOptions o;
  o.capacity_rows = rows;
  o.row_bytes = 0;
  o.shards = shards;
  o.policy = NewDefaultPolicyFactory();
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

}  // namespace
}  // namespace engram::cache
