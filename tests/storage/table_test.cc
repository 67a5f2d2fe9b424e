// Table: the tiers agree byte for byte, bad input and damaged tables give clear errors.
#include "storage/table.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>

#include "storage/array_file.h"
#include "storage/table_builder.h"
#include "tests/support/fault_injection_env.h"
#include "tests/support/file_damage.h"
#include "tests/support/temp_dir.h"

namespace engram {
namespace {

using testing::FaultInjectionEnv;
using testing::ReadFault;
using testing::TempDir;

constexpr uint64_t kSeed = 42;

Status MakeTable(const std::string& path, uint64_t rows, uint32_t dim, DType dtype,
                 Env* env = Env::Default()) {
  CreationInfo info;
  info.fill = "random";
  info.seed = kSeed;
  return BuildTable(env, path, rows, dim, dtype, info, /*replace=*/false,
                    [&](uint64_t id, uint8_t* out) { RandomRow(dtype, dim, kSeed, id, out); });
}

std::vector<uint8_t> ExpectedRow(DType dtype, uint32_t dim, uint64_t id) {
  std::vector<uint8_t> row(*RowBytes(dtype, dim));
  RandomRow(dtype, dim, kSeed, id, row.data());
  return row;
}

TableOptions Options(DramMode mode, IoBackend backend = IoBackend::kAuto) {
  TableOptions o;
  o.dram_mode = mode;
  o.dram_cache_bytes = 64 << 10;  // small: forces evictions
  o.nvme.backend = backend;
  o.resident.huge_pages = true;
  return o;
}

std::vector<uint64_t> RandomIds(uint64_t rows, size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> ids(n);
  for (auto& id : ids) id = rng() % rows;
  return ids;
}

void ExpectRows(const std::vector<uint64_t>& ids, const std::vector<uint8_t>& out, size_t stride,
                DType dtype, uint32_t dim) {
  for (size_t i = 0; i < ids.size(); ++i) {
    auto want = ExpectedRow(dtype, dim, ids[i]);
    ASSERT_EQ(0, std::memcmp(out.data() + i * stride, want.data(), want.size()))
        << "row " << ids[i] << " at position " << i;
  }
}

struct TierCase {
  DType dtype;
  uint32_t dim;
};

class TableTiersTest : public ::testing::TestWithParam<TierCase> {};

// Every dtype (and a row wider than a page) through resident, cache+NVMe and pure NVMe,
// io_uring and pread: identical bytes, equal to what was written.
TEST_P(TableTiersTest, AllConfigurationsAgreeByteForByte) {
  const auto [dtype, dim] = GetParam();
  TempDir dir;
  const std::string path = dir.Sub("t");
  const uint64_t rows = 3000;
  ASSERT_TRUE(MakeTable(path, rows, dim, dtype).ok());
  auto ids = RandomIds(rows, 1500, 1);
  ids.push_back(0);
  ids.push_back(rows - 1);
  ids.push_back(ids[3]);  // a duplicate
  const size_t row_bytes = *RowBytes(dtype, dim);
  const size_t stride = row_bytes + 13;  // a caller stride wider than a row
  std::vector<std::vector<uint8_t>> results;
  for (DramMode mode : {DramMode::kResident, DramMode::kCache, DramMode::kNone}) {
    for (IoBackend backend : {IoBackend::kIoUring, IoBackend::kPread}) {
      if (mode == DramMode::kResident && backend == IoBackend::kPread) continue;
      auto table = Table::Open(path, Options(mode, backend));
      ASSERT_TRUE(table.ok()) << table.status().ToString();
      std::vector<uint8_t> out(ids.size() * stride, 0xab);
      for (int pass = 0; pass < 2; ++pass) {  // the second pass hits the DRAM cache
        ASSERT_TRUE((*table)->Lookup(ids.data(), ids.size(), out.data(), stride).ok());
      }
      ExpectRows(ids, out, stride, dtype, dim);
      // Bytes between rows (the stride padding) are never written.
      for (size_t i = 0; i < ids.size(); ++i) {
        for (size_t b = row_bytes; b < stride; ++b) ASSERT_EQ(out[i * stride + b], 0xab);
      }
      results.push_back(std::move(out));
    }
  }
  for (size_t r = 1; r < results.size(); ++r) EXPECT_EQ(results[r], results[0]) << "config " << r;
}

INSTANTIATE_TEST_SUITE_P(Dtypes, TableTiersTest,
                         ::testing::Values(TierCase{DType::kF32, 64}, TierCase{DType::kF16, 96},
                                           TierCase{DType::kBF16, 64}, TierCase{DType::kInt8, 61},
                                           TierCase{DType::kFp8E4M3Ue8m0, 256},
                                           TierCase{DType::kF32, 1500}),
                         [](const auto& info) {
                           return std::string(DTypeName(info.param.dtype)) + "_" +
                                  std::to_string(info.param.dim);
                         });

// Two real processes open one table resident and shared: the second attaches to the first's
// copy (one segment on the host), both read the right rows, and the segment goes with the last.
TEST(TableTest, TwoProcessesShareOneResidentCopy) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  const uint64_t rows = 5000;
  ASSERT_TRUE(MakeTable(path, rows, 64, DType::kF16).ok());
  const std::string shm = "/dev/shm/engram-table-test-" + std::to_string(::getpid());
  ASSERT_TRUE(Env::Default()->CreateDir(shm).ok());
  TableOptions o = Options(DramMode::kResident);
  o.resident.shared = true;
  o.resident.shared_dir = shm;
  auto ids = RandomIds(rows, 600, 3);
  auto rows_ok = [&](Table& t) {
    std::vector<uint8_t> out(ids.size() * 128);
    if (!t.Lookup(ids.data(), ids.size(), out.data(), 128).ok()) return false;
    for (size_t i = 0; i < ids.size(); ++i) {
      auto want = ExpectedRow(DType::kF16, 64, ids[i]);
      if (std::memcmp(out.data() + i * 128, want.data(), 128) != 0) return false;
    }
    return true;
  };
  {
    auto first = Table::Open(path, o);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_NE((*first)->DramDescription().find("loaded here"), std::string::npos)
        << (*first)->DramDescription();
    pid_t child = ::fork();
    if (child == 0) {
      auto second = Table::Open(path, o);
      const bool attached =
          second.ok() && (*second)->DramDescription().find("attached") != std::string::npos;
      const bool good = attached && rows_ok(**second);
      if (second.ok()) second->reset();  // close before exiting
      ::_exit(good ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child saw a different table";
    EXPECT_TRUE(rows_ok(**first));
    auto names = Env::Default()->ListDir(shm);
    ASSERT_TRUE(names.ok());
    size_t segments = 0;
    for (const auto& n : *names) segments += n.find(".lock") == std::string::npos;
    EXPECT_EQ(segments, 1u);  // one copy for both processes
  }
  EXPECT_TRUE(Env::Default()->ListDir(shm)->empty());  // the last close removed it
  ASSERT_TRUE(Env::Default()->RemoveDirRecursive(shm).ok());
}

TEST(TableTest, DuplicateIdsAreFetchedOnce) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 1000, 64, DType::kF32).ok());
  auto table = Table::Open(path, Options(DramMode::kNone));
  ASSERT_TRUE(table.ok());
  std::vector<uint64_t> ids = {7, 500, 7, 7, 500, 999};
  std::vector<uint8_t> out(ids.size() * 256);
  ASSERT_TRUE((*table)->Lookup(ids.data(), ids.size(), out.data(), 256).ok());
  ExpectRows(ids, out, 256, DType::kF32, 64);
  auto stats = (*table)->Stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].tier, "nvme");
  EXPECT_EQ(stats[0].lookups, 3u);  // 7, 500, 999
  EXPECT_EQ(stats[0].reads, 3u);    // three distinct pages
  EXPECT_EQ(stats[0].bytes_read, 3u * kPageSize);
}

