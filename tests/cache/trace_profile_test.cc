// Trace profiles (cache/trace_profile.h): counts, order, ties, totals.
#include "cache/trace_profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

namespace engram::cache {
namespace {

std::vector<std::pair<uint64_t, uint64_t>> Pairs(const std::vector<RowCount>& rows) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const RowCount& r : rows) out.emplace_back(r.id, r.count);
  return out;
}

using P = std::vector<std::pair<uint64_t, uint64_t>>;

TEST(TraceProfileTest, HandCheckedCountsMostFrequentFirst) {
  // 7 x3, 42 x2, 0 x2, 9 x1, 2^64-1 x4.
  const std::vector<uint64_t> trace = {7, 42, UINT64_MAX, 7, 0,          UINT64_MAX,
                                       9, 42, 7,          0, UINT64_MAX, UINT64_MAX};
  // Ties (42 and 0 at 2) go to the smaller id.
  EXPECT_EQ(Pairs(TopRows(trace, 10)), (P{{UINT64_MAX, 4}, {7, 3}, {0, 2}, {42, 2}, {9, 1}}));
  EXPECT_EQ(Pairs(TopRows(trace, 3)), (P{{UINT64_MAX, 4}, {7, 3}, {0, 2}}));
  EXPECT_EQ(Pairs(TopRows(trace, 1)), (P{{UINT64_MAX, 4}}));
  EXPECT_TRUE(TopRows(trace, 0).empty());

  const TraceProfile p = ProfileTrace(trace, 2);
  EXPECT_EQ(p.accesses, 12u);
  EXPECT_EQ(p.distinct, 5u);
  EXPECT_EQ(p.top_accesses, 7u);
  EXPECT_EQ(Pairs(p.top), (P{{UINT64_MAX, 4}, {7, 3}}));
}

TEST(TraceProfileTest, AllTiedIsSortedById) {
  const std::vector<uint64_t> trace = {30, 10, 20, 40, 20, 10, 40, 30};
  EXPECT_EQ(Pairs(TopRows(trace, 3)), (P{{10, 2}, {20, 2}, {30, 2}}));
}

TEST(TraceProfileTest, EmptyTrace) {
  EXPECT_TRUE(TopRows({}, 5).empty());
  const TraceProfile p = ProfileTrace({}, 5);
  EXPECT_EQ(p.accesses, 0u);
  EXPECT_EQ(p.distinct, 0u);
  EXPECT_EQ(p.top_accesses, 0u);
}

TEST(TraceProfileTest, LargeTraceMatchesASimpleCount) {
  // Enough distinct ids to grow the map several times; checked against std::map.
  std::mt19937_64 rng(5);
  std::vector<uint64_t> trace(200'000);
  for (uint64_t& id : trace) id = (rng() % 1000) * (rng() % 100) * 1'000'003;
  std::map<uint64_t, uint64_t> counts;
  for (uint64_t id : trace) ++counts[id];
  std::vector<RowCount> expected;
  for (const auto& [id, count] : counts) expected.push_back({id, count});
  std::stable_sort(expected.begin(), expected.end(),
                   [](const RowCount& a, const RowCount& b) { return a.count > b.count; });
  expected.resize(500);
  EXPECT_EQ(Pairs(TopRows(trace, 500)), Pairs(expected));
  EXPECT_EQ(ProfileTrace(trace, 500).distinct, counts.size());
}

}  // namespace
}  // namespace engram::cache
