// tablectl bench --prefetch [--device D] [--hbm-cache SIZE]: the real binary (TABLECTL_PATH) on
// a small table; checks the exit status, the JSON fields and that the prefetcher's row and
// byte counters agree with each other and with the driver's counts (nothing timing-based).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gpu_bridge/device.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/run_tablectl.h"

namespace engram {
namespace {

using nlohmann::json;
using testing::RunResult;
using testing::SplitLines;

constexpr uint64_t kRowBytes = 256;  // 64 x f32
constexpr uint64_t kBatch = 256;

class TablectlPrefetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    table_ = dir_.Sub("t");
    testing::RunTablectlOk(dir_, {"create", table_, "--rows", "20000", "--dim", "64", "--dtype",
                                  "f32", "--fill", "random"});
  }

  // `tablectl bench TABLE --trace TRACE --batch 256 --duration 0.3 --json EXTRA...`, which
  // must succeed quietly and print one JSON document.
  json Bench(const std::string& trace, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"bench", table_,       "--trace", trace,   "--batch",
                                     "256",   "--duration", "0.3",     "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = testing::RunTablectlOk(dir_, args);
    json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out;
    return j;
  }

  // A failed command: the exit code, nothing on stdout, one "tablectl: error:" line naming
  // `needle`.
  void ExpectError(const std::vector<std::string>& extra, int exit_code,
                   const std::string& needle) {
    std::vector<std::string> args = {"bench", table_, "--trace", "uniform", "--duration", "0.1"};
    args.insert(args.end(), extra.begin(), extra.end());
    const RunResult r = testing::RunTablectl(dir_, args);
    EXPECT_EQ(r.exit_code, exit_code) << "stderr: " << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(SplitLines(r.err).size(), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("tablectl: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "'" << needle << "' not in: " << r.err;
  }

  testing::TempDir dir_;
  std::string table_;
};

uint64_t U(const json& j, const char* key) {
  EXPECT_TRUE(j.contains(key)) << key << " missing in " << j.dump();
  return j.contains(key) ? j[key].get<uint64_t>() : 0;
}

// What holds for every finished run: every ticket released, one batch per ticket, no failure.
void ExpectSettled(const json& total) {
  EXPECT_EQ(U(total, "tickets_live"), 0u);
  EXPECT_EQ(U(total, "inflight_bytes"), 0u);
  EXPECT_EQ(U(total, "tickets_failed"), 0u);
  EXPECT_EQ(U(total, "rejected_prefetches"), 0u);
  EXPECT_GT(U(total, "tickets_issued"), 0u);
  EXPECT_EQ(U(total, "rows_requested"), U(total, "tickets_issued") * kBatch);
  EXPECT_LE(U(total, "rows_unique"), U(total, "rows_requested"));
  EXPECT_GT(U(total, "inflight_bytes_peak"), 0u);
}

// Host only: every call of the timed run issued one ticket of one batch, and every unique row
// of every ticket came from the table.
TEST_F(TablectlPrefetchTest, HostOnlyCountersMatchTheDriver) {
  const json j = Bench("uniform", {"--dram-cache", "0", "--threads", "2", "--prefetch"});
  ASSERT_TRUE(j.contains("prefetch")) << j.dump();
  const json& p = j["prefetch"];
  EXPECT_EQ(p["device"], "none");
  EXPECT_EQ(U(p, "hbm_cache_bytes"), 0u);
  EXPECT_GT(U(j, "rows"), 0u);
  const json& timed = p["timed"];
  EXPECT_EQ(U(timed, "tickets_issued"), U(j, "batches"));
  EXPECT_EQ(U(timed, "rows_requested"), U(j, "rows"));
  const json& total = p["total"];
  ExpectSettled(total);
  // The driver's warm-up batches (4 per thread) are tickets too.
  EXPECT_GE(U(total, "tickets_issued"), U(j, "batches") + 2 * 4);
  EXPECT_EQ(U(total, "tickets_cancelled"), 0u);
  EXPECT_EQ(U(total, "rows_fetched"), U(total, "rows_unique"));
  EXPECT_EQ(U(total, "hbm_hits"), 0u);
  EXPECT_EQ(U(total, "bytes_to_device"), 0u);
  EXPECT_EQ(U(p["hbm"], "capacity_rows"), 0u);
  // The table saw the lookups: NVMe only, every row read from the data file.
  ASSERT_EQ(j["tiers"].size(), 1u);
  EXPECT_EQ(j["tiers"][0]["tier"], "nvme");
  EXPECT_GE(U(j["tiers"][0], "bytes_read"), U(j["tiers"][0], "reads") * 4096);
}

// With an HBM tier on `device`: Zipf 1.2 repeats its hot rows, so some rows are HBM hits; every
// other unique row is fetched from the table and copied to the device.
void ExpectHbmCounters(const json& j, const std::string& device_word) {
  ASSERT_TRUE(j.contains("prefetch")) << j.dump();
  const json& p = j["prefetch"];
  EXPECT_NE(p["device"].get<std::string>().find(device_word), std::string::npos) << p["device"];
  EXPECT_EQ(U(p, "hbm_cache_bytes"), 256u * 1024);
  EXPECT_EQ(U(p["timed"], "rows_requested"), U(j, "rows"));
  const json& total = p["total"];
  ExpectSettled(total);
  EXPECT_GT(U(total, "hbm_hits"), 0u);
  EXPECT_EQ(U(total, "hbm_hits") + U(total, "rows_fetched"), U(total, "rows_unique"));
  EXPECT_LE(U(total, "hbm_inserts"), U(total, "rows_fetched"));
  EXPECT_GE(U(total, "bytes_to_device"), U(total, "rows_fetched") * kRowBytes);
  const json& hbm = p["hbm"];
  EXPECT_GT(U(hbm, "capacity_rows"), 0u);
  EXPECT_LE(U(hbm, "rows"), U(hbm, "capacity_rows"));
  EXPECT_EQ(U(hbm, "inserts"), U(total, "hbm_inserts"));
}

TEST_F(TablectlPrefetchTest, EmulatedDeviceWithHbmCacheCountsHitsAndCopies) {
  ExpectHbmCounters(Bench("zipf:1.2", {"--dram-cache", "0", "--prefetch", "--device", "emulated",
                                       "--hbm-cache", "256KiB"}),
                    "emulated");
}

TEST_F(TablectlPrefetchTest, CudaDeviceWithHbmCacheCountsHitsAndCopies) {
  std::string why;
  if (!gpu::CudaDeviceAvailable(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  ExpectHbmCounters(Bench("zipf:1.2", {"--dram-cache", "0", "--prefetch", "--device", "cuda",
                                       "--hbm-cache", "256KiB"}),
                    "cuda");
}

// Without a cache tier on the device the gathers still land there: every unique row is copied.
TEST_F(TablectlPrefetchTest, EmulatedDeviceWithoutHbmCacheCopiesEveryRow) {
  const json j = Bench("uniform", {"--resident", "--prefetch", "--device", "emulated"});
  const json& total = j["prefetch"]["total"];
  ExpectSettled(total);
  EXPECT_EQ(U(total, "hbm_hits"), 0u);
  EXPECT_EQ(U(total, "rows_fetched"), U(total, "rows_unique"));
  EXPECT_GE(U(total, "bytes_to_device"), U(total, "rows_fetched") * kRowBytes);
  EXPECT_EQ(j["tiers"][0]["tier"], "dram");
}

TEST_F(TablectlPrefetchTest, TextOutputHasAPrefetchLine) {
  const RunResult r = testing::RunTablectlOk(
      dir_, {"bench", table_, "--trace", "uniform", "--duration", "0.2", "--prefetch"});
  EXPECT_NE(r.out.find("rows/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("prefetch: pipelined one batch ahead, device none"), std::string::npos)
      << r.out;
}

TEST_F(TablectlPrefetchTest, BadFlagCombinationsAreUsageErrors) {
  ExpectError({"--device", "emulated"}, 2, "--prefetch");
  ExpectError({"--hbm-cache", "1MiB"}, 2, "--hbm-cache");
  ExpectError({"--prefetch", "--hbm-cache", "1MiB"}, 2, "--device");
  ExpectError({"--prefetch", "--device", "none", "--hbm-cache", "1MiB"}, 2, "--device");
  ExpectError({"--prefetch", "--hbm-cache", "12XB", "--device", "emulated"}, 2, "12XB");
  ExpectError({"--prefetch", "--device", "tpu"}, 2, "tpu");
}

TEST_F(TablectlPrefetchTest, CudaWithoutAGpuIsAFailure) {
  std::string why;
  if (gpu::CudaDeviceAvailable(&why)) GTEST_SKIP() << "a CUDA device is present";
  ExpectError({"--prefetch", "--device", "cuda"}, 1, "");
}

}  // namespace
}  // namespace engram
