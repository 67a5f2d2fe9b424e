// Tests of bench/workload.h: trace generators (distribution, determinism, bijective scramble,
// .npy traces) and the lookup driver (batch accounting, wrap-around, error propagation, real
// table lookups with tier deltas).
#include "bench/workload.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <set>

#include "storage/array_file.h"
#include "storage/table.h"
#include "storage/table_builder.h"
#include "tests/support/temp_dir.h"

namespace engram::bench {
namespace {

TEST(ZipfSamplerTest, MatchesExactProbabilitiesOnSmallDomain) {
  for (double alpha : {0.5, 0.99, 1.0, 1.3}) {
    constexpr uint64_t kN = 10;
    const ZipfSampler zipf(kN, alpha);
    Rng rng(1);
    std::vector<uint64_t> counts(kN + 1, 0);
    constexpr int kSamples = 400000;
    for (int i = 0; i < kSamples; ++i) {
      const uint64_t k = zipf.Sample(rng);
      ASSERT_GE(k, 1u);
      ASSERT_LE(k, kN);
      ++counts[k];
    }
    double norm = 0;
    for (uint64_t k = 1; k <= kN; ++k) norm += std::pow(double(k), -alpha);
    for (uint64_t k = 1; k <= kN; ++k) {
      const double expected = std::pow(double(k), -alpha) / norm;
      const double got = double(counts[k]) / kSamples;
      // 5 standard deviations of a binomial proportion.
      const double tol = 5 * std::sqrt(expected * (1 - expected) / kSamples);
      EXPECT_NEAR(got, expected, tol) << "alpha " << alpha << " rank " << k;
    }
  }
}

TEST(ZipfSamplerTest, LargeDomainStaysInRangeAndIsSkewed) {
  constexpr uint64_t kN = uint64_t{1} << 34;  // no table of this size is needed
  const ZipfSampler zipf(kN, 0.99);
  Rng rng(2);
  uint64_t rank1 = 0;
  constexpr int kSamples = 200000;
  for (int i = 0; i < kSamples; ++i) {
    const uint64_t k = zipf.Sample(rng);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, kN);
    rank1 += k == 1;
  }
  // P(1) = 1 / H(2^34, 0.99) ~ 1/24.6 ~ 0.04; uniform would give ~0.
  EXPECT_GT(rank1, kSamples / 40);
  EXPECT_LT(rank1, kSamples / 20);
}

TEST(ZipfSamplerTest, SingleElementDomain) {
  const ZipfSampler zipf(1, 0.99);
  Rng rng(3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(zipf.Sample(rng), 1u);
}

TEST(IdPermutationTest, IsABijection) {
  for (uint64_t n : {1ull, 2ull, 3ull, 7ull, 1000ull, 1025ull, 65536ull, 100003ull}) {
    const IdPermutation p(n, 99);
    std::vector<bool> seen(n, false);
    for (uint64_t x = 0; x < n; ++x) {
      const uint64_t y = p(x);
      ASSERT_LT(y, n) << "n " << n;
      ASSERT_FALSE(seen[y]) << "n " << n << " collision at " << x;
      seen[y] = true;
    }
  }
}

TEST(IdPermutationTest, SpreadsLowRanksOverTheTable) {
  constexpr uint64_t kN = uint64_t{1} << 24;
  const IdPermutation p(kN, 5);
  // The 16 hottest ranks land in 16 different 4 KiB pages of 256-byte rows, most far apart.
  std::set<uint64_t> pages;
  uint64_t high_half = 0;
  for (uint64_t r = 0; r < 16; ++r) {
    pages.insert(p(r) / 16);
    high_half += p(r) >= kN / 2;
  }
  EXPECT_EQ(pages.size(), 16u);
  EXPECT_GT(high_half, 2u);
  EXPECT_LT(high_half, 14u);
}

TEST(TraceSpecTest, ParsesKnownForms) {
  auto u = ParseTraceSpec("uniform");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->kind, TraceKind::kUniform);
  auto z = ParseTraceSpec("zipf:1.2");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->kind, TraceKind::kZipf);
  EXPECT_DOUBLE_EQ(z->zipf_alpha, 1.2);
  EXPECT_EQ(TraceSpecName(*z), "zipf:1.2");
  auto z0 = ParseTraceSpec("zipf");
  ASSERT_TRUE(z0.ok());
  EXPECT_DOUBLE_EQ(z0->zipf_alpha, 0.99);
  auto f = ParseTraceSpec("/x/ids.npy");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kind, TraceKind::kFile);
  EXPECT_EQ(f->path, "/x/ids.npy");
}

