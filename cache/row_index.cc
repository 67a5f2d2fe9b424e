#include "cache/row_index.h"

#include <bit>
#include <cassert>

#include "cache/row_hash.h"

namespace engram::cache {

RowIndex::RowIndex(uint32_t slots, const std::atomic<uint64_t>* ids)
    : RowIndex(slots, ids, nullptr) {}

RowIndex::RowIndex(uint32_t slots, const std::atomic<uint64_t>* ids, std::atomic<uint32_t>* table)
    : ids_(ids) {
  assert(slots >= 1 && slots < (1u << 31));
  // ceil(slots / 0.8), so the load stays <= 0.8 and an empty entry always ends a probe.
  table_size_ = TableSizeFor(slots);
  slot_bits_ = static_cast<uint32_t>(std::bit_width(slots));
  slot_mask_ = (1u << slot_bits_) - 1;
  if (table == nullptr) {
    owned_table_ = std::make_unique<std::atomic<uint32_t>[]>(table_size_);
    table = owned_table_.get();
  }
  table_ = table;
  for (uint32_t i = 0; i < table_size_; ++i) table_[i].store(kEmpty, std::memory_order_relaxed);
}

uint32_t RowIndex::FindAny(uint64_t id, uint64_t hash) const {
  const uint32_t pos = PositionOf(id, hash);
  return pos == kNotFound ? kNotFound : table_[pos].load(std::memory_order_relaxed) & slot_mask_;
}

uint32_t RowIndex::SlotAt(uint32_t pos) const {
  const uint32_t e = table_[pos].load(std::memory_order_relaxed);
  return e == kEmpty ? kNotFound : e & slot_mask_;
}

void RowIndex::Insert(uint64_t hash, uint32_t slot) {
  assert(count_ < table_size_ - 1 && slot <= slot_mask_);
  uint32_t pos = Home(hash);
  while (table_[pos].load(std::memory_order_relaxed) != kEmpty) pos = Next(pos);
  // Release: a reader that sees the entry sees ids[slot] too.
  table_[pos].store(Tag(hash) | slot, std::memory_order_release);
  ++count_;
}

uint32_t RowIndex::PositionOf(uint64_t id, uint64_t hash) const {
  const uint32_t tag = Tag(hash);
  uint32_t pos = Home(hash);
  for (;;) {
    const uint32_t e = table_[pos].load(std::memory_order_relaxed);
    if (e == kEmpty) return kNotFound;
    if ((e & ~slot_mask_) == tag &&
        (ids_[e & slot_mask_].load(std::memory_order_relaxed) & ~kPending) == id) {
      return pos;
    }
    pos = Next(pos);
  }
}

bool RowIndex::Erase(uint64_t id, uint64_t hash) {
  uint32_t hole = PositionOf(id, hash);
  if (hole == kNotFound) return false;
  // Backward-shift deletion: walk the cluster after the hole; an entry whose home is not in
  // (hole, pos] (cyclically) may move back into the hole, which then moves to its old place.
  // Each moved entry is written to its new place before its old place is reused or cleared,
  // so a reader sees it once or twice, or misses it when the move passes it by.
  for (uint32_t pos = Next(hole);; pos = Next(pos)) {
    const uint32_t e = table_[pos].load(std::memory_order_relaxed);
    if (e == kEmpty) break;
    const uint32_t home =
        Home(HashRowId(ids_[e & slot_mask_].load(std::memory_order_relaxed) & ~kPending));
    const bool stays = hole < pos ? (hole < home && home <= pos) : (hole < home || home <= pos);
    if (stays) continue;
    table_[hole].store(e, std::memory_order_release);
    hole = pos;
  }
  table_[hole].store(kEmpty, std::memory_order_release);
  --count_;
  return true;
}

}  // namespace engram::cache
