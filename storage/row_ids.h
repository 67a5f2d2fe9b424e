// Duplicate removal for batches of row ids (lookups, prefetch tickets, hot-row files).
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace engram {

// unique = the distinct ids of ids[0..n) in increasing order; unique_of[i] = the index in
// `unique` of ids[i].
void DedupeIds(const uint64_t* ids, size_t n, std::vector<uint64_t>* unique,
               std::vector<uint32_t>* unique_of);

// ids[0..n) without repeats, each at its first position.
std::vector<uint64_t> UniqueInOrder(const uint64_t* ids, size_t n);

}  // namespace engram
