// The default cache policy: S3-FIFO's queues with TinyLFU's frequency sketch as its memory of
// evicted rows, so hits take no lock and move no node (a 2-bit counter and a sketch increment).
//
//   small   FIFO probation area, small_fraction of the slots. A row new to the cache enters
//           here; when it reaches the head it moves to main if it was read while in small,
//           and is evicted otherwise, so one-hit rows (most n-grams) leave quickly.
//   main    FIFO with reinsertion: a row at the head with a non-zero counter is decremented
//           and moved to the tail (a CLOCK with 2-bit counters); the first row found at zero
//           is the victim.
//   sketch  FrequencySketch of accesses, 4 B per slot, aged every 10 x slots samples. Every
//           miss is counted, and every hit on a row whose counter is not saturated (a
//           saturated row is plainly hot; skipping it keeps hot hits to one load). Admission: a
//           missed row whose sketch count (this access included) reaches promote_frequency skips
//           probation and enters main directly. S3-FIFO keeps a ghost queue of recently evicted ids
//           for that decision; the sketch answers it in less memory and also remembers rows evicted
//           from main.
// Eviction takes small's head while small holds at least its share, else main's victim.
//
// That is the frequency mode. Its recency mode is a CLOCK over the same queues: missed rows
// enter main directly, and a row at main's head with any count is moved to the tail with its
// count cleared. The frequency mode wins on stationary Zipf and real n-gram traces. When the
// hot set keeps changing (a topic shift every few million accesses), main is only renewed as
// fast as rows are promoted into it, and a row of middling popularity needs promote_frequency
// reads before it is; a lower threshold, or a CLOCK, renews it faster. By default (kAdaptive)
// a PolicyTuner (policy_tuner.h), shared by all shards of a cache, simulates three settings on
// 1/128 of the accesses (frequency mode at promote_frequency, frequency mode at
// eager_promote_frequency, recency mode), and the cache follows the one that has been hitting
// most. Switching only changes where future inserts go and how the next passes of main treat
// counts: no row moves.
// docs/caching.md compares this with W-TinyLFU, S3-FIFO, SIEVE, LRU and OPT on Zipf, drifting
// and real Engram traces.
//
// Memory per slot: 4 B queue link + 2 bits of counter + sketch_bytes_per_row (4 by default),
// plus the tuner's three shadows (1/128 of the slots each, about 0.55 B per slot together).
//
// Thread safety: as cache_policy.h: OnHit is lock-free; everything else under the shard lock.
#pragma once

#include <cstdint>
#include <memory>

#include "cache/cache_policy.h"
#include "cache/policy_tuner.h"

namespace engram::cache {

enum class DefaultPolicyMode : uint8_t {
  kAdaptive,   // follow the tuner (caches of kMinShadowRows shadow rows or more; else frequency)
  kFrequency,  // always the frequency mode
  kRecency,    // always the recency mode (a CLOCK)
};

struct DefaultPolicyOptions {
  DefaultPolicyMode mode = DefaultPolicyMode::kAdaptive;
  // The tuner's sampling and switching (kAdaptive).
  PolicyTunerOptions tuner;
  // Caches whose shadows would hold fewer rows (under 512 << tuner.sample_shift = 65536 rows
  // by default) stay in frequency mode: too small a sample to tell the settings apart.
  static constexpr uint64_t kMinShadowRows = 512;
  // Share of each shard's slots in the small (probation) queue: S3-FIFO's 10 %.
  double small_fraction = 0.10;
  // Sketch count (this access included) at which a missed row enters main directly. 4
  // measured best: at 3 too many middling rows skip probation (1.7 points lost on Zipf 0.8
  // with a 1 % cache); 2 is worse still.
  uint32_t promote_frequency = 4;
  // The tuner's second frequency setting: at 2 a row read twice within the sketch's memory
  // skips probation, as S3-FIFO's ghost queue would let it. It wins when the hot set changes
  // (new rows reach main sooner) and loses on stationary traces (6 points on Zipf 0.8 at 1 %).
  uint32_t eager_promote_frequency = 2;
  // Sketch bytes per slot (two 4-bit counters per byte, see frequency_sketch.h). 4 keeps the
  // whole cache within 24 B of metadata per row; Caffeine uses 8.
  uint32_t sketch_bytes_per_row = 4;
};

std::shared_ptr<const PolicyFactory> NewDefaultPolicyFactory(const DefaultPolicyOptions& options);

}  // namespace engram::cache
