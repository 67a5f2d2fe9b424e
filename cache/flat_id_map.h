// FlatIdMap: an open-addressing hash map from 64-bit row ids to non-zero integers, for the
// offline passes over whole traces (replay's OPT, trace profiles), where std::unordered_map's
// node per entry costs several times the memory and a cache miss more per lookup.
//
// Linear probing over a power-of-two table kept at most half full (it doubles as it fills);
// a value of 0 marks an empty entry, so callers store non-zero values only (counts, index + 1).
// No erase. Any id, including 0, is a valid key.
//
// Thread safety: none; one thread at a time (internal to cache/).
#pragma once

#include <cstdint>
#include <vector>

namespace engram::cache {

template <typename Value>
class FlatIdMap {
 public:
  explicit FlatIdMap(uint64_t expected = 0) { Rehash(CapacityFor(expected)); }

  uint64_t size() const { return size_; }

  // The value of `id`, or 0 when absent.
  Value Find(uint64_t id) const {
    for (uint64_t i = Home(id);; i = (i + 1) & mask_) {
      if (entries_[i].value == 0) return 0;
      if (entries_[i].key == id) return entries_[i].value;
    }
  }

  // The value of `id`, created as 0 when absent: the caller sets it to non-zero before the
  // next call. The reference is valid until the next call.
  Value& FindOrInsert(uint64_t id) {
    if (2 * (size_ + 1) > entries_.size()) Rehash(2 * entries_.size());
    uint64_t i = Home(id);
    for (; entries_[i].value != 0; i = (i + 1) & mask_) {
      if (entries_[i].key == id) return entries_[i].value;
    }
    entries_[i].key = id;
    ++size_;
    return entries_[i].value;
  }

  // Calls fn(id, value) for every entry, in table order.
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const Entry& e : entries_) {
      if (e.value != 0) fn(e.key, e.value);
    }
  }

 private:
  static uint64_t CapacityFor(uint64_t expected) {
    uint64_t capacity = 16;
    while (capacity < 2 * expected) capacity *= 2;
    return capacity;
  }

  uint64_t Home(uint64_t id) const {  // murmur3's finalizer
    id ^= id >> 33;
    id *= 0xFF51AFD7ED558CCDull;
    id ^= id >> 33;
    id *= 0xC4CEB9FE1A85EC53ull;
    id ^= id >> 33;
    return id & mask_;
  }

  void Rehash(uint64_t capacity) {
    std::vector<Entry> old(capacity);
    old.swap(entries_);
    mask_ = capacity - 1;
    for (const Entry& e : old) {
      if (e.value == 0) continue;
      uint64_t i = Home(e.key);
      while (entries_[i].value != 0) i = (i + 1) & mask_;
      entries_[i] = e;
    }
  }

  struct Entry {
    uint64_t key = 0;
    Value value = 0;
  };

  std::vector<Entry> entries_;
  uint64_t mask_ = 0;
  uint64_t size_ = 0;
};

}  // namespace engram::cache
