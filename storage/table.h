// Table: an open table and its batch lookup through the tiers (DRAM resident or DRAM cache,
// then NVMe).
//
//   Resident:  every row in DRAM (private or shared between processes); no I/O on lookup.
//   Cache:     a bounded DRAM row cache in front of the NVMe tier.
//   None:      every lookup reads the NVMe tier (io_uring + O_DIRECT).
//
// Lookup(ids, n, out, stride): rows land at out + i * stride for i < n. All ids are checked
// first: an id >= rows() is InvalidArgument naming the first bad id and its position, and
// nothing is written. n == 0 is a no-op. Duplicate ids are fetched once. On an I/O or checksum
// error the Status names table, row and offset; the contents of `out` are then unspecified
// (never past out + (n-1)*stride + row_bytes).
//
// Thread safety: Lookup and Stats may be called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/cache_policy.h"
#include "storage/dram_cache.h"
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

struct TableOptions {
  Env* env = Env::Default();
  // Cache mode is the safe default: bounded memory whatever the table size.
  DramMode dram_mode = DramMode::kCache;
  // Row-data budget of the DRAM cache (cache mode). 1 GiB suits a desktop-sized host.
  uint64_t dram_cache_bytes = uint64_t{1} << 30;
  // Shards of the DRAM cache; 64 keeps lock contention low for a few dozen threads.
  uint32_t dram_cache_shards = 64;
  // Replacement policy of the DRAM cache; null means CLOCK.
  std::shared_ptr<CachePolicyFactory> cache_policy;
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

  // Counters of the tiers in use, fastest first ("dram", "nvme").
  std::vector<TierStats> Stats() const;
  // Human-readable description of the tiers ("resident, private anonymous memory (transparent huge
  // pages)", "io_uring (queue depth 32)"...).
  std::string DramDescription() const;
  std::string NvmeDescription() const;
  // A JSON object: the manifest's fields, "path", "tiers" (dram/nvme descriptions, DRAM cache
  // capacity and metadata bytes) and "stats" (per-tier counters). For `info` and the C API.
  std::string InfoJson() const;
  // Rows / metadata bytes of the DRAM cache (0 without one).
  uint64_t dram_cache_capacity_rows() const;
  uint64_t dram_cache_metadata_bytes() const;

 private:
  Table(std::string path, TableOptions options, Manifest manifest);
  Status CheckIds(const uint64_t* ids, size_t n) const;
  Status LookupResident(const uint64_t* ids, size_t n, uint8_t* out, size_t out_stride);
  Status LookupTiered(const uint64_t* ids, size_t n, uint8_t* out, size_t out_stride);

  const std::string path_;
  const TableOptions options_;
  const Manifest manifest_;
  TierCounters dram_counters_{"dram"};
  TierCounters nvme_counters_{"nvme"};
  std::unique_ptr<ResidentRegion> resident_;  // resident mode
  std::unique_ptr<DramRowCache> cache_;       // cache mode
  std::unique_ptr<NvmeReader> nvme_;          // cache and none modes
};

// Reads every page of the table at `path` and checks it against its checksum, calling
// `progress(pages_done, pages_total)` now and then. Returns the first problems found (up to
// `max_errors`) in `errors`; the Status is OK only if the table is intact. Manifest, checksums
// file and data size are checked too.
Status VerifyTable(Env* env, const std::string& path, std::vector<std::string>* errors,
                   size_t max_errors,
                   const std::function<void(uint64_t done, uint64_t total)>& progress = {});

}  // namespace engram
