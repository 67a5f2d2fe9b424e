#include "cache/large_buffer.h"

#include <sys/mman.h>

#include <cstring>
#include <new>
#include <utility>

namespace engram::cache {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
// Smaller buffers come from the heap: a huge page would mostly hold nothing.
constexpr size_t kMinMappedBytes = kHugePage / 2;
constexpr std::align_val_t kHeapAlign{64};

}  // namespace

LargeBuffer::LargeBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  if (bytes < kMinMappedBytes) {
    data_ = static_cast<uint8_t*>(::operator new(bytes, kHeapAlign));
    std::memset(data_, 0, bytes);
    return;
  }
  // Map one huge page more than needed and trim both ends, so the span is 2 MiB aligned and
  // every 2 MiB of it can be a huge page.
  const size_t span = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  const size_t over = span + kHugePage;
  void* p = mmap(nullptr, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  auto* raw = static_cast<uint8_t*>(p);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(raw);
  uint8_t* aligned = raw + ((kHugePage - addr % kHugePage) % kHugePage);
  if (aligned > raw) munmap(raw, static_cast<size_t>(aligned - raw));
  const size_t tail = static_cast<size_t>((raw + over) - (aligned + span));
  if (tail > 0) munmap(aligned + span, tail);
  madvise(aligned, span, MADV_HUGEPAGE);  // advice only: ignored where THP is off
  data_ = aligned;
  mapped_ = span;
}

LargeBuffer::~LargeBuffer() { Release(); }

LargeBuffer::LargeBuffer(LargeBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

LargeBuffer& LargeBuffer::operator=(LargeBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

void LargeBuffer::Release() {
  if (data_ != nullptr && mapped_ > 0) munmap(data_, mapped_);
  if (data_ != nullptr && mapped_ == 0) ::operator delete(data_, kHeapAlign);
  data_ = nullptr;
  size_ = 0;
  mapped_ = 0;
}

}  // namespace engram::cache
