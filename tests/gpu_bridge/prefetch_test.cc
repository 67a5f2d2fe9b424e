// Prefetcher: gathered rows identical to Table::Lookup on real tables (every dtype; NVMe-only,
// DRAM cache, resident; host only and on the host-emulated device with and without an HBM
// tier; raw, f32 and bf16 outputs; host and device targets), the ticket lifecycle and its
// errors, I/O errors, hot rows to HBM first. A CUDA twin of the identity test skips without a
// GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "gpu_bridge/prefetcher.h"
#include "storage/array_file.h"
#include "tests/gpu_bridge/prefetch_test_util.h"
#include "tests/support/fault_injection_env.h"
#include "tests/support/temp_dir.h"

namespace engram::gpu {
namespace {

using engram::testing::FaultInjectionEnv;
using engram::testing::ReadFault;
using engram::testing::TempDir;
using testing::ExpectedOut;
using testing::GatherToHost;
using testing::MakeTable;
using testing::ModeName;
using testing::OpenRig;
using testing::Rig;
using testing::TableOpts;
using testing::Tier;
using testing::TierName;

struct Shape {
  DType dtype;
  uint32_t dim;
};

std::vector<uint64_t> RandomIds(uint64_t rows, size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> ids(n);
  for (auto& id : ids) id = rng() % rows;
  return ids;
}

// Prefetches `ids` twice over (the second pass finds rows in the caches the first filled) and
// checks every gather against Table::Lookup's rows: raw, f32 and bf16, to host memory and (with
// a device) to device memory on the prefetcher's stream and on a caller's stream.
void ExpectIdenticalToLookup(Rig& rig, const std::vector<uint64_t>& ids) {
  Table& table = *rig.table;
  Prefetcher& p = *rig.prefetcher;
  const size_t n = ids.size();
  const size_t row = table.row_bytes();
  std::vector<uint8_t> want(n * row);
  ASSERT_TRUE(table.Lookup(ids.data(), n, want.data(), row).ok());
  for (int pass = 0; pass < 2; ++pass) {
    auto t = p.Prefetch(ids.data(), n);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_TRUE(p.Wait(*t).ok());
    for (OutType type : {OutType::kRaw, OutType::kF32, OutType::kBF16}) {
      const size_t stride = OutRowBytes(type, table.dim(), row) + 16;  // wider than a row
      const auto expected =
          ExpectedOut(table.dtype(), table.dim(), want.data(), row, n, type, stride);
      for (int target = 0; target < (p.device() ? 3 : 1); ++target) {
        SCOPED_TRACE(std::string("pass ") + std::to_string(pass) + " out " + OutTypeName(type) +
                     " target " + std::to_string(target));
        auto got = GatherToHost(p, *t, n, type, stride, /*on_device=*/target > 0,
                                /*caller_stream=*/target == 2);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        ASSERT_EQ(got->size(), expected.size());
        for (size_t i = 0; i < n; ++i) {
          ASSERT_EQ(0, std::memcmp(got->data() + i * stride, expected.data() + i * stride, stride))
              << "row " << ids[i] << " at position " << i;
        }
      }
    }
    ASSERT_TRUE(p.Release(*t).ok());
  }
  const PrefetchStats s = p.stats();
  EXPECT_EQ(s.tickets_live, 0u);
  EXPECT_EQ(s.inflight_bytes, 0u);
  EXPECT_EQ(s.tickets_issued, 2u);
  EXPECT_EQ(s.rows_requested, 2 * n);
}

class PrefetchIdentityTest : public ::testing::TestWithParam<Shape> {};

TEST_P(PrefetchIdentityTest, EveryTierAndModeGathersWhatLookupReturns) {
  const auto [dtype, dim] = GetParam();
  TempDir dir;
  const std::string path = dir.Sub("t");
  const uint64_t rows = 3000;
  ASSERT_TRUE(MakeTable(path, rows, dim, dtype).ok());
  auto ids = RandomIds(rows, 700, 1);
  ids.push_back(0);
  ids.push_back(rows - 1);
  ids.push_back(ids[3]);  // duplicates
  ids.push_back(ids[3]);
  for (DramMode mode : {DramMode::kNone, DramMode::kCache, DramMode::kResident}) {
    for (Tier tier : {Tier::kHostOnly, Tier::kEmulated, Tier::kEmulatedHbm}) {
      SCOPED_TRACE(std::string(ModeName(mode)) + " " + TierName(tier));
      auto rig = OpenRig(path, TableOpts(mode), tier);
      ASSERT_TRUE(rig.ok()) << rig.status().ToString();
      ExpectIdenticalToLookup(*rig, ids);
      if (tier == Tier::kEmulatedHbm) {
        const PrefetchStats s = rig->prefetcher->stats();
        EXPECT_GT(s.hbm_inserts, 0u);
        EXPECT_GT(s.hbm_hits, 0u);  // the second pass
        EXPECT_GT(s.bytes_to_device, 0u);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, PrefetchIdentityTest,
                         ::testing::Values(Shape{DType::kF32, 64}, Shape{DType::kF16, 96},
                                           Shape{DType::kBF16, 64}, Shape{DType::kInt8, 61},
                                           Shape{DType::kFp8E4M3Ue8m0, 256},
                                           Shape{DType::kF32, 1500}),
                         [](const auto& info) {
                           return std::string(DTypeName(info.param.dtype)) + "_" +
                                  std::to_string(info.param.dim);
                         });

// The same on a real GPU: CUDA kernels and copies, HBM slots in device memory.
TEST(PrefetchCudaTest, GathersWhatLookupReturns) {
  std::string why;
  if (!CudaDeviceAvailable(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  TempDir dir;
  const std::string path = dir.Sub("t");
  for (Shape shape : {Shape{DType::kF32, 64}, Shape{DType::kInt8, 61},
                      Shape{DType::kFp8E4M3Ue8m0, 256}, Shape{DType::kBF16, 1500}}) {
    const std::string p = path + DTypeName(shape.dtype).data() + std::to_string(shape.dim);
    ASSERT_TRUE(MakeTable(p, 3000, shape.dim, shape.dtype).ok());
    auto ids = RandomIds(3000, 700, 2);
    ids.push_back(ids[5]);
    for (DramMode mode : {DramMode::kNone, DramMode::kCache}) {
      for (Tier tier : {Tier::kCuda, Tier::kCudaHbm}) {
        SCOPED_TRACE(std::string(DTypeName(shape.dtype)) + " " + ModeName(mode) + " " +
                     TierName(tier));
        auto rig = OpenRig(p, TableOpts(mode), tier);
        ASSERT_TRUE(rig.ok()) << rig.status().ToString();
        ExpectIdenticalToLookup(*rig, ids);
      }
    }
  }
}

class PrefetchLifecycleTest : public ::testing::TestWithParam<Tier> {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("t");
    ASSERT_TRUE(MakeTable(path_, kRows, 32, DType::kF32).ok());
    auto rig = OpenRig(path_, TableOpts(DramMode::kCache), GetParam());
    ASSERT_TRUE(rig.ok()) << rig.status().ToString();
    rig_ = std::move(rig).value();
  }
  Prefetcher& p() { return *rig_.prefetcher; }

  static constexpr uint64_t kRows = 1000;
  TempDir dir_;
  std::string path_;
  Rig rig_;
};

TEST_P(PrefetchLifecycleTest, WaitPollGatherReleaseAndDeadTickets) {
  const std::vector<uint64_t> ids = {5, 900, 5, 17};
  auto t = p().Prefetch(ids.data(), ids.size());
  ASSERT_TRUE(t.ok());
  EXPECT_NE(*t, 0u);
  ASSERT_TRUE(p().Wait(*t).ok());
  auto ready = p().Poll(*t);
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(*ready);
  // Two gathers of one ticket agree, and with the rows written.
  auto a = GatherToHost(p(), *t, ids.size(), OutType::kRaw, 128, false);
  auto b = GatherToHost(p(), *t, ids.size(), OutType::kRaw, 128, false);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(0, std::memcmp(a->data() + i * 128,
                             testing::ExpectedRow(DType::kF32, 32, ids[i]).data(), 128));
  }
  EXPECT_EQ(p().stats().tickets_live, 1u);
  ASSERT_TRUE(p().Release(*t).ok());
  EXPECT_EQ(p().stats().tickets_live, 0u);

  // The id is dead: every use is NotFound naming it.
  const std::string name = "ticket " + std::to_string(*t);
  Status again = p().Release(*t);
  EXPECT_TRUE(again.IsNotFound()) << again.ToString();
  EXPECT_NE(again.message().find(name), std::string::npos) << again.ToString();
  EXPECT_TRUE(p().Wait(*t).IsNotFound());
  EXPECT_TRUE(p().Poll(*t).status().IsNotFound());
  EXPECT_TRUE(p().Cancel(*t).IsNotFound());
  std::vector<uint8_t> out(ids.size() * 128);
  GatherTarget target;
  target.out = out.data();
  target.out_stride = 128;
  EXPECT_TRUE(p().Gather(*t, target).IsNotFound());
  // Never issued.
  for (TicketId bogus : {TicketId{0}, TicketId{*t + 1000}}) {
    EXPECT_TRUE(p().Wait(bogus).IsNotFound());
    EXPECT_TRUE(p().Release(bogus).IsNotFound());
    EXPECT_TRUE(p().Cancel(bogus).IsNotFound());
  }
  const PrefetchStats s = p().stats();
  EXPECT_EQ(s.tickets_issued, 1u);
  EXPECT_EQ(s.rows_requested, 4u);
  EXPECT_EQ(s.rows_unique, 3u);
}

TEST_P(PrefetchLifecycleTest, EmptyRequestIsReadyAtOnce) {
  auto t = p().Prefetch(nullptr, 0);
  ASSERT_TRUE(t.ok());
  auto ready = p().Poll(*t);
  ASSERT_TRUE(ready.ok());
  EXPECT_TRUE(*ready);
  GatherTarget target;
  target.out_stride = 128;
  EXPECT_TRUE(p().Gather(*t, target).ok());
  EXPECT_TRUE(p().Release(*t).ok());
}

TEST_P(PrefetchLifecycleTest, CancelAReadyTicketReleasesIt) {
  const uint64_t id = 3;
  auto t = p().Prefetch(&id, 1);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(p().Wait(*t).ok());
  EXPECT_TRUE(p().Cancel(*t).ok());
  EXPECT_TRUE(p().Release(*t).IsNotFound());
  const PrefetchStats s = p().stats();
  EXPECT_EQ(s.tickets_live, 0u);
  EXPECT_EQ(s.inflight_bytes, 0u);
}

TEST_P(PrefetchLifecycleTest, BadRequestsAndTargetsAreInvalidArgument) {
  const std::vector<uint64_t> bad = {1, 2, kRows, 4};
  auto t = p().Prefetch(bad.data(), bad.size());
  EXPECT_TRUE(t.status().IsInvalidArgument());
  EXPECT_NE(t.status().message().find("id 1000 at position 2"), std::string::npos)
      << t.status().ToString();
  EXPECT_TRUE(p().Prefetch(nullptr, 3).status().IsInvalidArgument());
  EXPECT_EQ(p().stats().tickets_live, 0u);

  const uint64_t id = 7;
  auto ok = p().Prefetch(&id, 1);
  ASSERT_TRUE(ok.ok());
  std::vector<uint8_t> out(256);
  GatherTarget target;
  target.out = out.data();
  target.out_stride = 127;  // a row is 128 bytes
  Status st = p().Gather(*ok, target);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("stride 127"), std::string::npos) << st.ToString();
  target.out_stride = 128;
  target.type = OutType::kBF16;
  EXPECT_TRUE(p().Gather(*ok, target).ok());  // bf16 needs only 64
  target.type = OutType::kRaw;
  target.out = nullptr;
  EXPECT_TRUE(p().Gather(*ok, target).IsInvalidArgument());
  target.out = out.data();
  if (p().device() == nullptr) {
    target.on_device = true;
    st = p().Gather(*ok, target);
    EXPECT_TRUE(st.IsInvalidArgument());
    EXPECT_NE(st.message().find("no device"), std::string::npos) << st.ToString();
  }
  // The ticket is still fine after rejected gathers.
  target.on_device = false;
  EXPECT_TRUE(p().Gather(*ok, target).ok());
  EXPECT_EQ(0, std::memcmp(out.data(), testing::ExpectedRow(DType::kF32, 32, id).data(), 128));
  EXPECT_TRUE(p().Release(*ok).ok());
}

INSTANTIATE_TEST_SUITE_P(Tiers, PrefetchLifecycleTest,
                         ::testing::Values(Tier::kHostOnly, Tier::kEmulated, Tier::kEmulatedHbm),
                         [](const auto& info) {
                           std::string s = TierName(info.param);
                           for (char& c : s)
                             c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return s;
                         });

TEST(PrefetchCreateTest, OptionsAreChecked) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 100, 32, DType::kF32).ok());
  auto table = Table::Open(path, TableOpts(DramMode::kNone));
  ASSERT_TRUE(table.ok());
  PrefetchOptions o;
  EXPECT_TRUE(Prefetcher::Create(nullptr, o).status().IsInvalidArgument());
  o.hbm_cache_bytes = 1 << 20;  // HBM without a device
  auto p = Prefetcher::Create(table->get(), o);
  EXPECT_TRUE(p.status().IsInvalidArgument());
  EXPECT_NE(p.status().message().find("needs a device"), std::string::npos);
  auto device = NewHostDevice();
  o.device = device.get();
  o.hbm_cache_bytes = 100;  // less than a row
  EXPECT_TRUE(Prefetcher::Create(table->get(), o).status().IsInvalidArgument());
  o.hbm_cache_bytes = 0;
  o.max_inflight_bytes = 64;  // less than a row
  EXPECT_TRUE(Prefetcher::Create(table->get(), o).status().IsInvalidArgument());
  o.max_inflight_bytes = 1 << 20;
  o.fetch_threads = 0;
  EXPECT_TRUE(Prefetcher::Create(table->get(), o).status().IsInvalidArgument());
  // HBM larger than the emulated device's memory.
  HostDeviceOptions small;
  small.memory_limit_bytes = 4 << 20;
  auto tiny = NewHostDevice(small);
  o.fetch_threads = 1;
  o.device = tiny.get();
  o.hbm_cache_bytes = 64 << 20;
  p = Prefetcher::Create(table->get(), o);
  EXPECT_EQ(p.status().code(), Status::Code::kResourceExhausted) << p.status().ToString();
}

// An EIO on the data file fails the ticket (Wait, Poll and Gather report it); the ticket is
// still released, and with an HBM tier its reserved slots were given back.
TEST(PrefetchErrorTest, IoErrorFailsTheTicketWhichIsStillReleasable) {
  for (Tier tier : {Tier::kHostOnly, Tier::kEmulatedHbm}) {
    SCOPED_TRACE(TierName(tier));
    TempDir dir;
    const std::string path = dir.Sub("t");
    FaultInjectionEnv env;
    ASSERT_TRUE(MakeTable(path, 2000, 64, DType::kF32).ok());
    auto rig = OpenRig(path, TableOpts(DramMode::kNone, &env), tier);
    ASSERT_TRUE(rig.ok()) << rig.status().ToString();
    Prefetcher& p = *rig->prefetcher;
    env.SetReadFault(JoinPath(path, kDataFileName), 0, uint64_t{1} << 40, ReadFault::kEIO);
    const std::vector<uint64_t> ids = {10, 500, 1999, 10};
    auto t = p.Prefetch(ids.data(), ids.size());
    ASSERT_TRUE(t.ok());
    Status st = p.Wait(*t);
    EXPECT_TRUE(st.IsIOError()) << st.ToString();
    EXPECT_NE(st.message().find("ticket " + std::to_string(*t)), std::string::npos);
    EXPECT_TRUE(p.Poll(*t).status().IsIOError());
    std::vector<uint8_t> out(ids.size() * 256);
    GatherTarget target;
    target.out = out.data();
    target.out_stride = 256;
    EXPECT_TRUE(p.Gather(*t, target).IsIOError());
    EXPECT_TRUE(p.Release(*t).ok());
    PrefetchStats s = p.stats();
    EXPECT_EQ(s.tickets_failed, 1u);
    EXPECT_EQ(s.tickets_live, 0u);
    EXPECT_EQ(s.inflight_bytes, 0u);
    EXPECT_EQ(s.hbm.inserts, 0u);

    env.ClearReadFault();
    t = p.Prefetch(ids.data(), ids.size());
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE(p.Gather(*t, target).ok());
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(0, std::memcmp(out.data() + i * 256,
                               testing::ExpectedRow(DType::kF32, 64, ids[i]).data(), 256));
    }
    EXPECT_TRUE(p.Release(*t).ok());
    // No slot was left reserved by the failed fetch: all three rows were admitted now.
    if (tier == Tier::kEmulatedHbm) {
      EXPECT_EQ(p.stats().hbm.inserts, 3u);
    }
  }
}

