// NvmeReader implementation: batch planning shared by two backends, an io_uring ring pool and
// a pread thread pool.
//
// Batch plan: the (id, index) pairs of a batch are sorted by id, which also sorts them by page
// (PageOf is monotonic), and cut into extents: runs of rows living in the same page (or, for
// rows larger than a page, the pages_per_row pages of one row). Each extent is one read of
// pages_per_read() pages, so a page is read once per batch however many requested rows it
// holds. Reads are issued in page order.
//
// io_uring backend: a Ring owns an io_uring (queue_depth entries, no SQPOLL/IOPOLL), one
// registered buffer of queue_depth slots of pages_per_read() pages (page-aligned, so O_DIRECT
// works), the data file registered as fixed file 0, and reusable per-batch vectors (plan,
// slot bookkeeping, CQE array) so a batch allocates nothing once the vectors have grown.
// ReadRows checks a Ring out of a mutex-protected pool (creating rings lazily up to max_rings,
// waiting on a condition variable beyond that), keeps up to queue_depth reads in flight,
// reaps completions in batches, and returns the Ring. On error no new reads are submitted and
// every read in flight is reaped before the Ring goes back, so the kernel never owns a buffer
// of a pooled ring. A ring whose io_uring_enter fails outright is destroyed instead of pooled.
//
// pread backend: a pool of pread_threads workers. ReadRows enlists up to pread_threads
// helpers for the call and works on the batch itself too; extents are claimed one at a time
// from an atomic cursor. Each worker reads into its own page-aligned buffer through
// RandomAccessFile::Read (so the Env fault seam applies) and verifies the checksums outside any
// lock. DESIGN CHOICE: sink calls then happen on the worker that read the extent, serialised by
// a per-call mutex, so a sink never runs concurrently with itself within one ReadRows call
// (it may run on a pool thread, not the caller's). Rows are delivered as soon as their page
// is verified, without buffering the whole batch.
#include "storage/nvme_reader.h"

#include <liburing.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace engram {
namespace {

// Entries kept in per-ring plan vectors after a batch; larger ones are released so one huge
// batch does not pin memory in every ring for the reader's lifetime.
constexpr size_t kMaxRetainedPlanEntries = size_t{1} << 20;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Page-aligned anonymous memory, unmapped on destruction.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }

  Status Allocate(size_t size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Status::FromErrno("mmap " + std::to_string(size) + " bytes", errno);
    data_ = static_cast<uint8_t*>(p);
    size_ = size;
    return Status::OK();
  }
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// One requested row: its id and its position in the caller's ids array.
struct RowRef {
  uint64_t id;
  size_t index;
};

// One read: pages [page, page + pages_per_read) serving rows[begin, end) of the plan.
struct Extent {
  uint64_t page;
  size_t begin;
  size_t end;
};

// The rows of a batch sorted by id and grouped into extents. Reused across batches.
struct BatchPlan {
  std::vector<RowRef> rows;
  std::vector<Extent> extents;

  void Build(const uint64_t* ids, size_t n, const TableLayout& layout) {
    rows.resize(n);
    bool sorted = true;
    for (size_t i = 0; i < n; ++i) {
      rows[i] = RowRef{ids[i], i};
      if (i > 0 && ids[i] < ids[i - 1]) sorted = false;
    }
    if (!sorted) {
      std::sort(rows.begin(), rows.end(),
                [](const RowRef& a, const RowRef& b) { return a.id < b.id; });
    }
    extents.clear();
    for (size_t i = 0; i < n; ++i) {
      const uint64_t page = layout.PageOf(rows[i].id);
      if (extents.empty() || extents.back().page != page) {
        extents.push_back(Extent{page, i, i + 1});
      } else {
        extents.back().end = i + 1;
      }
    }
  }

  void ReleaseIfHuge() {
    if (rows.capacity() > kMaxRetainedPlanEntries) std::vector<RowRef>().swap(rows);
    if (extents.capacity() > kMaxRetainedPlanEntries) std::vector<Extent>().swap(extents);
  }
};

