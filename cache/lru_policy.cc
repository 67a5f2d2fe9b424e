// LRU: exact least-recently-used replacement, a baseline for trace replay.
//
// A doubly linked list threaded through two slot arrays, most recent at the head. A hit moves
// the row to the head, so OnHit writes shared state: concurrent_hits() is false and the policy
// is for single-threaded use (replay). On a miss with the shard full, the least recent unpinned
// row is evicted; pinned rows met at the tail are moved to the head (that changes nobody
// else's order, and makes rows pinned forever cost O(1) amortised instead of a scan per miss).
// Every row is admitted.
//
// Memory per slot: 8 B (prev and next links; plus 4 B per slot given back by OnFree, rare).
//
// Thread safety: none beyond the shard lock; not for concurrent hits.
#include <memory>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/policy_helpers.h"
#include "cache/slot_queue.h"

namespace engram::cache {
namespace {

class LruPolicy final : public ShardPolicy {
 public:
  explicit LruPolicy(uint32_t slots) : prev_(slots, kNoSlot), next_(slots, kNoSlot), free_(slots) {}

  void OnHit(uint32_t slot, uint64_t) override {
    if (head_ == slot) return;
    Unlink(slot);
    PushFront(slot);
  }

  Placement OnMiss(uint64_t, const SlotView& view) override {
    if (const uint32_t slot = free_.Take(); slot != kNoSlot) return {Placement::kFree, slot};
    for (uint32_t budget = size_; budget > 0; --budget) {
      const uint32_t slot = tail_;
      Unlink(slot);
      if (!view.pinned(slot)) return {Placement::kEvict, slot};
      PushFront(slot);
    }
    return {Placement::kReject, 0};
  }

  void OnInsert(uint32_t slot, uint64_t) override { PushFront(slot); }

  void OnFree(uint32_t slot) override { free_.GiveBack(slot); }

  uint64_t memory_bytes() const override {
    return (prev_.capacity() + next_.capacity()) * sizeof(uint32_t) + free_.memory_bytes() +
           sizeof(*this);
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

  std::vector<uint32_t> prev_;  // towards the head (more recent)
  std::vector<uint32_t> next_;  // towards the tail (less recent); (kNoSlot when free)
  uint32_t head_ = kNoSlot;     // most recent
  uint32_t tail_ = kNoSlot;     // least recent
  uint32_t size_ = 0;           // rows in the list
  FreeSlots free_;
};

}  // namespace

std::shared_ptr<const PolicyFactory> NewLruPolicyFactory() {
  return MakePolicyFactory<LruPolicy>("lru", false);
}

}  // namespace engram::cache
