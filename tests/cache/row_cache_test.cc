#include "cache/row_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "cache/row_hash.h"
#include "cache/slot_queue.h"

namespace engram::cache {
namespace {

// FIFO eviction that admits everything and checks the protocol of cache_policy.h as the
// cache drives it: slots move free -> out (OnMiss) -> queued (OnInsert) or free (OnFree), a
// victim is never pinned, SlotView::hash matches the inserted row, and hits land only on
// slots that hold a row. Kept here so these tests do not depend on the default policy.
class FifoPolicy final : public ShardPolicy {
 public:
  FifoPolicy(uint32_t slots, std::atomic<uint64_t>* hits)
      : links_(slots),
        free_(&links_),
        fifo_(&links_),
        state_(std::make_unique<std::atomic<uint8_t>[]>(slots)),
        hash_(slots),
        hits_(hits) {
    for (uint32_t s = 0; s < slots; ++s) {
      free_.PushBack(s);
      state_[s].store(kFree);
    }
  }

  void OnHit(uint32_t slot, uint64_t) override {
    EXPECT_NE(state_[slot].load(std::memory_order_relaxed), kFree) << slot;
    hits_->fetch_add(1, std::memory_order_relaxed);
  }

  Placement OnMiss(uint64_t, const SlotView& view) override {
    if (!free_.empty()) return Take(Placement::kFree, free_.PopFront());
    for (uint32_t n = fifo_.size(); n > 0; --n) {
      const uint32_t slot = fifo_.PopFront();
      EXPECT_EQ(view.hash(slot), hash_[slot]) << slot;
      if (!view.pinned(slot)) return Take(Placement::kEvict, slot);
      fifo_.PushBack(slot);
    }
    return Placement{};
  }

  void OnInsert(uint32_t slot, uint64_t hash) override {
    EXPECT_EQ(state_[slot].load(), kOut) << slot;
    state_[slot].store(kQueued);
    hash_[slot] = hash;
    fifo_.PushBack(slot);
  }

  void OnFree(uint32_t slot) override {
    EXPECT_EQ(state_[slot].load(), kOut) << slot;
    state_[slot].store(kFree);
    free_.PushBack(slot);
  }

  uint64_t memory_bytes() const override { return links_.memory_bytes(); }

 private:
  static constexpr uint8_t kFree = 0, kOut = 1, kQueued = 2;

  Placement Take(Placement::Kind kind, uint32_t slot) {
    EXPECT_EQ(state_[slot].load(), kind == Placement::kFree ? kFree : kQueued) << slot;
    state_[slot].store(kOut);
    return Placement{kind, slot};
  }

  SlotLinks links_;
  SlotQueue free_;
  SlotQueue fifo_;
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  std::vector<uint64_t> hash_;
  std::atomic<uint64_t>* hits_;
};

class FifoFactory final : public PolicyFactory {
 public:
  std::unique_ptr<ShardPolicy> NewShardPolicy(uint32_t slots) const override {
    return std::make_unique<FifoPolicy>(slots, hits_.get());
  }
  std::string name() const override { return "test-fifo"; }
  bool concurrent_hits() const override { return true; }
  uint64_t hits() const { return hits_->load(); }

 private:
  std::shared_ptr<std::atomic<uint64_t>> hits_ = std::make_shared<std::atomic<uint64_t>>(0);
};

// The bytes of row `id`: a pure function of the id.
std::vector<uint8_t> RowOf(uint64_t id, uint32_t row_bytes) {
  std::vector<uint8_t> row(row_bytes);
  const uint64_t h = HashRowId(id);
  for (uint32_t i = 0; i < row_bytes; ++i) row[i] = static_cast<uint8_t>((h >> (i % 8 * 8)) + i);
  return row;
}

bool RowMatches(const uint8_t* data, uint64_t id, uint32_t row_bytes) {
  return std::memcmp(data, RowOf(id, row_bytes).data(), row_bytes) == 0;
}

struct Fixture {
  // max_pinned_share 1: these tests pin whole caches on purpose.
  Fixture(uint64_t capacity, uint32_t row_bytes, uint32_t shards, double max_pinned_share = 1.0)
      : factory(std::make_shared<FifoFactory>()),
        cache(RowCacheOptions{capacity, row_bytes, shards, factory, max_pinned_share}) {}

