// Sampled LFU with TinyLFU admission: no queues at all.
//
// A FrequencySketch (4 B per slot, aging every 10 x slots samples) records every access. On a
// miss with the shard full, 8 occupied unpinned slots are drawn at random (seeded PRNG, so runs
// are deterministic) and the one whose row the sketch rates least frequent is the victim; the
// new row replaces it only if it is at least as frequent (TinyLFU admission), else the miss is
// rejected. Hits only increment the sketch (lock-free); the per-slot state is one occupancy
// bit, changed under the shard lock.
//
// Memory per slot: 1 bit occupancy + 4 B sketch.
//
// Thread safety: as cache_policy.h: OnHit is lock-free; everything else under the shard lock.
#include <memory>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/frequency_sketch.h"
#include "cache/policy_helpers.h"
#include "cache/row_hash.h"
#include "cache/slot_queue.h"

namespace engram::cache {
namespace {

constexpr uint32_t kSamples = 8;
constexpr uint32_t kDrawsPerSample = 8;  // random draws before falling back to a scan
constexpr uint32_t kSketchBytesPerSlot = 4;

class SampledLfuPolicy final : public ShardPolicy {
 public:
  explicit SampledLfuPolicy(uint32_t slots)
      : slots_(slots),
        occupied_((uint64_t{slots} + 63) / 64, 0),
        free_(slots),
        sketch_(slots, kSketchBytesPerSlot) {}

  void OnHit(uint32_t, uint64_t hash) override { sketch_.Increment(hash); }

  Placement OnMiss(uint64_t hash, const SlotView& view) override {
    sketch_.Increment(hash);
    if (const uint32_t slot = free_.Take(); slot != kNoSlot) return {Placement::kFree, slot};
    uint32_t victim = kNoSlot;
    uint32_t victim_freq = 0;
    auto consider = [&](uint32_t slot) {
      if (!Occupied(slot) || view.pinned(slot)) return false;
      const uint32_t f = sketch_.Frequency(view.hash(slot));
      if (victim == kNoSlot || f < victim_freq) {
        victim = slot;
        victim_freq = f;
      }
      return true;
    };
    uint32_t sampled = 0;
    for (uint32_t draw = 0; draw < kSamples * kDrawsPerSample && sampled < kSamples; ++draw) {
      sampled += consider(ReduceInto(static_cast<uint32_t>(rng_.Next()), slots_));
    }
    if (sampled == 0) {  // nearly everything pinned: one bounded scan from a random start
      const uint32_t start = ReduceInto(static_cast<uint32_t>(rng_.Next()), slots_);
      for (uint32_t i = 0; i < slots_ && victim == kNoSlot; ++i) {
        consider(start + i < slots_ ? start + i : start + i - slots_);
      }
    }
    if (victim == kNoSlot) return {Placement::kReject, 0};
    if (sketch_.Frequency(hash) < victim_freq) return {Placement::kReject, 0};
    SetOccupied(victim, false);
    return {Placement::kEvict, victim};
  }

  void OnInsert(uint32_t slot, uint64_t) override { SetOccupied(slot, true); }

  void OnFree(uint32_t slot) override {
    SetOccupied(slot, false);
    free_.GiveBack(slot);
  }

  uint64_t memory_bytes() const override {
    return occupied_.capacity() * sizeof(uint64_t) + free_.memory_bytes() + sketch_.memory_bytes() +
           sizeof(*this);
  }

 private:
  bool Occupied(uint32_t slot) const { return (occupied_[slot / 64] >> (slot % 64)) & 1; }
  void SetOccupied(uint32_t slot, bool on) {
    const uint64_t bit = uint64_t{1} << (slot % 64);
    occupied_[slot / 64] = on ? (occupied_[slot / 64] | bit) : (occupied_[slot / 64] & ~bit);
  }

  const uint32_t slots_;
  std::vector<uint64_t> occupied_;  // one bit per slot: holds a committed row
  FreeSlots free_;
  FrequencySketch sketch_;
  SplitMix64 rng_{0x5EEDull};
};

}  // namespace

std::shared_ptr<const PolicyFactory> NewSampledLfuPolicyFactory() {
  return MakePolicyFactory<SampledLfuPolicy>("sampled-lfu", true);
}

}  // namespace engram::cache
