// Tests of the cache benchmark's trace generators in bench/workload.h: the drifting Zipf trace
// (DriftRankMap, MakeDriftTrace) and SummarizeTrace.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "bench/workload.h"
#include "model/engram_config.h"
#include "model/ngram_hash.h"
#include "storage/array_file.h"

namespace engram::bench {
namespace {

// The most accessed id of ids[begin, end).
uint64_t HottestId(const std::vector<uint64_t>& ids, size_t begin, size_t end) {
  std::map<uint64_t, uint64_t> counts;
  for (size_t i = begin; i < end; ++i) ++counts[ids[i]];
  return std::max_element(counts.begin(), counts.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; })
      ->first;
}

// The k most accessed ids of ids[begin, end).
std::set<uint64_t> TopIds(const std::vector<uint64_t>& ids, size_t begin, size_t end, size_t k) {
  std::map<uint64_t, uint64_t> counts;
  for (size_t i = begin; i < end; ++i) ++counts[ids[i]];
  std::vector<std::pair<uint64_t, uint64_t>> v(counts.begin(), counts.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::set<uint64_t> top;
  for (size_t i = 0; i < k && i < v.size(); ++i) top.insert(v[i].first);
  return top;
}

size_t Overlap(const std::set<uint64_t>& a, const std::set<uint64_t>& b) {
  size_t n = 0;
  for (uint64_t x : a) n += b.count(x);
  return n;
}

TEST(DriftTraceTest, FirstPeriodEqualsTheZipfTraceOfTheSameSeed) {
  constexpr uint64_t kRows = 100000;
  DriftOptions drift;
  drift.length = 30000;
  drift.period = 10000;
  drift.seed = 7;
  auto d = MakeDriftTrace(kRows, 0.99, drift);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  TraceSpec zipf;
  zipf.kind = TraceKind::kZipf;
  zipf.zipf_alpha = 0.99;
  TraceOptions options;
  options.length = drift.length;
  options.seed = drift.seed;
  auto z = MakeTrace(zipf, kRows, options);
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  ASSERT_EQ(d->size(), drift.length);
  EXPECT_TRUE(std::equal(d->begin(), d->begin() + drift.period, z->begin()));
  // Later periods draw the same ranks but put them on other rows.
  EXPECT_FALSE(std::equal(d->begin() + drift.period, d->end(), z->begin() + drift.period));
}

TEST(DriftTraceTest, IsDeterministicInRangeAndSeeded) {
  DriftOptions o;
  o.length = 20000;
  o.period = 5000;
  o.seed = 3;
  auto a = MakeDriftTrace(5000, 1.2, o);
  auto b = MakeDriftTrace(5000, 1.2, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  for (uint64_t id : *a) ASSERT_LT(id, 5000u);
  o.seed = 4;
  auto c = MakeDriftTrace(5000, 1.2, o);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*a, *c);
}

TEST(DriftTraceTest, FullShiftReplacesTheHotSetEachPeriod) {
  constexpr uint64_t kRows = 1000000;
  DriftOptions o;
  o.period = 50000;
  o.length = 4 * o.period;
  auto t = MakeDriftTrace(kRows, 1.2, o);
  ASSERT_TRUE(t.ok());
  for (uint64_t p = 0; p + 1 < 4; ++p) {
    const size_t b0 = p * o.period, b1 = (p + 1) * o.period, b2 = (p + 2) * o.period;
    const std::set<uint64_t> now = TopIds(*t, b0, b1, 50);
    const std::set<uint64_t> next = TopIds(*t, b1, b2, 50);
    // 50 of 1M rows: two independent permutations share none of them in practice.
    EXPECT_LE(Overlap(now, next), 1u) << "period " << p;
    EXPECT_NE(HottestId(*t, b0, b1), HottestId(*t, b1, b2));
  }
  // Within a period the hot set is stable: the two halves of period 0 agree on most of the
  // top 20 (alpha 1.2 over 25k draws makes them clearly distinct from the tail).
  EXPECT_GE(Overlap(TopIds(*t, 0, o.period / 2, 20), TopIds(*t, o.period / 2, o.period, 20)), 15u);
}

TEST(DriftTraceTest, RankMapFollowsShift) {
  constexpr uint64_t kRows = 1 << 20;
  constexpr uint64_t kRanks = 20000;
  const DriftRankMap full(kRows, 11, 1.0);
  const DriftRankMap none_like(kRows, 11, 1e-12);
  const DriftRankMap quarter(kRows, 11, 0.25);
  uint64_t full_moved = 0, quarter_moved = 0, quarter_stay = 0, tiny_moved = 0;
  for (uint64_t r = 0; r < kRanks; ++r) {
    // Period 0 is the same for every shift: the Zipf trace's permutation.
    ASSERT_EQ(full.Row(r, 0), quarter.Row(r, 0));
    ASSERT_LT(quarter.Row(r, 5), kRows);
    full_moved += full.Row(r, 1) != full.Row(r, 0);
    tiny_moved += none_like.Row(r, 1) != none_like.Row(r, 0);
    if (quarter.Moves(r, 1)) {
      quarter_moved += quarter.Row(r, 1) != quarter.Row(r, 0);
    } else {
      quarter_stay += quarter.Row(r, 1) == quarter.Row(r, 0);
    }
    // A rank that does not move at period 2 keeps its period-1 row.
    if (!quarter.Moves(r, 2)) {
      ASSERT_EQ(quarter.Row(r, 2), quarter.Row(r, 1));
    }
  }
  EXPECT_GT(full_moved, kRanks * 99 / 100);
  EXPECT_EQ(tiny_moved, 0u);
  // ~25 % move (binomial sd ~ 61 of 20000), and those that do not, stay put.
  EXPECT_NEAR(double(quarter_moved) / kRanks, 0.25, 0.02);
  EXPECT_EQ(quarter_moved + quarter_stay, kRanks);
}

TEST(DriftTraceTest, PartialShiftKeepsPartOfTheHotSet) {
  constexpr uint64_t kRows = 1000000;
  DriftOptions o;
  o.period = 100000;
  o.length = 2 * o.period;
  o.shift = 0.5;
  auto t = MakeDriftTrace(kRows, 1.2, o);
  ASSERT_TRUE(t.ok());
  const size_t kept = Overlap(TopIds(*t, 0, o.period, 40), TopIds(*t, o.period, o.length, 40));
  // About half of the hot rows stay (ranks near the cut-off blur the count a little).
  EXPECT_GE(kept, 10u);
  EXPECT_LE(kept, 30u);
}

TEST(DriftTraceTest, RejectsBadOptions) {
  DriftOptions o;
  o.length = 10;
  o.period = 5;
  EXPECT_TRUE(MakeDriftTrace(0, 0.99, o).status().IsInvalidArgument());
  EXPECT_TRUE(MakeDriftTrace(10, 0, o).status().IsInvalidArgument());
  EXPECT_TRUE(MakeDriftTrace(10, NAN, o).status().IsInvalidArgument());
  DriftOptions bad = o;
  bad.period = 0;
  EXPECT_TRUE(MakeDriftTrace(10, 0.99, bad).status().IsInvalidArgument());
  bad = o;
  bad.length = 0;
  EXPECT_TRUE(MakeDriftTrace(10, 0.99, bad).status().IsInvalidArgument());
  for (double shift : {0.0, -0.5, 1.5}) {
    bad = o;
    bad.shift = shift;
    EXPECT_TRUE(MakeDriftTrace(10, 0.99, bad).status().IsInvalidArgument()) << shift;
  }
  // A period longer than the trace is one period: the plain Zipf trace.
  DriftOptions one = o;
  one.period = 1000;
  auto d = MakeDriftTrace(10, 0.99, one);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->size(), 10u);
}

TEST(SummarizeTraceTest, CountsDistinctAndTopShares) {
  // 10 rows; row 3 x5, row 7 x3, row 1 x1, row 0 x1: 10 accesses, 4 distinct.
  const std::vector<uint64_t> ids = {3, 7, 3, 1, 3, 7, 3, 0, 7, 3};
  auto s = SummarizeTrace(ids.data(), ids.size(), 10, {0.0, 0.1, 0.2, 0.25, 1.0});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->accesses, 10u);
  EXPECT_EQ(s->distinct, 4u);
  ASSERT_EQ(s->top_share.size(), 5u);
  EXPECT_DOUBLE_EQ(s->top_share[0], 0.0);  // 0 rows
  EXPECT_DOUBLE_EQ(s->top_share[1], 0.5);  // 1 row: row 3
  EXPECT_DOUBLE_EQ(s->top_share[2], 0.8);  // 2 rows: 3 and 7
  EXPECT_DOUBLE_EQ(s->top_share[3], 0.9);  // ceil(2.5) = 3 rows
  EXPECT_DOUBLE_EQ(s->top_share[4], 1.0);
}

