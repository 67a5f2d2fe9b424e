// RowCache: shards of fixed slots; see row_cache.h for the contract.
//
// Slot states, told by the slot's pin word (bit 15 BUSY, bits 0..14 pin count):
//   BUSY         no published row: empty, or being filled (reserved by BeginInsert). Readers
//                never pin it; the policy sees it as pinned.
//   0            a committed row nobody holds: evictable.
//   n (1..32767) a committed row held by n pins (a pinned-forever row holds one for good).
// A reader pins with a compare-and-swap that refuses BUSY, then re-checks the slot's id. A
// writer claims a committed row for eviction with a compare-and-swap 0 -> BUSY (acquire: the
// readers' last copies of the old bytes happen before the new bytes are written), and
// CommitInsert publishes the new bytes with a release store of 0 (or 1).
//
// Slots are numbered globally: shard i owns [base_i, base_i + slots_i), the capacity split as
// evenly as possible (the first capacity % shards shards get one slot more).
#include "cache/row_cache.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <mutex>
#include <new>

#include "cache/row_hash.h"
#include "cache/row_index.h"

namespace engram::cache {
namespace {

constexpr uint16_t kBusy = 0x8000;
constexpr uint16_t kMaxPins = 0x7FFF;
// Shards hold fewer slots than this, so slot numbers fit the index entries.
constexpr uint64_t kMaxShardSlots = uint64_t{1} << 30;

struct ArenaFree {
  void operator()(uint8_t* p) const { ::operator delete (p, std::align_val_t{64}); }
};

// Constructs n atomics holding `value` in the memory at `where`; returns the array.
template <typename T>
std::atomic<T>* NewAtomics(uint8_t* where, size_t n, T value) {
  auto* a = reinterpret_cast<std::atomic<T>*>(where);
  for (size_t i = 0; i < n; ++i) new (&a[i]) std::atomic<T>(value);
  return a;
}

uint64_t RoundUp64(uint64_t bytes) { return (bytes + 63) / 64 * 64; }

}  // namespace

// Where a shard's lock-free arrays live in the cache's LargeBuffer, and their sizes.
struct RowCache::ShardMemory {
  static uint64_t Bytes(uint32_t slots) {
    return RoundUp64(uint64_t{slots} * sizeof(uint64_t)) +
           RoundUp64(uint64_t{slots} * sizeof(uint16_t)) +
           RoundUp64(uint64_t{RowIndex::TableSizeFor(slots)} * sizeof(uint32_t));
  }
  // Lays the arrays out at `at` (Bytes(slots) bytes).
  ShardMemory(uint8_t* at, uint32_t slots) {
    ids = NewAtomics<uint64_t>(at, slots, 0);
    at += RoundUp64(uint64_t{slots} * sizeof(uint64_t));
    pins = NewAtomics<uint16_t>(at, slots, 0);
    at += RoundUp64(uint64_t{slots} * sizeof(uint16_t));
    index = NewAtomics<uint32_t>(at, RowIndex::TableSizeFor(slots), 0);
  }
  std::atomic<uint64_t>* ids;
  std::atomic<uint16_t>* pins;
  std::atomic<uint32_t>* index;
};

class RowCache::Shard {
 public:
  Shard(uint64_t base, uint32_t slots, uint32_t row_bytes, std::unique_ptr<ShardPolicy> policy,
        const ShardMemory& memory)
      : base_(base),
        slots_(slots),
        row_bytes_(row_bytes),
        ids_(memory.ids),
        pins_(memory.pins),
        index_(slots, ids_, memory.index),
        policy_(std::move(policy)),
        view_(this) {
    for (uint32_t s = 0; s < slots; ++s) pins_[s].store(kBusy, std::memory_order_relaxed);
    if (row_bytes > 0) {
      // Not touched here: the pages fault in as slots are first filled.
      const uint64_t bytes = (uint64_t{slots} * row_bytes + 63) / 64 * 64;
      rows_.reset(static_cast<uint8_t*>(::operator new (bytes, std::align_val_t{64})));
    }
  }