  bool Insert(uint64_t id, bool pin_forever = false) {
    return cache.Insert(id, RowOf(id, cache.row_bytes()).data(), pin_forever);
  }

  std::shared_ptr<FifoFactory> factory;
  RowCache cache;
};

TEST(RowCacheTest, GetReturnsTheBytesInserted) {
  Fixture f(1000, 40, 4);
  EXPECT_EQ(f.cache.capacity_rows(), 1000u);
  EXPECT_EQ(f.cache.shard_count(), 4u);
  EXPECT_EQ(f.cache.policy().name(), "test-fifo");
  for (uint64_t id = 0; id < 100; ++id) ASSERT_TRUE(f.Insert(id * 977));
  std::vector<uint8_t> buf(40);
  for (uint64_t id = 0; id < 100; ++id) {
    ASSERT_TRUE(f.cache.Get(id * 977, buf.data()));
    EXPECT_EQ(buf, RowOf(id * 977, 40));
  }
  EXPECT_FALSE(f.cache.Get(1, buf.data()));
  const RowCacheStats stats = f.cache.stats();
  EXPECT_EQ(stats.size_rows, 100u);
  EXPECT_EQ(stats.inserts, 100u);
  EXPECT_EQ(stats.evictions, 0u);
}

TEST(RowCacheTest, DuplicateInsertIsPresent) {
  Fixture f(16, 8, 1);
  ASSERT_TRUE(f.Insert(7));
  InsertSlot slot;
  EXPECT_EQ(f.cache.BeginInsert(7, &slot), InsertOutcome::kPresent);
  EXPECT_FALSE(f.Insert(7));
  EXPECT_EQ(f.cache.stats().inserts, 1u);
}

TEST(RowCacheTest, CapacityIsNeverExceeded) {
  Fixture f(100, 16, 8);
  for (uint64_t id = 0; id < 10000; ++id) {
    ASSERT_TRUE(f.Insert(id));  // FIFO admits everything, and nothing is pinned
    ASSERT_LE(f.cache.stats().size_rows, 100u);
  }
  const RowCacheStats stats = f.cache.stats();
  EXPECT_EQ(stats.size_rows, 100u);
  EXPECT_EQ(stats.inserts, 10000u);
  EXPECT_EQ(stats.evictions, 9900u);
  EXPECT_EQ(stats.rejections, 0u);
  uint64_t present = 0;
  for (uint64_t id = 0; id < 10000; ++id) present += f.cache.Touch(id);
  EXPECT_EQ(present, 100u);
}

TEST(RowCacheTest, SlotsCoverTheCapacityAcrossUnevenShards) {
  Fixture f(10, 8, 3);  // shards of 4, 3 and 3 slots
  for (uint64_t id = 0; id < 1000; ++id) ASSERT_TRUE(f.Insert(id));
  std::set<uint64_t> slots;
  std::vector<PinnedRow> pinned;
  for (uint64_t id = 0; id < 1000; ++id) {
    PinnedRow row;
    if (!f.cache.Pin(id, &row)) continue;
    EXPECT_EQ(row.id, id);
    EXPECT_LT(row.slot, 10u);
    EXPECT_TRUE(RowMatches(row.data, id, 8));
    EXPECT_TRUE(slots.insert(row.slot).second) << "slot " << row.slot << " twice";
    pinned.push_back(row);
  }
  EXPECT_EQ(slots.size(), 10u);
  // Everything pinned: no shard can take a row.
  for (uint64_t id = 1000; id < 1100; ++id) EXPECT_FALSE(f.Insert(id));
  EXPECT_EQ(f.cache.stats().rejections, 100u);
  // Release must unpin the right slot in the right shard: afterwards every row is evictable.
  for (const PinnedRow& row : pinned) f.cache.Release(row);
  for (uint64_t id = 2000; id < 3000; ++id) ASSERT_TRUE(f.Insert(id));
  EXPECT_EQ(f.cache.stats().size_rows, 10u);
}

TEST(RowCacheTest, BusySlotMissesUntilCommit) {
  Fixture f(16, 32, 1);
  InsertSlot slot;
  ASSERT_EQ(f.cache.BeginInsert(5, &slot), InsertOutcome::kReserved);
  EXPECT_EQ(slot.id, 5u);
  EXPECT_LT(slot.slot, 16u);
  ASSERT_NE(slot.data, nullptr);
  PinnedRow row;
  std::vector<uint8_t> buf(32);
  EXPECT_FALSE(f.cache.Pin(5, &row));
  EXPECT_FALSE(f.cache.Get(5, buf.data()));
  EXPECT_FALSE(f.cache.Touch(5));
  InsertSlot again;
  EXPECT_EQ(f.cache.BeginInsert(5, &again), InsertOutcome::kPresent);
  EXPECT_EQ(f.cache.stats().size_rows, 0u);

  std::memcpy(slot.data, RowOf(5, 32).data(), 32);
  f.cache.CommitInsert(slot);
  ASSERT_TRUE(f.cache.Pin(5, &row));
  EXPECT_EQ(row.slot, slot.slot);
  EXPECT_EQ(row.data, slot.data);
  EXPECT_TRUE(RowMatches(row.data, 5, 32));
  f.cache.Release(row);
  EXPECT_EQ(f.cache.stats().size_rows, 1u);
}

TEST(RowCacheTest, IdsFromTwoToThe63AreNeverCached) {
  Fixture f(16, 8, 1);
  const uint64_t big = uint64_t{1} << 63;
  InsertSlot slot;
  EXPECT_EQ(f.cache.BeginInsert(big, &slot), InsertOutcome::kRejected);
  EXPECT_EQ(f.cache.BeginInsert(~uint64_t{0}, &slot), InsertOutcome::kRejected);
  ASSERT_EQ(f.cache.BeginInsert(5, &slot), InsertOutcome::kReserved);  // stored pending
  PinnedRow row;
  EXPECT_FALSE(f.cache.Pin(5 | big, &row));  // the pending id's bits must not match
  EXPECT_FALSE(f.cache.Touch(5 | big));
  f.cache.CommitInsert(slot);
  EXPECT_TRUE(f.cache.Touch(5));
  EXPECT_FALSE(f.cache.Touch(5 | big));
  EXPECT_FALSE(f.cache.Pin(5 | big, &row));
}

TEST(RowCacheTest, AbortLeavesNothing) {
  Fixture f(4, 8, 1);
  InsertSlot slot;
  ASSERT_EQ(f.cache.BeginInsert(9, &slot), InsertOutcome::kReserved);
  f.cache.AbortInsert(slot);
  EXPECT_FALSE(f.cache.Touch(9));
  RowCacheStats stats = f.cache.stats();
  EXPECT_EQ(stats.size_rows, 0u);
  EXPECT_EQ(stats.inserts, 0u);
  // The slot went back: all four slots still take rows without evicting.
  for (uint64_t id = 9; id < 13; ++id) ASSERT_TRUE(f.Insert(id));
  stats = f.cache.stats();
  EXPECT_EQ(stats.size_rows, 4u);
  EXPECT_EQ(stats.evictions, 0u);
  std::vector<uint8_t> buf(8);
  ASSERT_TRUE(f.cache.Get(9, buf.data()));
  EXPECT_EQ(buf, RowOf(9, 8));
}

TEST(RowCacheTest, PinnedRowIsNeitherEvictedNorOverwritten) {
  Fixture f(8, 64, 1);
  ASSERT_TRUE(f.Insert(1));
  PinnedRow held;
  ASSERT_TRUE(f.cache.Pin(1, &held));
  for (uint64_t id = 100; id < 180; ++id) ASSERT_TRUE(f.Insert(id));  // 10x capacity
  EXPECT_TRUE(RowMatches(held.data, 1, 64));
  PinnedRow again;
  ASSERT_TRUE(f.cache.Pin(1, &again));
  EXPECT_EQ(again.slot, held.slot);
  EXPECT_FALSE(f.cache.Touch(100));  // unpinned rows did go
  f.cache.Release(again);
  f.cache.Release(held);
  // Unpinned, FIFO evicts it within a capacity's worth of inserts.
  for (uint64_t id = 200; id < 208; ++id) ASSERT_TRUE(f.Insert(id));
  EXPECT_FALSE(f.cache.Touch(1));
}

TEST(RowCacheTest, PinnedForeverRowsSurvive) {
  Fixture f(8, 16, 1);
  for (uint64_t id = 0; id < 3; ++id) ASSERT_TRUE(f.Insert(id, /*pin_forever=*/true));
  for (uint64_t id = 100; id < 1000; ++id) ASSERT_TRUE(f.Insert(id));
  std::vector<uint8_t> buf(16);
  for (uint64_t id = 0; id < 3; ++id) {
    ASSERT_TRUE(f.cache.Get(id, buf.data()));
    EXPECT_EQ(buf, RowOf(id, 16));
  }
  const RowCacheStats stats = f.cache.stats();
  EXPECT_EQ(stats.pinned_rows, 3u);
  EXPECT_EQ(stats.size_rows, 8u);
}

TEST(RowCacheTest, PinningForeverStopsAtTheShardShare) {
  Fixture f(10, 8, 1, /*max_pinned_share=*/0.5);
  uint64_t pinned = 0;
  for (uint64_t id = 0; id < 10; ++id) pinned += f.Insert(id, /*pin_forever=*/true) ? 1 : 0;
  EXPECT_EQ(pinned, 5u);
  EXPECT_EQ(f.cache.stats().pinned_rows, 5u);
  // The other half still caches: plain inserts go in (and may evict only unpinned rows).
  for (uint64_t id = 100; id < 120; ++id) EXPECT_TRUE(f.Insert(id));
  for (uint64_t id = 0; id < 10; ++id) {
    PinnedRow row;
    if (!f.cache.Pin(id, &row)) continue;
    f.cache.Release(row);
    --pinned;
  }
  EXPECT_EQ(pinned, 0u) << "a row pinned forever was evicted";
}

TEST(RowCacheTest, EveryRowPinnedRejectsWithoutHanging) {
  Fixture f(4, 8, 1);
  for (uint64_t id = 0; id < 4; ++id) ASSERT_TRUE(f.Insert(id, /*pin_forever=*/true));
  InsertSlot slot;
  EXPECT_EQ(f.cache.BeginInsert(10, &slot), InsertOutcome::kRejected);
  EXPECT_EQ(f.cache.stats().rejections, 1u);

  // Inserts in flight count as pinned too.
  Fixture g(4, 8, 1);
  std::vector<InsertSlot> reserved(4);
  for (uint64_t id = 0; id < 4; ++id) {
    ASSERT_EQ(g.cache.BeginInsert(id, &reserved[id]), InsertOutcome::kReserved);
  }
  EXPECT_EQ(g.cache.BeginInsert(10, &slot), InsertOutcome::kRejected);
  for (InsertSlot& s : reserved) g.cache.CommitInsert(s);
  EXPECT_EQ(g.cache.BeginInsert(10, &slot), InsertOutcome::kReserved);
  g.cache.AbortInsert(slot);
}

TEST(RowCacheTest, PinCountSaturates) {
  Fixture f(2, 8, 1);
  ASSERT_TRUE(f.Insert(3));
  std::vector<PinnedRow> rows(0x7FFF);
  for (PinnedRow& row : rows) ASSERT_TRUE(f.cache.Pin(3, &row));
  PinnedRow extra;
  EXPECT_FALSE(f.cache.Pin(3, &extra));  // saturated: the caller reads below
  f.cache.Release(rows.back());
  rows.pop_back();
  EXPECT_TRUE(f.cache.Pin(3, &extra));
  rows.push_back(extra);
  for (const PinnedRow& row : rows) f.cache.Release(row);
  // No pins left: the row is evictable again.
  ASSERT_TRUE(f.Insert(4));
  ASSERT_TRUE(f.Insert(5));
  EXPECT_FALSE(f.cache.Touch(3));
}

TEST(RowCacheTest, DirectoryModeGivesStableSlots) {
  Fixture f(256, 0, 4);
  std::set<uint64_t> slots;
  for (uint64_t id = 0; id < 32; ++id) {
    InsertSlot slot;
    ASSERT_EQ(f.cache.BeginInsert(id, &slot), InsertOutcome::kReserved);
    EXPECT_EQ(slot.data, nullptr);
    EXPECT_LT(slot.slot, 256u);
    EXPECT_TRUE(slots.insert(slot.slot).second);
    f.cache.CommitInsert(slot);
    PinnedRow row;
    ASSERT_TRUE(f.cache.Pin(id, &row));
    EXPECT_EQ(row.data, nullptr);
    EXPECT_EQ(row.slot, slot.slot);
    f.cache.Release(row);
  }
  for (uint64_t id = 0; id < 32; ++id) {
    PinnedRow a, b;
    ASSERT_TRUE(f.cache.Pin(id, &a));
    ASSERT_TRUE(f.cache.Pin(id, &b));
    EXPECT_EQ(a.slot, b.slot);
    f.cache.Release(a);
    f.cache.Release(b);
  }
  EXPECT_TRUE(f.cache.Insert(1000, nullptr));
}

TEST(RowCacheTest, HitsReachThePolicyExactlyOnce) {
  Fixture f(200, 8, 2);
  for (uint64_t id = 0; id < 50; ++id) ASSERT_TRUE(f.Insert(id));
  const uint64_t before = f.factory->hits();
  for (uint64_t id = 0; id < 100; ++id) EXPECT_EQ(f.cache.Touch(id), id < 50);
  EXPECT_EQ(f.factory->hits(), before + 50);
  std::vector<uint8_t> buf(8);
  EXPECT_TRUE(f.cache.Get(3, buf.data()));
  EXPECT_FALSE(f.cache.Get(300, buf.data()));
  EXPECT_EQ(f.factory->hits(), before + 51);
}

TEST(RowCacheTest, BatchesMatchSingleLookups) {
  Fixture f(2000, 24, 4);
  for (uint64_t id = 0; id < 1000; id += 2) ASSERT_TRUE(f.Insert(id));
  std::vector<uint64_t> ids;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 777; ++i) ids.push_back(rng() % 1200);
  std::vector<uint8_t> hit(ids.size(), 7);
  const uint64_t before = f.factory->hits();
  const size_t touched = f.cache.TouchBatch(ids.data(), ids.size(), hit.data());
  size_t expected = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const bool present = ids[i] < 1000 && ids[i] % 2 == 0;
    EXPECT_EQ(hit[i], present ? 1 : 0) << i;
    expected += present;
  }
  EXPECT_EQ(touched, expected);
  EXPECT_EQ(f.factory->hits(), before + expected);

