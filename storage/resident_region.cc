// ResidentRegion: loading a table's data file into private anonymous memory or into a
// shared segment (the protocol is described in resident_region.h).
//
// Loading reads the data file in 8 MiB chunks straight into the destination mapping (no
// bounce buffer, so no second copy; the caller opens the file with O_DIRECT so the page cache
// holds none either) and checks every 4 KiB page against its XXH3 while it is hot in cache.
// Two threads share the chunks: one reads while the other hashes.
//
// A region must not be destroyed in a process forked from the one that opened it: the child
// shares the parent's open file description and so its flock on the segment.
#include "storage/resident_region.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

namespace engram {
namespace {

constexpr uint64_t kHugePageBytes = uint64_t{2} << 20;
// Large enough for full-speed sequential O_DIRECT reads, small enough to split among threads.
constexpr uint64_t kLoadChunkBytes = uint64_t{8} << 20;

uint64_t RoundUp(uint64_t n, uint64_t align) { return (n + align - 1) / align * align; }

// First row stored in `page`.
uint64_t FirstRowOfPage(const TableLayout& layout, uint64_t page) {
  return layout.rows_per_page ? page * layout.rows_per_page : page / layout.pages_per_row;
}

std::string TablePrefix(const std::string& table) { return "table " + table + ": "; }

// The data file must hold every page and there must be one checksum per page.
Status CheckInputs(RandomAccessFile* file, const TableLayout& layout,
                   const std::vector<uint64_t>& page_checksums, const std::string& table) {
  const uint64_t expected = layout.data_bytes();
  if (expected == 0) return Status::InvalidArgument(TablePrefix(table) + "layout has no pages");
  if (page_checksums.size() != layout.num_pages()) {
    return Status::InvalidArgument(TablePrefix(table) + std::to_string(page_checksums.size()) +
                                   " page checksums for " + std::to_string(layout.num_pages()) +
                                   " data pages");
  }
  ENGRAM_ASSIGN_OR_RETURN(uint64_t actual, file->Size());
  if (actual < expected) {
    return Status::Corruption(TablePrefix(table) +
                              "data file truncated: " + std::to_string(actual) +
                              " bytes, expected " + std::to_string(expected));
  }
  return Status::OK();
}

// What one load needs; shared by the loading threads.
struct LoadJob {
  LoadJob(RandomAccessFile* f, const TableLayout& l, const std::vector<uint64_t>& sums,
          const std::string& t, uint8_t* d)
      : file(f), layout(l), page_checksums(sums), table(t), dst(d) {}

  RandomAccessFile* file;
  const TableLayout& layout;
  const std::vector<uint64_t>& page_checksums;
  const std::string& table;
  uint8_t* dst;  // layout.data_bytes() writable bytes, page-aligned