TEST(TableTest, CacheCountsHitsAndMisses) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 1000, 64, DType::kF32).ok());
  TableOptions o = Options(DramMode::kCache);
  o.dram_cache_bytes = 1 << 20;  // holds the whole table
  auto table = Table::Open(path, o);
  ASSERT_TRUE(table.ok());
  std::vector<uint64_t> ids = {1, 2, 3, 4};
  std::vector<uint8_t> out(4 * 256);
  ASSERT_TRUE((*table)->Lookup(ids.data(), 4, out.data(), 256).ok());
  ASSERT_TRUE((*table)->Lookup(ids.data(), 4, out.data(), 256).ok());
  auto stats = (*table)->Stats();
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].tier, "dram");
  EXPECT_EQ(stats[0].lookups, 8u);
  EXPECT_EQ(stats[0].hits, 4u);
  EXPECT_EQ(stats[0].misses, 4u);
  EXPECT_EQ(stats[1].lookups, 4u);
  EXPECT_EQ(stats[1].reads, 1u);  // rows 1..4 share page 0
  EXPECT_GT(stats[1].LatencyPercentileUs(50), 0.0);
  const cache::RowCacheStats cache = (*table)->dram_cache_stats();
  EXPECT_GT(cache.metadata_bytes, 0u);
  EXPECT_EQ(cache.size_rows, 4u);
  EXPECT_EQ(cache.inserts, 4u);
}