// Hot rows fill HBM first (up to max_pinned_share of each shard), the rest go to the DRAM
// cache through Table::PinRows; both serve later prefetches without NVMe reads.
TEST(PrefetchHotRowsTest, HbmFirstThenDram) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  const uint32_t dim = 64;
  ASSERT_TRUE(MakeTable(path, 5000, dim, DType::kF32).ok());
  std::vector<uint64_t> hot;
  for (uint64_t i = 0; i < 100; ++i) hot.push_back((i * 37 + 11) % 5000);
  hot.push_back(hot[4]);  // a duplicate
  const std::string hot_path = dir.Sub("hot.npy");
  ASSERT_TRUE(WriteNpy(Env::Default(), hot_path, ElementType::kU64, {hot.size()}, hot.data()).ok());
  PrefetchOptions o;
  o.hbm_cache_bytes = 64 * 256;  // 64 rows, 32 of them may be pinned
  o.hbm_shards = 1;
  o.hot_rows_path = hot_path;
  auto rig =
      OpenRig(path, TableOpts(DramMode::kCache, Env::Default(), 512 * 256), Tier::kEmulatedHbm, o);
  ASSERT_TRUE(rig.ok()) << rig.status().ToString();
  Prefetcher& p = *rig->prefetcher;
  EXPECT_EQ(p.stats().hot_rows_pinned, 32u);
  EXPECT_EQ(p.stats().hbm.pinned_rows, 32u);
  const std::vector<uint64_t>& left = p.hot_rows_left();
  ASSERT_EQ(left.size(), 68u);
  EXPECT_TRUE(std::equal(left.begin(), left.end(), hot.begin() + 32, hot.begin() + 100));
  ASSERT_TRUE(rig->table->PinRows(left.data(), left.size()).ok());
  EXPECT_EQ(rig->table->hot_rows_pinned(), 68u);

  auto tier_counts = [&](const char* name) {
    for (const TierStats& s : rig->table->Stats()) {
      if (s.tier == name) return std::make_pair(s.lookups, s.hits);
    }
    return std::make_pair(uint64_t{0}, uint64_t{0});
  };
  const auto dram_before = tier_counts("dram");
  const auto nvme_before = tier_counts("nvme");
  const std::vector<uint64_t> ids(hot.begin(), hot.begin() + 100);
  auto t = p.Prefetch(ids.data(), ids.size());
  ASSERT_TRUE(t.ok());
  for (bool on_device : {false, true}) {
    auto out = GatherToHost(p, *t, ids.size(), OutType::kRaw, 256, on_device);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_EQ(0, std::memcmp(out->data() + i * 256,
                               testing::ExpectedRow(DType::kF32, dim, ids[i]).data(), 256))
          << "row " << ids[i] << (on_device ? " (device)" : " (host)");
    }
  }
  ASSERT_TRUE(p.Release(*t).ok());
  EXPECT_EQ(p.stats().hbm_hits, 32u);
  // The other 68 came from the DRAM cache: the NVMe tier read nothing for them.
  EXPECT_EQ(tier_counts("dram").first - dram_before.first, 68u);
  EXPECT_EQ(tier_counts("dram").second - dram_before.second, 68u);
  EXPECT_EQ(tier_counts("nvme").first, nvme_before.first);
}