  uint64_t base() const { return base_; }

  // Pins the slot of `id` and records the hit. Lock-free.
  bool TryPin(uint64_t id, uint64_t hash, uint32_t* slot) {
    if (id >= RowIndex::kPending) return false;
    const uint32_t s = index_.Find(id, hash);
    if (s == RowIndex::kNotFound) return false;
    std::atomic<uint16_t>& pin = pins_[s];
    uint16_t p = pin.load(std::memory_order_relaxed);
    do {
      if ((p & kBusy) != 0 || p == kMaxPins) return false;
    } while (
        !pin.compare_exchange_weak(p, p + 1, std::memory_order_acquire, std::memory_order_relaxed));
    // The slot may have been refilled between Find and the pin; while pinned it cannot be.
    if (ids_[s].load(std::memory_order_relaxed) != id) {
      Unpin(s);
      return false;
    }
    policy_->OnHit(s, hash);
    *slot = s;
    return true;
  }

  // A hit without a pin: the index probe and the id (a row being inserted is stored pending,
  // so Find skips it), no pin word and no atomic read-modify-write, so a hot row's cache lines
  // stay shared between the cores that read it. If the slot is evicted and refilled between
  // the id check and OnHit, the new row gets the hit's count: harmless to a policy, and rare.
  bool TryTouch(uint64_t id, uint64_t hash) {
    if (id >= RowIndex::kPending) return false;
    const uint32_t s = index_.Find(id, hash);
    if (s == RowIndex::kNotFound) return false;
    policy_->OnHit(s, hash);
    return true;
  }

  void Unpin(uint32_t slot) { pins_[slot].fetch_sub(1, std::memory_order_release); }

  const uint8_t* row(uint32_t slot) const {
    return rows_ ? rows_.get() + uint64_t{slot} * row_bytes_ : nullptr;
  }

  void PrefetchEntry(uint64_t hash) const { index_.PrefetchEntry(hash); }
  // Prefetches the id (and, for a pin, the pin word) of the slot the probe for `hash` meets
  // first.
  void PrefetchSlot(uint64_t hash, bool pin) const {
    const uint32_t s = index_.FirstSlot(hash);
    if (s == RowIndex::kNotFound) return;
    __builtin_prefetch(&ids_[s]);
    if (pin) __builtin_prefetch(&pins_[s]);
  }

  InsertOutcome BeginInsert(uint64_t id, uint64_t hash, InsertSlot* out) {
    if (id >= RowIndex::kPending) return InsertOutcome::kRejected;  // not a row id
    std::lock_guard<std::mutex> lock(mu_);
    if (index_.FindAny(id, hash) != RowIndex::kNotFound) return InsertOutcome::kPresent;
    const Placement p = policy_->OnMiss(hash, view_);
    if (p.kind == Placement::kReject || !Claim(p)) {
      ++rejections_;
      return InsertOutcome::kRejected;
    }
    const uint32_t s = p.slot;
    ids_[s].store(id | RowIndex::kPending, std::memory_order_relaxed);
    index_.Insert(hash, s);  // from now on BeginInsert(id) answers kPresent; readers miss it
    out->data = rows_ ? rows_.get() + uint64_t{s} * row_bytes_ : nullptr;
    out->slot = base_ + s;
    out->id = id;
    return InsertOutcome::kReserved;
  }

  // True while rows pinned forever take less than `max_share` of the slots.
  bool HasRoomToPinForever(double max_share) {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<double>(pinned_ + 1) <= max_share * static_cast<double>(slots_);
  }

