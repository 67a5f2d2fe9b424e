#include "cache/default_policy.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "cache/frequency_sketch.h"
#include "cache/policy_helpers.h"
#include "cache/slot_queue.h"

namespace engram::cache {
namespace {

constexpr uint8_t kMaxCount = 3;

class DefaultPolicy final : public ShardPolicy {
 public:
  DefaultPolicy(uint32_t slots, const DefaultPolicyOptions& options)
      : slots_(slots),
        small_target_(SmallSize(slots, options.small_fraction)),
        promote_frequency_(options.promote_frequency),
        counts_(new std::atomic<uint8_t>[CountBytes(slots)]),
        links_(slots),
        small_(&links_),
        main_(&links_),
        free_(slots),
        sketch_(slots, options.sketch_bytes_per_row) {
    for (uint32_t b = 0; b < CountBytes(slots); ++b) counts_[b].store(0, std::memory_order_relaxed);
  }

  void OnHit(uint32_t slot, uint64_t hash) override {
    IncrementCount(slot);
    sketch_.Increment(hash);
  }

  void Prefetch(uint64_t hash) const override { sketch_.Prefetch(hash); }

  Placement OnMiss(uint64_t hash, const SlotView& view) override {
    sketch_.Increment(hash);
    if (const uint32_t slot = free_.Take(); slot != kNoSlot) return {Placement::kFree, slot};
    const uint32_t victim = PopVictim(view);
    if (victim == kNoSlot) return {Placement::kReject, 0};
    return {Placement::kEvict, victim};
  }

  void OnInsert(uint32_t slot, uint64_t hash) override {
    SetCount(slot, 0);
    (sketch_.Frequency(hash) >= promote_frequency_ ? main_ : small_).PushBack(slot);
  }

  void OnFree(uint32_t slot) override { free_.GiveBack(slot); }

  uint64_t memory_bytes() const override {
    return links_.memory_bytes() + CountBytes(slots_) + sketch_.memory_bytes() +
           free_.memory_bytes() + sizeof(*this);
  }

 private:
  static uint32_t CountBytes(uint32_t slots) { return (slots + 3) / 4; }

  static uint32_t SmallSize(uint32_t slots, double fraction) {
    const double n = std::ceil(static_cast<double>(slots) * std::clamp(fraction, 0.0, 1.0));
    return static_cast<uint32_t>(std::clamp<double>(n, 1, slots));
  }

  // S3-FIFO's eviction: from small while it holds its share (read rows move on to main), else
  // main's first row at count zero. Every row passes small's head at most once and main's at
  // most kMaxCount + 1 times, so the budget only runs out when everything is pinned.
  uint32_t PopVictim(const SlotView& view) {
    for (uint64_t budget = (kMaxCount + 2) * (uint64_t{small_.size()} + main_.size()) + 1;
         budget > 0; --budget) {
      if (!small_.empty() && (small_.size() >= small_target_ || main_.empty())) {
        const uint32_t slot = small_.PopFront();
        if (view.pinned(slot) || Count(slot) > 0) {
          main_.PushBack(slot);
          continue;
        }
        return slot;
      }
      if (main_.empty()) break;
      const uint32_t slot = main_.PopFront();
      if (view.pinned(slot)) {
        main_.PushBack(slot);
        continue;
      }
      if (const uint8_t c = Count(slot); c > 0) {
        SetCount(slot, c - 1);
        main_.PushBack(slot);
        continue;
      }
      return slot;
    }
    return kNoSlot;
  }

  // 2-bit counters, four to a byte. Hits raise them without the lock, so every write is a
  // compare-and-swap of the whole byte (a neighbour's concurrent hit is never lost).
  static int CountShift(uint32_t slot) { return 2 * static_cast<int>(slot & 3); }
  std::atomic<uint8_t>& CountByte(uint32_t slot) const { return counts_[slot >> 2]; }

  uint8_t Count(uint32_t slot) const {
    return (CountByte(slot).load(std::memory_order_relaxed) >> CountShift(slot)) & kMaxCount;
  }

  void IncrementCount(uint32_t slot) {
    std::atomic<uint8_t>& byte = CountByte(slot);
    const int shift = CountShift(slot);
    uint8_t b = byte.load(std::memory_order_relaxed);
    while (((b >> shift) & kMaxCount) < kMaxCount &&
           !byte.compare_exchange_weak(b, static_cast<uint8_t>(b + (1u << shift)),
                                       std::memory_order_relaxed)) {
    }
  }

  void SetCount(uint32_t slot, uint8_t c) {
    std::atomic<uint8_t>& byte = CountByte(slot);
    const int shift = CountShift(slot);
    const auto mask = static_cast<uint8_t>(kMaxCount << shift);
    uint8_t b = byte.load(std::memory_order_relaxed);
    while (!byte.compare_exchange_weak(b, static_cast<uint8_t>((b & ~mask) | (c << shift)),
                                       std::memory_order_relaxed)) {
    }
  }

  const uint32_t slots_;
  const uint32_t small_target_;
  const uint32_t promote_frequency_;
  std::unique_ptr<std::atomic<uint8_t>[]> counts_;  // 2 bits per slot; OnHit writes, no lock
  SlotLinks links_;
  SlotQueue small_;
  SlotQueue main_;
  FreeSlots free_;
  FrequencySketch sketch_;
};

}  // namespace

std::shared_ptr<const PolicyFactory> NewDefaultPolicyFactory(const DefaultPolicyOptions& options) {
  return MakePolicyFactory<DefaultPolicy>("default", true, options);
}

std::shared_ptr<const PolicyFactory> NewDefaultPolicyFactory() {
  return NewDefaultPolicyFactory(DefaultPolicyOptions{});
}

}  // namespace engram::cache
