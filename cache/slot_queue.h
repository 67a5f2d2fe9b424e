// SlotQueue: intrusive FIFO queues of cache slots, 4 bytes per slot for all queues together.
//
// Policies keep their queues (window, main, small, probation...) as singly linked lists
// threaded through one shared `next` array indexed by slot; a slot is in at most one queue.
// Push to the tail, pop from the head, push back to the head: all O(1), no allocation.
// Used only on a cache's miss path (under the shard lock): hits never move a node.
//
// Thread safety: none; the owner serialises every call (the shard lock).
#pragma once

#include <cstdint>
#include <vector>

namespace engram::cache {

inline constexpr uint32_t kNoSlot = 0xFFFFFFFFu;

// The `next` links shared by the queues of one policy.
class SlotLinks {
 public:
  explicit SlotLinks(uint32_t slots) : next_(slots, kNoSlot) {}
  uint32_t& next(uint32_t slot) { return next_[slot]; }
  uint64_t memory_bytes() const { return next_.capacity() * sizeof(uint32_t); }

 private:
  std::vector<uint32_t> next_;
};

class SlotQueue {
 public:
  explicit SlotQueue(SlotLinks* links) : links_(links) {}

  bool empty() const { return head_ == kNoSlot; }
  uint32_t size() const { return size_; }
  uint32_t head() const { return head_; }

  void PushBack(uint32_t slot) {
    links_->next(slot) = kNoSlot;
    if (tail_ == kNoSlot) {
      head_ = slot;
    } else {
      links_->next(tail_) = slot;
    }
    tail_ = slot;
    ++size_;
  }

  void PushFront(uint32_t slot) {
    links_->next(slot) = head_;
    head_ = slot;
    if (tail_ == kNoSlot) tail_ = slot;
    ++size_;
  }

  // REQUIRES: !empty().
  uint32_t PopFront() {
    const uint32_t slot = head_;
    head_ = links_->next(slot);
    if (head_ == kNoSlot) tail_ = kNoSlot;
    links_->next(slot) = kNoSlot;
    --size_;
    return slot;
  }

 private:
  SlotLinks* links_;
  uint32_t head_ = kNoSlot;
  uint32_t tail_ = kNoSlot;
  uint32_t size_ = 0;
};

}  // namespace engram::cache