TEST(SummarizeTraceTest, FractionOfRowsRoundsWithoutOvershoot) {
  // 0.01 * 1e7 is 100000.00000000001 in doubles: the top 1 % must still be 100000 rows.
  constexpr uint64_t kRows = 10000000;
  std::vector<uint64_t> ids(100001);
  for (uint64_t i = 0; i < ids.size(); ++i) ids[i] = i;
  auto s = SummarizeTrace(ids.data(), ids.size(), kRows, {0.01});
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->top_share[0], 100000.0 / 100001.0);
}

TEST(SummarizeTraceTest, RejectsOutOfRangeIdsAndFractions) {
  const std::vector<uint64_t> ids = {1, 2, 9};
  auto s = SummarizeTrace(ids.data(), ids.size(), 5, {0.5});
  ASSERT_TRUE(s.status().IsInvalidArgument());
  EXPECT_NE(s.status().ToString().find("id 9 at position 2"), std::string::npos);
  EXPECT_TRUE(SummarizeTrace(ids.data(), 2, 5, {1.5}).status().IsInvalidArgument());
  auto empty = SummarizeTrace(ids.data(), 0, 5, {0.5});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->distinct, 0u);
  EXPECT_DOUBLE_EQ(empty->top_share[0], 0.0);
}

// tests/data/real_trace_sample.npy: the first 20000 ids of bench/real_trace/make_real_trace.sh's
// trace (python3.11-doc, cl100k_base, layer 1 of a 2-layer, 3-gram, 8-head config with
// engram_vocab_size [625000, 625000]). Each token contributes its 16 row ids in column order,
// so id i must fall in head (i mod 16)'s slice of the layer's stacked table.
TEST(RealTraceSampleTest, IdsFollowTheLayerTableLayout) {
  const std::string path =
      (std::filesystem::path(__FILE__).parent_path() / ".." / "data" / "real_trace_sample.npy")
          .string();
  auto ids = ReadIdsNpy(Env::Default(), path);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  ASSERT_EQ(ids->size(), 20000u);

  model::EngramConfig config;
  config.engram_vocab_size = {625000, 625000};
  config.max_ngram_size = 3;
  config.n_head_per_ngram = 8;
  config.layer_ids = {1, 15};
  config.compressed_vocab_size = 1;  // primes do not depend on the vocabulary
  auto primes = model::ComputeTablePrimes(config);
  ASSERT_TRUE(primes.ok()) << primes.status().ToString();
  const std::vector<int64_t>& sizes = (*primes)[0];  // layer 1
  ASSERT_EQ(sizes.size(), 16u);
  std::vector<uint64_t> offsets(17, 0);
  for (size_t c = 0; c < 16; ++c) offsets[c + 1] = offsets[c] + static_cast<uint64_t>(sizes[c]);
  EXPECT_EQ(offsets[16], 10001952u);  // the rows bench/run_cache_bench.sh sizes caches by

  for (size_t i = 0; i < ids->size(); ++i) {
    const size_t c = i % 16;
    ASSERT_GE((*ids)[i], offsets[c]) << "position " << i;
    ASSERT_LT((*ids)[i], offsets[c + 1]) << "position " << i;
  }
  // Real text repeats itself: n-grams recur within these ~1250 tokens (17006 distinct rows),
  // where 20000 uniform ids over 10M rows would be ~19980 distinct.
  auto summary = SummarizeTrace(ids->data(), ids->size(), offsets[16], {});
  ASSERT_TRUE(summary.ok());
  EXPECT_LT(summary->distinct, ids->size() * 9 / 10);
  EXPECT_GT(summary->distinct, ids->size() / 2);
}

}  // namespace
}  // namespace engram::bench