// What both backends share: the file, its geometry and checksums, and the checks and row
// delivery done for every completed read. Constant after construction.
class ReaderCore {
 public:
  ReaderCore(std::unique_ptr<RandomAccessFile> file, const TableLayout& layout,
             std::vector<uint64_t> checksums, std::string table, TierCounters* counters)
      : file_(std::move(file)),
        layout_(layout),
        checksums_(std::move(checksums)),
        table_(std::move(table)),
        counters_(counters),
        read_bytes_(size_t{layout.pages_per_read()} * kPageSize) {}

  const RandomAccessFile& file() const { return *file_; }
  const TableLayout& layout() const { return layout_; }
  size_t read_bytes() const { return read_bytes_; }
  TierCounters* counters() const { return counters_; }
  uint64_t OffsetOf(const Extent& e) const { return e.page * kPageSize; }

  // "table T: row R at offset O" for the first requested row of `e`.
  std::string Where(const BatchPlan& plan, const Extent& e) const {
    const uint64_t row = plan.rows[e.begin].id;
    return "table " + table_ + ": row " + std::to_string(row) + " at offset " +
           std::to_string(layout_.OffsetOf(row));
  }

  // Maps a kernel read result (after FilterCompletion) to a Status.
  Status CheckReadResult(const BatchPlan& plan, const Extent& e, int64_t res) const {
    if (res < 0) {
      return Status::IOError(Where(plan, e) + ": read of " + std::to_string(read_bytes_) +
                             " bytes at offset " + std::to_string(OffsetOf(e)) + " of " +
                             file_->path() + " failed: " + std::strerror(static_cast<int>(-res)));
    }
    if (static_cast<uint64_t>(res) < read_bytes_) {
      return Status::IOError(Where(plan, e) + ": short read at offset " +
                             std::to_string(OffsetOf(e)) + " of " + file_->path() + ": wanted " +
                             std::to_string(read_bytes_) + " bytes, got " + std::to_string(res));
    }
    return Status::OK();
  }

  // Checks every page of `e` read into `buf` against its stored XXH3.
  Status VerifyPages(const BatchPlan& plan, const Extent& e, const uint8_t* buf) const {
    const uint32_t pages = layout_.pages_per_read();
    for (uint32_t k = 0; k < pages; ++k) {
      if (Checksum(buf + size_t{k} * kPageSize, kPageSize) != checksums_[e.page + k]) {
        return PageChecksumMismatch(table_, layout_, e.page + k, plan.rows[e.begin].id);
      }
    }
    return Status::OK();
  }

  // Calls `sink` for every requested row of `e` held in `buf`.
  void Deliver(const BatchPlan& plan, const Extent& e, const uint8_t* buf,
               const NvmeReader::RowSink& sink) const {
    const uint64_t base = OffsetOf(e);
    for (size_t i = e.begin; i < e.end; ++i) {
      const RowRef& r = plan.rows[i];
      sink(r.index, buf + (layout_.OffsetOf(r.id) - base));
    }
  }

  void RecordRead(int64_t latency_ns) const {
    if (counters_ == nullptr) return;
    counters_->RecordReadLatencyNs(static_cast<uint64_t>(std::max<int64_t>(latency_ns, 0)));
    counters_->AddBytesRead(read_bytes_);
  }

 private:
  const std::unique_ptr<RandomAccessFile> file_;
  const TableLayout layout_;
  const std::vector<uint64_t> checksums_;
  const std::string table_;
  TierCounters* const counters_;
  const size_t read_bytes_;
};

// ---------------------------------------------------------------------------------------------
// io_uring backend.

// One io_uring with its registered buffer and file. Used by one thread at a time.
class Ring {
 public:
  ~Ring() {
    if (initialized_) io_uring_queue_exit(&ring_);
  }

  // Sets up a ring of `queue_depth` entries reading `core`'s file. The error names the step
  // and carries the errno text; `*err` receives the errno.
  static Result<std::unique_ptr<Ring>> Create(const ReaderCore& core, uint32_t queue_depth,
                                              int* err) {
    std::unique_ptr<Ring> r(new Ring(queue_depth, core.read_bytes()));
    *err = r->Init(core.file().fd());
    if (*err != 0) {
      return Status::NotSupported(r->failed_step_ + ": " + std::strerror(*err));
    }
    return r;
  }

