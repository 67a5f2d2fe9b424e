// Trace profiles: counts in a FlatIdMap, then a partial sort of the (id, count) pairs.
#include "cache/trace_profile.h"

#include <algorithm>

#include "cache/flat_id_map.h"

namespace engram::cache {

TraceProfile ProfileTrace(std::span<const uint64_t> trace, uint64_t k) {
  TraceProfile profile;
  profile.accesses = trace.size();
  FlatIdMap<uint64_t> counts;
  for (uint64_t id : trace) ++counts.FindOrInsert(id);
  profile.distinct = counts.size();

  std::vector<RowCount> rows;
  rows.reserve(counts.size());
  counts.ForEach([&](uint64_t id, uint64_t count) { rows.push_back({id, count}); });
  const auto more_frequent = [](const RowCount& a, const RowCount& b) {
    return a.count != b.count ? a.count > b.count : a.id < b.id;
  };
  const size_t top = static_cast<size_t>(std::min<uint64_t>(k, rows.size()));
  std::partial_sort(rows.begin(), rows.begin() + top, rows.end(), more_frequent);
  rows.resize(top);
  for (const RowCount& r : rows) profile.top_accesses += r.count;
  profile.top = std::move(rows);
  return profile;
}

std::vector<RowCount> TopRows(std::span<const uint64_t> trace, uint64_t k) {
  return ProfileTrace(trace, k).top;
}

}  // namespace engram::cache