  std::atomic<uint64_t> next_chunk{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  uint64_t error_offset = UINT64_MAX;  // GUARDED_BY(mu): offset of the earliest failed chunk
  Status error;                        // GUARDED_BY(mu)
};

// Reads one chunk into place and checks its pages.
Status LoadChunk(LoadJob& job, uint64_t offset, uint64_t n) {
  uint8_t* dst = job.dst + offset;
  Status s = job.file->Read(offset, n, dst);
  if (!s.ok()) return s.WithContext(TablePrefix(job.table) + "loading data into DRAM");
  for (uint64_t done = 0; done < n; done += kPageSize) {
    const uint64_t page = (offset + done) / kPageSize;
    if (Checksum(dst + done, kPageSize) != job.page_checksums[page]) {
      return PageChecksumMismatch(job.table, job.layout, page, FirstRowOfPage(job.layout, page));
    }
  }
  return Status::OK();
}

// Takes chunks until none are left or some thread has failed; keeps the earliest error.
void LoadWorker(LoadJob& job) {
  const uint64_t total = job.layout.data_bytes();
  while (!job.failed.load(std::memory_order_relaxed)) {
    const uint64_t offset = job.next_chunk.fetch_add(1) * kLoadChunkBytes;
    if (offset >= total) return;
    Status s = LoadChunk(job, offset, std::min(kLoadChunkBytes, total - offset));
    if (s.ok()) continue;
    std::lock_guard<std::mutex> lock(job.mu);
    if (offset < job.error_offset) {
      job.error_offset = offset;
      job.error = s;
    }
    job.failed.store(true);
  }
}

// Fills `dst` with the data file and verifies it, on two threads when there is enough work.
Status LoadAndVerify(RandomAccessFile* file, const TableLayout& layout,
                     const std::vector<uint64_t>& page_checksums, const std::string& table,
                     uint8_t* dst) {
  LoadJob job(file, layout, page_checksums, table, dst);
  std::thread helper;
  if (layout.data_bytes() > kLoadChunkBytes) {
    try {
      helper = std::thread([&job] { LoadWorker(job); });
    } catch (const std::system_error&) {
      // No second thread available: this thread does all the work.
    }
  }
  LoadWorker(job);
  if (helper.joinable()) helper.join();
  std::lock_guard<std::mutex> lock(job.mu);
  return job.error;
}

// True when the kernel may back MADV_HUGEPAGE regions with huge pages (THP not "never").
bool TransparentHugePagesUsable() {
  int fd = ::open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[128] = {};
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  return n > 0 && std::strstr(buf, "[never]") == nullptr;
}

// Maps `bytes` (a multiple of 2 MiB) of private anonymous memory starting on a 2 MiB boundary,
// so that transparent huge pages can back all of it. Returns null on failure (errno set).
uint8_t* MapAnonymousAligned(uint64_t bytes) {
  void* p = ::mmap(nullptr, bytes + kHugePageBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = RoundUp(start, kHugePageBytes);
  if (aligned > start) ::munmap(p, aligned - start);
  const uintptr_t tail = start + kHugePageBytes - aligned;  // bytes past aligned + bytes
  if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + bytes), tail);
  return reinterpret_cast<uint8_t*>(aligned);
}

// ---------------------------------------------------------------------------------------------
// Shared segments.

// Size of the segment file for `bytes` of data: exact on tmpfs; hugetlbfs files (and their
// mappings) must be whole huge pages.
uint64_t SegmentBytes(const std::string& dir, uint64_t bytes) {
  struct statfs fs;
  if (::statfs(dir.c_str(), &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC && fs.f_bsize > 0) {
    return RoundUp(bytes, static_cast<uint64_t>(fs.f_bsize));
  }
  return bytes;
}

// Exclusive flock on "<segment>.lock", held for the lifetime of the object. The lock file may
// be unlinked by its holder (RemoveOnRelease); Acquire() therefore checks, once locked, that
// the path still names the inode it locked, and retries otherwise.
class LockFile {
 public:
  static Result<LockFile> Acquire(const std::string& path) {
    for (;;) {
      int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) return Status::FromErrno("open lock file " + path, errno);
      while (::flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        return Status::FromErrno("lock " + path, err);
      }
      struct stat locked, named;
      if (::fstat(fd, &locked) == 0 && ::stat(path.c_str(), &named) == 0 &&
          locked.st_dev == named.st_dev && locked.st_ino == named.st_ino) {
        return LockFile(fd, path);
      }
      ::close(fd);  // the holder before us removed it: lock the current one
    }
  }

  LockFile(LockFile&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), remove_(other.remove_) {}
  LockFile& operator=(LockFile&&) = delete;
  ~LockFile() {
    if (fd_ < 0) return;
    if (remove_) ::unlink(path_.c_str());  // while still locked; failure leaves a harmless file
    ::close(fd_);                          // releases the lock
  }

  // Unlink the lock file on release (when no segment is left for it to guard).
  void RemoveOnRelease() { remove_ = true; }

 private:
  LockFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  int fd_;
  std::string path_;
  bool remove_ = false;
};

// Segment names become file names: keep them to a safe alphabet.
Status CheckUuid(const std::string& uuid, const std::string& table) {
  const bool ok =
      !uuid.empty() && uuid.size() <= 64 && std::all_of(uuid.begin(), uuid.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '-' || c == '_';
      });
  if (ok) return Status::OK();
  return Status::InvalidArgument(TablePrefix(table) + "table_uuid '" + uuid +
                                 "' cannot name a shared segment");
}

Status LockShared(int fd, const std::string& path) {
  while (::flock(fd, LOCK_SH) != 0) {
    if (errno != EINTR) return Status::FromErrno("lock (shared) " + path, errno);
  }
  return Status::OK();
}

// Sizes a new segment file and reserves its memory, so a full tmpfs fails here, clearly,
// instead of with SIGBUS while loading.
Status ReserveSegment(int fd, uint64_t bytes, const std::string& path, const std::string& dir,
                      const std::string& table) {
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    return Status::FromErrno("resize shared segment " + path, errno);
  }
  const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (err == 0 || err == EOPNOTSUPP || err == ENOSYS) return Status::OK();
  if (err == ENOSPC || err == ENOMEM) {
    return Status::ResourceExhausted("not enough space in " + dir + " for table " + table +
                                     ": need " + std::to_string(bytes) + " bytes");
  }
  return Status::FromErrno("reserve shared segment " + path, err);
}