TEST(TableTest, ConcurrentReadersSeeCorrectRows) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  const uint64_t rows = 20000;
  ASSERT_TRUE(MakeTable(path, rows, 64, DType::kBF16).ok());
  for (DramMode mode : {DramMode::kResident, DramMode::kCache, DramMode::kNone}) {
    auto table = Table::Open(path, Options(mode));
    ASSERT_TRUE(table.ok());
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int iter = 0; iter < 20; ++iter) {
          auto ids = RandomIds(rows, 257, t * 100 + iter);
          std::vector<uint8_t> out(ids.size() * 128);
          if (!(*table)->Lookup(ids.data(), ids.size(), out.data(), 128).ok()) ++failures;
          for (size_t i = 0; i < ids.size(); ++i) {
            if (ExpectedRow(DType::kBF16, 64, ids[i]) !=
                std::vector<uint8_t>(out.begin() + i * 128, out.begin() + (i + 1) * 128)) {
              ++failures;
            }
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
  }
}

TEST(TableTest, OutOfRangeIdNamesTheFirstBadIdAndWritesNothing) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 100, 64, DType::kF32).ok());
  for (DramMode mode : {DramMode::kResident, DramMode::kCache, DramMode::kNone}) {
    auto table = Table::Open(path, Options(mode));
    ASSERT_TRUE(table.ok());
    std::vector<uint64_t> ids = {1, 2, 100, 5000};
    std::vector<uint8_t> out(ids.size() * 256, 0x5a);
    Status s = (*table)->Lookup(ids.data(), ids.size(), out.data(), 256);
    ASSERT_TRUE(s.IsInvalidArgument());
    EXPECT_NE(s.message().find("id 100 at position 2"), std::string::npos) << s.ToString();
    EXPECT_EQ(out, std::vector<uint8_t>(ids.size() * 256, 0x5a));
  }
}

TEST(TableTest, ZeroLengthBatchIsANoOp) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 10, 64, DType::kF32).ok());
  auto table = Table::Open(path, Options(DramMode::kNone));
  ASSERT_TRUE(table.ok());
  EXPECT_TRUE((*table)->Lookup(nullptr, 0, nullptr, 256).ok());
  EXPECT_EQ((*table)->Stats()[0].lookups, 0u);
  uint64_t id = 1;
  std::vector<uint8_t> out(256);
  EXPECT_TRUE((*table)->Lookup(&id, 1, out.data(), 100).IsInvalidArgument());  // stride < row
}

TEST(TableTest, CorruptedPageIsReportedByLookupAndVerify) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 1000, 64, DType::kF32).ok());
  auto layout = *TableLayout::Make(1000, 64, DType::kF32);
  testing::FlipByte(path + "/data", layout.OffsetOf(35) + 3);  // page 2 holds rows 32..47
  for (IoBackend backend : {IoBackend::kIoUring, IoBackend::kPread}) {
    auto table = Table::Open(path, Options(DramMode::kNone, backend));
    ASSERT_TRUE(table.ok());
    uint64_t id = 35;
    std::vector<uint8_t> out(256);
    Status s = (*table)->Lookup(&id, 1, out.data(), 256);
    ASSERT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.message().find("row 35"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("page 2"), std::string::npos) << s.ToString();
    id = 100;  // other pages still read fine
    EXPECT_TRUE((*table)->Lookup(&id, 1, out.data(), 256).ok());
  }
  // Resident mode refuses to load damaged data.
  auto resident = Table::Open(path, Options(DramMode::kResident));
  ASSERT_FALSE(resident.ok());
  EXPECT_TRUE(resident.status().IsCorruption());
  std::vector<std::string> errors;
  Status v = VerifyTable(Env::Default(), path, &errors, 10);
  ASSERT_TRUE(v.IsCorruption());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("page 2"), std::string::npos) << errors[0];
}

