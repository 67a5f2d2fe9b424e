// StagingArena: first fit over an offset-ordered free list; see staging_arena.h.
#include "gpu_bridge/staging_arena.h"

#include <algorithm>
#include <cassert>
#include <string>

namespace engram::gpu {

StagingArena::StagingArena(void* base, size_t capacity)
    : base_(static_cast<uint8_t*>(base)), capacity_(capacity / kAlignment * kAlignment) {
  assert(reinterpret_cast<uintptr_t>(base) % kAlignment == 0);
  if (capacity_ > 0) free_.emplace(0, capacity_);
}

size_t StagingArena::RoundUp(size_t bytes) {
  return (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
}

std::optional<size_t> StagingArena::Allocate(size_t bytes) {
  if (bytes > capacity_) return std::nullopt;  // also keeps RoundUp from overflowing
  const size_t size = RoundUp(bytes);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < size) continue;
    const size_t offset = it->first;
    const size_t rest = it->second - size;
    free_.erase(it);
    if (rest > 0) free_.emplace(offset + size, rest);
    allocated_.emplace(offset, size);
    used_ += size;
    return offset;
  }
  return std::nullopt;
}

Status StagingArena::Free(size_t offset) {
  auto a = allocated_.find(offset);
  if (a == allocated_.end()) {
    return Status::NotFound("staging arena: no allocation at offset " + std::to_string(offset));
  }
  size_t begin = offset;
  size_t size = a->second;
  allocated_.erase(a);
  used_ -= size;
  auto next = free_.lower_bound(begin);
  if (next != free_.end() && begin + size == next->first) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == begin) {
      begin = prev->first;
      size += prev->second;
      free_.erase(prev);
    }
  }
  free_.emplace(begin, size);
  return Status::OK();
}

size_t StagingArena::largest_free() const {
  size_t largest = 0;
  for (const auto& [offset, size] : free_) largest = std::max(largest, size);
  return largest;
}

}  // namespace engram::gpu