  void CommitInsert(uint32_t slot, uint64_t id, bool pin_forever) {
    std::lock_guard<std::mutex> lock(mu_);
    assert(pins_[slot].load(std::memory_order_relaxed) == kBusy);
    policy_->OnInsert(slot, HashRowId(id));
    ++inserts_;
    ++size_;
    if (pin_forever) ++pinned_;
    // The id without kPending: Find matches it from now on (a Touch may count a hit at once).
    ids_[slot].store(id, std::memory_order_relaxed);
    // Release: publishes the row bytes to the readers whose pin reads this value.
    pins_[slot].store(pin_forever ? 1 : 0, std::memory_order_release);
  }

  void AbortInsert(uint32_t slot, uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    assert(pins_[slot].load(std::memory_order_relaxed) == kBusy);
    const bool erased = index_.Erase(id, HashRowId(id));
    assert(erased);
    (void)erased;
    policy_->OnFree(slot);  // the slot stays BUSY, i.e. empty
  }

  void AddStats(RowCacheStats* stats) {
    std::lock_guard<std::mutex> lock(mu_);
    stats->size_rows += size_;
    stats->pinned_rows += pinned_;
    stats->inserts += inserts_;
    stats->rejections += rejections_;
    stats->evictions += evictions_;
    stats->metadata_bytes += uint64_t{slots_} * (sizeof(ids_[0]) + sizeof(pins_[0])) +
                             index_.memory_bytes() + policy_->memory_bytes();
  }

 private:
  class View final : public SlotView {
   public:
    explicit View(const Shard* shard) : shard_(shard) {}
    bool pinned(uint32_t slot) const override {
      return shard_->pins_[slot].load(std::memory_order_relaxed) != 0;
    }
    uint64_t hash(uint32_t slot) const override {
      return HashRowId(shard_->ids_[slot].load(std::memory_order_relaxed) & ~RowIndex::kPending);
    }

   private:
    const Shard* shard_;
  };

