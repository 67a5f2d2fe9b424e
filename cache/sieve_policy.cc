// SIEVE (Zhang et al., "SIEVE is Simpler than LRU", NSDI'24).
//
// One FIFO queue, new rows at the head (newest end), and a hand that walks from the tail
// (oldest) towards the head. A hit sets the row's visited bit (a relaxed atomic store, no lock,
// no node moves). On a miss with the shard full the hand clears visited bits as it passes and
// evicts the first unvisited row, staying where it stopped; past the head it wraps to the tail.
// Rows that survive keep their queue position, so new rows and old popular rows separate
// without any reordering. Pinned rows are passed over like visited ones (their bit untouched).
// Every row is admitted.
//
// The queue is singly linked from oldest to newest: the hand moves along `next`, and removing
// the row at the hand only needs the row before it, which the hand remembers.
//
// Memory per slot: 4 B link + 1 B visited bit (plus 4 B per slot given back by OnFree, rare).
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

class SievePolicy final : public ShardPolicy {
 public:
  explicit SievePolicy(uint32_t slots)
      : slots_(slots),
        next_(slots, kNoSlot),
        visited_(new std::atomic<uint8_t>[slots]),
        free_(slots) {
    for (uint32_t s = 0; s < slots; ++s) visited_[s].store(0, std::memory_order_relaxed);
  }

  void OnHit(uint32_t slot, uint64_t) override {
    if (visited_[slot].load(std::memory_order_relaxed) == 0) {
      visited_[slot].store(1, std::memory_order_relaxed);
    }
  }

  Placement OnMiss(uint64_t, const SlotView& view) override {
    if (const uint32_t slot = free_.Take(); slot != kNoSlot) return {Placement::kFree, slot};
    // Two passes clear every bit that a concurrent hit does not set again.
    uint32_t last_unpinned = kNoSlot;
    for (uint64_t step = 0; step < 2 * uint64_t{size_} + 1 && size_ > 0; ++step) {
      if (hand_ == kNoSlot) {  // wrap to the tail
        hand_ = oldest_;
        hand_prev_ = kNoSlot;
      }
      const uint32_t slot = hand_;
      if (view.pinned(slot)) {
        Advance();
        continue;
      }
      if (visited_[slot].load(std::memory_order_relaxed) != 0) {
        visited_[slot].store(0, std::memory_order_relaxed);
        last_unpinned = slot;
        Advance();
        continue;
      }
      RemoveAtHand();
      return {Placement::kEvict, slot};
    }
    if (last_unpinned != kNoSlot && !view.pinned(last_unpinned)) {
      Remove(last_unpinned);
      return {Placement::kEvict, last_unpinned};
    }
    return {Placement::kReject, 0};
  }

  void OnInsert(uint32_t slot, uint64_t) override {
    visited_[slot].store(0, std::memory_order_relaxed);
    next_[slot] = kNoSlot;
    if (newest_ == kNoSlot) {
      oldest_ = slot;
    } else {
      next_[newest_] = slot;
    }
    newest_ = slot;
    ++size_;
  }

  void OnFree(uint32_t slot) override { free_.GiveBack(slot); }

  uint64_t memory_bytes() const override {
    return next_.capacity() * sizeof(uint32_t) + uint64_t{slots_} * sizeof(std::atomic<uint8_t>) +
           free_.memory_bytes() + sizeof(*this);
  }

 private:
  void Advance() {
    hand_prev_ = hand_;
    hand_ = next_[hand_];
  }

  // Unlinks the row at the hand; the hand moves to the next newer row.
  void RemoveAtHand() {
    const uint32_t slot = hand_;
    const uint32_t after = next_[slot];
    if (hand_prev_ == kNoSlot) {
      oldest_ = after;
    } else {
      next_[hand_prev_] = after;
    }
    if (newest_ == slot) newest_ = hand_prev_;
    next_[slot] = kNoSlot;
    hand_ = after;
    --size_;
  }

  // Unlinks any row (the rare fallback after two passes): a walk from the tail.
  void Remove(uint32_t slot) {
    hand_ = oldest_;
    hand_prev_ = kNoSlot;
    while (hand_ != slot) Advance();
    RemoveAtHand();
  }

  const uint32_t slots_;
  std::vector<uint32_t> next_;                       // towards the newest
  std::unique_ptr<std::atomic<uint8_t>[]> visited_;  // set by OnHit without the lock
  uint32_t oldest_ = kNoSlot;                        // the tail
  uint32_t newest_ = kNoSlot;                        // the head
  uint32_t hand_ = kNoSlot;       // the next row the hand looks at (kNoSlot: wrap)
  uint32_t hand_prev_ = kNoSlot;  // the row before the hand (older), kNoSlot at the tail
  uint32_t size_ = 0;
  FreeSlots free_;
};

}  // namespace

std::shared_ptr<const PolicyFactory> NewSievePolicyFactory() {
  return MakePolicyFactory<SievePolicy>("sieve", true);
}

}  // namespace engram::cache
