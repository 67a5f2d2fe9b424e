// CLOCK (second chance): one reference bit per slot and a hand that sweeps the slots in order.
// A hit sets the slot's bit (a relaxed atomic store, no lock); on a miss with the shard full the
// hand clears set bits and stops at the first unpinned slot whose bit is clear. Every row is
// admitted. The hand passes over pinned slots without touching them, so rows pinned forever
// cost one step per revolution.
//
// Memory per slot: 1 B reference bit (plus 4 B per slot given back by OnFree, rare).
//
// Thread safety: as cache_policy.h: OnHit is lock-free; everything else under the shard lock.
#include <atomic>
#include <memory>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/policy_helpers.h"
#include "cache/slot_queue.h"

namespace engram::cache {
namespace {

class ClockPolicy final : public ShardPolicy {
 public:
  explicit ClockPolicy(uint32_t slots)
      : slots_(slots), referenced_(new std::atomic<uint8_t>[slots]), free_(slots) {
    for (uint32_t s = 0; s < slots; ++s) referenced_[s].store(0, std::memory_order_relaxed);
  }

  void OnHit(uint32_t slot, uint64_t) override {
    // Test before set: a hot row's bit is usually set already, and a load keeps the line shared.
    if (referenced_[slot].load(std::memory_order_relaxed) == 0) {
      referenced_[slot].store(1, std::memory_order_relaxed);
    }
  }

  Placement OnMiss(uint64_t, const SlotView& view) override {
    if (const uint32_t slot = free_.Take(); slot != kNoSlot) return {Placement::kFree, slot};
    // Full: every slot holds a row or an insert in flight (pinned). Two revolutions clear every
    // bit a hit does not set again; after that the last unpinned slot seen is taken anyway.
    uint32_t last_unpinned = kNoSlot;
    for (uint64_t step = 0; step < 2 * uint64_t{slots_}; ++step) {
      const uint32_t slot = hand_;
      hand_ = hand_ + 1 == slots_ ? 0 : hand_ + 1;
      if (view.pinned(slot)) continue;
      if (referenced_[slot].load(std::memory_order_relaxed) != 0) {
        referenced_[slot].store(0, std::memory_order_relaxed);
        last_unpinned = slot;
        continue;
      }
      return {Placement::kEvict, slot};
    }
    if (last_unpinned != kNoSlot && !view.pinned(last_unpinned)) {
      return {Placement::kEvict, last_unpinned};
    }
    return {Placement::kReject, 0};
  }

  void OnInsert(uint32_t slot, uint64_t) override {
    referenced_[slot].store(0, std::memory_order_relaxed);
  }

  void OnFree(uint32_t slot) override { free_.GiveBack(slot); }

  uint64_t memory_bytes() const override {
    return uint64_t{slots_} * sizeof(std::atomic<uint8_t>) + free_.memory_bytes() + sizeof(*this);
  }

 private:
  const uint32_t slots_;
  std::unique_ptr<std::atomic<uint8_t>[]> referenced_;  // set by OnHit without the lock
  FreeSlots free_;
  uint32_t hand_ = 0;
};

}  // namespace

std::shared_ptr<const PolicyFactory> NewClockPolicyFactory() {
  return MakePolicyFactory<ClockPolicy>("clock", true);
}

}  // namespace engram::cache
