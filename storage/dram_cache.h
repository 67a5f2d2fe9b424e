// DramRowCache: a bounded DRAM cache of table rows in front of the NVMe tier.
//
// Capacity is a byte budget for row data; it is split over shards (by a hash of the row id),
// each a fixed slot array plus an id->slot index, guarded by its own mutex. Rows are copied
// out under the shard lock, so a reader never sees a row being overwritten.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "storage/cache_policy.h"

namespace engram {

class DramRowCache {
 public:
  // `capacity_bytes` / `row_bytes` slots in all (at least one per shard).
  DramRowCache(uint64_t capacity_bytes, uint32_t row_bytes, uint32_t shards,
               const CachePolicyFactory& policy);

  // Copies row `id` into `dst` and returns true when cached.
  bool Get(uint64_t id, void* dst);
  // Offers row `id` (row_bytes at `row`) to the cache; the policy may decline it.
  void Put(uint64_t id, const void* row);

  uint64_t capacity_rows() const { return capacity_rows_; }
  uint64_t size_rows() const;
  // Bytes of index + policy state (row bytes excluded).
  uint64_t metadata_bytes() const;

 private:
  struct Shard {
    std::mutex mu;
    std::unordered_map<uint64_t, uint32_t> index;  // GUARDED_BY(mu)
    std::vector<uint64_t> slot_ids;                // GUARDED_BY(mu)
    std::unique_ptr<uint8_t[]> rows;               // GUARDED_BY(mu)
    std::unique_ptr<CachePolicy> policy;           // GUARDED_BY(mu)
    uint32_t slots = 0;                            // constant after construction
  };
  Shard& ShardFor(uint64_t id);

  const uint32_t row_bytes_;
  uint64_t capacity_rows_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace engram
