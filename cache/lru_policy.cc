// LRU: exact least-recently-used replacement, a baseline for trace replay.
//
// A doubly linked list threaded through two slot arrays, most recent at the head. A hit moves
// the row to the head, so OnHit writes shared state: concurrent_hits() is false and the policy
// is for single-threaded use (replay). On a miss with the shard full, the least recent unpinned
// row is evicted; pinned rows met at the tail are moved to the head (that changes nobody
// else's order, and makes rows pinned forever cost O(1) amortised instead of a scan per miss).
// Every row is admitted.
//
// Memory per slot: 8 B (prev and next links; the free list reuses `next`).
//
// Thread safety: none beyond the shard lock; not for concurrent hits.
#include <memory>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/slot_queue.h"

namespace engram::cache {
namespace {

class LruPolicy final : public ShardPolicy {
 public:
  explicit LruPolicy(uint32_t slots)
      : slots_(slots), prev_(slots, kNoSlot), next_(slots, kNoSlot) {}

  void OnHit(uint32_t slot, uint64_t) override {
    if (head_ == slot) return;
    Unlink(slot);
    PushFront(slot);
  }

  Placement OnMiss(uint64_t, const SlotView& view) override {
    if (never_used_ < slots_) return {Placement::kFree, never_used_++};
    if (free_head_ != kNoSlot) {
      const uint32_t slot = free_head_;
      free_head_ = next_[slot];
      return {Placement::kFree, slot};
    }
    for (uint32_t budget = size_; budget > 0; --budget) {
      const uint32_t slot = tail_;
      Unlink(slot);
      if (!view.pinned(slot)) return {Placement::kEvict, slot};
      PushFront(slot);
    }
    return {Placement::kReject, 0};
  }

  void OnInsert(uint32_t slot, uint64_t) override { PushFront(slot); }

  void OnFree(uint32_t slot) override {
    next_[slot] = free_head_;
    free_head_ = slot;
  }

  uint64_t memory_bytes() const override {
    return (prev_.capacity() + next_.capacity()) * sizeof(uint32_t) + sizeof(*this);
  }

 private:
  void PushFront(uint32_t slot) {
    prev_[slot] = kNoSlot;
    next_[slot] = head_;
    if (head_ != kNoSlot) prev_[head_] = slot;
    head_ = slot;
    if (tail_ == kNoSlot) tail_ = slot;
    ++size_;
  }

  void Unlink(uint32_t slot) {
    const uint32_t p = prev_[slot], n = next_[slot];
    (p == kNoSlot ? head_ : next_[p]) = n;
    (n == kNoSlot ? tail_ : prev_[n]) = p;
    prev_[slot] = next_[slot] = kNoSlot;
    --size_;
  }

  const uint32_t slots_;
  std::vector<uint32_t> prev_;  // towards the head (more recent)
  std::vector<uint32_t> next_;  // towards the tail (less recent); the free list when free
  uint32_t head_ = kNoSlot;     // most recent
  uint32_t tail_ = kNoSlot;     // least recent
  uint32_t size_ = 0;           // rows in the list
  uint32_t free_head_ = kNoSlot;
  uint32_t never_used_ = 0;
};

class LruPolicyFactory final : public PolicyFactory {
 public:
  std::unique_ptr<ShardPolicy> NewShardPolicy(uint32_t slots) const override {
    return std::make_unique<LruPolicy>(slots);
  }
  std::string name() const override { return "lru"; }
  bool concurrent_hits() const override { return false; }
};

}  // namespace

std::shared_ptr<const PolicyFactory> NewLruPolicyFactory() {
  return std::make_shared<LruPolicyFactory>();
}

}  // namespace engram::cache
