// Table: an open table and its batch lookup through the tiers (DRAM resident or DRAM cache,
// then NVMe).
//
//   Resident:  every row in DRAM (private or shared between processes); no I/O on lookup.
//   Cache:     a bounded DRAM row cache (cache/row_cache.h: lock-free hits, the Zipf-aware
//              default policy) in front of the NVMe tier, optionally with hot rows pinned in it.
//   None:      every lookup reads the NVMe tier (io_uring + O_DIRECT).
//
// Lookup(ids, n, out, stride): rows land at out + i * stride for i < n. All ids are checked
// first: an id >= rows() is InvalidArgument naming the first bad id and its position, and
// nothing is written. n == 0 is a no-op. Duplicate ids are fetched once. On an I/O or checksum
// error the Status names table, row and offset; the contents of `out` are then unspecified
// (never past out + (n-1)*stride + row_bytes).
//
// AcquireRows/ReleaseRows: the same tiers without the copy, for callers that hold rows for a
// while (the prefetcher): each row is left where it is (resident memory, or a DRAM-cache row
// pinned for the caller) or read from NVMe into the caller's space.
//
// Thread safety: Lookup, AcquireRows, ReleaseRows, PinRows and Stats may be called from many
// threads at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/row_cache.h"
#include "storage/env.h"
#include "storage/nvme_reader.h"
#include "storage/resident_region.h"
#include "storage/table_format.h"
#include "storage/tier_stats.h"

namespace engram {

enum class DramMode {
  kNone,      // NVMe only
  kResident,  // whole table in DRAM
  kCache,     // bounded DRAM cache over NVMe
};

// A row held for a caller by Table::AcquireRows until Table::ReleaseRows.
struct HeldRow {
  // row_bytes bytes, unchanged until ReleaseRows: resident memory, a DRAM-cache row, or the
  // caller's copy space.
  const uint8_t* data = nullptr;
  cache::PinnedRow pin;  // the DRAM-cache pin when `pinned`
  bool pinned = false;
};

struct TableOptions {
  Env* env = Env::Default();
  // Cache mode is the safe default: bounded memory whatever the table size.
  DramMode dram_mode = DramMode::kCache;
  // Row-data budget of the DRAM cache (cache mode). 1 GiB suits a desktop-sized host.
  uint64_t dram_cache_bytes = uint64_t{1} << 30;
  // Shards of the DRAM cache; 64 keeps lock contention low for a few dozen threads.
  uint32_t dram_cache_shards = 64;
  // Admission and eviction of the DRAM cache; null means the default policy (docs/caching.md).
  std::shared_ptr<const cache::PolicyFactory> cache_policy;
  // Hot rows (a 1-D .npy of row ids, most important first, as `tablectl profile` writes):
  // when set, Open reads these rows and pins them in the fastest tier with room. In cache mode
  // they are pinned in the DRAM cache up to kMaxHotShare of each of its shards (the rest of
  // the file is skipped and counted); resident mode already holds every row; with no DRAM tier
  // there is no room. Ids out of range or a bad file fail Open with a message naming the file.
  std::string hot_rows_path;
  // Resident mode: shared segment / huge pages (see resident_region.h).
  ResidentOptions resident;
  // NVMe tier (see nvme_reader.h).
  NvmeReaderOptions nvme;
};

class Table {
 public:
  // Opens the table directory `path`: reads and checks the MANIFEST, the checksums file and
  // the data file's size, then sets up the tiers the options ask for.
  static Result<std::unique_ptr<Table>> Open(const std::string& path, const TableOptions& options);
  ~Table();

  const std::string& path() const { return path_; }
  const Manifest& manifest() const { return manifest_; }
  const TableLayout& layout() const { return manifest_.layout; }
  uint64_t rows() const { return layout().rows; }
  uint32_t dim() const { return layout().dim; }
  DType dtype() const { return layout().dtype; }
  uint32_t row_bytes() const { return layout().row_bytes; }
  DramMode dram_mode() const { return options_.dram_mode; }

  // REQUIRES: out_stride >= row_bytes(). See the file comment for the contract.
  Status Lookup(const uint64_t* ids, size_t n, void* out, size_t out_stride);