TEST(TableTest, VerifyPassesOnAnIntactTableAndReportsProgress) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 5000, 300, DType::kF16).ok());
  uint64_t last_done = 0, total = 0;
  Status s = VerifyTable(Env::Default(), path, nullptr, 10, [&](uint64_t done, uint64_t all) {
    last_done = done;
    total = all;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(last_done, total);
  EXPECT_EQ(total, TableLayout::Make(5000, 300, DType::kF16)->num_pages());
}

TEST(TableTest, TruncatedDataFileIsReported) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 1000, 64, DType::kF32).ok());
  ASSERT_EQ(::truncate((path + "/data").c_str(), 8192), 0);
  auto table = Table::Open(path, Options(DramMode::kNone));
  ASSERT_FALSE(table.ok());
  EXPECT_TRUE(table.status().IsCorruption());
  EXPECT_NE(table.status().message().find("truncated"), std::string::npos);
  Status v = VerifyTable(Env::Default(), path, nullptr, 10);
  EXPECT_NE(v.message().find("truncated"), std::string::npos) << v.ToString();
}

TEST(TableTest, WrongManifestVersionIsReported) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 10, 64, DType::kF32).ok());
  auto manifest = ReadManifest(Env::Default(), path);
  ASSERT_TRUE(manifest.ok());
  manifest->format_version = 99;
  ASSERT_TRUE(WriteManifest(Env::Default(), path, *manifest).ok());
  auto table = Table::Open(path, Options(DramMode::kNone));
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("format_version 99"), std::string::npos)
      << table.status().ToString();
}

TEST(TableTest, ManifestFromACrashedWriteIsReported) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 10, 64, DType::kF32).ok());
  // A crash between writing MANIFEST.tmp and renaming it: only the temp file is there.
  ASSERT_EQ(::rename((path + "/MANIFEST").c_str(), (path + "/MANIFEST.tmp").c_str()), 0);
  auto table = Table::Open(path, Options(DramMode::kNone));
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("interrupted write"), std::string::npos)
      << table.status().ToString();
  // A torn manifest (half the bytes) is rejected, not misread.
  auto text = Env::Default()->ReadFileToString(path + "/MANIFEST.tmp");
  ASSERT_TRUE(text.ok());
  ASSERT_TRUE(Env::Default()
                  ->WriteFileAtomically(path + "/MANIFEST", text->substr(0, text->size() / 2))
                  .ok());
  table = Table::Open(path, Options(DramMode::kNone));
  ASSERT_FALSE(table.ok());
  EXPECT_TRUE(table.status().IsCorruption()) << table.status().ToString();
  // A manifest whose bytes were altered fails its checksum.
  std::string altered = *text;
  altered.replace(altered.find("\"rows\": 10"), 10, "\"rows\": 11");
  ASSERT_TRUE(Env::Default()->WriteFileAtomically(path + "/MANIFEST", altered).ok());
  table = Table::Open(path, Options(DramMode::kNone));
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("checksum"), std::string::npos)
      << table.status().ToString();
}

TEST(TableTest, MissingTableIsNotFound) {
  TempDir dir;
  auto table = Table::Open(dir.Sub("nope"), Options(DramMode::kNone));
  ASSERT_FALSE(table.ok());
  EXPECT_TRUE(table.status().IsNotFound());
}

TEST(TableTest, IoErrorsAreReportedAndTheTableKeepsWorking) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 1000, 64, DType::kF32).ok());
  FaultInjectionEnv env;
  for (IoBackend backend : {IoBackend::kIoUring, IoBackend::kPread}) {
    for (ReadFault fault : {ReadFault::kEIO, ReadFault::kShortRead}) {
      TableOptions o = Options(DramMode::kCache, backend);
      o.env = &env;
      auto table = Table::Open(path, o);
      ASSERT_TRUE(table.ok());
      env.SetReadFault("/data", 3 * kPageSize, 4 * kPageSize, fault);
      uint64_t id = 3 * 16 + 1;
      std::vector<uint8_t> out(256);
      Status s = (*table)->Lookup(&id, 1, out.data(), 256);
      ASSERT_TRUE(s.IsIOError()) << s.ToString();
      EXPECT_NE(s.message().find(std::to_string(3 * kPageSize)), std::string::npos) << s.ToString();
      env.ClearReadFault();
      ASSERT_TRUE((*table)->Lookup(&id, 1, out.data(), 256).ok());
      EXPECT_EQ(out, ExpectedRow(DType::kF32, 64, id));
    }
  }
}

