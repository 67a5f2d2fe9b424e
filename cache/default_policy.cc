#include "cache/default_policy.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "cache/frequency_sketch.h"
#include "cache/policy_helpers.h"
#include "cache/slot_queue.h"

namespace engram::cache {
namespace {

constexpr uint8_t kMaxCount = 3;

// What a shard does on inserts and evictions: the frequency mode with a promotion threshold,
// or the recency mode.
struct ModeSetting {
  bool recency = false;
  uint32_t promote_frequency = 4;
};
using ModeSettings = std::vector<ModeSetting>;

class DefaultPolicy final : public ShardPolicy {
 public:
  // `tuner` (null unless adaptive) is shared by the cache's shards; `owns_tuner_memory` makes
  // one of them count its shadows.
  DefaultPolicy(uint32_t slots, const DefaultPolicyOptions& options,
                std::shared_ptr<PolicyTuner> tuner, std::shared_ptr<const ModeSettings> settings,
                bool owns_tuner_memory)
      : slots_(slots),
        fixed_{options.mode == DefaultPolicyMode::kRecency, options.promote_frequency},
        tuner_(std::move(tuner)),
        settings_(std::move(settings)),
        owns_tuner_memory_(owns_tuner_memory),
        small_target_(SmallSize(slots, options.small_fraction)),
        counts_(new std::atomic<uint8_t>[CountBytes(slots)]),
        links_(slots),
        small_(&links_),
        main_(&links_),
        free_(slots),
        sketch_(slots, options.sketch_bytes_per_row) {
    for (uint32_t b = 0; b < CountBytes(slots); ++b) counts_[b].store(0, std::memory_order_relaxed);
  }

  void OnHit(uint32_t slot, uint64_t hash) override {
    // A row whose count is saturated is plainly hot: counting it again in the sketch changes
    // no decision while it stays cached, and skipping it keeps hot hits to one load.
    if (IncrementCount(slot)) sketch_.Increment(hash);
    if (tuner_ != nullptr && tuner_->Sampled(hash)) tuner_->Record(hash);
  }

  Placement OnMiss(uint64_t hash, const SlotView& view) override {
    sketch_.Increment(hash);
    if (tuner_ != nullptr && tuner_->Sampled(hash)) tuner_->Record(hash);
    if (const uint32_t slot = free_.Take(); slot != kNoSlot) return {Placement::kFree, slot};
    const uint32_t victim = PopVictim(view);
    if (victim == kNoSlot) return {Placement::kReject, 0};
    return {Placement::kEvict, victim};
  }

  void OnInsert(uint32_t slot, uint64_t hash) override {
    SetCount(slot, 0);
    const ModeSetting m = Current();
    (m.recency || sketch_.Frequency(hash) >= m.promote_frequency ? main_ : small_).PushBack(slot);
  }

  void OnFree(uint32_t slot) override { free_.GiveBack(slot); }

  uint64_t memory_bytes() const override {
    return links_.memory_bytes() + CountBytes(slots_) + sketch_.memory_bytes() +
           free_.memory_bytes() + sizeof(*this) +
           (owns_tuner_memory_ && tuner_ != nullptr ? tuner_->memory_bytes() : 0);
  }

 private:
  static uint32_t CountBytes(uint32_t slots) { return (slots + 3) / 4; }

  static uint32_t SmallSize(uint32_t slots, double fraction) {
    const double n = std::ceil(static_cast<double>(slots) * std::clamp(fraction, 0.0, 1.0));
    return static_cast<uint32_t>(std::clamp<double>(n, 1, slots));
  }

  // Recency mode now (the tuner's choice 1, or fixed).
  ModeSetting Current() const {
    return tuner_ != nullptr ? (*settings_)[tuner_->choice()] : fixed_;
  }

