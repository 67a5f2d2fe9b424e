// The Table pieces the prefetcher stands on: AcquireRows/ReleaseRows (rows held where they
// are, or copied from NVMe) and PinRows (rows pinned forever in the DRAM cache).
#include <gtest/gtest.h>

#include <cstring>

#include "storage/table.h"
#include "tests/gpu_bridge/prefetch_test_util.h"
#include "tests/support/fault_injection_env.h"
#include "tests/support/temp_dir.h"

namespace engram {
namespace {

using gpu::testing::ExpectedRow;
using gpu::testing::MakeTable;
using gpu::testing::TableOpts;
using testing::FaultInjectionEnv;
using testing::ReadFault;
using testing::TempDir;

constexpr uint32_t kDim = 16;
constexpr uint32_t kRow = kDim * 4;

TEST(TableAcquireRowsTest, RowsAreWhereTheTierHoldsThem) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 500, kDim, DType::kF32).ok());
  const std::vector<uint64_t> ids = {4, 99, 0, 499};
  const size_t stride = kRow + 32;
  for (DramMode mode : {DramMode::kNone, DramMode::kCache, DramMode::kResident}) {
    SCOPED_TRACE(gpu::testing::ModeName(mode));
    auto table = Table::Open(path, TableOpts(mode));
    ASSERT_TRUE(table.ok());
    // In cache mode, rows 4 and 0 are cached first: they come back pinned, not copied.
    std::vector<uint8_t> scratch(2 * kRow);
    const uint64_t warm[2] = {4, 0};
    ASSERT_TRUE((*table)->Lookup(warm, 2, scratch.data(), kRow).ok());
    std::vector<uint8_t> space(ids.size() * stride);
    std::vector<HeldRow> held(ids.size());
    ASSERT_TRUE(
        (*table)->AcquireRows(ids.data(), ids.size(), held.data(), space.data(), stride).ok());
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_NE(held[i].data, nullptr);
      EXPECT_EQ(0, std::memcmp(held[i].data, ExpectedRow(DType::kF32, kDim, ids[i]).data(), kRow))
          << "row " << ids[i];
      const bool copied = held[i].data == space.data() + i * stride;
      const bool cached_first = ids[i] == 4 || ids[i] == 0;
      switch (mode) {
        case DramMode::kNone:
          EXPECT_TRUE(copied);
          EXPECT_FALSE(held[i].pinned);
          break;
        case DramMode::kCache:
          EXPECT_EQ(held[i].pinned, cached_first) << "row " << ids[i];
          EXPECT_EQ(copied, !cached_first);
          break;
        case DramMode::kResident:
          EXPECT_FALSE(copied);
          EXPECT_FALSE(held[i].pinned);
          break;
      }
    }
    (*table)->ReleaseRows(held.data(), held.size());
    for (const HeldRow& h : held) EXPECT_FALSE(h.pinned);
    // Counted like Lookup: one DRAM lookup per row (the warm-up's 2, then these 4).
    if (mode != DramMode::kNone) {
      EXPECT_EQ((*table)->Stats()[0].lookups, 6u);
    }
  }
}

TEST(TableAcquireRowsTest, AnIoErrorLeavesNothingHeld) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 500, kDim, DType::kF32).ok());
  FaultInjectionEnv env;
  auto table = Table::Open(path, TableOpts(DramMode::kCache, &env));
  ASSERT_TRUE(table.ok());
  const uint64_t warm = 7;
  std::vector<uint8_t> row(kRow);
  ASSERT_TRUE((*table)->Lookup(&warm, 1, row.data(), kRow).ok());
  env.SetReadFault(JoinPath(path, kDataFileName), 0, uint64_t{1} << 40, ReadFault::kEIO);
  const std::vector<uint64_t> ids = {7, 300};
  std::vector<uint8_t> space(ids.size() * kRow);
  std::vector<HeldRow> held(ids.size());
  Status st = (*table)->AcquireRows(ids.data(), ids.size(), held.data(), space.data(), kRow);
  EXPECT_TRUE(st.IsIOError()) << st.ToString();
  for (const HeldRow& h : held) {
    EXPECT_FALSE(h.pinned);
    EXPECT_EQ(h.data, nullptr);
  }
}

TEST(TablePinRowsTest, PinsForeverCountsAndChecks) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 500, kDim, DType::kF32).ok());
  auto table = Table::Open(path, TableOpts(DramMode::kCache, Env::Default(), 400 * kRow));
  ASSERT_TRUE(table.ok());
  const std::vector<uint64_t> ids = {9, 8, 9, 7};
  ASSERT_TRUE((*table)->PinRows(ids.data(), ids.size()).ok());
  EXPECT_EQ((*table)->hot_rows_pinned(), 3u);
  EXPECT_EQ((*table)->hot_rows_skipped(), 1u);  // the duplicate
  EXPECT_EQ((*table)->dram_cache_stats().pinned_rows, 3u);
  const std::vector<uint64_t> bad = {1, 500};
  Status st = (*table)->PinRows(bad.data(), bad.size());
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("id 500 at position 1"), std::string::npos) << st.ToString();
  EXPECT_EQ((*table)->hot_rows_pinned(), 3u);
  std::vector<uint8_t> out(kRow);
  ASSERT_TRUE((*table)->Lookup(&ids[0], 1, out.data(), kRow).ok());
  EXPECT_EQ(0, std::memcmp(out.data(), ExpectedRow(DType::kF32, kDim, 9).data(), kRow));

  auto none = Table::Open(path, TableOpts(DramMode::kNone));
  ASSERT_TRUE(none.ok());
  ASSERT_TRUE((*none)->PinRows(ids.data(), ids.size()).ok());
  EXPECT_EQ((*none)->hot_rows_skipped(), 4u);
}

}  // namespace
}  // namespace engram
