// S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction", SOSP'23).
//
//   small  FIFO of 10 % of the slots: every new row enters here, unless the ghost remembers it.
//   main   FIFO with reinsertion for the rest: a row at the head with a non-zero count is
//          decremented and moved to the tail; a row with count 0 is evicted.
//   ghost  the hashes of the last `main size` rows evicted from small. A miss on a ghost row
//          puts it straight into main: it was asked for again soon after a short stay.
// A hit bumps the slot's 2-bit saturating count (0..3) with a relaxed atomic store; no node
// moves. On a miss with the shard full: while small holds at least its share, its head is
// examined (read at least once, or pinned: moved to main; else evicted, its hash to the ghost);
// otherwise main's head is (pinned rows go round without losing count). Every row is admitted.
//
// The ghost is a table of 8-entry buckets (one cache line each) of 32-bit fingerprint +
// 32-bit insertion time: an entry is live while fewer than `capacity` insertions followed it,
// which is the FIFO ghost of the paper except that a full bucket drops its oldest live entry
// early (rare: the table has room for ~1.33 x capacity entries).
//
// Memory per slot: 4 B queue link + 1 B count + ~9.6 B ghost (0.9 x slots entries at ~10.7 B).
//
// Thread safety: as cache_policy.h: OnHit is lock-free; everything else under the shard lock.
#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/policy_helpers.h"
#include "cache/row_hash.h"
#include "cache/slot_queue.h"

namespace engram::cache {
namespace {

constexpr uint8_t kMaxFreq = 3;

// Hashes of recently evicted rows: Contains() is true for the last `capacity` inserted.
class GhostFifo {
 public:
  explicit GhostFifo(uint32_t capacity)
      : capacity_(std::max<uint32_t>(capacity, 1)),
        buckets_((capacity_ + kTargetPerBucket - 1) / kTargetPerBucket),
        entries_(uint64_t{buckets_} * kBucketEntries, 0) {}

  bool Contains(uint64_t hash) const { return Find(hash) != nullptr; }

  void Remove(uint64_t hash) {
    if (uint64_t* e = Find(hash)) *e = 0;
  }

  void Insert(uint64_t hash) {
    const uint64_t mixed = Mix(hash);
    const uint32_t fp = Fingerprint(mixed);
    uint64_t* bucket = Bucket(mixed);
    uint64_t* empty = nullptr;
    uint64_t* oldest = nullptr;
    for (uint32_t i = 0; i < kBucketEntries; ++i) {
      uint64_t* e = &bucket[i];
      if (!Live(*e)) {
        if (empty == nullptr) empty = e;
      } else if (static_cast<uint32_t>(*e >> 32) == fp) {
        empty = e;  // already there: refresh it
        break;
      } else if (oldest == nullptr || Age(*e) > Age(*oldest)) {
        oldest = e;
      }
    }
    *(empty != nullptr ? empty : oldest) = (uint64_t{fp} << 32) | now_;
    ++now_;
  }

  uint64_t memory_bytes() const { return entries_.capacity() * sizeof(uint64_t); }

 private:
  static constexpr uint32_t kBucketEntries = 8;    // 64 bytes
  static constexpr uint32_t kTargetPerBucket = 6;  // live entries per bucket at capacity

  static uint64_t Mix(uint64_t h) {  // the shard chose its rows by the hash's high bits
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    return h;
  }
  static uint32_t Fingerprint(uint64_t mixed) {
    const uint32_t fp = static_cast<uint32_t>(mixed);
    return fp == 0 ? 1 : fp;  // 0 marks an empty entry
  }
  uint64_t* Bucket(uint64_t mixed) const {
    return const_cast<uint64_t*>(entries_.data()) +
           uint64_t{ReduceInto(static_cast<uint32_t>(mixed >> 32), buckets_)} * kBucketEntries;
  }
  // Insertions since `e` was written (1 for the latest).
  uint32_t Age(uint64_t e) const { return now_ - static_cast<uint32_t>(e); }
  bool Live(uint64_t e) const { return e != 0 && Age(e) <= capacity_; }

