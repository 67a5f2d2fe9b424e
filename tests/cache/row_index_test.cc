#include "cache/row_index.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache/row_hash.h"

namespace engram::cache {
namespace {

// An index with its ids array, as a shard holds them.
struct IndexUnderTest {
  explicit IndexUnderTest(uint32_t slots)
      : ids(std::make_unique<std::atomic<uint64_t>[]>(slots)), index(slots, ids.get()) {}

  void Insert(uint64_t id, uint32_t slot) {
    ids[slot].store(id);
    index.Insert(HashRowId(id), slot);
  }
  uint32_t Find(uint64_t id) const { return index.Find(id, HashRowId(id)); }
  bool Erase(uint64_t id) { return index.Erase(id, HashRowId(id)); }

  std::unique_ptr<std::atomic<uint64_t>[]> ids;
  RowIndex index;
};

// Ids whose probe starts at table position `home`.
std::vector<uint64_t> IdsHomedAt(const RowIndex& index, uint32_t home, size_t count) {
  std::vector<uint64_t> ids;
  for (uint64_t id = 0; ids.size() < count; ++id) {
    if (index.Home(HashRowId(id)) == home) ids.push_back(id);
  }
  return ids;
}

TEST(RowIndexTest, SizedForLoadFactorPointEight) {
  EXPECT_EQ(RowIndex(1, nullptr).table_size(), 2u);
  EXPECT_EQ(RowIndex(4, nullptr).table_size(), 5u);
  EXPECT_EQ(RowIndex(1000, nullptr).table_size(), 1250u);
  EXPECT_EQ(RowIndex(1001, nullptr).table_size(), 1252u);
  EXPECT_EQ(RowIndex(1000, nullptr).memory_bytes(), 5000u);
}

TEST(RowIndexTest, InsertFindErase) {
  IndexUnderTest t(100);
  for (uint32_t s = 0; s < 100; ++s) t.Insert(1000 + s * 7, s);
  EXPECT_EQ(t.index.size(), 100u);
  for (uint32_t s = 0; s < 100; ++s) EXPECT_EQ(t.Find(1000 + s * 7), s);
  EXPECT_EQ(t.Find(1001), RowIndex::kNotFound);
  EXPECT_FALSE(t.Erase(1001));
  for (uint32_t s = 0; s < 100; s += 2) EXPECT_TRUE(t.Erase(1000 + s * 7));
  EXPECT_EQ(t.index.size(), 50u);
  for (uint32_t s = 0; s < 100; ++s) {
    EXPECT_EQ(t.Find(1000 + s * 7), s % 2 == 0 ? RowIndex::kNotFound : s) << s;
  }
}

// A pending row (its id stored with kPending) is invisible to readers but found by the writer
// side, and survives the backward shift of an erase in its cluster.
TEST(RowIndexTest, PendingRowsAreSeenOnlyByTheWriterSide) {
  IndexUnderTest t(16);
  const std::vector<uint64_t> ids = IdsHomedAt(t.index, 3, 4);  // one cluster
  for (uint32_t s = 0; s < 4; ++s) t.Insert(ids[s], s);
  t.ids[2].store(ids[2] | RowIndex::kPending);
  EXPECT_EQ(t.Find(ids[2]), RowIndex::kNotFound);
  EXPECT_EQ(t.index.FindAny(ids[2], HashRowId(ids[2])), 2u);
  ASSERT_TRUE(t.Erase(ids[0]));  // shifts the pending entry back
  EXPECT_EQ(t.index.FindAny(ids[2], HashRowId(ids[2])), 2u);
  EXPECT_EQ(t.Find(ids[1]), 1u);
  EXPECT_EQ(t.Find(ids[3]), 3u);
  ASSERT_TRUE(t.Erase(ids[2]));  // a pending row can be erased (an aborted insert)
  EXPECT_EQ(t.index.FindAny(ids[2], HashRowId(ids[2])), RowIndex::kNotFound);
  t.ids[2].store(ids[2]);
  EXPECT_EQ(t.Find(ids[3]), 3u);
}

TEST(RowIndexTest, ClusterWrapsAroundTheTableEnd) {
  IndexUnderTest t(40);  // 50 entries
  const uint32_t last = t.index.table_size() - 1;
  const std::vector<uint64_t> ids = IdsHomedAt(t.index, last, 4);
  for (uint32_t s = 0; s < 4; ++s) t.Insert(ids[s], s);
  EXPECT_EQ(t.index.SlotAt(last), 0u);
  EXPECT_EQ(t.index.SlotAt(0), 1u);  // wrapped
  EXPECT_EQ(t.index.SlotAt(1), 2u);
  EXPECT_EQ(t.index.SlotAt(2), 3u);
  for (uint32_t s = 0; s < 4; ++s) EXPECT_EQ(t.Find(ids[s]), s);

  // Erasing the head of the cluster shifts the wrapped entries back across the end.
  EXPECT_TRUE(t.Erase(ids[0]));
  EXPECT_EQ(t.index.SlotAt(last), 1u);
  EXPECT_EQ(t.index.SlotAt(0), 2u);
  EXPECT_EQ(t.index.SlotAt(1), 3u);
  EXPECT_EQ(t.index.SlotAt(2), RowIndex::kNotFound);
  for (uint32_t s = 1; s < 4; ++s) EXPECT_EQ(t.Find(ids[s]), s);
}

TEST(RowIndexTest, BackwardShiftKeepsEntriesAtOrAfterTheirHome) {
  IndexUnderTest t(40);
  // A cluster homed at 10, then one homed at 12 that lands behind it.
  const std::vector<uint64_t> at10 = IdsHomedAt(t.index, 10, 3);
  const std::vector<uint64_t> at12 = IdsHomedAt(t.index, 12, 1);
  t.Insert(at10[0], 0);  // position 10
  t.Insert(at10[1], 1);  // 11
  t.Insert(at10[2], 2);  // 12
  t.Insert(at12[0], 3);  // 13
  // Erase at 11: the entry at 12 (home 10) moves to 11; the one at 13 (home 12) moves to 12.
  EXPECT_TRUE(t.Erase(at10[1]));
  EXPECT_EQ(t.index.SlotAt(11), 2u);
  EXPECT_EQ(t.index.SlotAt(12), 3u);
  EXPECT_EQ(t.index.SlotAt(13), RowIndex::kNotFound);
  // Erase at 10: the entry at 11 (home 10) moves to 10; the one at 12 (home 12) must stay.
  EXPECT_TRUE(t.Erase(at10[0]));
  EXPECT_EQ(t.index.SlotAt(10), 2u);
  EXPECT_EQ(t.index.SlotAt(11), RowIndex::kNotFound);
  EXPECT_EQ(t.index.SlotAt(12), 3u);
  EXPECT_EQ(t.Find(at10[2]), 2u);
  EXPECT_EQ(t.Find(at12[0]), 3u);
}

// Random inserts, erases and finds against a std::unordered_map, at loads up to 0.8.
void RunModel(uint32_t slots, uint64_t id_space, int ops, uint32_t seed) {
  IndexUnderTest t(slots);
  std::unordered_map<uint64_t, uint32_t> model;
  std::vector<uint32_t> free_slots;
  for (uint32_t s = 0; s < slots; ++s) free_slots.push_back(slots - 1 - s);
  std::mt19937_64 rng(seed);
  for (int op = 0; op < ops; ++op) {
    const uint64_t id = rng() % id_space;
    const auto it = model.find(id);
    switch (rng() % 3) {
      case 0:  // insert
        if (it == model.end() && !free_slots.empty()) {
          const uint32_t slot = free_slots.back();
          free_slots.pop_back();
          t.Insert(id, slot);
          model[id] = slot;
        }
        break;
      case 1: {  // erase
        const bool erased = t.Erase(id);
        ASSERT_EQ(erased, it != model.end()) << "op " << op;
        if (erased) {
          free_slots.push_back(it->second);
          model.erase(it);
        }
        break;
      }
      default:  // find
        ASSERT_EQ(t.Find(id), it == model.end() ? RowIndex::kNotFound : it->second) << "op " << op;
    }
    ASSERT_EQ(t.index.size(), model.size());
    if (op % 4999 == 0) {
      for (const auto& [key, slot] : model) ASSERT_EQ(t.Find(key), slot) << "op " << op;
    }
  }
  for (const auto& [key, slot] : model) ASSERT_EQ(t.Find(key), slot);
  for (uint64_t id = 0; id < id_space; ++id) {
    if (!model.count(id)) {
      ASSERT_EQ(t.Find(id), RowIndex::kNotFound) << id;
    }
  }
}

TEST(RowIndexTest, MatchesAMapUnderRandomOps) {
  RunModel(1000, 1500, 100000, 1);  // mostly full: long clusters, many shifts
  RunModel(37, 60, 100000, 2);      // tiny table: clusters wrap constantly
  RunModel(1, 3, 10000, 3);
  RunModel(4095, 1u << 14, 100000, 4);  // slot 4094 = 0xFFE nearly fills its 12 bits
}

TEST(RowIndexTest, ConcurrentFindsSeeOnlyTheirOwnRow) {
  // One writer churns rows through the slots (backward shifts included) while readers look
  // ids up: a Find may miss a present row, but never returns a slot the id was not in.
  constexpr uint32_t kSlots = 512;
  IndexUnderTest t(kSlots);
  constexpr uint64_t kIds = 4096;  // id i only ever lives in slot i % kSlots
  std::vector<uint64_t> in_slot(kSlots);
  for (uint32_t slot = 0; slot < kSlots; ++slot) {
    t.Insert(slot, slot);
    in_slot[slot] = slot;
  }
  std::atomic<int> running{3};
  std::atomic<uint64_t> found{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937_64 rng(r);
      for (int i = 0; i < 20000; ++i) {
        const uint64_t id = rng() % kIds;
        const uint32_t slot = t.Find(id);
        if (slot == RowIndex::kNotFound) continue;
        EXPECT_EQ(slot, id % kSlots);
        found.fetch_add(1, std::memory_order_relaxed);
      }
      running.fetch_sub(1);
    });
  }
  // Churn until every reader is done (at least 20000 replacements).
  std::mt19937_64 rng(99);
  for (int op = 0; op < 20000 || running.load() > 0; ++op) {
    const uint64_t id = rng() % kIds;
    const uint32_t slot = id % kSlots;
    ASSERT_TRUE(t.Erase(in_slot[slot]));
    t.Insert(id, slot);
    in_slot[slot] = id;
  }
  for (auto& r : readers) r.join();
  EXPECT_GT(found.load(), 0u);
}

}  // namespace
}  // namespace engram::cache
