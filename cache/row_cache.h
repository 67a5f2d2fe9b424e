// RowCache: a sharded, bounded, concurrent cache of fixed-size rows keyed by 64-bit row id,
// with lock-free hits, pinning, and a pluggable admission/eviction policy (cache_policy.h).
// The DRAM cache tier stores rows in it; the HBM tier uses it as a directory (row_bytes == 0)
// whose slot numbers address device memory; trace replay runs the same code with no rows.
//
// Layout: `shards` shards (chosen by ShardOf(HashRowId(id))), each a fixed array of slots:
//   ids      8 B/slot   the row id in each slot (atomic)
//   pins     2 B/slot   pin count (15 bits) + a BUSY bit while a slot is being filled
//   index    ~5 B/row   open addressing (linear probing, load <= 0.8) of 4-byte slot numbers
//   policy   see the policy (the default: 4 B queue link + 1 B state + 4 B sketch)
//   rows     row_bytes/slot, 64-byte aligned, untouched until first filled
// stats().metadata_bytes counts everything but the rows.
//
// Row ids are below 2^63: the top bit of a slot's id marks a row being inserted (Find skips it).
// Larger ids are never cached: Pin/Touch miss them and BeginInsert rejects them.
//
// Hits (Pin/Get/Touch) take no lock: probe the index, pin the slot with one compare-and-swap
// on its pin word, re-check the slot's id, tell the policy (a bit or a counter). Touch pins
// nothing and reads no pin word: the index entry and the id say the row is there. A pinned row is
// never evicted or overwritten, so its bytes stay valid and unchanged until Release. Misses
// (BeginInsert) take the shard's mutex; the slot being filled is BUSY (readers miss it) until
// CommitInsert publishes it. A concurrent index update can make a lookup miss a row that is
// present (never return a wrong one): the caller then reads it from the tier below and its
// BeginInsert answers kPresent.
//
// Thread safety: every method may be called concurrently, provided the policy reports
// concurrent_hits() (all but "lru" and "wtinylfu", which are for single-threaded replay).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/large_buffer.h"

namespace engram::cache {

struct RowCacheOptions {
  // Rows held at most, pinned ones included. REQUIRES: >= 1.
  uint64_t capacity_rows = 0;
  // Bytes of each row. 0 makes a directory only (no row storage): trace replay, or a tier that
  // keeps the rows elsewhere and addresses them by PinnedRow::slot.
  uint32_t row_bytes = 0;
  // Shards, each with its own lock, index and policy; 64 keeps miss-path lock contention low
  // for dozens of threads. Clamped to [1, capacity_rows].
  uint32_t shards = 64;
  // Admission and eviction. Null means NewDefaultPolicyFactory().
  std::shared_ptr<const PolicyFactory> policy;
  // Insert(..., pin_forever) refuses once this share of a shard's slots is pinned forever, so a
  // cache loaded with hot rows still has room to cache, and a policy looking for a victim
  // passes over at most about one pinned row per evictable one.
  double max_pinned_share = 0.5;
};

// A row held by a reader: it stays in its slot, unchanged, until Release.
struct PinnedRow {
  const uint8_t* data = nullptr;  // row_bytes bytes; null when row_bytes == 0
  uint64_t slot = 0;              // in [0, capacity_rows()), stable while pinned
  uint64_t id = 0;
};

// A slot reserved by BeginInsert, to be filled and then committed or aborted.
struct InsertSlot {
  uint8_t* data = nullptr;  // row_bytes bytes to fill; null when row_bytes == 0
  uint64_t slot = 0;
  uint64_t id = 0;
};

enum class InsertOutcome {
  kReserved,  // the caller owns the slot: fill it, then CommitInsert or AbortInsert
  kPresent,   // the id is cached already, or being inserted by another caller
  kRejected,  // the policy declined it, or every evictable row is pinned
};

struct RowCacheStats {
  uint64_t capacity_rows = 0;
  uint64_t size_rows = 0;             // rows present (committed)
  uint64_t pinned_rows = 0;           // rows pinned forever (CommitInsert with pin_forever)
  uint64_t inserts = 0;               // committed inserts
  uint64_t rejections = 0;            // BeginInsert answered kRejected
  uint64_t evictions = 0;             // rows overwritten by an insert
  uint64_t metadata_bytes = 0;        // everything but the rows: ids, pins, index, policy state
  double metadata_bytes_per_row = 0;  // metadata_bytes / capacity_rows
};

class RowCache {
 public:
  explicit RowCache(const RowCacheOptions& options);
  // REQUIRES: no reader pins outstanding.
  ~RowCache();
  RowCache(const RowCache&) = delete;
  RowCache& operator=(const RowCache&) = delete;

  // If `id` is cached: pins it, records the hit, sets *row and returns true. Lock-free.
  // Also false when the row's pin count is saturated (32767 pins): the caller reads below.
  bool Pin(uint64_t id, PinnedRow* row);
  // Pin() for each of ids[0..n): hit[i] = 1 and rows[i] set on a hit, hit[i] = 0 otherwise.
  // Prefetches index and slot lines a few ids ahead. Returns the number of hits.
  size_t PinBatch(const uint64_t* ids, size_t n, PinnedRow* rows, uint8_t* hit);
  // Ends a pin. REQUIRES: `row` came from Pin/PinBatch and was not released yet.
  void Release(const PinnedRow& row);
  // Pin, copy row_bytes into `dst`, Release. REQUIRES: row_bytes > 0.
  bool Get(uint64_t id, void* dst);
  // A lookup without a pin: records the hit and returns whether `id` is cached. Lock-free and
  // writes nothing shared but the policy's counters. For replay and for measuring the index +
  // policy path alone.
  bool Touch(uint64_t id);
  // Touch() for ids[0..n), with the prefetching of PinBatch; hit[i] as there. Returns hits.
  size_t TouchBatch(const uint64_t* ids, size_t n, uint8_t* hit);

  // The miss path: asks the policy for a slot for `id` (takes the shard lock briefly).
  InsertOutcome BeginInsert(uint64_t id, InsertSlot* slot);
  // Publishes a reserved slot. With `pin_forever` the row is never evicted (hot rows).
  void CommitInsert(const InsertSlot& slot, bool pin_forever = false);
  // Gives a reserved slot back empty.
  void AbortInsert(const InsertSlot& slot);
  // BeginInsert, copy row_bytes from `row` (ignored when row_bytes == 0), CommitInsert.
  // True when this call cached the row. With `pin_forever`, also false when the row's shard
  // already holds its max_pinned_share of rows pinned forever.
  bool Insert(uint64_t id, const void* row, bool pin_forever = false);

  uint64_t capacity_rows() const { return capacity_rows_; }
  uint32_t row_bytes() const { return row_bytes_; }
  uint32_t shard_count() const { return static_cast<uint32_t>(shards_.size()); }
  const PolicyFactory& policy() const { return *policy_; }
  RowCacheStats stats() const;

 private:
  class Shard;
  struct ShardMemory;
  Shard& ShardFor(uint64_t hash) const;

  uint64_t capacity_rows_ = 0;
  uint32_t row_bytes_ = 0;
  double max_pinned_share_ = 0.5;
  std::shared_ptr<const PolicyFactory> policy_;
  // Every shard's ids, pin words and index table, on huge pages where the system allows;
  // declared before shards_ so it outlives them.
  LargeBuffer memory_;
  std::vector<std::unique_ptr<Shard>> shards_;  // constant after construction
};

}  // namespace engram::cache
