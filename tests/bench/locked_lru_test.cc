// Tests of bench/locked_lru.h, the mutex-guarded LRU peer of cache_bench: a wrong peer would make
// the benchmark's ratio meaningless, so its hits, recency order, eviction and row copies are
// checked here, and concurrent use is run under the sanitizers.
#include "bench/locked_lru.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <thread>

namespace engram::bench {
namespace {

std::array<uint8_t, 16> RowOf(uint64_t id) {
  std::array<uint8_t, 16> row;
  for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<uint8_t>(id * 31 + i);
  return row;
}

TEST(LockedLruTest, HitsOnlyCachedIds) {
  LockedLru<0> lru(4);
  EXPECT_FALSE(lru.Touch(7));
  EXPECT_TRUE(lru.Insert(7, nullptr));
  EXPECT_TRUE(lru.Touch(7));
  EXPECT_FALSE(lru.Touch(8));
  EXPECT_EQ(lru.size(), 1u);
}

TEST(LockedLruTest, InsertOfPresentIdChangesNothing) {
  LockedLru<16> lru(4);
  const auto a = RowOf(1), b = RowOf(2);
  ASSERT_TRUE(lru.Insert(1, a.data()));
  EXPECT_FALSE(lru.Insert(1, b.data()));
  std::array<uint8_t, 16> got{};
  ASSERT_TRUE(lru.Get(1, got.data()));
  EXPECT_EQ(got, a);
  EXPECT_EQ(lru.size(), 1u);
}

TEST(LockedLruTest, HitMovesIdToFront) {
  LockedLru<0> lru(8);
  for (uint64_t id : {1, 2, 3}) ASSERT_TRUE(lru.Insert(id, nullptr));
  EXPECT_EQ(lru.IdsMostRecentFirst(), (std::vector<uint64_t>{3, 2, 1}));
  ASSERT_TRUE(lru.Touch(1));
  EXPECT_EQ(lru.IdsMostRecentFirst(), (std::vector<uint64_t>{1, 3, 2}));
  std::array<uint8_t, 16> row{};
  LockedLru<16> rows(8);
  for (uint64_t id : {1, 2, 3}) ASSERT_TRUE(rows.Insert(id, RowOf(id).data()));
  ASSERT_TRUE(rows.Get(2, row.data()));
  EXPECT_EQ(rows.IdsMostRecentFirst(), (std::vector<uint64_t>{2, 3, 1}));
}

TEST(LockedLruTest, FullCacheEvictsLeastRecentlyUsed) {
  LockedLru<16> lru(3);
  for (uint64_t id : {1, 2, 3}) ASSERT_TRUE(lru.Insert(id, RowOf(id).data()));
  ASSERT_TRUE(lru.Touch(1));  // order now 1, 3, 2: 2 is the least recent
  ASSERT_TRUE(lru.Insert(4, RowOf(4).data()));
  EXPECT_EQ(lru.size(), 3u);
  EXPECT_FALSE(lru.Touch(2));
  EXPECT_EQ(lru.IdsMostRecentFirst(), (std::vector<uint64_t>{4, 1, 3}));
  for (uint64_t id : {1, 3, 4}) {
    std::array<uint8_t, 16> got{};
    ASSERT_TRUE(lru.Get(id, got.data())) << id;
    EXPECT_EQ(got, RowOf(id)) << id;
  }
}

TEST(ShardedLockedLruTest, RoutesEachIdToOneShardAndBoundsEachShard) {
  constexpr uint32_t kShards = 8;
  ShardedLockedLru<16> lru(/*capacity=*/8 * kShards, kShards);  // 8 rows per shard
  EXPECT_EQ(lru.shard_count(), kShards);
  std::vector<std::vector<uint64_t>> per_shard(kShards);
  for (uint64_t id = 0; id < 1000; ++id) {
    const uint32_t s = lru.ShardIndex(id);
    ASSERT_LT(s, kShards);
    EXPECT_EQ(lru.ShardIndex(id), s);  // stable
    per_shard[s].push_back(id);
    lru.Insert(id, RowOf(id).data());
  }
  uint64_t expected_size = 0;
  for (uint32_t s = 0; s < kShards; ++s) {
    ASSERT_GE(per_shard[s].size(), 8u) << "shard " << s << " got too few of 1000 ids";
    expected_size += 8;
    // Each shard is an LRU of 8: its last 8 ids are in, the one before them is out.
    const std::vector<uint64_t>& ids = per_shard[s];
    for (size_t i = ids.size() - 8; i < ids.size(); ++i) {
      std::array<uint8_t, 16> got{};
      ASSERT_TRUE(lru.Get(ids[i], got.data())) << ids[i];
      EXPECT_EQ(got, RowOf(ids[i]));
    }
    EXPECT_FALSE(lru.Touch(ids[ids.size() - 9]));
  }
  EXPECT_EQ(lru.size(), expected_size);
}

TEST(LockedLruTest, ConcurrentHitsAndInsertsKeepTheCacheConsistent) {
  constexpr uint64_t kCapacity = 64;
  LockedLru<16> lru(kCapacity);
  ShardedLockedLru<16> sharded(kCapacity, 4);
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::array<uint8_t, 16> got{};
      for (uint64_t i = 0; i < 5000; ++i) {
        const uint64_t id = (i * 7 + t * 13) % 200;
        if (lru.Get(id, got.data())) {
          EXPECT_EQ(got, RowOf(id));
        }
        if (sharded.Get(id, got.data())) {
          EXPECT_EQ(got, RowOf(id));
        }
        lru.Insert(id, RowOf(id).data());
        sharded.Insert(id, RowOf(id).data());
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(lru.size(), kCapacity);
  const std::vector<uint64_t> ids = lru.IdsMostRecentFirst();
  EXPECT_EQ(std::set<uint64_t>(ids.begin(), ids.end()).size(), ids.size());
  for (uint64_t id : ids) EXPECT_TRUE(lru.Touch(id)) << id;
  EXPECT_LE(sharded.size(), kCapacity);
}

}  // namespace
}  // namespace engram::bench
