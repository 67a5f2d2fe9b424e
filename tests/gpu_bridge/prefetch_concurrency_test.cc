// Prefetcher under concurrency: rows of live tickets stay pinned while other threads evict
// (tiny HBM tier and DRAM cache, Zipf ids), the budget in both modes, cancelling queued and
// in-flight tickets (held in flight by a gated Env, not by timing).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "gpu_bridge/prefetcher.h"
#include "tests/gpu_bridge/prefetch_test_util.h"
#include "tests/support/temp_dir.h"

namespace engram::gpu {
namespace {

using engram::testing::TempDir;
using testing::ExpectedRow;
using testing::GateEnv;
using testing::GatherToHost;
using testing::MakeTable;
using testing::OpenRig;
using testing::Rig;
using testing::TableOpts;
using testing::Tier;
using testing::TierName;
using testing::ZipfIds;

constexpr uint32_t kDim = 32;
constexpr uint32_t kRowBytes = kDim * 4;

// Every row of a gather equals the row's known content.
void ExpectRows(const std::vector<uint64_t>& ids, const std::vector<uint8_t>& out, size_t stride) {
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(out.data() + i * stride, ExpectedRow(DType::kF32, kDim, ids[i]).data(),
                             kRowBytes))
        << "row " << ids[i] << " at position " << i;
  }
}

// Threads prefetch Zipf batches (overlapping hot rows, disjoint cold ones) through a tiny HBM
// tier and DRAM cache, hold two tickets at a time and gather each twice, once after the other
// ticket was issued: every gathered row must be the row asked for, though the caches evict
// constantly underneath.
TEST(PrefetchPinningTest, LiveTicketsKeepTheirRowsUnderEvictionPressure) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  const uint64_t rows = 4000;
  ASSERT_TRUE(MakeTable(path, rows, kDim, DType::kF32).ok());
  for (Tier tier : {Tier::kHostOnly, Tier::kEmulatedHbm}) {
    SCOPED_TRACE(TierName(tier));
    PrefetchOptions o;
    if (tier != Tier::kHostOnly) o.hbm_cache_bytes = 48 * kRowBytes;  // 48 slots in 2 shards
    o.hbm_shards = 2;
    o.fetch_threads = 3;
    o.max_inflight_bytes = 1 << 20;
    auto rig = OpenRig(path, TableOpts(DramMode::kCache, Env::Default(), 64 * kRowBytes), tier, o);
    ASSERT_TRUE(rig.ok()) << rig.status().ToString();
    Prefetcher& p = *rig->prefetcher;
    constexpr int kThreads = 4;
    constexpr int kRounds = 25;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; ++th) {
      threads.emplace_back([&, th] {
        ZipfIds zipf(rows, 0.9, 100 + th);
        std::vector<uint64_t> prev_ids;
        TicketId prev = 0;
        for (int r = 0; r < kRounds && failures == 0; ++r) {
          std::vector<uint64_t> ids = zipf.Batch(48);
          for (int k = 0; k < 16; ++k) ids.push_back(uint64_t(th) * 1000 + r * 16 + k);  // disjoint
          auto t = p.Prefetch(ids.data(), ids.size());
          if (!t.ok()) {
            ADD_FAILURE() << t.status().ToString();
            ++failures;
            break;
          }
          // The previous ticket is gathered again after this one was issued (and possibly
          // evicted its neighbours), on the host and, with a device, from device memory.
          if (prev != 0) {
            auto again = GatherToHost(p, prev, prev_ids.size(), OutType::kRaw, kRowBytes,
                                      p.device() != nullptr);
            if (!again.ok()) {
              ADD_FAILURE() << again.status().ToString();
              ++failures;
            } else {
              ExpectRows(prev_ids, *again, kRowBytes);
            }
            if (!p.Release(prev).ok()) ++failures;
          }
          auto out = GatherToHost(p, *t, ids.size(), OutType::kRaw, kRowBytes, false);
          if (!out.ok()) {
            ADD_FAILURE() << out.status().ToString();
            ++failures;
          } else {
            ExpectRows(ids, *out, kRowBytes);
          }
          prev = *t;
          prev_ids = std::move(ids);
        }
        if (prev != 0 && !p.Release(prev).ok()) ++failures;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    const PrefetchStats s = p.stats();
    EXPECT_EQ(s.tickets_live, 0u);
    EXPECT_EQ(s.inflight_bytes, 0u);
    EXPECT_EQ(s.tickets_issued, uint64_t{kThreads} * kRounds);
    const cache::RowCacheStats dram = rig->table->dram_cache_stats();
    EXPECT_GT(dram.evictions, 0u);  // the pressure was real
    if (tier == Tier::kEmulatedHbm) {
      EXPECT_GT(s.hbm.evictions, 0u);
      EXPECT_GT(s.hbm_hits, 0u);
    }
  }
}

// Layout bytes a ticket of n rows reserves (rows, then one or two pointer arrays, each
// rounded to 256).
size_t TicketBytes(size_t n, bool device) {
  auto round = [](size_t b) { return (b + 255) / 256 * 256; };
  return round(n * kRowBytes) + (device ? 2 : 1) * round(n * sizeof(void*));
}

class PrefetchBudgetTest : public ::testing::TestWithParam<Tier> {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("t");
    ASSERT_TRUE(MakeTable(path_, 2000, kDim, DType::kF32).ok());
  }
  void Open(PrefetchOptions o) {
    rig_.Reset();
    auto rig = OpenRig(path_, TableOpts(DramMode::kCache), GetParam(), o);
    ASSERT_TRUE(rig.ok()) << rig.status().ToString();
    rig_ = std::move(rig).value();
  }
  bool device() const { return GetParam() != Tier::kHostOnly; }
  std::vector<uint64_t> Ids(size_t n, uint64_t first) {
    std::vector<uint64_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = first + i;
    return ids;
  }
  Prefetcher& p() { return *rig_.prefetcher; }

  TempDir dir_;
  std::string path_;
  Rig rig_;
};