// A mapped segment file; `fd` holds LOCK_SH on it.
struct MappedSegment {
  int fd = -1;
  uint8_t* data = nullptr;
  uint64_t mapped_bytes = 0;
};

// Attaches to the complete segment open on `fd` (closed on error).
Result<MappedSegment> AttachSegment(int fd, const std::string& path, uint64_t segment_bytes,
                                    const std::string& table) {
  struct stat st;
  Status s;
  if (::fstat(fd, &st) != 0) {
    s = Status::FromErrno("stat shared segment " + path, errno);
  } else if (static_cast<uint64_t>(st.st_size) != segment_bytes) {
    s = Status::Corruption(TablePrefix(table) + "shared segment " + path + " has " +
                           std::to_string(st.st_size) + " bytes, expected " +
                           std::to_string(segment_bytes));
  }
  if (s.ok()) s = LockShared(fd, path);
  void* p = MAP_FAILED;
  if (s.ok()) {
    p = ::mmap(nullptr, segment_bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) s = Status::FromErrno("map shared segment " + path, errno);
  }
  if (s.ok()) return MappedSegment{fd, static_cast<uint8_t*>(p), segment_bytes};
  ::close(fd);
  return s;
}

// Creates `loading`, fills and verifies it, and renames it to `final_path`. On error nothing
// is left behind.
Result<MappedSegment> LoadSegment(RandomAccessFile* file, const TableLayout& layout,
                                  const std::vector<uint64_t>& page_checksums,
                                  const std::string& table, const std::string& final_path,
                                  const std::string& dir, uint64_t segment_bytes) {
  const std::string loading = final_path + ".loading";
  if (::unlink(loading.c_str()) != 0 && errno != ENOENT) {  // a crashed loader's leftover
    return Status::FromErrno("remove stale " + loading, errno);
  }
  int fd = ::open(loading.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create shared segment " + loading, errno);
  uint8_t* data = nullptr;
  Status s = ReserveSegment(fd, segment_bytes, loading, dir, table);
  if (s.ok()) s = LockShared(fd, loading);
  if (s.ok()) {
    void* p = ::mmap(nullptr, segment_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) s = Status::FromErrno("map shared segment " + loading, errno);
    if (s.ok()) data = static_cast<uint8_t*>(p);
  }
  if (s.ok()) s = LoadAndVerify(file, layout, page_checksums, table, data);
  if (s.ok() && ::mprotect(data, segment_bytes, PROT_READ) != 0) {
    s = Status::FromErrno("protect shared segment " + loading, errno);
  }
  if (s.ok() && ::rename(loading.c_str(), final_path.c_str()) != 0) {
    s = Status::FromErrno("rename " + loading + " -> " + final_path, errno);
  }
  if (s.ok()) return MappedSegment{fd, data, segment_bytes};
  if (data != nullptr) ::munmap(data, segment_bytes);
  ::close(fd);
  ::unlink(loading.c_str());  // best effort; the next opener removes it otherwise
  return s;
}

// Last-user cleanup: under the lock file, a segment nobody else holds is unlinked (with the
// lock file). Closes `fd`.
void ReleaseSegment(int fd, const std::string& path, const std::string& lock_path) {
  auto lock = LockFile::Acquire(lock_path);
  // A failed LOCK_NB conversion drops our LOCK_SH; harmless, we are closing anyway.
  if (lock.ok() && ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
    struct stat ours, named;
    if (::fstat(fd, &ours) == 0 && ::stat(path.c_str(), &named) == 0 &&
        ours.st_dev == named.st_dev && ours.st_ino == named.st_ino) {
      ::unlink(path.c_str());
      lock->RemoveOnRelease();
    }
  }
  // Without the lock file the segment stays; the next opener reuses it and cleans up.
  ::close(fd);
}

Result<std::unique_ptr<ResidentRegion>> MapFailedError(const std::string& table, uint64_t bytes,
                                                       int err) {
  return Status::ResourceExhausted(TablePrefix(table) + "cannot map " + std::to_string(bytes) +
                                   " bytes of memory: " + std::strerror(err));
}

}  // namespace

