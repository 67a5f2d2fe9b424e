// StagingArena: a fixed-size allocator of byte ranges inside one buffer the caller owns (host,
// pinned host or device memory; the arena never reads or writes the bytes, it only hands out
// offsets). The prefetcher's in-flight budget: each ticket's rows and pointer arrays live in
// one allocation of its arenas.
//
// Allocations are 256-byte aligned (kAlignment: a CUDA copy's best alignment, and a multiple
// of any row's alignment needs) and rounded up to a multiple of it. First fit over a free
// list ordered by offset; a freed range merges with free neighbours, so an arena with nothing
// allocated is always one free range again.
//
// Thread safety: none; the owner serialises calls (the prefetcher holds its mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>

#include "storage/status.h"

namespace engram::gpu {

class StagingArena {
 public:
  static constexpr size_t kAlignment = 256;

  // Manages [base, base + capacity) (capacity rounded down to kAlignment). REQUIRES: base is
  // kAlignment-aligned (or null, for an arena that only does the arithmetic).
  StagingArena(void* base, size_t capacity);
  StagingArena(const StagingArena&) = delete;
  StagingArena& operator=(const StagingArena&) = delete;

  // `bytes` rounded up to kAlignment (0 counts as 1).
  static size_t RoundUp(size_t bytes);

  // The offset of a new range of RoundUp(bytes) bytes, or nullopt when no free range is that
  // large (see largest_free()).
  std::optional<size_t> Allocate(size_t bytes);
  // Gives back the range allocated at `offset`. NotFound naming the offset when no range
  // starts there (never allocated, or freed already).
  Status Free(size_t offset);

  uint8_t* base() const { return base_; }
  // base() + offset.
  uint8_t* at(size_t offset) const { return base_ + offset; }
  size_t capacity() const { return capacity_; }
  // Bytes allocated now (rounded sizes).
  size_t used() const { return used_; }
  // The largest range Allocate could return now.
  size_t largest_free() const;
  size_t allocations() const { return allocated_.size(); }

 private:
  uint8_t* const base_;
  const size_t capacity_;
  std::map<size_t, size_t> free_;                 // offset -> bytes, no two adjacent
  std::unordered_map<size_t, size_t> allocated_;  // offset -> bytes
  size_t used_ = 0;
};

}  // namespace engram::gpu
