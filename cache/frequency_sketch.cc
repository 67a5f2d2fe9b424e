// FrequencySketch: Caffeine's BlockBasedFrequencySketch with lock-free 64-bit words.
//
// A key's hash is re-mixed (callers' HashRowId bits also choose shards and index positions, so
// they are not independent of the key set a per-shard sketch sees). The high bits of the mixed
// hash choose a block of 8 words (one cache line); four bytes of the low bits choose, for
// counter i, word 2i or 2i+1 (one bit) and one of its 16 nibbles (four bits).
#include "cache/frequency_sketch.h"

#include <algorithm>
#include <cassert>

namespace engram::cache {
namespace {

constexpr uint64_t kWordsPerBlock = 8;
constexpr uint64_t kCounterMax = 15;
constexpr uint64_t kHalfMask = 0x7777777777777777ull;

// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
inline uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

// Where counter `i` (0..3) of a key lives: a word index and a bit shift inside it.
struct CounterRef {
  uint64_t word;
  uint32_t shift;
};

inline CounterRef CounterAt(uint64_t block_base, uint64_t mixed, int i) {
  const uint32_t bits = static_cast<uint32_t>(mixed >> (i * 8));
  return CounterRef{block_base + (static_cast<uint64_t>(i) << 1) + (bits & 1),
                    ((bits >> 1) & 15) * 4};
}

// The first word of the key's block: a multiply-shift reduction of the mixed hash, dominated by
// its high bits and so independent of the counter bits.
inline uint64_t BlockBase(uint64_t mixed, uint64_t blocks) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(mixed) * blocks) >> 64) *
         kWordsPerBlock;
}

// Raises the counter at `shift` in `w` unless it is saturated. True when it was raised.
inline bool IncrementAt(std::atomic<uint64_t>& w, uint32_t shift) {
  uint64_t v = w.load(std::memory_order_relaxed);
  do {
    if (((v >> shift) & kCounterMax) == kCounterMax) return false;
  } while (!w.compare_exchange_weak(v, v + (uint64_t{1} << shift), std::memory_order_relaxed));
  return true;
}

// Halves every counter of words[0..n). A compare-and-swap per word, so a concurrent increment
// is either halved or lands after the halving, never lost.
void HalveCounters(std::atomic<uint64_t>* words, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t w = words[i].load(std::memory_order_relaxed);
    while (w != 0 &&
           !words[i].compare_exchange_weak(w, (w >> 1) & kHalfMask, std::memory_order_relaxed)) {
    }
  }
}

}  // namespace

FrequencySketch::FrequencySketch(uint64_t expected_items, uint32_t bytes_per_item,
                                 bool conservative_update)
    : conservative_update_(conservative_update) {
  assert(expected_items >= 1 && bytes_per_item >= 1);
  expected_items = std::max<uint64_t>(expected_items, 1);
  bytes_per_item = std::max<uint32_t>(bytes_per_item, 1);
  blocks_ = std::max<uint64_t>((expected_items * bytes_per_item + 63) / 64, 1);
  sample_size_ = 10 * expected_items;
  words_ = std::make_unique<std::atomic<uint64_t>[]>(blocks_ * kWordsPerBlock);
}

void FrequencySketch::Increment(uint64_t hash) {
  const uint64_t mixed = Mix(hash);
  const uint64_t base = BlockBase(mixed, blocks_);
  // Conservative update: only the counters at the key's current minimum are raised, so
  // collisions inflate estimates far less than raising all four would (same memory).
  CounterRef refs[4];
  uint64_t values[4];
  uint64_t min = kCounterMax;
  for (int i = 0; i < 4; ++i) {
    refs[i] = CounterAt(base, mixed, i);
    values[i] =
        (words_[refs[i].word].load(std::memory_order_relaxed) >> refs[i].shift) & kCounterMax;
    min = std::min(min, values[i]);
  }
  if (min == kCounterMax) return;
  bool added = false;
  for (int i = 0; i < 4; ++i) {
    if (values[i] == min || !conservative_update_) {
      added |= IncrementAt(words_[refs[i].word], refs[i].shift);
    }
  }
  if (!added) return;
  // The thread whose compare-and-swap halves the sample count ages the counters, so each
  // crossing of sample_size_ ages once, even while other threads keep counting.
  uint64_t samples = samples_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (samples >= sample_size_ &&
      samples_.compare_exchange_strong(samples, samples / 2, std::memory_order_relaxed)) {
    HalveCounters(words_.get(), blocks_ * kWordsPerBlock);
    agings_.fetch_add(1, std::memory_order_relaxed);
  }
}

uint32_t FrequencySketch::Frequency(uint64_t hash) const {
  const uint64_t mixed = Mix(hash);
  const uint64_t base = BlockBase(mixed, blocks_);
  uint64_t freq = kCounterMax;
  for (int i = 0; i < 4; ++i) {
    const CounterRef c = CounterAt(base, mixed, i);
    const uint64_t word = words_[c.word].load(std::memory_order_relaxed);
    freq = std::min(freq, (word >> c.shift) & kCounterMax);
  }
  return static_cast<uint32_t>(freq);
}

void FrequencySketch::Age() {
  uint64_t s = samples_.load(std::memory_order_relaxed);
  while (!samples_.compare_exchange_weak(s, s / 2, std::memory_order_relaxed)) {
  }
  HalveCounters(words_.get(), blocks_ * kWordsPerBlock);
  agings_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace engram::cache