  // Holds rows ids[0..n) (REQUIRES: unique and < rows(), see CheckIds; copy_stride >=
  // row_bytes(); copy_space has room for n rows at that stride). rows[i].data is then, until
  // ReleaseRows: the row in resident memory (resident mode), the DRAM-cache row pinned for the
  // caller (a cache hit), or copy_space + i * copy_stride, filled from NVMe (a miss, which is
  // also offered to the DRAM cache as Lookup does). Counts into the tiers' stats as Lookup.
  // On an I/O or checksum error (named as in Lookup) nothing is left held.
  Status AcquireRows(const uint64_t* ids, size_t n, HeldRow* rows, uint8_t* copy_space,
                     size_t copy_stride);
  // Ends what AcquireRows holds in rows[0..n) (unpins DRAM-cache rows); rows[i].data is then
  // invalid. REQUIRES: each row acquired and not yet released.
  void ReleaseRows(HeldRow* rows, size_t n);
  // Pins rows ids[0..n) forever in the DRAM cache (what Open does with hot_rows_path), in
  // order, while each shard has room (kMaxHotShare); counted into hot_rows_pinned() and, for
  // duplicates, rows already cached and rows with no room, hot_rows_skipped(). Resident mode
  // counts them all pinned; without a DRAM tier all skipped. Ids out of range are
  // InvalidArgument (nothing pinned); I/O errors as Lookup (rows before it stay pinned).
  Status PinRows(const uint64_t* ids, size_t n);
  // OK when every id of ids[0..n) is < rows(); else InvalidArgument naming the first bad id
  // and its position.
  Status CheckIds(const uint64_t* ids, size_t n) const;
  Env* env() const { return options_.env; }

  // Counters of the tiers in use, fastest first ("dram", "nvme").
  std::vector<TierStats> Stats() const;
  // Human-readable description of the tiers ("resident, private anonymous memory (transparent huge
  // pages)", "io_uring (queue depth 32)"...).
  std::string DramDescription() const;
  std::string NvmeDescription() const;
  // A JSON object: the manifest's fields, "path", "tiers" (dram/nvme descriptions, DRAM cache
  // capacity and metadata bytes) and "stats" (per-tier counters). For `info` and the C API.
  std::string InfoJson() const;
  // The DRAM cache's counters and memory (all zero without one).
  cache::RowCacheStats dram_cache_stats() const;
  // dram_cache_stats() and the hot-row counts as JSON (policy, capacity_rows, rows, pinned_rows,
  // hot_rows_pinned, hot_rows_skipped, inserts, rejections, evictions, metadata_bytes,
  // metadata_bytes_per_row): part of InfoJson() and `tablectl bench --json`.
  nlohmann::json DramCacheJson() const;
  // Hot rows pinned by Open and PinRows, and those that found no room.
  uint64_t hot_rows_pinned() const { return hot_rows_pinned_.load(std::memory_order_relaxed); }
  uint64_t hot_rows_skipped() const { return hot_rows_skipped_.load(std::memory_order_relaxed); }

  // At most this share of each DRAM cache shard is given to hot rows, so it stays a cache.
  static constexpr double kMaxHotShare = 0.5;

 private:
  Table(std::string path, TableOptions options, Manifest manifest);
  Status LookupResident(const uint64_t* ids, size_t n, uint8_t* out, size_t out_stride);
  Status LookupTiered(const uint64_t* ids, size_t n, uint8_t* out, size_t out_stride);
  // The tiered path for unique, in-range ids[0..n): the DRAM cache (if any) in one PinBatch,
  // then the misses from NVMe in one batch. Calls on_hit(i, pinned_row) for each cache hit
  // (the pin is the callee's to keep or Release) and on_miss(i, row) for each row read (row
  // valid during the call; it is then offered to the cache). Counts both tiers.
  template <typename OnHit, typename OnMiss>
  Status ServeUnique(const uint64_t* ids, size_t n, OnHit on_hit, OnMiss on_miss);
  const uint8_t* ResidentRow(uint64_t id) const;
  Status PinHotRows(const std::string& hot_rows_path);

  const std::string path_;
  const TableOptions options_;
  const Manifest manifest_;
  TierCounters dram_counters_{"dram"};
  TierCounters nvme_counters_{"nvme"};
  std::unique_ptr<ResidentRegion> resident_;  // resident mode
  std::unique_ptr<cache::RowCache> cache_;    // cache mode
  std::unique_ptr<NvmeReader> nvme_;          // cache and none modes
  std::atomic<uint64_t> hot_rows_pinned_{0};
  std::atomic<uint64_t> hot_rows_skipped_{0};
};

// Reads every page of the table at `path` and checks it against its checksum, calling
// `progress(pages_done, pages_total)` now and then. Returns the first problems found (up to
// `max_errors`) in `errors`; the Status is OK only if the table is intact. Manifest, checksums
// file and data size are checked too.
Status VerifyTable(Env* env, const std::string& path, std::vector<std::string>* errors,
                   size_t max_errors,
                   const std::function<void(uint64_t done, uint64_t total)>& progress = {});

}  // namespace engram