TEST_P(PrefetchBudgetTest, FailFastOnBytesAndTickets) {
  PrefetchOptions o;
  o.block_when_full = false;
  o.max_tickets = 3;
  o.max_inflight_bytes = 2 * TicketBytes(100, device()) + TicketBytes(1, device());
  Open(o);
  const auto a_ids = Ids(100, 0), b_ids = Ids(100, 100), c_ids = Ids(100, 200);
  auto a = p().Prefetch(a_ids.data(), 100);
  auto b = p().Prefetch(b_ids.data(), 100);
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = p().Prefetch(c_ids.data(), 100);  // bytes exhausted
  EXPECT_EQ(c.status().code(), Status::Code::kResourceExhausted) << c.status().ToString();
  auto small = p().Prefetch(c_ids.data(), 1);  // fits what is left
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  auto d = p().Prefetch(c_ids.data(), 0);  // tickets exhausted
  EXPECT_EQ(d.status().code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(p().stats().rejected_prefetches, 2u);
  EXPECT_EQ(p().stats().tickets_live, 3u);
  // Too large for the whole arena: InvalidArgument, not a budget matter.
  const auto huge = Ids(300, 0);
  EXPECT_TRUE(p().Prefetch(huge.data(), huge.size()).status().IsInvalidArgument());

  ASSERT_TRUE(p().Release(*a).ok());
  c = p().Prefetch(c_ids.data(), 100);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto out = GatherToHost(p(), *c, 100, OutType::kRaw, kRowBytes, false);
  ASSERT_TRUE(out.ok());
  ExpectRows(c_ids, *out, kRowBytes);
  EXPECT_GE(p().stats().inflight_bytes_peak, 2 * TicketBytes(100, device()));
  for (TicketId t : {*b, *c, *small}) EXPECT_TRUE(p().Release(t).ok());
  EXPECT_EQ(p().stats().inflight_bytes, 0u);
}

// A blocked Prefetch returns once another ticket is released; the test waits for the
// blocked-prefetch counter (a condition), never for time.
TEST_P(PrefetchBudgetTest, BlockingPrefetchWaitsForARelease) {
  for (bool by_tickets : {true, false}) {
    SCOPED_TRACE(by_tickets ? "ticket limit" : "byte limit");
    PrefetchOptions o;
    o.block_when_full = true;
    o.max_tickets = by_tickets ? 1 : 100;
    o.max_inflight_bytes = by_tickets ? 1 << 20 : TicketBytes(100, device()) + 256;
    Open(o);
    const auto a_ids = Ids(100, 0), b_ids = Ids(100, 500);
    auto a = p().Prefetch(a_ids.data(), 100);
    ASSERT_TRUE(a.ok());
    Result<TicketId> b = Status::NotFound("not yet");
    std::thread waiter([&] { b = p().Prefetch(b_ids.data(), 100); });
    while (p().stats().blocked_prefetches == 0) std::this_thread::yield();
    ASSERT_TRUE(p().Wait(*a).ok());
    ASSERT_TRUE(p().Release(*a).ok());
    waiter.join();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    auto out = GatherToHost(p(), *b, 100, OutType::kRaw, kRowBytes, false);
    ASSERT_TRUE(out.ok());
    ExpectRows(b_ids, *out, kRowBytes);
    EXPECT_TRUE(p().Release(*b).ok());
    EXPECT_EQ(p().stats().blocked_prefetches, 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(Tiers, PrefetchBudgetTest,
                         ::testing::Values(Tier::kHostOnly, Tier::kEmulatedHbm),
                         [](const auto& info) {
                           return info.param == Tier::kHostOnly ? "host_only" : "emulated_hbm";
                         });

// With one fetch thread held at a closed gate, the first ticket is in flight and the second
// queued: cancelling the queued one returns at once, cancelling the one in flight returns once
// its fetch stopped; both free everything, and the prefetcher goes on working.
TEST(PrefetchCancelTest, QueuedAndInFlightTickets) {
  for (Tier tier : {Tier::kHostOnly, Tier::kEmulatedHbm}) {
    SCOPED_TRACE(TierName(tier));
    TempDir dir;
    const std::string path = dir.Sub("t");
    ASSERT_TRUE(MakeTable(path, 3000, kDim, DType::kF32).ok());
    GateEnv env;
    PrefetchOptions o;
    o.fetch_threads = 1;
    auto rig = OpenRig(path, TableOpts(DramMode::kNone, &env), tier, o);
    ASSERT_TRUE(rig.ok()) << rig.status().ToString();
    Prefetcher& p = *rig->prefetcher;
    std::vector<uint64_t> ids(300);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = i * 7;
    env.Close();
    auto in_flight = p.Prefetch(ids.data(), ids.size());
    auto queued = p.Prefetch(ids.data(), ids.size());
    ASSERT_TRUE(in_flight.ok() && queued.ok());
    env.WaitForBlockedRead();
    EXPECT_FALSE(*p.Poll(*in_flight));
    EXPECT_FALSE(*p.Poll(*queued));
    EXPECT_TRUE(p.Cancel(*queued).ok());
    EXPECT_TRUE(p.Poll(*queued).status().IsNotFound());
    Status cancelled;
    std::thread canceller([&] { cancelled = p.Cancel(*in_flight); });
    // The gate opens once the cancel is under way (it counts itself before it waits).
    while (p.stats().tickets_cancelled < 2) std::this_thread::yield();
    env.Open();
    canceller.join();
    EXPECT_TRUE(cancelled.ok()) << cancelled.ToString();
    EXPECT_TRUE(p.Wait(*in_flight).IsNotFound());
    PrefetchStats s = p.stats();
    EXPECT_EQ(s.tickets_cancelled, 2u);
    EXPECT_EQ(s.tickets_live, 0u);
    EXPECT_EQ(s.inflight_bytes, 0u);

    // Still working, and (with HBM) no slot stayed reserved by the cancelled fetch: all these
    // rows (fewer than a shard holds) are admitted now.
    ids.resize(100);
    auto t = p.Prefetch(ids.data(), ids.size());
    ASSERT_TRUE(t.ok());
    auto out = GatherToHost(p, *t, ids.size(), OutType::kRaw, kRowBytes, tier != Tier::kHostOnly);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectRows(ids, *out, kRowBytes);
    EXPECT_TRUE(p.Release(*t).ok());
    if (tier == Tier::kEmulatedHbm) {
      EXPECT_EQ(p.stats().hbm.inserts, ids.size());
      EXPECT_EQ(p.stats().hbm.size_rows, ids.size());
    }
  }
}

// Destroying the prefetcher with tickets live (ready and holding DRAM-cache pins, in flight,
// queued) cancels and frees them; the table works on.
TEST(PrefetchCancelTest, DestructionCancelsLiveTickets) {
  for (Tier tier : {Tier::kHostOnly, Tier::kEmulatedHbm}) {
    SCOPED_TRACE(TierName(tier));
    TempDir dir;
    const std::string path = dir.Sub("t");
    ASSERT_TRUE(MakeTable(path, 3000, kDim, DType::kF32).ok());
    GateEnv env;
    PrefetchOptions o;
    o.fetch_threads = 1;
    auto rig = OpenRig(path, TableOpts(DramMode::kCache, &env), tier, o);
    ASSERT_TRUE(rig.ok());
    Prefetcher& p = *rig->prefetcher;
    const std::vector<uint64_t> ids = {1, 2, 3, 1000};
    for (int i = 0; i < 2; ++i) {  // the second finds the rows in the DRAM cache
      auto ready = p.Prefetch(ids.data(), ids.size());
      ASSERT_TRUE(ready.ok());
      ASSERT_TRUE(p.Wait(*ready).ok());
    }
    env.Close();
    const std::vector<uint64_t> more = {10, 20, 30};
    ASSERT_TRUE(p.Prefetch(more.data(), more.size()).ok());
    ASSERT_TRUE(p.Prefetch(more.data(), more.size()).ok());
    env.WaitForBlockedRead();
    std::thread opener([&] { env.Open(); });
    rig->prefetcher.reset();
    opener.join();
    std::vector<uint8_t> out(more.size() * kRowBytes);
    ASSERT_TRUE(rig->table->Lookup(more.data(), more.size(), out.data(), kRowBytes).ok());
    ExpectRows(more, out, kRowBytes);
  }
}

}  // namespace
}  // namespace engram::gpu
