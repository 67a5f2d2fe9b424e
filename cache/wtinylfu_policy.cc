// W-TinyLFU, the baseline: Caffeine's policy (Einziger, Friedman, Manes, "TinyLFU: A Highly
// Efficient Cache Admission Policy", TOS 2017) with a static window, for trace replay.
//
//   window     LRU of 1 % of the slots (at least one). Every new row enters here.
//   probation  LRU, the main area's rows not (or no longer) proven popular.
//   protected  LRU of at most 80 % of the main area: rows hit while in probation. Its overflow
//              is demoted to probation's most recent end.
//   sketch     FrequencySketch of every access (hits and misses), 8 bytes per slot as Caffeine.
// On a miss with the shard full, the window's least recent row (the candidate) duels
// probation's least recent row (the victim; protected's when probation is empty): the
// candidate moves to probation only if the sketch says it is more frequent, or, when it is at
// least 6, with probability 1/128 (Caffeine's defence against hash flooding; the draw comes
// from a seeded PRNG, so replays are deterministic). The loser's slot takes the new row, which
// always enters the window. Pinned rows are never the candidate or the victim: a pinned window
// row moves to probation without a duel, a pinned main row to its list's most recent end.
//
// Hits move rows between and within lists: concurrent_hits() is false (single-threaded replay).
//
// Memory per slot: 8 B links + 1 B list tag + 8 B sketch (plus 4 B per slot given back by
// OnFree, rare).
//
// Thread safety: none beyond the shard lock; not for concurrent hits.
#include <memory>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/frequency_sketch.h"
#include "cache/policy_helpers.h"
#include "cache/slot_queue.h"

namespace engram::cache {
namespace {

constexpr uint32_t kSketchBytesPerSlot = 8;  // Caffeine's
constexpr uint32_t kWarmCandidate = 6;       // Caffeine's ADMIT_HASHDOS_THRESHOLD

enum ListId : uint8_t { kNone, kWindow, kProbation, kProtected };

class WTinyLfuPolicy final : public ShardPolicy {
 public:
  // Caffeine: window = maximum - (long) (0.99 * maximum); protected = 80 % of the rest.
  explicit WTinyLfuPolicy(uint32_t slots)
      : window_max_(slots - static_cast<uint32_t>(uint64_t{slots} * 99 / 100)),
        protected_max_(static_cast<uint32_t>(uint64_t{slots - window_max_} * 8 / 10)),
        prev_(slots, kNoSlot),
        next_(slots, kNoSlot),
        list_(slots, kNone),
        free_(slots),
        sketch_(slots, kSketchBytesPerSlot, /*conservative_update=*/false) {}

  void OnHit(uint32_t slot, uint64_t hash) override {
    sketch_.Increment(hash);
    switch (list_[slot]) {
      case kWindow:
        MoveToFront(slot);
        break;
      case kProbation:
        Unlink(slot);
        PushFront(kProtected, slot);
        if (lists_[kProtected].size > protected_max_) {
          const uint32_t demoted = lists_[kProtected].tail;
          Unlink(demoted);
          PushFront(kProbation, demoted);
        }
        break;
      case kProtected:
        MoveToFront(slot);
        break;
      default:
        break;
    }
  }

  Placement OnMiss(uint64_t hash, const SlotView& view) override {
    sketch_.Increment(hash);
    if (const uint32_t slot = free_.Take(); slot != kNoSlot) return {Placement::kFree, slot};
    const uint32_t candidate = PopCandidate(view);
    ListId victim_list = kNone;
    const uint32_t victim = PopVictim(view, &victim_list);
    if (candidate == kNoSlot && victim == kNoSlot) return {Placement::kReject, 0};
    if (victim == kNoSlot) return {Placement::kEvict, candidate};
    if (candidate == kNoSlot) return {Placement::kEvict, victim};
    if (Admit(view.hash(candidate), view.hash(victim))) {
      PushFront(kProbation, candidate);
      return {Placement::kEvict, victim};
    }
    PushBack(victim_list, victim);  // keeps its place: it was the least recent
    return {Placement::kEvict, candidate};
  }