  // Reads all extents of `plan`, delivering rows to `sink`. Sets *broken when the ring can
  // no longer be trusted (io_uring_enter failed); it must then be destroyed, not pooled.
  Status Run(const ReaderCore& core, const NvmeReader::RowSink& sink, bool* broken);

  BatchPlan& plan() { return plan_; }

 private:
  Ring(uint32_t queue_depth, size_t slot_bytes)
      : queue_depth_(queue_depth), slot_bytes_(slot_bytes) {}

  int Init(int fd);
  // Queues reads for the next extents while slots are free.
  void Fill(const ReaderCore& core);
  // Handles one completion: result checks, checksums, sink. Frees the slot.
  Status Complete(const ReaderCore& core, const io_uring_cqe* cqe, int64_t now_ns,
                  const NvmeReader::RowSink& sink, bool deliver);

  const uint32_t queue_depth_;
  const size_t slot_bytes_;
  io_uring ring_{};
  bool initialized_ = false;
  std::string failed_step_;
  AlignedBuffer buffer_;
  // Per-batch state, reused.
  BatchPlan plan_;
  std::vector<uint32_t> free_slots_;
  std::vector<size_t> slot_extent_;
  std::vector<int64_t> slot_submit_ns_;
  std::vector<io_uring_cqe*> cqes_;
  size_t next_extent_ = 0;
  uint32_t in_flight_ = 0;
};

int Ring::Init(int fd) {
  // COOP_TASKRUN avoids an IPI per completion; fall back to plain flags on older kernels.
  int rc = io_uring_queue_init(queue_depth_, &ring_, IORING_SETUP_COOP_TASKRUN);
  if (rc == -EINVAL) rc = io_uring_queue_init(queue_depth_, &ring_, 0);
  if (rc < 0) {
    failed_step_ = "io_uring_queue_init";
    return -rc;
  }
  initialized_ = true;
  Status s = buffer_.Allocate(size_t{queue_depth_} * slot_bytes_);
  if (!s.ok()) {
    failed_step_ = "allocate ring buffer";
    return ENOMEM;
  }
  iovec iov{buffer_.data(), buffer_.size()};
  rc = io_uring_register_buffers(&ring_, &iov, 1);
  if (rc < 0) {
    failed_step_ = "io_uring_register_buffers";
    return -rc;
  }
  rc = io_uring_register_files(&ring_, &fd, 1);
  if (rc < 0) {
    failed_step_ = "io_uring_register_files";
    return -rc;
  }
  slot_extent_.assign(queue_depth_, 0);
  slot_submit_ns_.assign(queue_depth_, 0);
  cqes_.assign(queue_depth_, nullptr);
  free_slots_.reserve(queue_depth_);
  return 0;
}

void Ring::Fill(const ReaderCore& core) {
  const size_t extents = plan_.extents.size();
  if (next_extent_ >= extents || free_slots_.empty()) return;
  const int64_t now = core.counters() != nullptr ? NowNs() : 0;
  while (next_extent_ < extents && !free_slots_.empty()) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) break;  // SQ full; the next submit makes room
    const uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    const Extent& e = plan_.extents[next_extent_];
    io_uring_prep_read_fixed(sqe, /*fixed file index=*/0, buffer_.data() + slot * slot_bytes_,
                             static_cast<unsigned>(slot_bytes_), core.OffsetOf(e),
                             /*buf_index=*/0);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, slot);
    slot_extent_[slot] = next_extent_;
    slot_submit_ns_[slot] = now;
    ++next_extent_;
    ++in_flight_;
  }
}

Status Ring::Complete(const ReaderCore& core, const io_uring_cqe* cqe, int64_t now_ns,
                      const NvmeReader::RowSink& sink, bool deliver) {
  const auto slot = static_cast<uint32_t>(io_uring_cqe_get_data64(cqe));
  const Extent& e = plan_.extents[slot_extent_[slot]];
  uint8_t* buf = buffer_.data() + slot * slot_bytes_;
  free_slots_.push_back(slot);
  --in_flight_;
  const int64_t res = core.file().FilterCompletion(core.OffsetOf(e), slot_bytes_, buf, cqe->res);
  if (res >= 0) core.RecordRead(now_ns - slot_submit_ns_[slot]);
  if (!deliver) return Status::OK();  // draining after an error
  ENGRAM_RETURN_IF_ERROR(core.CheckReadResult(plan_, e, res));
  ENGRAM_RETURN_IF_ERROR(core.VerifyPages(plan_, e, buf));
  core.Deliver(plan_, e, buf, sink);
  return Status::OK();
}

