// ResidentRegion: the whole data file of a table held in DRAM (the resident DRAM tier).
//
// Private: anonymous memory, MADV_HUGEPAGE where the kernel allows it (THP "madvise" mode),
// filled with O_DIRECT reads of the data file (so the page cache does not hold a second
// copy), every page checked against its checksum while loading.
//
// Shared: one copy per host for every process that opens the same table version (the
// table_uuid in its MANIFEST). The copy is a file "<shared_dir>/engram-<uuid>" (tmpfs:
// /dev/shm by default; point shared_dir at a hugetlbfs mount for huge pages).
//   - Creation and attach are serialised by flock on "<shared_dir>/engram-<uuid>.lock".
//   - The first opener loads into "engram-<uuid>.loading", verifies, then renames it to
//     "engram-<uuid>": a segment that exists under its final name is always complete.
//     A ".loading" file found under the lock is a crashed loader's leftover and is removed.
//   - Every attached process holds flock(LOCK_SH) on the segment. Closing takes the lock
//     file, then tries LOCK_EX|LOCK_NB on the segment: success means no other user, so the
//     segment is unlinked. A crash releases the shared lock; the segment stays for the next
//     opener to reuse (it is complete), and the last close after that removes it.
//   - Mapped read-only by attachers (MAP_SHARED); the loader maps it writable only while
//     loading.
//
// Do not destroy a region in a process forked after Open: the child shares the parent's lock
// on the segment, so its close could drop the parent's.
//
// Thread safety: immutable after Open; data() may be read from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/env.h"
#include "storage/table_format.h"

namespace engram {

struct ResidentOptions {
  // Share one copy between processes on this host (see above).
  bool shared = false;
  // Directory of shared segments; must be a tmpfs or hugetlbfs mount for DRAM residency.
  std::string shared_dir = "/dev/shm";
  // Ask for transparent huge pages for private regions (about 2x faster random gathers here).
  bool huge_pages = true;
};

class ResidentRegion {
 public:
  // Loads (or, when shared and already loaded by another process, attaches to) the data.
  // `file` is the table's data file; `page_checksums` one per page; `table_uuid` keys the
  // shared segment. Errors name the table and, for checksum mismatches, page, row and offset.
  static Result<std::unique_ptr<ResidentRegion>> Open(RandomAccessFile* file,
                                                      const TableLayout& layout,
                                                      const std::vector<uint64_t>& page_checksums,
                                                      const std::string& table_name,
                                                      const std::string& table_uuid,
                                                      const ResidentOptions& options);
  ~ResidentRegion();

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  bool shared() const { return !segment_path_.empty(); }
  // True when this process loaded the data (false: attached to another process's copy).
  bool loaded_by_this_process() const { return loaded_here_; }
  // Path of the shared segment ("" when private).
  const std::string& segment_path() const { return segment_path_; }
  // "private anonymous memory (transparent huge pages)", "private anonymous memory (4 KiB
  // pages)" or "shared segment /dev/shm/engram-<uuid> (loaded here|attached)" (for info).
  std::string description() const;

 private:
  ResidentRegion() = default;

  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  uint64_t mapped_bytes_ = 0;
  bool huge_pages_ = false;
  bool loaded_here_ = true;
  std::string segment_path_;
  std::string lock_path_;
  int segment_fd_ = -1;
};

}  // namespace engram