  // Takes the slot of placement `p` (kFree or kEvict) for filling: true when it is now BUSY
  // and out of the index. False when a reader pinned the victim after the policy chose it
  // (the victim stays, handed back to the policy) or the policy broke its contract.
  bool Claim(const Placement& p) {  // REQUIRES(mu_)
    assert(p.slot < slots_);
    if (p.slot >= slots_) return false;
    std::atomic<uint16_t>& pin = pins_[p.slot];
    if (p.kind == Placement::kFree) {
      assert(pin.load(std::memory_order_relaxed) == kBusy);  // empty slots are BUSY
      return pin.load(std::memory_order_relaxed) == kBusy;
    }
    uint16_t expected = 0;
    if (!pin.compare_exchange_strong(expected, kBusy, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      assert((expected & kBusy) == 0);  // the policy evicted an empty or reserved slot
      if ((expected & kBusy) == 0) policy_->OnInsert(p.slot, view_.hash(p.slot));
      return false;
    }
    const uint64_t victim = ids_[p.slot].load(std::memory_order_relaxed);
    const bool erased = index_.Erase(victim, HashRowId(victim));
    assert(erased);
    (void)erased;
    ++evictions_;
    --size_;
    return true;
  }

  // Constant after construction.
  const uint64_t base_;
  const uint32_t slots_;
  const uint32_t row_bytes_;
  // Written under mu_, read lock-free (see the file comment). In the cache's LargeBuffer.
  std::atomic<uint64_t>* const ids_;
  std::atomic<uint16_t>* const pins_;
  RowIndex index_;
  // OnHit lock-free, every other call under mu_.
  const std::unique_ptr<ShardPolicy> policy_;
  std::unique_ptr<uint8_t, ArenaFree> rows_;  // bytes written by the inserter of a BUSY slot
  const View view_;

  alignas(64) std::mutex mu_;  // on its own line: readers never write the lines above
  uint64_t size_ = 0;          // GUARDED_BY(mu_)
  uint64_t pinned_ = 0;        // GUARDED_BY(mu_)
  uint64_t inserts_ = 0;       // GUARDED_BY(mu_)
  uint64_t rejections_ = 0;    // GUARDED_BY(mu_)
  uint64_t evictions_ = 0;     // GUARDED_BY(mu_)
};

namespace {

// Shard of global slot `slot` when `capacity` slots are split over `shards` shards as the
// constructor splits them.
inline uint32_t ShardOfSlot(uint64_t slot, uint64_t capacity, uint64_t shards) {
  const uint64_t small = capacity / shards;  // >= 1
  const uint64_t big_count = capacity % shards;
  const uint64_t big_end = big_count * (small + 1);
  if (slot < big_end) return static_cast<uint32_t>(slot / (small + 1));
  return static_cast<uint32_t>(big_count + (slot - big_end) / small);
}

}  // namespace

RowCache::RowCache(const RowCacheOptions& options)
    : capacity_rows_(std::max<uint64_t>(options.capacity_rows, 1)),
      row_bytes_(options.row_bytes),
      max_pinned_share_(options.max_pinned_share),
      policy_(options.policy ? options.policy : NewDefaultPolicyFactory()) {
  assert(options.capacity_rows >= 1);
  uint64_t shards = std::clamp<uint64_t>(options.shards, 1, capacity_rows_);
  shards = std::max(shards, (capacity_rows_ + kMaxShardSlots - 1) / kMaxShardSlots);
  std::vector<uint32_t> shard_slots(shards);
  for (uint64_t i = 0; i < shards; ++i) {
    shard_slots[i] =
        static_cast<uint32_t>(capacity_rows_ / shards + (i < capacity_rows_ % shards ? 1 : 0));
  }
  std::vector<std::unique_ptr<ShardPolicy>> policies = policy_->NewCachePolicies(shard_slots);
  assert(policies.size() == shards);
  uint64_t memory_bytes = 0;
  for (const uint32_t slots : shard_slots) memory_bytes += ShardMemory::Bytes(slots);
  memory_ = LargeBuffer(memory_bytes);
  shards_.reserve(shards);
  uint64_t base = 0;
  uint8_t* at = memory_.data();
  for (uint64_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<Shard>(
        base, shard_slots[i], row_bytes_, std::move(policies[i]), ShardMemory(at, shard_slots[i])));
    base += shard_slots[i];
    at += ShardMemory::Bytes(shard_slots[i]);
  }
  assert(base == capacity_rows_);
}

RowCache::~RowCache() = default;

RowCache::Shard& RowCache::ShardFor(uint64_t hash) const {
  return *shards_[ShardOf(hash, static_cast<uint32_t>(shards_.size()))];
}

bool RowCache::Pin(uint64_t id, PinnedRow* row) {
  const uint64_t hash = HashRowId(id);
  Shard& shard = ShardFor(hash);
  uint32_t s;
  if (!shard.TryPin(id, hash, &s)) return false;
  row->data = shard.row(s);
  row->slot = shard.base() + s;
  row->id = id;
  return true;
}

namespace {

// Calls visit(i, shard, hash) for i in [0, n), running two prefetch stages ahead: at distance
// kAhead the hash is computed and its index line prefetched;
// at kAhead / 2 the slot in the (by then loaded) first index entry has its id prefetched, and
// its pin word when `pin`.
template <typename ShardFn, typename VisitFn>
void BatchLookup(const uint64_t* ids, size_t n, bool pin, ShardFn shard_for, VisitFn visit) {
  constexpr size_t kAhead = 12;
  constexpr size_t kRing = 32;  // > kAhead, a power of two
  uint64_t hashes[kRing] = {};
  for (size_t i = 0; i < std::min(n, kAhead); ++i) {
    hashes[i] = HashRowId(ids[i]);
    shard_for(hashes[i]).PrefetchEntry(hashes[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) {
      const uint64_t h = HashRowId(ids[i + kAhead]);
      hashes[(i + kAhead) % kRing] = h;
      shard_for(h).PrefetchEntry(h);
    }
    if (i + kAhead / 2 < n) {
      const uint64_t h = hashes[(i + kAhead / 2) % kRing];
      shard_for(h).PrefetchSlot(h, pin);
    }
    const uint64_t hash = hashes[i % kRing];
    visit(i, shard_for(hash), hash);
  }
}

}  // namespace

size_t RowCache::PinBatch(const uint64_t* ids, size_t n, PinnedRow* rows, uint8_t* hit) {
  size_t hits = 0;
  BatchLookup(
      ids, n, /*pin=*/true, [this](uint64_t hash) -> Shard& { return ShardFor(hash); },
      [&](size_t i, Shard& shard, uint64_t hash) {
        uint32_t s;
        hit[i] = shard.TryPin(ids[i], hash, &s) ? 1 : 0;
        if (!hit[i]) return;
        rows[i].data = shard.row(s);
        rows[i].slot = shard.base() + s;
        rows[i].id = ids[i];
        ++hits;
      });
  return hits;
}

void RowCache::Release(const PinnedRow& row) {
  Shard& shard = *shards_[ShardOfSlot(row.slot, capacity_rows_, shards_.size())];
  shard.Unpin(static_cast<uint32_t>(row.slot - shard.base()));
}

bool RowCache::Get(uint64_t id, void* dst) {
  assert(row_bytes_ > 0);
  PinnedRow row;
  if (!Pin(id, &row)) return false;
  std::memcpy(dst, row.data, row_bytes_);
  Release(row);
  return true;
}

bool RowCache::Touch(uint64_t id) {
  const uint64_t hash = HashRowId(id);
  Shard& shard = ShardFor(hash);
  return shard.TryTouch(id, hash);
}

size_t RowCache::TouchBatch(const uint64_t* ids, size_t n, uint8_t* hit) {
  size_t hits = 0;
  BatchLookup(
      ids, n, /*pin=*/false, [this](uint64_t hash) -> Shard& { return ShardFor(hash); },
      [&](size_t i, Shard& shard, uint64_t hash) {
        hit[i] = shard.TryTouch(ids[i], hash) ? 1 : 0;
        hits += hit[i];
      });
  return hits;
}

InsertOutcome RowCache::BeginInsert(uint64_t id, InsertSlot* slot) {
  const uint64_t hash = HashRowId(id);
  return ShardFor(hash).BeginInsert(id, hash, slot);
}

void RowCache::CommitInsert(const InsertSlot& slot, bool pin_forever) {
  Shard& shard = *shards_[ShardOfSlot(slot.slot, capacity_rows_, shards_.size())];
  shard.CommitInsert(static_cast<uint32_t>(slot.slot - shard.base()), slot.id, pin_forever);
}

void RowCache::AbortInsert(const InsertSlot& slot) {
  Shard& shard = *shards_[ShardOfSlot(slot.slot, capacity_rows_, shards_.size())];
  shard.AbortInsert(static_cast<uint32_t>(slot.slot - shard.base()), slot.id);
}

bool RowCache::Insert(uint64_t id, const void* row, bool pin_forever) {
  if (pin_forever && !ShardFor(HashRowId(id)).HasRoomToPinForever(max_pinned_share_)) {
    return false;
  }
  InsertSlot slot;
  if (BeginInsert(id, &slot) != InsertOutcome::kReserved) return false;
  if (row_bytes_ > 0 && row != nullptr) std::memcpy(slot.data, row, row_bytes_);
  CommitInsert(slot, pin_forever);
  return true;
}

RowCacheStats RowCache::stats() const {
  RowCacheStats stats;
  stats.capacity_rows = capacity_rows_;
  for (const auto& shard : shards_) shard->AddStats(&stats);
  stats.metadata_bytes_per_row =
      static_cast<double>(stats.metadata_bytes) / static_cast<double>(capacity_rows_);
  return stats;
}

}  // namespace engram::cache