  std::vector<PinnedRow> rows(ids.size());
  std::fill(hit.begin(), hit.end(), 7);
  EXPECT_EQ(f.cache.PinBatch(ids.data(), ids.size(), rows.data(), hit.data()), expected);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(hit[i], ids[i] < 1000 && ids[i] % 2 == 0 ? 1 : 0) << i;
    if (!hit[i]) continue;
    EXPECT_EQ(rows[i].id, ids[i]);
    EXPECT_TRUE(RowMatches(rows[i].data, ids[i], 24));
    f.cache.Release(rows[i]);
  }
  for (size_t n : {0, 1, 3, 8, 9}) {  // shorter than the prefetch distance
    EXPECT_EQ(f.cache.TouchBatch(ids.data(), n, hit.data()),
              static_cast<size_t>(std::count(hit.begin(), hit.begin() + n, 1)));
  }
}

TEST(RowCacheTest, StatsCountMetadata) {
  Fixture f(1000, 128, 4);
  const RowCacheStats stats = f.cache.stats();
  EXPECT_EQ(stats.capacity_rows, 1000u);
  // ids 8 + pins 2 + index 4 / 0.8 + FIFO links 4, rows excluded.
  EXPECT_GE(stats.metadata_bytes, 1000u * 19);
  EXPECT_LE(stats.metadata_bytes, 1000u * 19 + 64);
  EXPECT_DOUBLE_EQ(stats.metadata_bytes_per_row, stats.metadata_bytes / 1000.0);
}

