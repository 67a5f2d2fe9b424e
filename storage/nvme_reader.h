// NvmeReader: the NVMe tier. Reads rows of a table's data file with O_DIRECT, through
// io_uring (registered buffers and file, up to queue_depth reads in flight per ring,
// completions reaped in batches), or, when io_uring cannot be set up (old kernel, seccomp) or
// is switched off, through a pool of threads calling pread. Every page read is checked
// against its XXH3-64 checksum before any byte of it reaches the caller.
//
// A batch: ids must be unique and in range (Table dedupes and range-checks). Rows that share
// a page are served by one read of that page. A row larger than a page is one read of
// pages_per_row pages.
//
// Errors: EIO, short reads and checksum mismatches end the batch with a Status naming the
// table, the row, and the file offset; the sink may have been called for some rows already.
//
// Thread safety: ReadRows may be called from many threads at once. Each call checks out one
// ring (or, with pread, runs on the pool) for its duration; rings are created lazily up to
// max_rings, after which callers wait for a free one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storage/env.h"
#include "storage/table_format.h"
#include "storage/tier_stats.h"

namespace engram {

enum class IoBackend {
  kAuto,     // io_uring if it can be set up, else pread pool (logged once)
  kIoUring,  // io_uring or fail
  kPread,    // pread thread pool
};

struct NvmeReaderOptions {
  // Reads in flight per ring: ~32 is where this machine's virtual NVMe saturates (BRIEF 5).
  uint32_t queue_depth = 32;
  // Rings kept at most (one per concurrently reading thread); more readers wait.
  uint32_t max_rings = 8;
  IoBackend backend = IoBackend::kAuto;
  // Threads of the pread fallback pool.
  uint32_t pread_threads = 8;
};

class NvmeReader {
 public:
  // Called once per requested row: `index` is the row's position in the ids array given to
  // ReadRows, `row` points at row_bytes bytes valid only during the call. With the pread
  // backend the sink may be called on a pool thread; calls for one ReadRows never overlap.
  using RowSink = std::function<void(size_t index, const uint8_t* row)>;

  // `file` must be the table's data file (opened with direct_io where the fs allows it).
  // `page_checksums` has one entry per page. `counters` (may be null) receives per-read
  // latency and bytes read; it must outlive the reader.
  static Result<std::unique_ptr<NvmeReader>> Open(std::unique_ptr<RandomAccessFile> file,
                                                  const TableLayout& layout,
                                                  std::vector<uint64_t> page_checksums,
                                                  std::string table_name,
                                                  const NvmeReaderOptions& options,
                                                  TierCounters* counters);
  // REQUIRES: no ReadRows in progress.
  virtual ~NvmeReader() = default;

  // Reads rows `ids[0..n)` (REQUIRES: unique, < layout.rows) and calls `sink` for each.
  virtual Status ReadRows(const uint64_t* ids, size_t n, const RowSink& sink) = 0;

  // "io_uring (queue depth N)", "pread (io_uring unavailable: <reason>)" or "pread (selected)".
  virtual std::string backend_description() const = 0;
  virtual bool uses_io_uring() const = 0;
};

}  // namespace engram
