// CachePolicy: the replacement-policy seam of the DRAM row cache (and, later, the HBM one).
//
// A cache shard owns a fixed array of slots; the policy only sees slot numbers and row ids,
// and decides which slot to give up when the shard is full and whether a new row is worth it.
// storage/ ships CLOCK (second chance), the simple default; cache/ provides the Zipf-aware
// policies through a CachePolicyFactory passed in TableOptions.
//
// Thread safety: a policy object belongs to one shard and is only called with that shard's
// lock held, so implementations need no locking of their own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace engram {

class CachePolicy {
 public:
  virtual ~CachePolicy() = default;
  // Row `id` in `slot` was read.
  virtual void OnHit(uint32_t slot, uint64_t id) = 0;
  // A miss for `id` when the shard is full: returns true to admit it in place of the row
  // `victim_id` that Victim() chose.
  virtual bool Admit(uint64_t id, uint64_t victim_id) = 0;
  // Row `id` now occupies `slot` (a free one, or the victim's).
  virtual void OnInsert(uint32_t slot, uint64_t id) = 0;
  // The slot to evict next. REQUIRES: every slot is occupied.
  virtual uint32_t Victim() = 0;
  // Bytes of policy state per slot (for metadata accounting).
  virtual size_t metadata_bytes_per_slot() const = 0;
};

class CachePolicyFactory {
 public:
  virtual ~CachePolicyFactory() = default;
  virtual std::unique_ptr<CachePolicy> NewShardPolicy(uint32_t slots) const = 0;
  virtual std::string name() const = 0;
};

// CLOCK: a reference bit per slot, a hand that clears bits until it finds a clear one.
// Admits every row.
std::shared_ptr<CachePolicyFactory> NewClockPolicyFactory();

}  // namespace engram