Status Ring::Run(const ReaderCore& core, const NvmeReader::RowSink& sink, bool* broken) {
  free_slots_.clear();
  for (uint32_t s = queue_depth_; s > 0; --s) free_slots_.push_back(s - 1);
  next_extent_ = 0;
  in_flight_ = 0;
  Status status;
  for (;;) {
    if (status.ok()) Fill(core);
    if (in_flight_ == 0) break;
    const unsigned wait = io_uring_cq_ready(&ring_) > 0 ? 0 : 1;
    if (wait > 0 || io_uring_sq_ready(&ring_) > 0) {
      const int rc = io_uring_submit_and_wait(&ring_, wait);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        // The ring cannot be driven any more. Tearing it down (the caller destroys it) makes
        // the kernel cancel or finish what is in flight; the buffer pages stay pinned by the
        // kernel until then, so freeing our mapping is safe.
        *broken = true;
        if (status.ok()) {
          status = Status::IOError(core.Where(plan_, plan_.extents[0]) +
                                   ": io_uring_submit_and_wait failed: " + std::strerror(-rc));
        }
        return status;
      }
    }
    const unsigned got = io_uring_peek_batch_cqe(&ring_, cqes_.data(), queue_depth_);
    const int64_t now = (got > 0 && core.counters() != nullptr) ? NowNs() : 0;
    for (unsigned i = 0; i < got; ++i) {
      Status s = Complete(core, cqes_[i], now, sink, status.ok());
      if (!s.ok() && status.ok()) status = std::move(s);
    }
    io_uring_cq_advance(&ring_, got);
  }
  return status;
}

class UringReader final : public NvmeReader {
 public:
  UringReader(std::unique_ptr<ReaderCore> core, const NvmeReaderOptions& options,
              std::unique_ptr<Ring> first_ring)
      : core_(std::move(core)), queue_depth_(options.queue_depth), max_rings_(options.max_rings) {
    free_.push_back(std::move(first_ring));
    rings_ = 1;
  }
  // REQUIRES: no ReadRows in progress.
  ~UringReader() override = default;

  Status ReadRows(const uint64_t* ids, size_t n, const RowSink& sink) override {
    if (n == 0) return Status::OK();
    ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<Ring> ring, Acquire());
    ring->plan().Build(ids, n, core_->layout());
    bool broken = false;
    Status s = ring->Run(*core_, sink, &broken);
    ring->plan().ReleaseIfHuge();
    Release(std::move(ring), broken);
    return s;
  }

  std::string backend_description() const override {
    return "io_uring (queue depth " + std::to_string(queue_depth_) + ")";
  }
  bool uses_io_uring() const override { return true; }

 private:
  Result<std::unique_ptr<Ring>> Acquire();
  void Release(std::unique_ptr<Ring> ring, bool broken);

  // Constant after construction.
  const std::unique_ptr<ReaderCore> core_;
  const uint32_t queue_depth_;

  std::mutex mu_;
  std::condition_variable ring_freed_;
  std::vector<std::unique_ptr<Ring>> free_;  // GUARDED_BY(mu_)
  uint32_t rings_ = 0;                       // GUARDED_BY(mu_): live rings, pooled or out
  uint32_t max_rings_;                       // GUARDED_BY(mu_): lowered when creating a ring fails
};

Result<std::unique_ptr<Ring>> UringReader::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (!free_.empty()) {
      std::unique_ptr<Ring> ring = std::move(free_.back());
      free_.pop_back();
      return ring;
    }
    if (rings_ < max_rings_) {
      ++rings_;
      lock.unlock();
      int err = 0;
      auto ring = Ring::Create(*core_, queue_depth_, &err);
      lock.lock();
      if (ring.ok()) return std::move(ring).value();
      // Out of locked memory or the like: stay at the rings we have, if any.
      --rings_;
      if (rings_ == 0) return ring.status();
      max_rings_ = rings_;
      continue;
    }
    ring_freed_.wait(lock);
  }
}