  // S3-FIFO's eviction: from small while it holds its share (read rows move on to main), else
  // main's first row at count zero. Every row passes small's head at most once and main's at
  // most kMaxCount + 1 times, so the budget only runs out when everything is pinned. In
  // recency mode small is drained first (nothing enters it) and main is a CLOCK: a count is
  // cleared, not decremented.
  uint32_t PopVictim(const SlotView& view) {
    const bool recency = Current().recency;
    const uint32_t small_target = recency ? 0 : small_target_;
    for (uint64_t budget = (kMaxCount + 2) * (uint64_t{small_.size()} + main_.size()) + 1;
         budget > 0; --budget) {
      if (!small_.empty() && (small_.size() >= small_target || main_.empty())) {
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
        SetCount(slot, recency ? 0 : c - 1);
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

  // Raises the slot's count unless it is saturated; false when it was.
  bool IncrementCount(uint32_t slot) {
    std::atomic<uint8_t>& byte = CountByte(slot);
    const int shift = CountShift(slot);
    uint8_t b = byte.load(std::memory_order_relaxed);
    do {
      if (((b >> shift) & kMaxCount) == kMaxCount) return false;
    } while (!byte.compare_exchange_weak(b, static_cast<uint8_t>(b + (1u << shift)),
                                         std::memory_order_relaxed));
    return true;
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
  const ModeSetting fixed_;
  const std::shared_ptr<PolicyTuner> tuner_;
  const std::shared_ptr<const ModeSettings> settings_;  // the tuner's candidates
  const bool owns_tuner_memory_;
  const uint32_t small_target_;
  std::unique_ptr<std::atomic<uint8_t>[]> counts_;  // 2 bits per slot; OnHit writes, no lock
  SlotLinks links_;
  SlotQueue small_;
  SlotQueue main_;
  FreeSlots free_;
  FrequencySketch sketch_;
};

class DefaultPolicyFactory final : public PolicyFactory {
 public:
  explicit DefaultPolicyFactory(const DefaultPolicyOptions& options)
      : options_(options), settings_(MakeSettings(options)) {}

  // A shard on its own: its own tuner when adaptive.
  std::unique_ptr<ShardPolicy> NewShardPolicy(uint32_t slots) const override {
    return std::make_unique<DefaultPolicy>(slots, options_, NewTuner(slots), settings_, true);
  }

  // One tuner for the whole cache, so its shadows see the cache's accesses at the cache's size.
  std::vector<std::unique_ptr<ShardPolicy>> NewCachePolicies(
      const std::vector<uint32_t>& shard_slots) const override {
    uint64_t capacity = 0;
    for (const uint32_t slots : shard_slots) capacity += slots;
    const std::shared_ptr<PolicyTuner> tuner = NewTuner(capacity);
    std::vector<std::unique_ptr<ShardPolicy>> policies;
    for (size_t i = 0; i < shard_slots.size(); ++i) {
      policies.push_back(
          std::make_unique<DefaultPolicy>(shard_slots[i], options_, tuner, settings_, i == 0));
    }
    return policies;
  }

  std::string name() const override { return "default"; }
  bool concurrent_hits() const override { return true; }

 private:
  // The tuner of a cache of `capacity` rows: shadows of the frequency and recency modes (in
  // that order: choice 1 is recency). Null when the mode is fixed or the cache is small.
  std::shared_ptr<PolicyTuner> NewTuner(uint64_t capacity) const {
    if (options_.mode != DefaultPolicyMode::kAdaptive ||
        (capacity >> options_.tuner.sample_shift) < DefaultPolicyOptions::kMinShadowRows) {
      return nullptr;
    }
    std::vector<std::shared_ptr<const PolicyFactory>> candidates;
    for (const ModeSetting& m : *settings_) {
      DefaultPolicyOptions fixed = options_;
      fixed.mode = m.recency ? DefaultPolicyMode::kRecency : DefaultPolicyMode::kFrequency;
      fixed.promote_frequency = m.promote_frequency;
      candidates.push_back(NewDefaultPolicyFactory(fixed));
    }
    return std::make_shared<PolicyTuner>(capacity, std::move(candidates), options_.tuner);
  }

  static std::shared_ptr<const ModeSettings> MakeSettings(const DefaultPolicyOptions& options) {
    return std::make_shared<const ModeSettings>(ModeSettings{
        {false, options.promote_frequency},
        {false, options.eager_promote_frequency},
        {true, options.promote_frequency},
    });
  }

  const DefaultPolicyOptions options_;
  const std::shared_ptr<const ModeSettings> settings_;
};

}  // namespace

std::shared_ptr<const PolicyFactory> NewDefaultPolicyFactory(const DefaultPolicyOptions& options) {
  return std::make_shared<DefaultPolicyFactory>(options);
}

std::shared_ptr<const PolicyFactory> NewDefaultPolicyFactory() {
  return NewDefaultPolicyFactory(DefaultPolicyOptions{});
}

}  // namespace engram::cache