Result<std::unique_ptr<ResidentRegion>> ResidentRegion::Open(
    RandomAccessFile* file, const TableLayout& layout, const std::vector<uint64_t>& page_checksums,
    const std::string& table_name, const std::string& table_uuid, const ResidentOptions& options) {
  ENGRAM_RETURN_IF_ERROR(CheckInputs(file, layout, page_checksums, table_name));
  const uint64_t bytes = layout.data_bytes();
  std::unique_ptr<ResidentRegion> region(new ResidentRegion());
  region->size_ = bytes;

  if (!options.shared) {
    const uint64_t mapped = RoundUp(bytes, kHugePageBytes);
    uint8_t* data = MapAnonymousAligned(mapped);
    if (data == nullptr) return MapFailedError(table_name, mapped, errno);
    region->data_ = data;
    region->mapped_bytes_ = mapped;
    if (options.huge_pages) {
      region->huge_pages_ =
          ::madvise(data, mapped, MADV_HUGEPAGE) == 0 && TransparentHugePagesUsable();
    }
    ENGRAM_RETURN_IF_ERROR(LoadAndVerify(file, layout, page_checksums, table_name, data));
    // Read-only from now on; a failure here only loses that protection.
    (void)::mprotect(data, mapped, PROT_READ);
    return region;
  }

  ENGRAM_RETURN_IF_ERROR(CheckUuid(table_uuid, table_name));
  const std::string segment = JoinPath(options.shared_dir, "engram-" + table_uuid);
  const std::string lock_path = segment + ".lock";
  const uint64_t segment_bytes = SegmentBytes(options.shared_dir, bytes);
  ENGRAM_ASSIGN_OR_RETURN(LockFile lock, LockFile::Acquire(lock_path));
  const int fd = ::open(segment.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT) return Status::FromErrno("open shared segment " + segment, errno);
  const bool attach = fd >= 0;
  Result<MappedSegment> mapped = attach ? AttachSegment(fd, segment, segment_bytes, table_name)
                                        : LoadSegment(file, layout, page_checksums, table_name,
                                                      segment, options.shared_dir, segment_bytes);
  if (!mapped.ok()) {
    if (!attach) lock.RemoveOnRelease();  // no segment exists: leave nothing behind
    return mapped.status();
  }
  region->data_ = mapped->data;
  region->mapped_bytes_ = mapped->mapped_bytes;
  region->loaded_here_ = !attach;
  region->segment_path_ = segment;
  region->lock_path_ = lock_path;
  region->segment_fd_ = mapped->fd;
  return region;
}

ResidentRegion::~ResidentRegion() {
  if (data_ != nullptr) ::munmap(data_, mapped_bytes_);
  if (segment_fd_ >= 0) ReleaseSegment(segment_fd_, segment_path_, lock_path_);
}

std::string ResidentRegion::description() const {
  if (shared()) {
    return "shared segment " + segment_path_ + (loaded_here_ ? " (loaded here)" : " (attached)");
  }
  return huge_pages_ ? "private anonymous memory (transparent huge pages)"
                     : "private anonymous memory (4 KiB pages)";
}

}  // namespace engram
