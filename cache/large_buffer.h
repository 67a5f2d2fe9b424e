// LargeBuffer: zeroed memory for a cache's big metadata arrays (ids, pin words, index tables),
// mapped anonymously and advised to use transparent huge pages (MADV_HUGEPAGE; THP is in
// madvise mode on the machines we measure, see BRIEF 5). Lookups probe these arrays at random,
// so with 4 KiB pages most probes also miss the TLB; one 2 MiB page covers 512 times more.
// Where THP is unavailable the advice is ignored and the memory is ordinary pages. Buffers
// under 1 MiB come from the heap instead (a huge page would mostly hold nothing).
//
// Thread safety: the buffer is plain memory; its owner synchronises access.
#pragma once

#include <cstddef>
#include <cstdint>

namespace engram::cache {

class LargeBuffer {
 public:
  LargeBuffer() = default;
  // `bytes` zeroed bytes, 64-byte aligned (2 MiB aligned when mapped). Throws std::bad_alloc
  // when the memory cannot be had, as operator new would.
  explicit LargeBuffer(size_t bytes);
  ~LargeBuffer();
  LargeBuffer(LargeBuffer&& other) noexcept;
  LargeBuffer& operator=(LargeBuffer&& other) noexcept;
  LargeBuffer(const LargeBuffer&) = delete;
  LargeBuffer& operator=(const LargeBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void Release();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;    // bytes asked for
  size_t mapped_ = 0;  // bytes mapped (the huge-page-aligned span); 0: from the heap
};

}  // namespace engram::cache
