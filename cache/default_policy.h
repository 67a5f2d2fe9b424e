// The default cache policy: S3-FIFO's queues with TinyLFU's frequency sketch as its memory of
// evicted rows, so hits take no lock and move no node (a 2-bit counter and a sketch increment).
//
//   small   FIFO probation area, small_fraction of the slots. A row new to the cache enters
//           here; when it reaches the head it moves to main if it was read while in small,
//           and is evicted otherwise, so one-hit rows (most n-grams) leave quickly.
//   main    FIFO with reinsertion: a row at the head with a non-zero counter is decremented
//           and moved to the tail (a CLOCK with 2-bit counters); the first row found at zero
//           is the victim.
//   sketch  FrequencySketch of every access (hits and misses), 4 B per slot, aged every
//           10 x slots samples. Admission: a missed row whose sketch count (this access
//           included) reaches promote_frequency skips probation and enters main directly.
//           S3-FIFO keeps a ghost queue of recently evicted ids for that decision; the sketch
//           answers it in less memory and also remembers rows evicted from main.
// Eviction takes small's head while small holds at least its share, else main's victim.
// docs/caching.md compares this with W-TinyLFU, S3-FIFO, SIEVE, LRU and OPT on Zipf, drifting
// and real Engram traces.
//
// Memory per slot: 4 B queue link + 2 bits of counter + sketch_bytes_per_row (4 by default).
//
// Thread safety: as cache_policy.h: OnHit is lock-free; everything else under the shard lock.
#pragma once

#include <cstdint>
#include <memory>

#include "cache/cache_policy.h"

namespace engram::cache {

struct DefaultPolicyOptions {
  // Share of each shard's slots in the small (probation) queue: S3-FIFO's 10 %.
  double small_fraction = 0.10;
  // Sketch count (this access included) at which a missed row enters main directly. 4
  // measured best: at 3 too many middling rows skip probation (1.7 points lost on Zipf 0.8
  // with a 1 % cache); 2 is worse still.
  uint32_t promote_frequency = 4;
  // Sketch bytes per slot (two 4-bit counters per byte, see frequency_sketch.h). 4 keeps the
  // whole cache within 24 B of metadata per row; Caffeine uses 8.
  uint32_t sketch_bytes_per_row = 4;
};

std::shared_ptr<const PolicyFactory> NewDefaultPolicyFactory(const DefaultPolicyOptions& options);

}  // namespace engram::cache
