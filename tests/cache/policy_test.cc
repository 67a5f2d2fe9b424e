// The invariants every policy shares, driven through a real RowCache (capacity, pins, all
// pinned, free slots, metadata), and each candidate policy's defining behaviour on hand-built
// sequences (cache/cache_policy.h, cache/*_policy.cc).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/row_cache.h"

namespace engram::cache {
namespace {

RowCacheOptions Options(const std::string& policy, uint64_t rows, uint32_t shards,
                        uint32_t row_bytes = 0) {
  RowCacheOptions o;
  o.capacity_rows = rows;
  o.row_bytes = row_bytes;
  o.shards = shards;
  o.policy = NewPolicyFactory(policy);
  return o;
}

// One replayed access: a hit, or an insert the policy may refuse.
bool Access(RowCache& cache, uint64_t id) {
  if (cache.Touch(id)) return true;
  (void)cache.Insert(id, nullptr);  // refusal is the policy's call; nothing to check here
  return false;
}

// Zipf(alpha) ranks in [0, n) by inverse CDF: rank 0 is the most frequent.
class ZipfIds {
 public:
  ZipfIds(uint64_t n, double alpha) : cdf_(n) {
    double sum = 0;
    for (uint64_t k = 0; k < n; ++k) cdf_[k] = sum += std::pow(static_cast<double>(k + 1), -alpha);
    for (double& c : cdf_) c /= sum;
  }
  uint64_t operator()(std::mt19937_64& rng) const {
    const double u = static_cast<double>(rng() >> 11) * 0x1p-53;
    const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    return std::min<uint64_t>(it - cdf_.begin(), cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

std::vector<uint64_t> UniformTrace(uint64_t n, uint64_t ids, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> trace(n);
  for (uint64_t& id : trace) id = rng() % ids;
  return trace;
}

std::vector<uint64_t> ZipfTrace(uint64_t n, uint64_t ids, double alpha, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const ZipfIds zipf(ids, alpha);
  std::vector<uint64_t> trace(n);
  // Scatter the ranks so popularity does not follow the id order.
  for (uint64_t& id : trace) id = zipf(rng) * 7919 % ids;
  return trace;
}

double HitRatio(const std::string& policy, const std::vector<uint64_t>& trace, uint64_t rows) {
  RowCache cache(Options(policy, rows, 1));
  uint64_t hits = 0;
  for (uint64_t id : trace) hits += Access(cache, id);
  return static_cast<double>(hits) / trace.size();
}

// ---------------------------------------------------------------------------------------------
// Every policy.

class EveryPolicyTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool concurrent() const { return NewPolicyFactory(GetParam())->concurrent_hits(); }
};

TEST_P(EveryPolicyTest, FactoryNamesItself) {
  std::shared_ptr<const PolicyFactory> factory = NewPolicyFactory(GetParam());
  ASSERT_NE(factory, nullptr);
  EXPECT_EQ(factory->name(), GetParam());
}

TEST_P(EveryPolicyTest, CapacityNeverExceededOnRandomAndZipfTraces) {
  for (uint32_t shards : {1u, 4u}) {
    for (const auto& trace : {UniformTrace(20'000, 1000, 1), ZipfTrace(20'000, 5000, 0.9, 2)}) {
      RowCache cache(Options(GetParam(), 200, shards));
      for (size_t i = 0; i < trace.size(); ++i) {
        const uint64_t id = trace[i];
        if (cache.Touch(id)) continue;
        if (cache.Insert(id, nullptr)) {
          ASSERT_TRUE(cache.Touch(id)) << "row " << id << " inserted but not found";
        }
        if (i % 97 == 0) {
          ASSERT_LE(cache.stats().size_rows, 200u);
        }
      }
      const RowCacheStats stats = cache.stats();
      EXPECT_LE(stats.size_rows, 200u);
      EXPECT_EQ(stats.size_rows, stats.inserts - stats.evictions);
      uint64_t present = 0;
      for (uint64_t id = 0; id < 5000; ++id) present += cache.Touch(id);
      EXPECT_EQ(present, stats.size_rows);
      // Every policy fills the cache: a free slot is always used before anything is evicted.
      EXPECT_EQ(stats.size_rows, 200u) << "shards " << shards;
    }
  }
}

TEST_P(EveryPolicyTest, ZipfHitRatioIsNotWorseThanLru) {
  // Sanity of the eviction order: on a skewed trace every policy keeps the popular rows at
  // least about as well as LRU (a policy evicting hot rows first falls far below).
  const std::vector<uint64_t> trace = ZipfTrace(100'000, 10'000, 0.9, 3);
  const double lru = HitRatio("lru", trace, 500);
  const double ratio = HitRatio(GetParam(), trace, 500);
  EXPECT_GT(lru, 0.2);
  EXPECT_GE(ratio, lru - 0.02) << GetParam() << " vs lru " << lru;
}

TEST_P(EveryPolicyTest, PinnedForeverRowsAreNeverEvicted) {
  RowCache cache(Options(GetParam(), 64, 1));
  for (uint64_t id = 1'000'000; id < 1'000'016; ++id) {
    ASSERT_TRUE(cache.Insert(id, nullptr, /*pin_forever=*/true));
  }
  for (uint64_t id : ZipfTrace(30'000, 2000, 0.8, 4)) {
    Access(cache, id);
  }
  for (uint64_t id = 1'000'000; id < 1'000'016; ++id) EXPECT_TRUE(cache.Touch(id)) << id;
  EXPECT_EQ(cache.stats().pinned_rows, 16u);
  EXPECT_GT(cache.stats().evictions, 0u);
}

TEST_P(EveryPolicyTest, ReaderPinnedRowsSurviveUntilReleased) {
  RowCache cache(Options(GetParam(), 32, 1, /*row_bytes=*/8));
  std::vector<PinnedRow> held;
  for (uint64_t id = 0; id < 8; ++id) {
    ASSERT_TRUE(cache.Insert(id, &id));
    PinnedRow row;
    ASSERT_TRUE(cache.Pin(id, &row));
    held.push_back(row);
  }
  for (uint64_t id : UniformTrace(5000, 500, 5)) {
    const uint64_t key = id + 100;
    if (!cache.Touch(key)) (void)cache.Insert(key, &key);
  }
  for (const PinnedRow& row : held) {
    uint64_t value;
    std::memcpy(&value, row.data, 8);
    EXPECT_EQ(value, row.id);
    EXPECT_TRUE(cache.Touch(row.id));
    cache.Release(row);
  }
}

TEST_P(EveryPolicyTest, AllPinnedIsRejectedWithoutHanging) {
  RowCacheOptions all_pinnable = Options(GetParam(), 8, 1);
  all_pinnable.max_pinned_share = 1.0;
  RowCache cache(all_pinnable);
  for (uint64_t id = 0; id < 8; ++id) ASSERT_TRUE(cache.Insert(id, nullptr, true));
  InsertSlot slot;
  EXPECT_EQ(cache.BeginInsert(100, &slot), InsertOutcome::kRejected);
  EXPECT_FALSE(cache.Insert(101, nullptr));
  for (uint64_t id = 0; id < 8; ++id) EXPECT_TRUE(cache.Touch(id));

  // Reader pins, then released: the same cache admits again.
  RowCache held(Options(GetParam(), 8, 1));
  std::vector<PinnedRow> rows(8);
  for (uint64_t id = 0; id < 8; ++id) {
    ASSERT_TRUE(held.Insert(id, nullptr));
    ASSERT_TRUE(held.Pin(id, &rows[id]));
  }
  EXPECT_EQ(held.BeginInsert(100, &slot), InsertOutcome::kRejected);
  for (const PinnedRow& row : rows) held.Release(row);
  // Admission policies may refuse a cold row; repeated misses make it warm enough.
  bool admitted = false;
  for (int attempt = 0; attempt < 20 && !admitted; ++attempt) admitted = held.Insert(100, nullptr);
  EXPECT_TRUE(admitted);
  EXPECT_TRUE(held.Touch(100));
}

TEST_P(EveryPolicyTest, AbortedSlotIsReusedBeforeEvicting) {
  RowCache cache(Options(GetParam(), 4, 1));
  for (uint64_t id : {1, 2}) ASSERT_TRUE(cache.Insert(id, nullptr));
  InsertSlot slot;
  ASSERT_EQ(cache.BeginInsert(3, &slot), InsertOutcome::kReserved);
  cache.AbortInsert(slot);
  ASSERT_EQ(cache.BeginInsert(4, &slot), InsertOutcome::kReserved);
  cache.AbortInsert(slot);
  // Two slots are free again: both inserts take one (admission does not apply), none evicts.
  ASSERT_TRUE(cache.Insert(5, nullptr));
  ASSERT_TRUE(cache.Insert(6, nullptr));
  EXPECT_EQ(cache.stats().evictions, 0u);
  EXPECT_EQ(cache.stats().size_rows, 4u);
  for (uint64_t id : {1, 2, 5, 6}) EXPECT_TRUE(cache.Touch(id)) << id;
  EXPECT_FALSE(cache.Touch(3));
  EXPECT_FALSE(cache.Touch(4));
}

TEST_P(EveryPolicyTest, ConcurrentReadersAndWritersKeepPinsAndRows) {
  if (!concurrent()) GTEST_SKIP() << GetParam() << " is for single-threaded replay";
  constexpr uint64_t kHot = 8;
  RowCache cache(Options(GetParam(), 128, 2, /*row_bytes=*/8));
  for (uint64_t id = 0; id < kHot; ++id) ASSERT_TRUE(cache.Insert(id, &id, true));
  std::atomic<uint64_t> bad{0}, hot_lost{0};
  auto worker = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    const ZipfIds zipf(2000, 0.9);
    for (int i = 0; i < 20'000; ++i) {
      const uint64_t id = zipf(rng);
      PinnedRow row;
      if (cache.Pin(id, &row)) {
        uint64_t value;
        std::memcpy(&value, row.data, 8);
        if (value != id) bad.fetch_add(1);
        cache.Release(row);
      } else if (id < kHot) {
        // A lookup racing an index update may miss a present row; the locked path must not.
        InsertSlot slot;
        if (cache.BeginInsert(id, &slot) != InsertOutcome::kPresent) hot_lost.fetch_add(1);
      } else {
        (void)cache.Insert(id, &id);
      }
    }
  };
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 4; ++t) threads.emplace_back(worker, t + 10);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(hot_lost.load(), 0u);
  EXPECT_LE(cache.stats().size_rows, 128u);
  for (uint64_t id = 0; id < kHot; ++id) EXPECT_TRUE(cache.Touch(id));
}

TEST_P(EveryPolicyTest, MemoryBytesCountsPerSlotState) {
  // Bytes of policy state per slot (cache/*_policy.cc headers), within 25 % + 64 B/shard.
  const std::map<std::string, double> per_slot = {
      {"default", 8.25}, {"lru", 8},       {"clock", 1},          {"sieve", 5},
      {"s3fifo", 14.6},  {"wtinylfu", 17}, {"sampled-lfu", 4.125}};
  ASSERT_TRUE(per_slot.count(GetParam())) << "add the new policy to this table";
  const double expected = per_slot.at(GetParam());
  constexpr uint32_t kSlots = 100'000;
  std::unique_ptr<ShardPolicy> policy = NewPolicyFactory(GetParam())->NewShardPolicy(kSlots);
  const double bytes = static_cast<double>(policy->memory_bytes()) / kSlots;
  EXPECT_GE(bytes, expected * 0.95) << GetParam();
  EXPECT_LE(bytes, expected * 1.25 + 0.01) << GetParam();
}

std::string PolicyTestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Policies, EveryPolicyTest, ::testing::ValuesIn(PolicyNames()),
                         PolicyTestName);

TEST(PolicyRegistryTest, NamesDefaultFirstAndRejectsUnknown) {
  const std::vector<std::string> names = PolicyNames();
  const std::vector<std::string> expected = {"default", "lru",      "clock",      "sieve",
                                             "s3fifo",  "wtinylfu", "sampled-lfu"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(NewPolicyFactory("opt"), nullptr);  // not a policy: replay.h
  EXPECT_EQ(NewPolicyFactory("LRU"), nullptr);
  EXPECT_EQ(NewPolicyFactory(""), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Each policy's own behaviour, on sequences small enough to follow by hand. One shard, so the
// first rows take slots 0, 1, 2... in insertion order. Presence is checked last (Touch records
// a hit).

void ExpectCached(RowCache& cache, const std::vector<uint64_t>& in,
                  const std::vector<uint64_t>& out) {
  for (uint64_t id : out) EXPECT_FALSE(cache.Touch(id)) << "row " << id << " should be evicted";
  for (uint64_t id : in) EXPECT_TRUE(cache.Touch(id)) << "row " << id << " should be cached";
}

TEST(LruPolicyTest, EvictsTheLeastRecentlyUsed) {
  RowCache cache(Options("lru", 3, 1));
  for (uint64_t id : {1, 2, 3}) ASSERT_TRUE(cache.Insert(id, nullptr));
  ASSERT_TRUE(cache.Touch(1));            // recency, most recent first: 1 3 2
  ASSERT_TRUE(cache.Insert(4, nullptr));  // evicts 2: 4 1 3
  ASSERT_FALSE(cache.Touch(2));
  ASSERT_TRUE(cache.Touch(3));            // 3 4 1
  ASSERT_TRUE(cache.Insert(5, nullptr));  // evicts 1: 5 3 4
  ExpectCached(cache, {3, 4, 5}, {1, 2});
}

TEST(LruPolicyTest, PinnedTailRowIsSkippedAndOthersKeepTheirOrder) {
  RowCache cache(Options("lru", 3, 1));
  ASSERT_TRUE(cache.Insert(1, nullptr, /*pin_forever=*/true));
  for (uint64_t id : {2, 3}) ASSERT_TRUE(cache.Insert(id, nullptr));  // 3 2 1
  ASSERT_TRUE(cache.Insert(4, nullptr));  // tail 1 pinned, goes to the head: 1 3 2; evicts 2
  ASSERT_TRUE(cache.Insert(5, nullptr));  // 4 1 3: evicts 3
  ASSERT_TRUE(cache.Insert(6, nullptr));  // 5 4 1: 1 goes round again (1 5 4), evicts 4
  ExpectCached(cache, {1, 5, 6}, {2, 3, 4});
}

TEST(ClockPolicyTest, ReferencedRowGetsASecondChance) {
  RowCache cache(Options("clock", 3, 1));
  for (uint64_t id : {1, 2, 3}) ASSERT_TRUE(cache.Insert(id, nullptr));  // slots 0 1 2, hand 0
  ASSERT_TRUE(cache.Touch(1));                                           // slot 0 referenced
  ASSERT_TRUE(cache.Insert(4, nullptr));  // hand clears slot 0, evicts 2 (slot 1); FIFO: 1
  ASSERT_FALSE(cache.Touch(2));
  ASSERT_TRUE(cache.Insert(5, nullptr));  // hand at slot 2: evicts 3
  ExpectCached(cache, {1, 4, 5}, {2, 3});
}

TEST(ClockPolicyTest, EveryRowReferencedStillEvictsAfterOneRevolution) {
  RowCache cache(Options("clock", 3, 1));
  for (uint64_t id : {1, 2, 3}) ASSERT_TRUE(cache.Insert(id, nullptr));
  for (uint64_t id : {1, 2, 3}) ASSERT_TRUE(cache.Touch(id));
  ASSERT_TRUE(cache.Insert(4, nullptr));  // clears 0, 1, 2, wraps, evicts slot 0 (row 1)
  ExpectCached(cache, {2, 3, 4}, {1});
}

TEST(SievePolicyTest, VisitedOldRowsStayWhileNewOnesPass) {
  RowCache cache(Options("sieve", 4, 1));
  for (uint64_t id : {1, 2, 3, 4}) ASSERT_TRUE(cache.Insert(id, nullptr));  // oldest 1 .. 4
  ASSERT_TRUE(cache.Touch(1));
  ASSERT_TRUE(cache.Touch(2));
  ASSERT_TRUE(cache.Insert(5, nullptr));  // hand from the tail: clears 1, 2; evicts 3
  ASSERT_FALSE(cache.Touch(3));
  ASSERT_TRUE(cache.Insert(6, nullptr));  // hand at 4: evicts it; queue 1 2 5 6
  ASSERT_FALSE(cache.Touch(4));
  // The hand stays at 5 (it does not restart at the tail), so the unvisited newcomer goes
  // before the old rows 1 and 2, whose bits are now clear. LRU would evict 1 here.
  ASSERT_TRUE(cache.Insert(7, nullptr));
  ASSERT_FALSE(cache.Touch(5));
  ASSERT_TRUE(cache.Insert(8, nullptr));  // hand at 6: evicts it
  ExpectCached(cache, {1, 2, 7, 8}, {3, 4, 5, 6});
}

TEST(SievePolicyTest, HandWrapsToTheTail) {
  RowCache cache(Options("sieve", 3, 1));
  for (uint64_t id : {1, 2, 3}) ASSERT_TRUE(cache.Insert(id, nullptr));
  ASSERT_TRUE(cache.Touch(1));
  ASSERT_TRUE(cache.Touch(2));
  ASSERT_TRUE(cache.Touch(3));
  ASSERT_TRUE(cache.Insert(4, nullptr));  // clears 1 2 3, wraps, evicts 1; hand at 2
  ASSERT_TRUE(cache.Touch(2));
  ASSERT_TRUE(cache.Insert(5, nullptr));  // clears 2, evicts 3
  ExpectCached(cache, {2, 4, 5}, {1, 3});
}

TEST(S3FifoPolicyTest, OneHitWonderGoesToGhostAndComesBackToMain) {
  // 20 slots: small's share is 2, main's 18, the ghost remembers 18 rows. While small holds at
  // least 2 rows, every eviction takes small's head.
  RowCache cache(Options("s3fifo", 20, 1));
  for (uint64_t id = 1; id <= 20; ++id) ASSERT_TRUE(cache.Insert(id, nullptr));  // all in small
  ASSERT_TRUE(cache.Insert(21, nullptr));  // 1 was never read: evicted, its hash to the ghost
  ASSERT_FALSE(cache.Touch(1));
  // 1 again: the ghost sends it to main. small: 3..21 (19 rows, 2 evicted to make room).
  ASSERT_TRUE(cache.Insert(1, nullptr));
  ASSERT_FALSE(cache.Touch(2));
  // 20 new rows each evict small's head (3, 4, ..., 22); small never drops below its share,
  // so main is not touched. Had 1 entered small behind 21, the 20th insert would evict it.
  for (uint64_t id = 22; id <= 41; ++id) ASSERT_TRUE(cache.Insert(id, nullptr));
  std::vector<uint64_t> cached = {1}, evicted;
  for (uint64_t id = 23; id <= 41; ++id) cached.push_back(id);
  for (uint64_t id = 2; id <= 22; ++id) evicted.push_back(id);
  ExpectCached(cache, cached, evicted);
}

TEST(S3FifoPolicyTest, ReadRowsMoveToMainWhichReinsertsThemWhileTheyHaveCounts) {
  // 10 slots: small's share is 1, main's 9.
  RowCache cache(Options("s3fifo", 10, 1));
  for (uint64_t id = 1; id <= 10; ++id) ASSERT_TRUE(cache.Insert(id, nullptr));
  for (uint64_t id = 1; id <= 9; ++id) ASSERT_TRUE(cache.Touch(id));  // counts 1
  ASSERT_TRUE(cache.Insert(11, nullptr));  // small's 1..9 were read: to main; 10 evicted
  ASSERT_FALSE(cache.Touch(10));
  ASSERT_TRUE(cache.Touch(11));  // count 1
  ASSERT_TRUE(cache.Touch(5));   // count 2
  // small's 11 was read: to main, leaving small empty, so main evicts: one round decrements
  // every count (1..9, 11; 5 keeps 1), the second finds 1 at count 0.
  ASSERT_TRUE(cache.Insert(12, nullptr));
  ASSERT_FALSE(cache.Touch(1));
  ASSERT_TRUE(cache.Insert(13, nullptr));  // small holds 12 (never read): evicted
  ExpectCached(cache, {2, 5, 9, 11, 13}, {1, 10, 12});
}

TEST(WTinyLfuPolicyTest, ColdCandidateIsRefusedAgainstHotVictims) {
  // 100 slots: window 1, main 99 (probation + protected 79).
  RowCache cache(Options("wtinylfu", 100, 1));
  for (uint64_t id = 1; id <= 99; ++id) ASSERT_TRUE(cache.Insert(id, nullptr));
  for (int round = 0; round < 3; ++round) {
    for (uint64_t id = 1; id <= 99; ++id) ASSERT_TRUE(cache.Touch(id));
  }
  ASSERT_TRUE(cache.Insert(100, nullptr));  // the window's row; the cache is full
  // Each new row pushes the window's row (seen once) against probation's least recent row
  // (seen 4 times): the candidate loses, so cold rows only ever pass through the window. (A
  // cold row whose sketch counters all collide with a hot row's may win: at most a few.)
  for (uint64_t id = 1000; id < 1050; ++id) ASSERT_TRUE(cache.Insert(id, nullptr));
  uint64_t cold_kept = 0, hot_kept = 0;
  for (uint64_t id = 1000; id < 1049; ++id) cold_kept += cache.Touch(id);
  EXPECT_FALSE(cache.Touch(100));
  EXPECT_TRUE(cache.Touch(1049));  // the newest row, in the window
  for (uint64_t id = 1; id <= 99; ++id) hot_kept += cache.Touch(id);
  EXPECT_LE(cold_kept, 2u);
  EXPECT_EQ(hot_kept + cold_kept, 99u);  // each admitted cold row cost one hot row
}

TEST(WTinyLfuPolicyTest, FrequentCandidateIsAdmittedOverColderVictim) {
  RowCache cache(Options("wtinylfu", 100, 1));
  for (uint64_t id = 1; id <= 100; ++id) ASSERT_TRUE(cache.Insert(id, nullptr));
  ASSERT_TRUE(cache.Insert(500, nullptr));  // window: 500 pushes 100 (seen once) out
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(cache.Touch(500));
  // 500 (seen 6 times) against probation's least recent row (1, seen once): admitted.
  ASSERT_TRUE(cache.Insert(501, nullptr));
  ExpectCached(cache, {500, 501}, {1});
}

TEST(SampledLfuPolicyTest, ColdRowIsRefusedUntilItIsAsFrequentAsTheVictims) {
  RowCache cache(Options("sampled-lfu", 16, 1));
  for (uint64_t id = 1; id <= 16; ++id) ASSERT_TRUE(cache.Insert(id, nullptr));
  for (int round = 0; round < 2; ++round) {
    for (uint64_t id = 1; id <= 16; ++id) ASSERT_TRUE(cache.Touch(id));
  }
  // Every cached row was seen 3 times; the new row's misses count too: refused on its first
  // and second miss, admitted on its third (3 >= 3).
  EXPECT_FALSE(cache.Insert(100, nullptr));
  EXPECT_FALSE(cache.Insert(100, nullptr));
  EXPECT_TRUE(cache.Insert(100, nullptr));
  EXPECT_TRUE(cache.Touch(100));
  uint64_t hot_left = 0;
  for (uint64_t id = 1; id <= 16; ++id) hot_left += cache.Touch(id);
  EXPECT_EQ(hot_left, 15u);
}

}  // namespace
}  // namespace engram::cache