TEST(TraceSpecTest, RejectsBadForms) {
  for (const char* bad : {"", "zipf:", "zipf:0", "zipf:-1", "zipf:abc", "zipf:1.0x", "gauss",
                          "ids.txt", "zipf:nan", "zipf:inf"}) {
    auto r = ParseTraceSpec(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << bad;
  }
}

TEST(MakeTraceTest, UniformIsInRangeDeterministicAndSeeded) {
  TraceOptions o;
  o.length = 100000;
  o.seed = 9;
  auto a = MakeTrace(TraceSpec{}, 1000, o);
  auto b = MakeTrace(TraceSpec{}, 1000, o);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  ASSERT_EQ(a->size(), 100000u);
  std::vector<int> hist(10, 0);
  for (uint64_t id : *a) {
    ASSERT_LT(id, 1000u);
    ++hist[id / 100];
  }
  for (int h : hist) EXPECT_NEAR(h, 10000, 600);
  o.seed = 10;
  auto c = MakeTrace(TraceSpec{}, 1000, o);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*a, *c);
}

TEST(MakeTraceTest, ZipfScrambleMovesTheHotRowButKeepsTheCounts) {
  TraceSpec spec;
  spec.kind = TraceKind::kZipf;
  spec.zipf_alpha = 1.1;
  TraceOptions o;
  o.length = 50000;
  o.scramble = false;
  auto plain = MakeTrace(spec, 1 << 20, o);
  o.scramble = true;
  auto scrambled = MakeTrace(spec, 1 << 20, o);
  ASSERT_TRUE(plain.ok() && scrambled.ok());
  std::map<uint64_t, int> pc, sc;
  for (uint64_t id : *plain) ++pc[id];
  for (uint64_t id : *scrambled) ++sc[id];
  auto top = [](const std::map<uint64_t, int>& m) {
    return std::max_element(m.begin(), m.end(),
                            [](auto& x, auto& y) { return x.second < y.second; });
  };
  EXPECT_EQ(top(pc)->first, 0u);  // rank 1 is row 0 without scrambling
  EXPECT_NE(top(sc)->first, 0u);
  EXPECT_EQ(top(pc)->second, top(sc)->second);  // same draws, relabelled
  EXPECT_EQ(pc.size(), sc.size());
}

TEST(MakeTraceTest, LoadsNpyTraceAndChecksRange) {
  testing::TempDir dir;
  Env* env = Env::Default();
  const std::vector<int64_t> ids = {5, 0, 9, 3};
  ASSERT_TRUE(WriteNpy(env, dir.Sub("ids.npy"), ElementType::kI64, {4}, ids.data()).ok());
  auto spec = ParseTraceSpec(dir.Sub("ids.npy"));
  ASSERT_TRUE(spec.ok());
  auto t = MakeTrace(*spec, 10);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, (std::vector<uint64_t>{5, 0, 9, 3}));
  auto bad = MakeTrace(*spec, 9);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  EXPECT_NE(bad.status().message().find("id 9 at position 2"), std::string::npos)
      << bad.status().message();
  spec->path = dir.Sub("missing.npy");
  EXPECT_FALSE(MakeTrace(*spec, 10).ok());
}

TEST(PercentileTest, NearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(PercentileOfSorted(v, 50), 50);
  EXPECT_EQ(PercentileOfSorted(v, 99), 99);
  EXPECT_EQ(PercentileOfSorted(v, 100), 100);
  EXPECT_EQ(PercentileOfSorted(v, 0), 1);
  EXPECT_EQ(PercentileOfSorted({7.0}, 99), 7);
  EXPECT_EQ(PercentileOfSorted({}, 50), 0);
}