TEST(PrefetchHotRowsTest, WithoutHbmEveryHotRowIsLeftAndBadFilesFail) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 100, 32, DType::kF32).ok());
  const std::vector<uint64_t> hot = {3, 1, 3, 2};
  const std::string hot_path = dir.Sub("hot.npy");
  ASSERT_TRUE(WriteNpy(Env::Default(), hot_path, ElementType::kU64, {hot.size()}, hot.data()).ok());
  PrefetchOptions o;
  o.hot_rows_path = hot_path;
  auto rig = OpenRig(path, TableOpts(DramMode::kCache), Tier::kEmulated, o);
  ASSERT_TRUE(rig.ok()) << rig.status().ToString();
  EXPECT_EQ(rig->prefetcher->hot_rows_left(), (std::vector<uint64_t>{3, 1, 2}));
  EXPECT_EQ(rig->prefetcher->stats().hot_rows_pinned, 0u);

  o.hot_rows_path = dir.Sub("missing.npy");
  auto bad = OpenRig(path, TableOpts(DramMode::kCache), Tier::kEmulatedHbm, o);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("hot rows"), std::string::npos);
  const std::vector<uint64_t> out_of_range = {1, 100};
  ASSERT_TRUE(
      WriteNpy(Env::Default(), hot_path + "2.npy", ElementType::kU64, {2}, out_of_range.data())
          .ok());
  o.hot_rows_path = hot_path + "2.npy";
  bad = OpenRig(path, TableOpts(DramMode::kCache), Tier::kEmulatedHbm, o);
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  EXPECT_NE(bad.status().message().find("id 100"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace engram::gpu