void UringReader::Release(std::unique_ptr<Ring> ring, bool broken) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken) {
      --rings_;  // destroyed below, outside the lock; a waiter may create a new one
    } else {
      free_.push_back(std::move(ring));
    }
  }
  ring_freed_.notify_one();
}

// ---------------------------------------------------------------------------------------------
// pread backend.

// Fixed pool of threads running jobs; each job gets the worker's own page-aligned buffer.
class ReadPool {
 public:
  using Job = std::function<void(uint8_t* scratch)>;

  // Threads whose buffer cannot be allocated are not started; Size() says how many run.
  ReadPool(uint32_t threads, size_t scratch_bytes) {
    for (uint32_t t = 0; t < threads; ++t) {
      auto buf = std::make_unique<AlignedBuffer>();
      if (!buf->Allocate(scratch_bytes).ok()) break;
      threads_.emplace_back([this, b = buf.get()] { Loop(b->data()); });
      buffers_.push_back(std::move(buf));
    }
  }
  ~ReadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  size_t Size() const { return threads_.size(); }

  void Submit(Job job, size_t copies) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < copies; ++i) jobs_.push_back(job);
    }
    if (copies == 1) {
      work_.notify_one();
    } else {
      work_.notify_all();
    }
  }

 private:
  void Loop(uint8_t* scratch) {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stop_ and nothing left
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job(scratch);
    }
  }

  std::vector<std::unique_ptr<AlignedBuffer>> buffers_;  // constant after construction
  std::vector<std::thread> threads_;                     // constant after construction
  std::mutex mu_;
  std::condition_variable work_;
  std::deque<Job> jobs_;  // GUARDED_BY(mu_)
  bool stop_ = false;     // GUARDED_BY(mu_)
};

// State of one ReadRows call on the pread pool. Shared (shared_ptr) with helper jobs, which
// may start after the call has returned: such late helpers find no extent left to claim and
// touch nothing but the cursor, so `plan` and `sink` (owned by the caller) are only used while
// the caller waits.
struct PreadCall {
  const ReaderCore* core = nullptr;
  const BatchPlan* plan = nullptr;
  const NvmeReader::RowSink* sink = nullptr;
  size_t total = 0;
  std::atomic<size_t> next{0};  // next extent to claim
  std::atomic<bool> failed{false};

  std::mutex mu;  // serialises sink calls; guards the fields below
  std::condition_variable all_done;
  size_t done = 0;  // GUARDED_BY(mu): extents finished (read, failed or skipped)
  Status error;     // GUARDED_BY(mu): first error

  // Claims and handles extents until none is left.
  void Work(uint8_t* scratch) {
    for (;;) {
      const size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= total) return;
      Status s;
      if (!failed.load(std::memory_order_relaxed)) s = ReadOne(plan->extents[i], scratch);
      std::lock_guard<std::mutex> lock(mu);
      if (!s.ok() && error.ok()) {
        error = std::move(s);
        failed.store(true, std::memory_order_relaxed);
      }
      if (++done == total) all_done.notify_all();
    }
  }

  // Reads and verifies one extent outside the lock, then delivers its rows under `mu` (unless
  // another extent failed meanwhile).
  Status ReadOne(const Extent& e, uint8_t* scratch) {
    const int64_t start = core->counters() != nullptr ? NowNs() : 0;
    Status s = core->file().Read(core->OffsetOf(e), core->read_bytes(), scratch);
    if (!s.ok()) return s.WithContext(core->Where(*plan, e));
    core->RecordRead(core->counters() != nullptr ? NowNs() - start : 0);
    ENGRAM_RETURN_IF_ERROR(core->VerifyPages(*plan, e, scratch));
    std::lock_guard<std::mutex> lock(mu);
    if (failed.load(std::memory_order_relaxed)) return Status::OK();
    core->Deliver(*plan, e, scratch, *sink);
    return Status::OK();
  }
};

class PreadReader final : public NvmeReader {
 public:
  PreadReader(std::unique_ptr<ReaderCore> core, uint32_t threads, std::string description)
      : core_(std::move(core)),
        description_(std::move(description)),
        pool_(threads, core_->read_bytes()) {}