TEST(StatsDeltaTest, SubtractsByTierName) {
  TierStats b1{"dram", 10, 8, 2, 100, 0, {}};
  TierStats b2{"nvme", 2, 2, 0, 8192, 2, {}};
  b2.latency_us_buckets[7] = 2;
  TierStats a1{"dram", 30, 20, 10, 300, 0, {}};
  TierStats a2{"nvme", 12, 12, 0, 40960, 10, {}};
  a2.latency_us_buckets[7] = 6;
  a2.latency_us_buckets[9] = 4;
  auto d = StatsDelta({b1, b2}, {a1, a2});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].lookups, 20u);
  EXPECT_EQ(d[0].misses, 8u);
  EXPECT_EQ(d[1].bytes_read, 32768u);
  EXPECT_EQ(d[1].reads, 8u);
  EXPECT_EQ(d[1].latency_us_buckets[7], 4u);
  EXPECT_EQ(d[1].latency_us_buckets[9], 4u);
}

TEST(DriverTest, FixedBatchCountCoversTheTraceWithWrapAround) {
  std::vector<uint64_t> trace(1000);
  for (size_t i = 0; i < trace.size(); ++i) trace[i] = i;
  std::mutex mu;
  std::map<uint64_t, int> seen;
  std::atomic<uint64_t> calls{0};
  LookupFn fn = [&](const uint64_t* ids, size_t n, void* out, size_t stride) {
    EXPECT_EQ(n, 64u);
    EXPECT_EQ(stride, 32u);
    std::lock_guard<std::mutex> lock(mu);
    for (size_t i = 0; i < n; ++i) {
      ++seen[ids[i]];
      std::memset(static_cast<uint8_t*>(out) + i * stride, 1, 16);  // within the buffer
    }
    ++calls;
    return Status::OK();
  };
  DriverOptions o;
  o.threads = 2;
  o.batch = 64;
  o.max_batches = 10;
  o.duration_seconds = 0;
  o.warmup_batches = 1;
  o.out_stride = 32;
  auto r = RunLookups(fn, {}, 16, trace, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->batches, 20u);
  EXPECT_EQ(r->rows, 20u * 64);
  EXPECT_EQ(calls.load(), 22u);  // 2 warm-up batches are not counted
  EXPECT_EQ(r->latency_samples, 20u);
  EXPECT_GT(r->rows_per_sec, 0);
  EXPECT_DOUBLE_EQ(r->bytes_per_sec, r->rows_per_sec * 16);
  EXPECT_LE(r->batch_p50_us, r->batch_p99_us);
  EXPECT_LE(r->batch_p99_us, r->batch_max_us);
  // Each thread walked 11 * 64 = 704 ids from its start (0 and 500), wrapping at 1000.
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(seen[0], 2);    // thread 0 first batch, thread 1 after wrapping
  EXPECT_EQ(seen[600], 2);  // both threads
  EXPECT_EQ(seen[300], 1);  // thread 0 only
}

TEST(DriverTest, TraceShorterThanABatchIsRepeated) {
  std::vector<uint64_t> trace = {4, 5, 6};
  std::vector<uint64_t> got;
  LookupFn fn = [&](const uint64_t* ids, size_t n, void*, size_t) {
    got.insert(got.end(), ids, ids + n);
    return Status::OK();
  };
  DriverOptions o;
  o.batch = 5;
  o.max_batches = 1;
  o.duration_seconds = 0;
  o.warmup_batches = 0;
  ASSERT_TRUE(RunLookups(fn, {}, 8, trace, o).ok());
  EXPECT_EQ(got, (std::vector<uint64_t>{4, 5, 6, 4, 5}));
}

