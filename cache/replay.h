// Trace replay: simulates a cache on a row-id trace (no I/O, no row bytes) and reports the hit
// ratio. Every policy but "opt" runs through a real RowCache (row_bytes 0, one thread), so a
// replay measures exactly the code the DRAM and HBM tiers run. "opt" is Belady's optimal
// policy with bypass (evict the row used furthest in the future; do not admit a row whose next
// use is later than that), the upper bound no online policy reaches.
//
// Hot rows (a profile, see trace_profile.h) are inserted pinned before the replay starts; they
// take cache capacity and are not counted as accesses.
//
// Thread safety: Replay is a pure function of its inputs; calls may run concurrently.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "storage/status.h"

namespace engram::cache {

struct ReplayOptions {
  // Cache capacity in rows (hot rows included). REQUIRED: >= 1.
  uint64_t cache_rows = 0;
  // A PolicyNames() entry, or "opt".
  std::string policy = "default";
  // RowCache shards. 1 (the default) simulates one policy over the whole cache; the DRAM tier
  // uses 64, which gives nearly the same ratios on large caches. Ignored by "opt".
  uint32_t shards = 1;
  // Rows pinned before the replay (at most cache_rows of them are pinned; see ReplayResult).
  std::vector<uint64_t> hot_rows;
};

struct ReplayResult {
  std::string policy;
  uint64_t cache_rows = 0;
  uint64_t accesses = 0;
  uint64_t hits = 0;
  double hit_ratio = 0;  // hits / accesses (0 for an empty trace)
  uint64_t hot_rows_pinned = 0;
  double seconds = 0;                 // wall time of the replay itself
  double metadata_bytes_per_row = 0;  // of the RowCache (0 for "opt")
};

Result<ReplayResult> Replay(std::span<const uint64_t> trace, const ReplayOptions& options);

}  // namespace engram::cache
