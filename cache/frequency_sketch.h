// FrequencySketch: an approximate, aging access counter for admission decisions (TinyLFU).
//
// A count-min sketch of 4-bit saturating counters (0..15), depth 4, laid out in 64-byte blocks
// as in Caffeine's BlockBasedFrequencySketch: a key hashes to one block (one cache line) and
// to four counters inside it, each in a different 16-bit lane, so an increment or an estimate
// touches one cache line. Frequency() is the minimum of the four counters.
//
// Conservative update (the default): an increment raises only the key's counters that hold its
// current minimum, which keeps collisions from inflating estimates (at 4 B per item it closes
// most of the gap to a plain sketch of twice the size; docs/caching.md). Caffeine raises all
// four; `conservative_update = false` does that (the W-TinyLFU baseline policy).
//
// Aging: every increment that actually raises a counter counts as a sample; after
// sample_size() samples (10 x expected_items), every counter is halved and the sample count
// is halved too, so popularity fades with a half-life of about sample_size() accesses and a
// topic change is forgotten quickly. Saturated counters (hot keys) do not count, so hot keys
// cost no writes.
//
// Memory: `bytes_per_item` x expected_items, rounded up to whole 64-byte blocks (at least one).
// 4 bytes per item (8 counters) is the default; Caffeine uses 8.
//
// Thread safety: Increment, Frequency and Age may be called concurrently from any threads
// without a lock; counters are relaxed atomics updated with compare-and-swap. A race between an
// increment and an aging pass may lose that one increment, which an estimate tolerates.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace engram::cache {

class FrequencySketch {
 public:
  // REQUIRES: expected_items >= 1, bytes_per_item >= 1.
  explicit FrequencySketch(uint64_t expected_items, uint32_t bytes_per_item = 4,
                           bool conservative_update = true);

  // Records one access to the key with hash `hash` (a HashRowId value).
  void Increment(uint64_t hash);
  // The estimated accesses of `hash` since aging, 0..15.
  uint32_t Frequency(uint64_t hash) const;
  // Halves every counter (also done automatically every sample_size() samples).
  void Age();

  uint64_t sample_size() const { return sample_size_; }
  // How many times the counters have been halved (for tests and stats).
  uint64_t agings() const { return agings_.load(std::memory_order_relaxed); }
  uint64_t memory_bytes() const { return blocks_ * 64; }

 private:
  uint64_t blocks_ = 0;
  bool conservative_update_ = true;
  uint64_t sample_size_ = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;  // blocks_ * 8 words
  std::atomic<uint64_t> samples_{0};
  std::atomic<uint64_t> agings_{0};
};

}  // namespace engram::cache