TEST(DriverTest, DurationStopsTheRun) {
  std::vector<uint64_t> trace(100, 1);
  LookupFn fn = [](const uint64_t*, size_t, void*, size_t) { return Status::OK(); };
  DriverOptions o;
  o.threads = 2;
  o.batch = 10;
  o.duration_seconds = 0.2;
  auto r = RunLookups(fn, {}, 8, trace, o);
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->seconds, 0.2);
  EXPECT_LT(r->seconds, 10.0);  // stops near 0.2 s; bound generous for sanitizer builds
  EXPECT_GT(r->batches, 100u);
}

TEST(DriverTest, LookupErrorStopsAllThreadsAndIsReturned) {
  std::vector<uint64_t> trace(100, 1);
  std::atomic<int> calls{0};
  LookupFn fn = [&](const uint64_t*, size_t, void*, size_t) {
    return ++calls == 5 ? Status::IOError("disk on fire") : Status::OK();
  };
  DriverOptions o;
  o.threads = 2;
  o.batch = 10;
  o.duration_seconds = 30;  // would hang the test if the error did not stop the run
  auto r = RunLookups(fn, {}, 8, trace, o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsIOError());
  EXPECT_NE(r.status().message().find("disk on fire"), std::string::npos);
}

TEST(DriverTest, TraceOffsetMovesTheStart) {
  std::vector<uint64_t> trace(100);
  for (size_t i = 0; i < trace.size(); ++i) trace[i] = i;
  std::vector<uint64_t> got;
  LookupFn fn = [&](const uint64_t* ids, size_t n, void*, size_t) {
    got.insert(got.end(), ids, ids + n);
    return Status::OK();
  };
  DriverOptions o;
  o.batch = 4;
  o.max_batches = 1;
  o.duration_seconds = 0;
  o.warmup_batches = 0;
  o.trace_offset = 198;  // taken modulo the trace length
  ASSERT_TRUE(RunLookups(fn, {}, 8, trace, o).ok());
  EXPECT_EQ(got, (std::vector<uint64_t>{98, 99, 0, 1}));
}

TEST(MergeResultsTest, PoolsCountsTimesAndSamples) {
  DriverResult a, b;
  a.threads = b.threads = 2;
  a.batch = b.batch = 10;
  a.row_bytes = b.row_bytes = 4;
  a.seconds = 1;
  a.batches = 100;
  a.rows = 1000;
  a.batch_latencies_us = {1, 2, 3};
  a.tier_deltas = {TierStats{"dram", 1000, 1000, 0, 4000, 0, {}}};
  b.seconds = 3;
  b.batches = 100;
  b.rows = 1000;
  b.batch_latencies_us = {10, 20};
  b.tier_deltas = {TierStats{"dram", 1000, 900, 100, 3600, 0, {}}};
  auto m = MergeResults({a, b});
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->seconds, 4);
  EXPECT_EQ(m->rows, 2000u);
  EXPECT_DOUBLE_EQ(m->rows_per_sec, 500);
  EXPECT_DOUBLE_EQ(m->bytes_per_sec, 2000);
  EXPECT_EQ(m->latency_samples, 5u);
  EXPECT_EQ(m->batch_p50_us, 3);
  EXPECT_EQ(m->batch_max_us, 20);
  ASSERT_EQ(m->tier_deltas.size(), 1u);
  EXPECT_EQ(m->tier_deltas[0].hits, 1900u);
  EXPECT_EQ(m->tier_deltas[0].misses, 100u);
  b.batch = 11;
  EXPECT_TRUE(MergeResults({a, b}).status().IsInvalidArgument());
  EXPECT_TRUE(MergeResults({}).status().IsInvalidArgument());
}

