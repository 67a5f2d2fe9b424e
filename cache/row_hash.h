// HashRowId: the one hash of a row id that every part of the cache uses (shard choice, index
// position, frequency sketch, policies' ghost entries), so it is computed once per access.
//
// XXH3-64 of the id's 8 bytes (little-endian), seed 0. Callers split the 64 bits as they need:
//   shard          = ShardOf(hash, shards)            (high 32 bits, multiply-shift)
//   index position = low 32 bits, multiply-shift into the index size
//   sketch         = the whole hash, re-mixed inside FrequencySketch
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>

#define XXH_INLINE_ALL
#include <xxhash.h>
#undef XXH_INLINE_ALL

namespace engram::cache {

inline uint64_t HashRowId(uint64_t id) { return XXH3_64bits(&id, sizeof(id)); }

// Multiply-shift reduction of a 32-bit value into [0, n) (Lemire's "fastrange").
inline uint32_t ReduceInto(uint32_t x, uint32_t n) {
  return static_cast<uint32_t>((uint64_t{x} * n) >> 32);
}

inline uint32_t ShardOf(uint64_t hash, uint32_t shards) {
  return ReduceInto(static_cast<uint32_t>(hash >> 32), shards);
}

}  // namespace engram::cache