  Status ReadRows(const uint64_t* ids, size_t n, const RowSink& sink) override {
    if (n == 0) return Status::OK();
    BatchPlan plan;
    plan.Build(ids, n, core_->layout());
    AlignedBuffer scratch;
    ENGRAM_RETURN_IF_ERROR(scratch.Allocate(core_->read_bytes()));
    auto call = std::make_shared<PreadCall>();
    call->core = core_.get();
    call->plan = &plan;
    call->sink = &sink;
    call->total = plan.extents.size();
    const size_t helpers = std::min(pool_.Size(), call->total - 1);
    if (helpers > 0) pool_.Submit([call](uint8_t* buf) { call->Work(buf); }, helpers);
    call->Work(scratch.data());
    std::unique_lock<std::mutex> lock(call->mu);
    call->all_done.wait(lock, [&] { return call->done == call->total; });
    return call->error;
  }

  std::string backend_description() const override { return description_; }
  bool uses_io_uring() const override { return false; }

 private:
  // Constant after construction. core_ is declared first: pool_ threads may read it.
  const std::unique_ptr<ReaderCore> core_;
  const std::string description_;
  ReadPool pool_;
};

void LogIoUringUnavailableOnce(const std::string& reason) {
  static std::once_flag once;
  std::call_once(once, [&] {
    std::fprintf(stderr, "engram-store: io_uring unavailable (%s); using pread thread pool\n",
                 reason.c_str());
  });
}

Status ValidateOpen(const RandomAccessFile& file, const TableLayout& layout,
                    const std::vector<uint64_t>& checksums, const std::string& table,
                    const NvmeReaderOptions& options) {
  if (options.queue_depth == 0 || options.queue_depth > 4096) {
    return Status::InvalidArgument("table " + table + ": queue_depth " +
                                   std::to_string(options.queue_depth) +
                                   " is out of range (1..4096)");
  }
  if (options.max_rings == 0) {
    return Status::InvalidArgument("table " + table + ": max_rings must be at least 1");
  }
  if (checksums.size() != layout.num_pages()) {
    return Status::Corruption("table " + table + ": " + std::to_string(checksums.size()) +
                              " page checksums for " + std::to_string(layout.num_pages()) +
                              " data pages");
  }
  ENGRAM_ASSIGN_OR_RETURN(uint64_t size, file.Size());
  if (size < layout.data_bytes()) {
    return Status::Corruption("table " + table + ": data file " + file.path() + " has " +
                              std::to_string(size) + " bytes, expected " +
                              std::to_string(layout.data_bytes()) + " (truncated?)");
  }
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<NvmeReader>> NvmeReader::Open(std::unique_ptr<RandomAccessFile> file,
                                                     const TableLayout& layout,
                                                     std::vector<uint64_t> page_checksums,
                                                     std::string table_name,
                                                     const NvmeReaderOptions& options,
                                                     TierCounters* counters) {
  if (file == nullptr) return Status::InvalidArgument("table " + table_name + ": no data file");
  ENGRAM_RETURN_IF_ERROR(ValidateOpen(*file, layout, page_checksums, table_name, options));
  auto core = std::make_unique<ReaderCore>(std::move(file), layout, std::move(page_checksums),
                                           table_name, counters);
  if (options.backend == IoBackend::kPread) {
    return std::unique_ptr<NvmeReader>(
        new PreadReader(std::move(core), options.pread_threads, "pread (selected)"));
  }
  int err = 0;
  auto ring = Ring::Create(*core, options.queue_depth, &err);
  if (ring.ok()) {
    return std::unique_ptr<NvmeReader>(
        new UringReader(std::move(core), options, std::move(ring).value()));
  }
  if (options.backend == IoBackend::kIoUring) {
    return ring.status().WithContext("table " + table_name + ": io_uring unavailable");
  }
  const std::string reason = std::strerror(err);
  LogIoUringUnavailableOnce(reason);
  return std::unique_ptr<NvmeReader>(new PreadReader(
      std::move(core), options.pread_threads, "pread (io_uring unavailable: " + reason + ")"));
}

}  // namespace engram
