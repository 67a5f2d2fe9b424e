// RowIndex: the id -> slot index of one RowCache shard (internal to cache/).
//
// Open addressing with linear probing over ceil(slots / 0.8) 4-byte entries (~5 B per slot),
// no tombstones (erase shifts the entries behind the hole back). An entry packs a local slot
// number in its low `slot_bits` bits and, above them, a tag of hash bits that the position
// does not use, so a probe past a different row usually skips it without reading its id.
// The id itself lives in the shard's `ids` array, which the index reads but never writes. An
// id stored with kPending set is a row being inserted: readers (Find) do not match it, the
// writer side (FindAny, Erase) does.
//   position = ReduceInto(low 32 bits of the hash, table size), wrapping at the end
//   tag      = bits 32.. of the hash (the shard uses the top bits)
//
// Thread safety: Insert and Erase must be serialised by the caller (the shard lock), and
// `ids[slot]` must hold the row's id from before its Insert until after its Erase. Find and
// the Prefetch calls take no lock and may run concurrently with one writer: a Find racing an
// Erase that shifts entries may miss a row that is present, and may return a slot whose id
// changed right after it was compared, but never a slot whose id did not equal `id` when it
// was read; callers re-check the id after pinning.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "cache/row_hash.h"

namespace engram::cache {

class RowIndex {
 public:
  static constexpr uint32_t kNotFound = 0xFFFFFFFFu;
  // Set in ids[slot] while the row is being inserted (row ids are below 2^63).
  static constexpr uint64_t kPending = uint64_t{1} << 63;

  // Entries of the table of an index for `slots` rows: ceil(slots / 0.8).
  static uint32_t TableSizeFor(uint32_t slots) {
    return static_cast<uint32_t>((uint64_t{slots} * 5 + 3) / 4);
  }

  // An index for up to `slots` rows, whose ids are ids[0..slots). REQUIRES: 1 <= slots < 2^31;
  // `ids` outlives the index.
  RowIndex(uint32_t slots, const std::atomic<uint64_t>* ids);
  // The same in `table` (TableSizeFor(slots) entries, outliving the index), which the cache
  // places in its huge-page buffer.
  RowIndex(uint32_t slots, const std::atomic<uint64_t>* ids, std::atomic<uint32_t>* table);
  RowIndex(const RowIndex&) = delete;
  RowIndex& operator=(const RowIndex&) = delete;

  // The slot holding `id` (whose HashRowId is `hash`), or kNotFound; a pending row is not
  // found. Lock-free.
  uint32_t Find(uint64_t id, uint64_t hash) const {
    const uint32_t tag = Tag(hash);
    uint32_t pos = Home(hash);
    // Bounded: a reader racing the writer could otherwise, in theory, chase entries forever.
    for (uint32_t probes = 0; probes < table_size_; ++probes) {
      const uint32_t e = table_[pos].load(std::memory_order_acquire);
      if (e == kEmpty) return kNotFound;
      if ((e & ~slot_mask_) == tag) {
        const uint32_t slot = e & slot_mask_;
        if (ids_[slot].load(std::memory_order_relaxed) == id) return slot;
      }
      pos = Next(pos);
    }
    return kNotFound;
  }
  // Find() that also matches a pending row (writer side).
  uint32_t FindAny(uint64_t id, uint64_t hash) const;
  // Starts loading the first index line Find(.., hash) reads. Lock-free.
  void PrefetchEntry(uint64_t hash) const { __builtin_prefetch(&table_[Home(hash)]); }
  // The slot of the first entry Find(.., hash) reads, or kNotFound when it is empty: a guess
  // at the slot to prefetch (it may belong to another row). Lock-free.
  uint32_t FirstSlot(uint64_t hash) const {
    const uint32_t e = table_[Home(hash)].load(std::memory_order_relaxed);
    return e == kEmpty ? kNotFound : e & slot_mask_;
  }

  // Adds `slot`, whose id (hashed `hash`) is already in ids[slot]. REQUIRES: the id is not in
  // the index, fewer than `slots` entries are.
  void Insert(uint64_t hash, uint32_t slot);
  // Removes `id` (hashed `hash`). Returns false when it was not there.
  bool Erase(uint64_t id, uint64_t hash);

  uint32_t size() const { return count_; }  // entries (writer side)
  uint32_t table_size() const { return table_size_; }
  // Where the probe for `hash` starts, in [0, table_size()).
  uint32_t Home(uint64_t hash) const {
    return ReduceInto(static_cast<uint32_t>(hash), table_size_);
  }
  // The slot stored at table position `pos`, or kNotFound (for tests).
  uint32_t SlotAt(uint32_t pos) const;
  uint64_t memory_bytes() const { return uint64_t{table_size_} * sizeof(uint32_t); }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;

  uint32_t Tag(uint64_t hash) const { return static_cast<uint32_t>(hash >> 32) << slot_bits_; }
  uint32_t Next(uint32_t pos) const { return pos + 1 == table_size_ ? 0 : pos + 1; }
  // The table position of `id`, or kNotFound (writer side).
  uint32_t PositionOf(uint64_t id, uint64_t hash) const;

  // Constant after construction.
  const std::atomic<uint64_t>* const ids_;
  uint32_t table_size_ = 0;
  uint32_t slot_bits_ = 0;  // a slot number never fills them, so no entry equals kEmpty
  uint32_t slot_mask_ = 0;
  std::unique_ptr<std::atomic<uint32_t>[]> owned_table_;  // null when the caller gave one
  std::atomic<uint32_t>* table_ = nullptr;
  // Protected by the caller's lock; on its own line, away from what readers load.
  alignas(64) uint32_t count_ = 0;
};

}  // namespace engram::cache
