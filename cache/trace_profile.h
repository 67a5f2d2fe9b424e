// Trace profiles: the most frequently accessed rows of a trace, for pinning hot rows
// (`tablectl profile`, TableOptions::hot_rows_path).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace engram::cache {

struct RowCount {
  uint64_t id = 0;
  uint64_t count = 0;
};

// The `k` most frequent ids of `trace` (fewer if it has fewer distinct ids), most frequent
// first; ties broken by smaller id, so the result is deterministic.
std::vector<RowCount> TopRows(std::span<const uint64_t> trace, uint64_t k);

// TopRows() with the totals a report needs (`tablectl profile`).
struct TraceProfile {
  uint64_t accesses = 0;      // trace.size()
  uint64_t distinct = 0;      // distinct ids in the trace
  std::vector<RowCount> top;  // TopRows(trace, k)
  uint64_t top_accesses = 0;  // sum of top[i].count: the accesses pinning `top` would serve
};
TraceProfile ProfileTrace(std::span<const uint64_t> trace, uint64_t k);

}  // namespace engram::cache
