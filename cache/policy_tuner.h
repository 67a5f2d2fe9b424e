// PolicyTuner: picks, while a cache runs, which of a few candidate policies suits its current
// access pattern, by simulating each candidate on a sample of the accesses.
//
// The default policy has a frequency mode (it wins on stationary Zipf and real n-gram traces)
// and a recency mode (a CLOCK: it wins when the hot set keeps changing); neither is best
// everywhere. The tuner keeps one small shadow cache per candidate (a directory-only RowCache
// with 1/128 of the real cache's rows, i.e. SHARDS-style spatial sampling) and feeds every
// shadow the accesses whose row hash falls in the 1/128 sample. Every `window_samples` sampled
// accesses it compares the shadows' decayed hit counts and switches `choice()` to another candidate
// only when that one leads the current choice by more than `switch_margin` of a window. All shadows
// see the same sampled stream, so the comparison is between policies, not samples.
//
// Memory: the shadows hold capacity/128 rows each (about 0.2 B per cached row per candidate).
//
// Thread safety: Sampled and choice are lock-free. Record may be called from any thread; it
// takes the tuner's lock with try_lock and drops the sample when another thread holds it (a
// sample is a sample: losing a few under contention does not bias the comparison).
// Single-threaded use is deterministic.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "cache/cache_policy.h"

namespace engram::cache {

class RowCache;

struct PolicyTunerOptions {
  // One access in 2^sample_shift is simulated, in shadows of capacity >> sample_shift rows.
  // 1/128 measured as good as 1/64 on the drifting and Zipf traces, in half the memory.
  uint32_t sample_shift = 7;
  // Sampled accesses between decisions. 2048 x 128 = 262k accesses: short next to the hot-set
  // changes of a topic shift, long enough that stationary traces do not flip back and forth.
  uint32_t window_samples = 2048;
  // A candidate must out-hit the current choice by this share of a window (decayed counts)
  // before the tuner switches to it.
  double switch_margin = 0.01;
};

class PolicyTuner {
 public:
  // Shadows of max(capacity_rows >> sample_shift, 1) rows, one per candidate (REQUIRES:
  // candidates non-empty, policies with concurrent_hits or used single-threaded). choice()
  // starts at 0.
  PolicyTuner(uint64_t capacity_rows, std::vector<std::shared_ptr<const PolicyFactory>> candidates,
              const PolicyTunerOptions& options = {});
  ~PolicyTuner();

  // True when the access of `hash` (a HashRowId value) belongs to the sample.
  bool Sampled(uint64_t hash) const { return ((hash >> 20) & sample_mask_) == 0; }
  // Simulates one sampled access in every shadow (see Thread safety).
  void Record(uint64_t hash);
  // The candidate in use now.
  uint32_t choice() const { return choice_.load(std::memory_order_relaxed); }
  // Times choice() changed.
  uint64_t switches() const { return switches_.load(std::memory_order_relaxed); }
  // The shadows' metadata.
  uint64_t memory_bytes() const;

 private:
  void Decide();

  const uint64_t sample_mask_;
  const PolicyTunerOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<RowCache>> shadows_;  // guarded by mu_
  std::vector<double> scores_;                      // decayed hits per candidate, under mu_
  std::vector<uint64_t> window_hits_;               // under mu_
  uint32_t window_fill_ = 0;                        // under mu_
  std::atomic<uint32_t> choice_{0};
  std::atomic<uint64_t> switches_{0};
};

}  // namespace engram::cache