  void OnInsert(uint32_t slot, uint64_t) override {
    PushFront(kWindow, slot);
    // While the shard fills up, the window's overflow goes to probation without a duel.
    while (lists_[kWindow].size > window_max_) {
      const uint32_t overflow = lists_[kWindow].tail;
      Unlink(overflow);
      PushFront(kProbation, overflow);
    }
  }

  void OnFree(uint32_t slot) override { free_.GiveBack(slot); }

  uint64_t memory_bytes() const override {
    return (prev_.capacity() + next_.capacity()) * sizeof(uint32_t) + list_.capacity() +
           free_.memory_bytes() + sketch_.memory_bytes() + sizeof(*this);
  }

 private:
  struct List {
    uint32_t head = kNoSlot;  // most recent
    uint32_t tail = kNoSlot;  // least recent
    uint32_t size = 0;
  };

  // The window's least recent unpinned row, unlinked; pinned ones go to probation.
  uint32_t PopCandidate(const SlotView& view) {
    while (lists_[kWindow].size > 0) {
      const uint32_t slot = lists_[kWindow].tail;
      Unlink(slot);
      if (!view.pinned(slot)) return slot;
      PushFront(kProbation, slot);
    }
    return kNoSlot;
  }

  // Probation's least recent unpinned row (protected's when probation has none), unlinked.
  uint32_t PopVictim(const SlotView& view, ListId* from) {
    for (ListId id : {kProbation, kProtected}) {
      for (uint32_t budget = lists_[id].size; budget > 0; --budget) {
        const uint32_t slot = lists_[id].tail;
        Unlink(slot);
        if (!view.pinned(slot)) {
          *from = id;
          return slot;
        }
        PushFront(id, slot);
      }
    }
    return kNoSlot;
  }

  bool Admit(uint64_t candidate_hash, uint64_t victim_hash) {
    const uint32_t candidate = sketch_.Frequency(candidate_hash);
    const uint32_t victim = sketch_.Frequency(victim_hash);
    if (candidate > victim) return true;
    return candidate >= kWarmCandidate && (rng_.Next() & 127) == 0;
  }

  void PushFront(ListId id, uint32_t slot) {
    List& l = lists_[id];
    list_[slot] = id;
    prev_[slot] = kNoSlot;
    next_[slot] = l.head;
    (l.head == kNoSlot ? l.tail : prev_[l.head]) = slot;
    l.head = slot;
    ++l.size;
  }

  void PushBack(ListId id, uint32_t slot) {
    List& l = lists_[id];
    list_[slot] = id;
    next_[slot] = kNoSlot;
    prev_[slot] = l.tail;
    (l.tail == kNoSlot ? l.head : next_[l.tail]) = slot;
    l.tail = slot;
    ++l.size;
  }

  void Unlink(uint32_t slot) {
    List& l = lists_[list_[slot]];
    const uint32_t p = prev_[slot], n = next_[slot];
    (p == kNoSlot ? l.head : next_[p]) = n;
    (n == kNoSlot ? l.tail : prev_[n]) = p;
    prev_[slot] = next_[slot] = kNoSlot;
    list_[slot] = kNone;
    --l.size;
  }

  void MoveToFront(uint32_t slot) {
    const ListId id = static_cast<ListId>(list_[slot]);
    if (lists_[id].head == slot) return;
    Unlink(slot);
    PushFront(id, slot);
  }

  const uint32_t window_max_;
  const uint32_t protected_max_;
  std::vector<uint32_t> prev_;  // towards the most recent
  std::vector<uint32_t> next_;  // towards the least recent
  std::vector<uint8_t> list_;   // ListId of each slot
  List lists_[4];               // indexed by ListId (kNone unused)
  FreeSlots free_;
  FrequencySketch sketch_;
  SplitMix64 rng_{0x5EEDull};
};

}  // namespace

std::shared_ptr<const PolicyFactory> NewWTinyLfuPolicyFactory() {
  return MakePolicyFactory<WTinyLfuPolicy>("wtinylfu", false);
}

}  // namespace engram::cache