TEST(DriverTest, RejectsBadOptions) {
  std::vector<uint64_t> trace(10, 0);
  LookupFn fn = [](const uint64_t*, size_t, void*, size_t) { return Status::OK(); };
  DriverOptions o;
  o.threads = 0;
  EXPECT_TRUE(RunLookups(fn, {}, 8, trace, o).status().IsInvalidArgument());
  o = {};
  o.batch = 0;
  EXPECT_TRUE(RunLookups(fn, {}, 8, trace, o).status().IsInvalidArgument());
  o = {};
  o.out_stride = 4;
  EXPECT_TRUE(RunLookups(fn, {}, 8, trace, o).status().IsInvalidArgument());
  o = {};
  o.duration_seconds = 0;
  EXPECT_TRUE(RunLookups(fn, {}, 8, trace, o).status().IsInvalidArgument());
  o = {};
  EXPECT_TRUE(RunLookups(fn, {}, 8, {}, o).status().IsInvalidArgument());
}

// Builds a small real table and drives it through both a resident and an NVMe-only Table.
class TableDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("t");
    ASSERT_TRUE(
        BuildTable(Env::Default(), path_, kRows, 64, DType::kF32, CreationInfo{}, false,
                   [](uint64_t id, uint8_t* out) { RandomRow(DType::kF32, 64, 1, id, out); })
            .ok());
    TraceOptions to;
    to.length = 4096;
    auto t = MakeTrace(TraceSpec{}, kRows, to);
    ASSERT_TRUE(t.ok());
    trace_ = std::move(*t);
  }
  static constexpr uint64_t kRows = 20000;
  testing::TempDir dir_;
  std::string path_;
  std::vector<uint64_t> trace_;
};

TEST_F(TableDriverTest, ResidentLookupsShowInDramDeltas) {
  TableOptions o;
  o.dram_mode = DramMode::kResident;
  auto table = Table::Open(path_, o);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_TRUE((*table)
                  ->Lookup(trace_.data(), 100, std::vector<uint8_t>(100 * 256).data(), 256)
                  .ok());  // counted before the run: must not appear in the deltas
  DriverOptions d;
  d.threads = 2;
  d.batch = 128;
  d.max_batches = 8;
  d.duration_seconds = 0;
  d.warmup_batches = 0;
  auto r = RunTableLookups(table->get(), trace_, d);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->row_bytes, 256u);
  ASSERT_EQ(r->tier_deltas.size(), 1u);
  EXPECT_EQ(r->tier_deltas[0].tier, "dram");
  EXPECT_EQ(r->tier_deltas[0].lookups, 2u * 8 * 128);
  EXPECT_EQ(r->tier_deltas[0].bytes_read, 2u * 8 * 128 * 256);
  const nlohmann::json j = ToJson(*r);
  EXPECT_EQ(j["rows"], 2 * 8 * 128);
  EXPECT_EQ(j["tiers"][0]["tier"], "dram");
  EXPECT_NE(FormatSummary(*r).find("rows/s"), std::string::npos);
}

TEST_F(TableDriverTest, NvmeLookupsRecordReadsAndLatency) {
  TableOptions o;
  o.dram_mode = DramMode::kNone;
  auto table = Table::Open(path_, o);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  DriverOptions d;
  d.batch = 64;
  d.max_batches = 10;
  d.duration_seconds = 0;
  auto r = RunTableLookups(table->get(), trace_, d);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->tier_deltas.size(), 1u);
  const TierStats& nvme = r->tier_deltas[0];
  EXPECT_EQ(nvme.tier, "nvme");
  EXPECT_GT(nvme.reads, 0u);
  EXPECT_LE(nvme.lookups, 640u);  // duplicates in a batch are fetched once
  EXPECT_EQ(nvme.bytes_read, nvme.reads * kPageSize);
  EXPECT_GT(nvme.LatencyPercentileUs(50), 0);
}

TEST_F(TableDriverTest, OutOfRangeTraceIdIsReportedWithPosition) {
  TableOptions o;
  o.dram_mode = DramMode::kResident;
  auto table = Table::Open(path_, o);
  ASSERT_TRUE(table.ok());
  std::vector<uint64_t> trace(64, 1);
  trace[10] = kRows;  // out of range
  DriverOptions d;
  d.batch = 64;
  d.max_batches = 1;
  d.duration_seconds = 0;
  d.warmup_batches = 0;
  auto r = RunTableLookups(table->get(), trace, d);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("position 10"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace engram::bench