TEST(TableTest, FullDiskDuringCreateLosesNothing) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 1000, 64, DType::kF32).ok());
  FaultInjectionEnv env;
  env.SetWriteBudget(100 << 10);  // the replacement needs ~250 KiB
  CreationInfo info;
  Status s = BuildTable(&env, path, 2000, 32, DType::kF32, info, /*replace=*/true,
                        [](uint64_t, uint8_t* out) { std::memset(out, 1, 128); });
  ASSERT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.message().find("No space left"), std::string::npos) << s.ToString();
  // The old table is intact and nothing is left behind.
  auto table = Table::Open(path, Options(DramMode::kNone));
  ASSERT_TRUE(table.ok());
  EXPECT_EQ((*table)->rows(), 1000u);
  EXPECT_TRUE(VerifyTable(Env::Default(), path, nullptr, 1).ok());
  auto names = Env::Default()->ListDir(dir.path());
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 1u);
}

TEST(TableTest, ReplaceSwapsInTheNewTable) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 1000, 64, DType::kF32).ok());
  EXPECT_EQ(MakeTable(path, 10, 64, DType::kF32).code(), Status::Code::kAlreadyExists);
  CreationInfo info;
  ASSERT_TRUE(BuildTable(Env::Default(), path, 10, 8, DType::kF16, info, true,
                         [](uint64_t id, uint8_t* out) { std::memset(out, int(id), 16); })
                  .ok());
  auto table = Table::Open(path, Options(DramMode::kNone));
  ASSERT_TRUE(table.ok());
  EXPECT_EQ((*table)->rows(), 10u);
  EXPECT_EQ((*table)->dtype(), DType::kF16);
  EXPECT_EQ(Env::Default()->ListDir(dir.path())->size(), 1u);
}

}  // namespace
}  // namespace engram

// ---- DRAM cache policy and hot rows -------------------------------------------------------------
namespace engram {
namespace {

Status WriteIds(const std::string& path, const std::vector<uint64_t>& ids) {
  return WriteNpy(Env::Default(), path, ElementType::kU64, {ids.size()}, ids.data());
}

TEST(TableHotRowsTest, HotRowsArePinnedAndSurviveEvictionPressure) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 20000, 64, DType::kF32).ok());  // 256 B rows
  std::vector<uint64_t> hot;
  for (uint64_t id = 0; id < 100; ++id) hot.push_back(id * 97 + 5);
  ASSERT_TRUE(WriteIds(dir.Sub("hot.npy"), hot).ok());
  TableOptions o = Options(DramMode::kCache);  // 256 rows of cache
  o.dram_cache_shards = 1;
  o.hot_rows_path = dir.Sub("hot.npy");
  auto table = Table::Open(path, o);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ((*table)->hot_rows_pinned(), 100u);
  EXPECT_EQ((*table)->hot_rows_skipped(), 0u);
  EXPECT_EQ((*table)->dram_cache_stats().pinned_rows, 100u);

  // Thousands of other rows pass through the cache...
  const std::vector<uint64_t> others = RandomIds(20000, 20000, 3);
  std::vector<uint8_t> out(others.size() * 256);
  ASSERT_TRUE((*table)->Lookup(others.data(), others.size(), out.data(), 256).ok());
  // ...and every hot row is still a DRAM hit, with the right bytes.
  const uint64_t hits_before = (*table)->Stats()[0].hits;
  std::vector<uint8_t> hot_out(hot.size() * 256);
  ASSERT_TRUE((*table)->Lookup(hot.data(), hot.size(), hot_out.data(), 256).ok());
  EXPECT_EQ((*table)->Stats()[0].hits - hits_before, hot.size());
  ExpectRows(hot, hot_out, 256, DType::kF32, 64);
}