  uint64_t* Find(uint64_t hash) const {
    const uint64_t mixed = Mix(hash);
    const uint32_t fp = Fingerprint(mixed);
    uint64_t* bucket = Bucket(mixed);
    for (uint32_t i = 0; i < kBucketEntries; ++i) {
      if (static_cast<uint32_t>(bucket[i] >> 32) == fp && Live(bucket[i])) return &bucket[i];
    }
    return nullptr;
  }

  const uint32_t capacity_;
  const uint32_t buckets_;
  std::vector<uint64_t> entries_;  // fingerprint << 32 | insertion time; 0 = empty
  uint32_t now_ = 0;               // insertions so far (wraps; ages are differences)
};

class S3FifoPolicy final : public ShardPolicy {
 public:
  explicit S3FifoPolicy(uint32_t slots)
      : slots_(slots),
        small_target_(std::max<uint32_t>(slots / 10, 1)),
        freq_(new std::atomic<uint8_t>[slots]),
        links_(slots),
        small_(&links_),
        main_(&links_),
        free_(slots),
        ghost_(slots - std::min(slots, small_target_)) {
    for (uint32_t s = 0; s < slots; ++s) freq_[s].store(0, std::memory_order_relaxed);
  }

  void OnHit(uint32_t slot, uint64_t) override {
    const uint8_t f = Freq(slot);
    if (f < kMaxFreq) SetFreq(slot, f + 1);  // a lost race is harmless
  }

  Placement OnMiss(uint64_t, const SlotView& view) override {
    if (const uint32_t slot = free_.Take(); slot != kNoSlot) return {Placement::kFree, slot};
    // Each row passes small's head at most once and main's head at most kMaxFreq + 1 times
    // (plus pinned rows going round): the budget bounds the loop when everything is pinned.
    for (uint64_t budget = (kMaxFreq + 2) * (uint64_t{small_.size()} + main_.size()) + 1;
         budget > 0; --budget) {
      if (!small_.empty() && (small_.size() >= small_target_ || main_.empty())) {
        const uint32_t slot = small_.PopFront();
        if (view.pinned(slot) || Freq(slot) >= 1) {
          main_.PushBack(slot);
          continue;
        }
        ghost_.Insert(view.hash(slot));
        return {Placement::kEvict, slot};
      }
      if (main_.empty()) break;
      const uint32_t slot = main_.PopFront();
      if (view.pinned(slot)) {
        main_.PushBack(slot);
        continue;
      }
      if (const uint8_t f = Freq(slot); f > 0) {
        SetFreq(slot, f - 1);
        main_.PushBack(slot);
        continue;
      }
      return {Placement::kEvict, slot};
    }
    return {Placement::kReject, 0};
  }

  void OnInsert(uint32_t slot, uint64_t hash) override {
    SetFreq(slot, 0);
    if (ghost_.Contains(hash)) {
      ghost_.Remove(hash);
      main_.PushBack(slot);
    } else {
      small_.PushBack(slot);
    }
  }

  void OnFree(uint32_t slot) override { free_.GiveBack(slot); }

  uint64_t memory_bytes() const override {
    return links_.memory_bytes() + uint64_t{slots_} * sizeof(std::atomic<uint8_t>) +
           ghost_.memory_bytes() + free_.memory_bytes() + sizeof(*this);
  }

 private:
  uint8_t Freq(uint32_t slot) const { return freq_[slot].load(std::memory_order_relaxed); }
  void SetFreq(uint32_t slot, uint8_t f) { freq_[slot].store(f, std::memory_order_relaxed); }

  const uint32_t slots_;
  const uint32_t small_target_;
  std::unique_ptr<std::atomic<uint8_t>[]> freq_;  // bumped by OnHit without the lock
  SlotLinks links_;
  SlotQueue small_;
  SlotQueue main_;
  FreeSlots free_;
  GhostFifo ghost_;
};

}  // namespace

std::shared_ptr<const PolicyFactory> NewS3FifoPolicyFactory() {
  return MakePolicyFactory<S3FifoPolicy>("s3fifo", true);
}

}  // namespace engram::cache