TEST(RowCacheTest, NoPolicyMeansTheDefault) {
  RowCache cache(RowCacheOptions{16, 8, 1, nullptr});
  EXPECT_EQ(cache.policy().name(), "default");
  EXPECT_TRUE(cache.policy().concurrent_hits());
}

TEST(RowCacheTest, ShardsClampToCapacity) {
  Fixture f(3, 8, 64);
  EXPECT_EQ(f.cache.shard_count(), 3u);
  Fixture g(5, 8, 0);
  EXPECT_EQ(g.cache.shard_count(), 1u);
}

// Zipf-like ids over [0, n): small ids are much more frequent.
uint64_t SkewedId(std::mt19937_64& rng, uint64_t n) {
  const double u = std::uniform_real_distribution<double>(0, 1)(rng);
  return static_cast<uint64_t>(std::pow(u, 4) * static_cast<double>(n));
}

TEST(RowCacheTest, ConcurrentReadersAndWritersSeeOnlyExactRows) {
  constexpr uint32_t kRowBytes = 48;
  constexpr uint64_t kIds = 3000;
  Fixture f(256, kRowBytes, 4);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> gets{0}, bad{0};

  auto worker = [&](int t) {
    std::mt19937_64 rng(t);
    std::vector<uint8_t> buf(kRowBytes);
    std::vector<uint64_t> batch(8);
    std::vector<PinnedRow> rows(8);
    uint8_t hit[8];
    while (!stop.load(std::memory_order_relaxed)) {
      const uint64_t id = SkewedId(rng, kIds);
      switch (rng() % 4) {
        case 0: {
          for (uint64_t& b : batch) b = SkewedId(rng, kIds);
          f.cache.PinBatch(batch.data(), batch.size(), rows.data(), hit);
          for (size_t i = 0; i < batch.size(); ++i) {
            if (!hit[i]) continue;
            if (rows[i].id != batch[i] || !RowMatches(rows[i].data, batch[i], kRowBytes)) ++bad;
            f.cache.Release(rows[i]);
          }
          break;
        }
        case 1:
          f.cache.Touch(id);
          break;
        default:
          if (f.cache.Get(id, buf.data())) {
            ++gets;
            if (buf != RowOf(id, kRowBytes)) ++bad;
          } else {
            // A miss: "read it from below" and offer it, as a tier does.
            InsertSlot slot;
            if (f.cache.BeginInsert(id, &slot) == InsertOutcome::kReserved) {
              if (rng() % 16 == 0) {
                f.cache.AbortInsert(slot);
              } else {
                std::memcpy(slot.data, RowOf(id, kRowBytes).data(), kRowBytes);
                f.cache.CommitInsert(slot);
              }
            }
          }
      }
    }
  };

  // Holds a few rows pinned at a time while the others evict around them.
  auto holder = [&] {
    std::mt19937_64 rng(77);
    std::vector<PinnedRow> held;
    while (!stop.load(std::memory_order_relaxed)) {
      PinnedRow row;
      const uint64_t id = SkewedId(rng, kIds);
      if (f.cache.Pin(id, &row)) held.push_back(row);
      if (held.size() > 16 || (!held.empty() && rng() % 8 == 0)) {
        const PinnedRow& old = held.front();
        if (!RowMatches(old.data, old.id, kRowBytes)) ++bad;
        f.cache.Release(old);
        held.erase(held.begin());
      }
      std::this_thread::yield();
    }
    for (const PinnedRow& row : held) {
      if (!RowMatches(row.data, row.id, kRowBytes)) ++bad;
      f.cache.Release(row);
    }
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t);
  threads.emplace_back(holder);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& t : threads) t.join();

  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(gets.load(), 0u);
  const RowCacheStats stats = f.cache.stats();
  EXPECT_LE(stats.size_rows, 256u);
  EXPECT_EQ(stats.inserts - stats.evictions, stats.size_rows);
  // Every present row is intact, and no pin was left behind (every row is evictable).
  std::vector<uint8_t> buf(kRowBytes);
  for (uint64_t id = 0; id < kIds; ++id) {
    if (f.cache.Get(id, buf.data())) {
      EXPECT_EQ(buf, RowOf(id, kRowBytes)) << id;
    }
  }
  for (uint64_t id = kIds; id < kIds + 2560; ++id) ASSERT_TRUE(f.Insert(id));
}

}  // namespace
}  // namespace engram::cache
