// Cache policies: admission and eviction for one shard of a RowCache (DRAM tier, HBM directory,
// trace replay). A policy sees slot numbers and row hashes, never row bytes.
//
// Protocol, per shard (the RowCache drives it):
//   hit:    OnHit(slot, hash)                    no lock, from any thread (see below)
//   miss:   p = OnMiss(hash, view)               shard lock held
//           p.kind == kReject: nothing changes (not admitted, or nothing evictable)
//           else the cache fills p.slot (evicting its row when p.kind == kEvict), then either
//           OnInsert(p.slot, hash)                shard lock held: the row is in
//           OnFree(p.slot)                        shard lock held: the insert was abandoned
// OnMiss records the access itself (e.g. in its frequency sketch); OnHit records hits. A slot
// returned by OnMiss has left every queue of the policy until OnInsert or OnFree.
//
// Pinned slots (rows a reader holds, rows pinned from a profile, inserts in flight) must never
// be returned as kEvict: policies ask `view.pinned(slot)` and pass over them. When every
// candidate is pinned the policy returns kReject rather than loop.
//
// Thread safety: OnHit may run concurrently with any call, including OnMiss on another thread;
// it must take no lock and move no queue node (set a bit, bump a saturating counter, increment
// a sketch). Policies whose OnHit does more (LRU moves a node) report concurrent_hits() == false
// and are for single-threaded replay only. All other calls are serialised by the shard lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace engram::cache {

// What a policy may ask the cache about an occupied slot, under the shard lock.
class SlotView {
 public:
  virtual ~SlotView() = default;
  // True when the row in `slot` must not be evicted now.
  virtual bool pinned(uint32_t slot) const = 0;
  // HashRowId() of the row in `slot`. REQUIRES: `slot` holds a row.
  virtual uint64_t hash(uint32_t slot) const = 0;
};

struct Placement {
  enum Kind { kReject, kFree, kEvict };
  Kind kind = kReject;
  uint32_t slot = 0;  // kFree: an empty slot; kEvict: an occupied, unpinned slot to overwrite
};

class ShardPolicy {
 public:
  virtual ~ShardPolicy() = default;
  // The row hashed `hash` in `slot` was read. Lock-free (see Thread safety).
  virtual void OnHit(uint32_t slot, uint64_t hash) = 0;
  // A miss for the row hashed `hash`: where to put it, or kReject.
  virtual Placement OnMiss(uint64_t hash, const SlotView& view) = 0;
  // The row hashed `hash` now occupies `slot` (returned by the last OnMiss).
  virtual void OnInsert(uint32_t slot, uint64_t hash) = 0;
  // `slot` (returned by OnMiss) stays empty: the insert was abandoned.
  virtual void OnFree(uint32_t slot) = 0;
  // Bytes of policy state for this shard: queues, per-slot state, its share of any sketch.
  virtual uint64_t memory_bytes() const = 0;
};

class PolicyFactory {
 public:
  virtual ~PolicyFactory() = default;
  // A policy for a shard of `slots` slots. REQUIRES: slots >= 1.
  virtual std::unique_ptr<ShardPolicy> NewShardPolicy(uint32_t slots) const = 0;
  // The policies of one cache's shards, shard i of shard_slots[i] slots. By default each is a
  // NewShardPolicy; a policy whose shards share state across the cache (the default policy's
  // tuner) makes it here.
  virtual std::vector<std::unique_ptr<ShardPolicy>> NewCachePolicies(
      const std::vector<uint32_t>& shard_slots) const;
  // The name NewPolicyFactory() accepts.
  virtual std::string name() const = 0;
  // True when OnHit is safe without the shard lock (required for concurrent RowCache use).
  virtual bool concurrent_hits() const = 0;
};

// The policy named `name` ("default" and the candidates: see PolicyNames()), or null when the
// name is unknown. "opt" is not a policy (it needs the future): see cache/replay.h.
std::shared_ptr<const PolicyFactory> NewPolicyFactory(std::string_view name);
// Every name NewPolicyFactory() accepts, "default" first.
std::vector<std::string> PolicyNames();

// Individual factories (each in its own file).
std::shared_ptr<const PolicyFactory> NewDefaultPolicyFactory();     // default_policy.cc
std::shared_ptr<const PolicyFactory> NewLruPolicyFactory();         // lru_policy.cc
std::shared_ptr<const PolicyFactory> NewClockPolicyFactory();       // clock_policy.cc
std::shared_ptr<const PolicyFactory> NewSievePolicyFactory();       // sieve_policy.cc
std::shared_ptr<const PolicyFactory> NewS3FifoPolicyFactory();      // s3fifo_policy.cc
std::shared_ptr<const PolicyFactory> NewWTinyLfuPolicyFactory();    // wtinylfu_policy.cc
std::shared_ptr<const PolicyFactory> NewSampledLfuPolicyFactory();  // sampled_lfu_policy.cc

}  // namespace engram::cache