TEST(TableHotRowsTest, HotRowsBeyondTheShareAreSkippedAndCounted) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 5000, 64, DType::kF32).ok());
  std::vector<uint64_t> hot;
  for (uint64_t id = 0; id < 1000; ++id) hot.push_back(id);
  hot.push_back(3);  // a duplicate is skipped, not pinned twice
  ASSERT_TRUE(WriteIds(dir.Sub("hot.npy"), hot).ok());
  TableOptions o = Options(DramMode::kCache);  // 256 rows
  o.hot_rows_path = dir.Sub("hot.npy");
  auto table = Table::Open(path, o);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  const uint64_t pinned = (*table)->hot_rows_pinned();
  EXPECT_LE(pinned, static_cast<uint64_t>(256 * Table::kMaxHotShare));
  EXPECT_GT(pinned, 0u);
  EXPECT_EQ(pinned + (*table)->hot_rows_skipped(), hot.size());
  // The cache still caches: an unpinned row read twice is a hit the second time.
  uint64_t id = 4999;
  std::vector<uint8_t> out(256);
  ASSERT_TRUE((*table)->Lookup(&id, 1, out.data(), 256).ok());
  ASSERT_TRUE((*table)->Lookup(&id, 1, out.data(), 256).ok());
  EXPECT_GE((*table)->Stats()[0].hits, 1u);
}

TEST(TableHotRowsTest, BadHotRowFilesFailOpenNamingTheFile) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 1000, 64, DType::kF32).ok());
  TableOptions o = Options(DramMode::kCache);
  o.hot_rows_path = dir.Sub("missing.npy");
  auto missing = Table::Open(path, o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.npy"), std::string::npos)
      << missing.status().ToString();

  ASSERT_TRUE(WriteIds(dir.Sub("range.npy"), {1, 2, 1000}).ok());
  o.hot_rows_path = dir.Sub("range.npy");
  auto out_of_range = Table::Open(path, o);
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_TRUE(out_of_range.status().IsInvalidArgument());
  EXPECT_NE(out_of_range.status().message().find("range.npy"), std::string::npos);
  EXPECT_NE(out_of_range.status().message().find("1000"), std::string::npos);
}

TEST(TableHotRowsTest, ResidentTablesCountHotRowsAsHeld) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 1000, 64, DType::kF32).ok());
  ASSERT_TRUE(WriteIds(dir.Sub("hot.npy"), {1, 2, 3}).ok());
  TableOptions o = Options(DramMode::kResident);
  o.resident.huge_pages = false;
  o.hot_rows_path = dir.Sub("hot.npy");
  auto table = Table::Open(path, o);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ((*table)->hot_rows_pinned(), 3u);
}

TEST(TableCachePolicyTest, ReplayOnlyPoliciesAreRefused) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 1000, 64, DType::kF32).ok());
  TableOptions o = Options(DramMode::kCache);
  o.cache_policy = cache::NewLruPolicyFactory();
  auto table = Table::Open(path, o);
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("lru"), std::string::npos);
}

TEST(TableCachePolicyTest, EveryConcurrentPolicyServesCorrectRows) {
  TempDir dir;
  const std::string path = dir.Sub("t");
  ASSERT_TRUE(MakeTable(path, 5000, 64, DType::kF32).ok());
  for (const std::string& name : cache::PolicyNames()) {
    auto policy = cache::NewPolicyFactory(name);
    ASSERT_NE(policy, nullptr) << name;
    if (!policy->concurrent_hits()) continue;
    TableOptions o = Options(DramMode::kCache);
    o.cache_policy = policy;
    auto table = Table::Open(path, o);
    ASSERT_TRUE(table.ok()) << name << ": " << table.status().ToString();
    for (uint32_t round = 0; round < 3; ++round) {
      const std::vector<uint64_t> ids = RandomIds(500, 2000, round);  // a reused working set
      std::vector<uint8_t> out(ids.size() * 256);
      ASSERT_TRUE((*table)->Lookup(ids.data(), ids.size(), out.data(), 256).ok()) << name;
      ExpectRows(ids, out, 256, DType::kF32, 64);
    }
    EXPECT_GT((*table)->Stats()[0].hits, 0u) << name;
    EXPECT_EQ((*table)->DramCacheJson()["policy"], name);
  }
}

}  // namespace
}  // namespace engram
