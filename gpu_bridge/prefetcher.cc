// Prefetcher: tickets, fetch threads, the budget and the HBM tier; see prefetcher.h.
//
// A ticket's life (every state change under Impl::mu_):
//   Prefetch   ids checked, budget reserved (one range of the staging arena: the same offsets
//              in the host (or pinned host) buffer and, with a device, the device buffer),
//              state kQueued, queued for a fetch thread.
//   fetch      kFetching. Host only: the unique ids are held with Table::AcquireRows (resident
//              rows, pinned DRAM-cache rows, NVMe copies in the ticket's rows) until release.
//              With a device: HBM hits pinned (PinBatch); for each miss the HBM directory is
//              asked for a slot (BeginInsert); the misses are acquired from the Table, copied
//              into pinned staging and released; rows and pointer arrays go to the device on
//              the thread's copy stream, admitted rows are scattered into their slots, and once
//              the copy's event is done the slots are committed. Then kReady, kFailed, or
//              kCancelled when Cancel asked it to stop (checked between chunks of rows).
//   Gather     waits for a final state; counted in `gathers` while it reads.
//   Release/Cancel
//              the id leaves the map at once (a second call is NotFound); a queued ticket is
//              dropped, a fetching one told to stop; once the fetch is final and no gather
//              runs, waits for gathers enqueued on callers' streams, unpins, frees the budget.
//
// A ticket's staging range (n = requested rows; offsets 256-aligned):
//   rows  n * row_bytes  host only: the NVMe copy of unique row u at u. Device: the misses,
//                        admitted ones first; for a host gather, the HBM hits after them.
//   ptrs  n pointers     the row of each request position: host pointers (host only) or
//                        device pointers (the gather's array); for a host gather in device
//                        mode, host pointers into `rows` once the hits were copied down.
//   aux   n pointers     device only: the HBM slot of each admitted miss (the scatter's
//                        array); later the hits' slots (the host copy's gather array).
//
// A gather plan (device only) is two buffers of its own, laid out alike: [uint64 row count]
// [max_rows row pointers], pinned host (written by Bind under the plan's bind_mu) and device
// (copied from it on the Bind's stream; read by every launch). Bind reads the ticket's rows
// (stage_of, hbm_pins) counted in `gathers`, like Gather. The plan's `bound` ticket is
// GUARDED_BY(mu_); an event of a Bind on a caller's stream goes to the bound ticket's
// gather_events and to the one bound before it, so Release waits for it.
#include "gpu_bridge/prefetcher.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/row_cache.h"
#include "gpu_bridge/row_kernels.h"
#include "gpu_bridge/staging_arena.h"
#include "storage/array_file.h"
#include "storage/row_ids.h"

namespace engram::gpu {
namespace {

// Rows per Table::AcquireRows call: how often a fetch checks for cancellation.
constexpr size_t kFetchChunk = 4096;

struct Layout {
  size_t ptrs = 0;   // offset of the position -> row pointer array
  size_t aux = 0;    // offset of the aux pointer array (device only)
  size_t bytes = 0;  // the whole range
};

// REQUIRES: n * row_bytes does not overflow (Prefetch checks n against the arena first).
Layout TicketLayout(size_t n, uint32_t row_bytes, bool device) {
  Layout l;
  l.ptrs = StagingArena::RoundUp(n * row_bytes);
  l.aux = l.ptrs + StagingArena::RoundUp(n * sizeof(void*));
  l.bytes = device ? l.aux + StagingArena::RoundUp(n * sizeof(void*)) : l.aux;
  return l;
}

enum class State { kQueued, kFetching, kReady, kFailed, kCancelled };

bool Final(State s) { return s == State::kReady || s == State::kFailed || s == State::kCancelled; }

std::string TicketName(TicketId id) { return "ticket " + std::to_string(id); }
std::string PlanName(GatherPlanId id) { return "gather plan " + std::to_string(id); }

Status NotLive(TicketId id) {
  return Status::NotFound(TicketName(id) + " is not live (released, cancelled or never issued)");
}

// Memory from the device (or plain host memory when `device` is null), freed on destruction.
class Buffer {
 public:
  enum Kind { kHost, kPinned, kDevice };
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { Reset(); }

  // `bytes` usable bytes starting at a 256-byte aligned address (data()).
  Status Allocate(Device* device, Kind kind, size_t bytes, const char* what) {
    const size_t total = bytes + StagingArena::kAlignment;
    device_ = device;
    kind_ = kind;
    if (kind == kHost) {
      raw_ = ::operator new(total, std::nothrow);
      if (raw_ == nullptr) {
        return Status::ResourceExhausted(std::string(what) + ": cannot allocate " +
                                         std::to_string(total) + " bytes of host memory");
      }
    } else {
      Result<void*> p = kind == kPinned ? device->MallocHost(total) : device->Malloc(total);
      if (!p.ok()) return p.status().WithContext(what);
      raw_ = *p;
    }
    const uintptr_t a = reinterpret_cast<uintptr_t>(raw_);
    data_ = reinterpret_cast<uint8_t*>((a + StagingArena::kAlignment - 1) /
                                       StagingArena::kAlignment * StagingArena::kAlignment);
    return Status::OK();
  }
  void Reset() {
    if (raw_ == nullptr) return;
    if (kind_ == kHost) {
      ::operator delete(raw_);
    } else if (kind_ == kPinned) {
      device_->FreeHost(raw_);
    } else {
      device_->Free(raw_);
    }
    raw_ = nullptr;
    data_ = nullptr;
  }
  uint8_t* data() const { return data_; }

 private:
  Device* device_ = nullptr;
  Kind kind_ = kHost;
  void* raw_ = nullptr;
  uint8_t* data_ = nullptr;
};

Status PlanNotLive(GatherPlanId id) {
  return Status::NotFound(PlanName(id) + " is not live (freed or never made)");
}

// Offsets in a gather plan's buffers: the row count, then the row pointers.
constexpr size_t kPlanCount = 0;
constexpr size_t kPlanRows = sizeof(uint64_t);

}  // namespace

class Prefetcher::Impl {
 public:
  Impl(Table* table, const PrefetchOptions& options)
      : table_(table), options_(options), device_(options.device), row_bytes_(table->row_bytes()) {}
  ~Impl();

  Status Init();
  Result<TicketId> Prefetch(const uint64_t* ids, size_t n);
  Status Wait(TicketId id);
  Result<bool> Poll(TicketId id);
  Status Gather(TicketId id, const GatherTarget& target);
  Status Retire(TicketId id);
  Result<GatherPlanId> NewGatherPlan(size_t max_rows, const GatherTarget& target);
  Status BindGatherPlan(GatherPlanId plan_id, TicketId id, Stream* stream);
  Status LaunchGatherPlan(GatherPlanId plan_id, Stream* stream);
  Status FreeGatherPlan(GatherPlanId plan_id);
  PrefetchStats stats() const;

  const std::vector<uint64_t>& hot_rows_left() const { return hot_rows_left_; }
  Device* device() const { return device_; }
  Table* table() const { return table_; }

 private:
  struct Ticket {
    TicketId id = 0;
    std::vector<uint64_t> ids;  // as requested
    size_t offset = 0;          // of the staging range (when ids is not empty)
    Layout layout;
    std::atomic<bool> cancel{false};  // set by Retire, read by the fetch
    // GUARDED_BY(mu_)
    State state = State::kQueued;
    Status status;  // kFailed: the fetch's error
    int gathers = 0;
    // Gathers and plan binds on callers' streams (a bind's event may be in two tickets).
    std::vector<std::shared_ptr<Event>> gather_events;
    // Written by the fetch before the state turns final; read-only afterwards.
    std::vector<HeldRow> held;               // host only: per unique id
    std::vector<cache::PinnedRow> hbm_pins;  // device: the HBM hits, in staging order
    std::vector<uint32_t> stage_of;          // device: position -> index in `rows`
    size_t misses = 0;                       // device: rows [0, misses) are misses
    // Device, host gathers: the hits copied down and host pointers written, once.
    std::mutex host_copy_mu;
    bool host_copy_done = false;  // GUARDED_BY(host_copy_mu)
  };
  struct Plan {
    explicit Plan(Device* d) : device(d) {}
    ~Plan() {  // the last Bind's copies read `host`
      if (last_bind) device->Synchronize(last_bind.get()).PermitUnchecked();
    }
    Device* const device;
    // Constant after NewGatherPlan.
    size_t max_rows = 0;
    Buffer host;                       // pinned: count and row pointers, filled by Bind
    Buffer dev;                        // device: the same, what every launch reads
    GatherArgs args;                   // what every launch enqueues
    std::mutex bind_mu;                // serialises binds
    std::shared_ptr<Event> last_bind;  // its copies on a caller's stream; GUARDED_BY(bind_mu)
    TicketId bound = 0;                // 0: not bound; GUARDED_BY(Impl::mu_)
  };
  struct FetchCounts {
    uint64_t unique = 0, hbm_hits = 0, fetched = 0, to_device = 0, inserts = 0;
  };
  // What Upload sends: rows [0, rows) of a staging range, its pointer bytes
  // [ptrs, ptrs + ptr_bytes), then the scatter of the first `scatter` rows into the slots
  // listed at `aux`.
  struct UploadPlan {
    size_t offset = 0;
    size_t rows = 0;
    size_t ptrs = 0;
    size_t ptr_bytes = 0;
    size_t aux = 0;
    size_t scatter = 0;
  };

  void WorkerLoop(size_t worker);
  Status FetchHost(Ticket& t, FetchCounts* counts, bool* cancelled);
  Status FetchDevice(Ticket& t, Stream* stream, FetchCounts* counts, bool* cancelled);
  // Acquires ids[0..n) from the table into host staging at `rows` (row k at k * row_bytes),
  // copying what the table holds elsewhere, and releases them. Stops early (with *cancelled)
  // when `cancel` is set.
  Status StageRows(const uint64_t* ids, size_t n, uint8_t* rows, const std::atomic<bool>* cancel,
                   bool* cancelled);
  Status Upload(const UploadPlan& plan, Stream* stream);
  Status EnsureHostCopy(Ticket& t);
  void FreeTicketRows(Ticket& t);
  Status LoadHotRows();
  Status CheckTarget(const GatherTarget& target) const;
  // Waits for the ticket's fetch; on success counts the caller in its `gathers`.
  // REQUIRES(mu_) held by `lock`.
  Status AwaitReady(std::unique_lock<std::mutex>& lock, const std::shared_ptr<Ticket>& t);
  // Fills the plan's pinned buffers with ticket t's row count and device row pointers and
  // enqueues their copy on `stream`; *event marks the copy. REQUIRES(plan.bind_mu)
  Status StagePlan(Plan& plan, const Ticket& t, Stream* stream, std::shared_ptr<Event>* event);
  // Rows one ticket may have: the arena's capacity in rows, at most 2^32 - 1.
  size_t MaxTicketRows() const;
  std::shared_ptr<Ticket> Find(TicketId id) const;  // REQUIRES(mu_)
  uint8_t* SlotPtr(uint64_t slot) const { return slots_.data() + slot * row_bytes_; }
  // Device address of staged row s of device ticket t: a miss in its device staging, or a
  // hit's HBM slot.
  const uint8_t* DeviceRow(const Ticket& t, uint32_t s) const {
    return s < t.misses ? DeviceAt(t.offset) + size_t{s} * row_bytes_
                        : SlotPtr(t.hbm_pins[s - t.misses].slot);
  }
  uint8_t* HostAt(size_t offset) const { return host_.data() + offset; }
  uint8_t* DeviceAt(size_t offset) const { return device_buf_.data() + offset; }

  // Constant after Init.
  Table* const table_;
  const PrefetchOptions options_;
  Device* const device_;
  const uint32_t row_bytes_;
  Buffer host_;        // host staging (host only) or pinned staging (device)
  Buffer device_buf_;  // device staging
  Buffer slots_;       // HBM slot pool
  std::unique_ptr<cache::RowCache> hbm_;
  std::vector<std::unique_ptr<Stream>> copy_streams_;  // one per fetch thread
  std::unique_ptr<Stream> gather_stream_;
  std::vector<uint64_t> hot_rows_left_;
  uint64_t hot_rows_pinned_ = 0;
  std::vector<std::thread> workers_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;      // queue_ gained a ticket, or stop_
  std::condition_variable budget_cv_;    // budget freed
  std::condition_variable state_cv_;     // a ticket's state or gathers changed
  std::unique_ptr<StagingArena> arena_;  // GUARDED_BY(mu_)
  std::unordered_map<TicketId, std::shared_ptr<Ticket>> tickets_;  // GUARDED_BY(mu_)
  std::deque<std::shared_ptr<Ticket>> queue_;                      // GUARDED_BY(mu_)
  TicketId next_id_ = 1;                                           // GUARDED_BY(mu_)
  std::unordered_map<GatherPlanId, std::shared_ptr<Plan>> plans_;  // GUARDED_BY(mu_)
  GatherPlanId next_plan_ = 1;                                     // GUARDED_BY(mu_)
  bool stop_ = false;                                              // GUARDED_BY(mu_)
  PrefetchStats stats_;                                            // GUARDED_BY(mu_)
};

// ---- Setup and teardown ---------------------------------------------------------------------

Status Prefetcher::Impl::Init() {
  const PrefetchOptions& o = options_;
  if (o.fetch_threads == 0) return Status::InvalidArgument("prefetcher: fetch_threads is 0");
  if (o.max_tickets == 0) return Status::InvalidArgument("prefetcher: max_tickets is 0");
  const size_t one_row = TicketLayout(1, row_bytes_, device_ != nullptr).bytes;
  if (o.max_inflight_bytes < one_row) {
    return Status::InvalidArgument(
        "prefetcher: max_inflight_bytes " + std::to_string(o.max_inflight_bytes) +
        " cannot stage one row (" + std::to_string(one_row) + " bytes with its pointers)");
  }
  if (o.hbm_cache_bytes > 0) {
    if (device_ == nullptr) {
      return Status::InvalidArgument("prefetcher: an HBM tier (hbm_cache_bytes " +
                                     std::to_string(o.hbm_cache_bytes) + ") needs a device");
    }
    if (o.hbm_cache_bytes < row_bytes_) {
      return Status::InvalidArgument(
          "prefetcher: hbm_cache_bytes " + std::to_string(o.hbm_cache_bytes) +
          " cannot hold one row of " + std::to_string(row_bytes_) + " bytes");
    }
    if (o.hbm_policy && !o.hbm_policy->concurrent_hits()) {
      return Status::InvalidArgument("prefetcher: HBM policy " + o.hbm_policy->name() +
                                     " moves list nodes on hits; it is for trace replay only");
    }
  }
  const size_t capacity =
      o.max_inflight_bytes / StagingArena::kAlignment * StagingArena::kAlignment;
  if (device_ == nullptr) {
    ENGRAM_RETURN_IF_ERROR(host_.Allocate(nullptr, Buffer::kHost, capacity, "host staging"));
  } else {
    ENGRAM_RETURN_IF_ERROR(host_.Allocate(device_, Buffer::kPinned, capacity, "pinned staging"));
    ENGRAM_RETURN_IF_ERROR(
        device_buf_.Allocate(device_, Buffer::kDevice, capacity, "device staging"));
    for (uint32_t i = 0; i < o.fetch_threads; ++i) {
      ENGRAM_ASSIGN_OR_RETURN(auto stream, device_->NewStream());
      copy_streams_.push_back(std::move(stream));
    }
    ENGRAM_ASSIGN_OR_RETURN(gather_stream_, device_->NewStream());
  }
  arena_ = std::make_unique<StagingArena>(host_.data(), capacity);
  if (o.hbm_cache_bytes > 0) {
    cache::RowCacheOptions c;
    c.capacity_rows = o.hbm_cache_bytes / row_bytes_;
    c.row_bytes = 0;  // a directory: the rows live in slots_
    c.shards = o.hbm_shards;
    c.policy = o.hbm_policy;
    ENGRAM_RETURN_IF_ERROR(
        slots_.Allocate(device_, Buffer::kDevice, c.capacity_rows * row_bytes_, "HBM slot pool"));
    hbm_ = std::make_unique<cache::RowCache>(c);
  }
  if (!o.hot_rows_path.empty()) ENGRAM_RETURN_IF_ERROR(LoadHotRows());
  for (uint32_t i = 0; i < o.fetch_threads; ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
  return Status::OK();
}

Prefetcher::Impl::~Impl() {
  std::vector<std::shared_ptr<Ticket>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    for (auto& [id, t] : tickets_) {
      t->cancel.store(true);
      live.push_back(t);
    }
    for (auto& t : queue_) t->state = State::kCancelled;
    queue_.clear();
  }
  work_cv_.notify_all();
  budget_cv_.notify_all();
  state_cv_.notify_all();
  for (std::thread& w : workers_) w.join();
  for (auto& t : live) {
    for (auto& e : t->gather_events) device_->Synchronize(e.get()).PermitUnchecked();
    FreeTicketRows(*t);
  }
  plans_.clear();  // no call runs now: these are the last references
  // Streams first (they wait for their work), then the memory they used.
  copy_streams_.clear();
  gather_stream_.reset();
}

Status Prefetcher::Impl::LoadHotRows() {
  const std::string& path = options_.hot_rows_path;
  auto read = ReadIdsNpy(table_->env(), path);
  if (!read.ok()) return read.status().WithContext("hot rows");
  if (Status st = table_->CheckIds(read->data(), read->size()); !st.ok()) {
    return Status::InvalidArgument("hot rows file " + path + ": " + st.message());
  }
  const std::vector<uint64_t> hot = UniqueInOrder(read->data(), read->size());
  if (!hbm_) {
    hot_rows_left_ = hot;
    return Status::OK();
  }
  // The directory first (no reader exists yet, so committing before the bytes are there is
  // safe), then the rows, a staging arena's worth at a time.
  std::vector<uint64_t> placed;
  std::vector<void*> dst;
  for (uint64_t id : hot) {
    if (!hbm_->Insert(id, nullptr, /*pin_forever=*/true)) {
      hot_rows_left_.push_back(id);
      continue;
    }
    cache::PinnedRow row;
    if (!hbm_->Pin(id, &row)) {  // cannot happen: nothing else uses the directory yet
      return Status::Corruption("hot rows: HBM directory lost row " + std::to_string(id));
    }
    placed.push_back(id);
    dst.push_back(SlotPtr(row.slot));
    hbm_->Release(row);
  }
  size_t chunk = std::min<size_t>(kFetchChunk, placed.size());
  while (chunk > 1 && TicketLayout(chunk, row_bytes_, true).bytes > arena_->capacity()) chunk /= 2;
  if (chunk == 0) return Status::OK();
  const Layout layout = TicketLayout(chunk, row_bytes_, true);
  const size_t offset = *arena_->Allocate(layout.bytes);  // the arena is empty now
  Status st;
  for (size_t i = 0; i < placed.size() && st.ok(); i += chunk) {
    const size_t count = std::min(chunk, placed.size() - i);
    bool cancelled = false;
    st = StageRows(placed.data() + i, count, HostAt(offset), nullptr, &cancelled);
    if (!st.ok()) break;
    std::memcpy(HostAt(offset + layout.aux), dst.data() + i, count * sizeof(void*));
    UploadPlan plan;
    plan.offset = offset;
    plan.rows = count;
    plan.ptrs = layout.aux;
    plan.ptr_bytes = count * sizeof(void*);
    plan.aux = layout.aux;
    plan.scatter = count;
    st = Upload(plan, copy_streams_[0].get());
  }
  arena_->Free(offset).PermitUnchecked();  // allocated just above
  if (!st.ok()) return st.WithContext("hot rows to HBM");
  hot_rows_pinned_ = placed.size();
  return Status::OK();
}

// ---- Fetch ----------------------------------------------------------------------------------

void Prefetcher::Impl::WorkerLoop(size_t worker) {
  Stream* stream = copy_streams_.empty() ? nullptr : copy_streams_[worker].get();
  for (;;) {
    std::shared_ptr<Ticket> t;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      t = std::move(queue_.front());
      queue_.pop_front();
      t->state = State::kFetching;
    }
    FetchCounts counts;
    bool cancelled = false;
    Status st =
        device_ ? FetchDevice(*t, stream, &counts, &cancelled) : FetchHost(*t, &counts, &cancelled);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.rows_unique += counts.unique;
      stats_.hbm_hits += counts.hbm_hits;
      stats_.rows_fetched += counts.fetched;
      stats_.bytes_to_device += counts.to_device;
      stats_.hbm_inserts += counts.inserts;
      if (!st.ok()) {
        t->state = State::kFailed;
        t->status = st.WithContext(TicketName(t->id));
        ++stats_.tickets_failed;
      } else {
        t->state = cancelled ? State::kCancelled : State::kReady;
      }
    }
    state_cv_.notify_all();
  }
}

Status Prefetcher::Impl::FetchHost(Ticket& t, FetchCounts* counts, bool* cancelled) {
  std::vector<uint64_t> unique;
  std::vector<uint32_t> unique_of;
  DedupeIds(t.ids.data(), t.ids.size(), &unique, &unique_of);
  counts->unique = unique.size();
  uint8_t* rows = HostAt(t.offset);
  t.held.resize(unique.size());
  for (size_t u = 0; u < unique.size(); u += kFetchChunk) {
    Status st;
    if (t.cancel.load(std::memory_order_relaxed)) {
      *cancelled = true;
    } else {
      const size_t count = std::min(kFetchChunk, unique.size() - u);
      st = table_->AcquireRows(unique.data() + u, count, t.held.data() + u, rows + u * row_bytes_,
                               row_bytes_);
    }
    if (*cancelled || !st.ok()) {
      table_->ReleaseRows(t.held.data(), u);
      t.held.clear();
      return st;
    }
  }
  counts->fetched = unique.size();
  auto* ptrs = reinterpret_cast<const uint8_t**>(HostAt(t.offset + t.layout.ptrs));
  for (size_t i = 0; i < t.ids.size(); ++i) ptrs[i] = t.held[unique_of[i]].data;
  return Status::OK();
}

Status Prefetcher::Impl::StageRows(const uint64_t* ids, size_t n, uint8_t* rows,
                                   const std::atomic<bool>* cancel, bool* cancelled) {
  std::vector<HeldRow> held(std::min(n, kFetchChunk));
  for (size_t k = 0; k < n; k += kFetchChunk) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
      *cancelled = true;
      return Status::OK();
    }
    const size_t count = std::min(kFetchChunk, n - k);
    uint8_t* dst = rows + k * row_bytes_;
    ENGRAM_RETURN_IF_ERROR(table_->AcquireRows(ids + k, count, held.data(), dst, row_bytes_));
    for (size_t j = 0; j < count; ++j) {
      uint8_t* d = dst + j * row_bytes_;
      if (held[j].data != d) std::memcpy(d, held[j].data, row_bytes_);
    }
    table_->ReleaseRows(held.data(), count);
  }
  return Status::OK();
}

Status Prefetcher::Impl::Upload(const UploadPlan& p, Stream* stream) {
  const size_t rows = p.rows * row_bytes_;
  Status st;
  if (rows > 0) {
    st = device_->CopyAsync(DeviceAt(p.offset), HostAt(p.offset), rows, CopyKind::kHostToDevice,
                            stream);
  }
  if (st.ok() && p.ptr_bytes > 0) {
    st = device_->CopyAsync(DeviceAt(p.offset + p.ptrs), HostAt(p.offset + p.ptrs), p.ptr_bytes,
                            CopyKind::kHostToDevice, stream);
  }
  if (st.ok() && p.scatter > 0) {
    ScatterArgs s;
    s.src = DeviceAt(p.offset);
    s.dst = reinterpret_cast<void* const*>(DeviceAt(p.offset + p.aux));
    s.n = p.scatter;
    s.row_bytes = row_bytes_;
    st = device_->ScatterAsync(s, stream);
  }
  if (st.ok()) {
    auto event = device_->Record(stream);
    st = event.ok() ? device_->Synchronize(event->get()) : event.status();
  }
  // After a failed enqueue, let what was enqueued finish before the caller reuses the memory.
  if (!st.ok()) device_->SynchronizeStream(stream).PermitUnchecked();
  return st;
}

Status Prefetcher::Impl::FetchDevice(Ticket& t, Stream* stream, FetchCounts* counts,
                                     bool* cancelled) {
  const size_t n = t.ids.size();
  std::vector<uint64_t> unique;
  std::vector<uint32_t> unique_of;
  DedupeIds(t.ids.data(), t.ids.size(), &unique, &unique_of);
  const size_t u_count = unique.size();
  counts->unique = u_count;

  std::vector<cache::PinnedRow> pins(u_count);
  std::vector<uint8_t> hit(u_count, 0);
  if (hbm_) hbm_->PinBatch(unique.data(), u_count, pins.data(), hit.data());
  // Staging order: misses the HBM directory admitted, other misses, hits.
  std::vector<uint32_t> admitted, plain, hits;
  std::vector<cache::InsertSlot> slots;
  for (uint32_t u = 0; u < u_count; ++u) {
    cache::InsertSlot slot;
    if (hit[u]) {
      hits.push_back(u);
    } else if (hbm_ && hbm_->BeginInsert(unique[u], &slot) == cache::InsertOutcome::kReserved) {
      admitted.push_back(u);
      slots.push_back(slot);
    } else {
      plain.push_back(u);
    }
  }
  std::vector<uint32_t> stage(u_count);
  std::vector<uint64_t> miss_ids;
  for (const auto* list : {&admitted, &plain}) {
    for (uint32_t u : *list) {
      stage[u] = static_cast<uint32_t>(miss_ids.size());
      miss_ids.push_back(unique[u]);
    }
  }
  const size_t misses = miss_ids.size();
  for (size_t h = 0; h < hits.size(); ++h) {
    stage[hits[h]] = static_cast<uint32_t>(misses + h);
    t.hbm_pins.push_back(pins[hits[h]]);
  }
  t.misses = misses;
  counts->hbm_hits = hits.size();
  auto abort_inserts = [&] {
    for (const cache::InsertSlot& s : slots) hbm_->AbortInsert(s);
  };

  Status st = StageRows(miss_ids.data(), misses, HostAt(t.offset), &t.cancel, cancelled);
  if (st.ok() && !*cancelled && t.cancel.load(std::memory_order_relaxed)) *cancelled = true;
  if (!st.ok() || *cancelled) {
    abort_inserts();
    return st;
  }
  counts->fetched = misses;
  // Device pointers of each position, and the slots of the admitted misses.
  auto* ptrs = reinterpret_cast<const uint8_t**>(HostAt(t.offset + t.layout.ptrs));
  t.stage_of.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t s = stage[unique_of[i]];
    t.stage_of[i] = s;
    ptrs[i] = DeviceRow(t, s);
  }
  auto* aux = reinterpret_cast<uint8_t**>(HostAt(t.offset + t.layout.aux));
  for (size_t j = 0; j < slots.size(); ++j) aux[j] = SlotPtr(slots[j].slot);

  UploadPlan plan;
  plan.offset = t.offset;
  plan.rows = misses;
  plan.ptrs = t.layout.ptrs;
  plan.ptr_bytes = (t.layout.aux - t.layout.ptrs) + slots.size() * sizeof(void*);
  plan.aux = t.layout.aux;
  plan.scatter = slots.size();
  st = Upload(plan, stream);
  if (!st.ok()) {
    abort_inserts();
    return st;
  }
  for (const cache::InsertSlot& s : slots) hbm_->CommitInsert(s);
  counts->inserts = slots.size();
  counts->to_device = misses * row_bytes_ + plan.ptr_bytes;
  return Status::OK();
}

// ---- Tickets --------------------------------------------------------------------------------

Result<TicketId> Prefetcher::Impl::Prefetch(const uint64_t* ids, size_t n) {
  if (n > 0 && ids == nullptr) return Status::InvalidArgument("prefetch: ids is null");
  const uint64_t capacity = arena_->capacity();
  const size_t max_rows = MaxTicketRows();
  const size_t bytes = n <= max_rows ? TicketLayout(n, row_bytes_, device_ != nullptr).bytes : 0;
  if (n > max_rows || bytes > capacity) {
    return Status::InvalidArgument(
        "prefetch of " + std::to_string(n) + " rows of " + std::to_string(row_bytes_) +
        " bytes needs more staging than max_inflight_bytes (" + std::to_string(capacity) + ")");
  }
  ENGRAM_RETURN_IF_ERROR(table_->CheckIds(ids, n));
  auto t = std::make_shared<Ticket>();
  t->ids.assign(ids, ids + n);
  t->layout = TicketLayout(n, row_bytes_, device_ != nullptr);

  std::unique_lock<std::mutex> lock(mu_);
  bool counted_block = false;
  for (;;) {
    if (stop_) return Status::NotSupported("prefetch: the prefetcher is shutting down");
    if (stats_.tickets_live < options_.max_tickets) {
      if (n == 0) break;
      if (auto offset = arena_->Allocate(bytes)) {
        t->offset = *offset;
        break;
      }
    }
    if (!options_.block_when_full) {
      ++stats_.rejected_prefetches;
      return Status::ResourceExhausted(
          "prefetch budget exhausted: " + std::to_string(stats_.tickets_live) + " of " +
          std::to_string(options_.max_tickets) + " tickets live, " +
          std::to_string(arena_->used()) + " of " + std::to_string(capacity) +
          " staging bytes in use, this request needs " + std::to_string(bytes));
    }
    if (!counted_block) {
      ++stats_.blocked_prefetches;
      counted_block = true;
    }
    budget_cv_.wait(lock);
  }
  t->id = next_id_++;
  ++stats_.tickets_issued;
  ++stats_.tickets_live;
  stats_.rows_requested += n;
  stats_.inflight_bytes = arena_->used();
  stats_.inflight_bytes_peak = std::max(stats_.inflight_bytes_peak, stats_.inflight_bytes);
  tickets_.emplace(t->id, t);
  if (n == 0) {
    t->state = State::kReady;
  } else {
    queue_.push_back(t);
    work_cv_.notify_one();
  }
  return t->id;
}

size_t Prefetcher::Impl::MaxTicketRows() const {
  return std::min<uint64_t>(arena_->capacity() / row_bytes_, std::numeric_limits<uint32_t>::max());
}

std::shared_ptr<Prefetcher::Impl::Ticket> Prefetcher::Impl::Find(TicketId id) const {
  auto it = tickets_.find(id);
  return it == tickets_.end() ? nullptr : it->second;
}

Status Prefetcher::Impl::Wait(TicketId id) {
  std::unique_lock<std::mutex> lock(mu_);
  std::shared_ptr<Ticket> t = Find(id);
  if (!t) return NotLive(id);
  state_cv_.wait(lock, [&] { return Final(t->state); });
  if (t->state == State::kCancelled) return NotLive(id);
  return t->status;
}

Result<bool> Prefetcher::Impl::Poll(TicketId id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Ticket> t = Find(id);
  if (!t) return NotLive(id);
  switch (t->state) {
    case State::kReady:
      return true;
    case State::kFailed:
      return t->status;
    case State::kCancelled:
      return NotLive(id);
    default:
      return false;
  }
}

Status Prefetcher::Impl::Retire(TicketId id) {
  std::shared_ptr<Ticket> t;
  std::vector<std::shared_ptr<Event>> events;
  {
    std::unique_lock<std::mutex> lock(mu_);
    t = Find(id);
    if (!t) return NotLive(id);
    tickets_.erase(id);
    if (t->state == State::kQueued) {
      queue_.erase(std::find(queue_.begin(), queue_.end(), t));
      t->state = State::kCancelled;
    }
    t->cancel.store(true);
    if (!Final(t->state) || t->state == State::kCancelled) ++stats_.tickets_cancelled;
    state_cv_.wait(lock, [&] { return Final(t->state) && t->gathers == 0; });
    events = std::move(t->gather_events);
  }
  Status st;
  for (auto& e : events) {
    Status s = device_->Synchronize(e.get());
    if (st.ok() && !s.ok())
      st = s.WithContext(TicketName(id) + ": a gather or plan bind on the caller's stream");
  }
  FreeTicketRows(*t);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!t->ids.empty()) arena_->Free(t->offset).PermitUnchecked();  // allocated by Prefetch
    --stats_.tickets_live;
    stats_.inflight_bytes = arena_->used();
  }
  budget_cv_.notify_all();
  state_cv_.notify_all();
  return st;
}

void Prefetcher::Impl::FreeTicketRows(Ticket& t) {
  if (!t.held.empty()) table_->ReleaseRows(t.held.data(), t.held.size());
  t.held.clear();
  for (const cache::PinnedRow& p : t.hbm_pins) hbm_->Release(p);
  t.hbm_pins.clear();
}

// ---- Gather ---------------------------------------------------------------------------------

Status Prefetcher::Impl::CheckTarget(const GatherTarget& target) const {
  if (static_cast<uint8_t>(target.type) > static_cast<uint8_t>(OutType::kBF16)) {
    return Status::InvalidArgument("gather: unknown output type " +
                                   std::to_string(static_cast<int>(target.type)));
  }
  if (target.on_device && device_ == nullptr) {
    return Status::InvalidArgument(
        "gather: the target is device memory but the prefetcher has no device (host only)");
  }
  if (target.stream != nullptr && !target.on_device) {
    return Status::InvalidArgument("gather: a stream is only for gathers into device memory");
  }
  const size_t need = OutRowBytes(target.type, table_->dim(), row_bytes_);
  if (target.out_stride < need) {
    return Status::InvalidArgument("gather: output stride " + std::to_string(target.out_stride) +
                                   " is smaller than an output row (" + std::to_string(need) +
                                   " bytes of " + OutTypeName(target.type) + ")");
  }
  return Status::OK();
}

Status Prefetcher::Impl::EnsureHostCopy(Ticket& t) {
  std::lock_guard<std::mutex> lock(t.host_copy_mu);
  if (t.host_copy_done) return Status::OK();
  const size_t hits = t.hbm_pins.size();
  if (hits > 0) {
    // The hits' slots -> rows [misses, misses + hits) of device staging -> pinned staging.
    auto* aux = reinterpret_cast<uint8_t**>(HostAt(t.offset + t.layout.aux));
    for (size_t h = 0; h < hits; ++h) aux[h] = SlotPtr(t.hbm_pins[h].slot);
    const size_t first = t.offset + t.misses * row_bytes_;
    Stream* s = gather_stream_.get();
    Status st = device_->CopyAsync(DeviceAt(t.offset + t.layout.aux), aux, hits * sizeof(void*),
                                   CopyKind::kHostToDevice, s);
    if (st.ok()) {
      GatherArgs g;
      g.rows = reinterpret_cast<const void* const*>(DeviceAt(t.offset + t.layout.aux));
      g.n = hits;
      g.dtype = table_->dtype();
      g.dim = table_->dim();
      g.row_bytes = row_bytes_;
      g.out_type = OutType::kRaw;
      g.out = DeviceAt(first);
      g.out_stride = row_bytes_;
      st = device_->GatherAsync(g, s);
    }
    if (st.ok()) {
      st = device_->CopyAsync(HostAt(first), DeviceAt(first), hits * row_bytes_,
                              CopyKind::kDeviceToHost, s);
    }
    if (st.ok()) {
      auto event = device_->Record(s);
      st = event.ok() ? device_->Synchronize(event->get()) : event.status();
    }
    if (!st.ok()) {
      device_->SynchronizeStream(s).PermitUnchecked();
      return st.WithContext(TicketName(t.id) + ": copying HBM rows to the host");
    }
  }
  auto* ptrs = reinterpret_cast<const uint8_t**>(HostAt(t.offset + t.layout.ptrs));
  for (size_t i = 0; i < t.ids.size(); ++i) {
    ptrs[i] = HostAt(t.offset + size_t{t.stage_of[i]} * row_bytes_);
  }
  t.host_copy_done = true;
  return Status::OK();
}

Status Prefetcher::Impl::Gather(TicketId id, const GatherTarget& target) {
  ENGRAM_RETURN_IF_ERROR(CheckTarget(target));
  std::shared_ptr<Ticket> t;
  {
    std::unique_lock<std::mutex> lock(mu_);
    t = Find(id);
    if (!t) return NotLive(id);
    ENGRAM_RETURN_IF_ERROR(AwaitReady(lock, t));
  }
  const size_t n = t->ids.size();
  Status st;
  std::unique_ptr<Event> event;
  if (n > 0 && target.out == nullptr) {
    st = Status::InvalidArgument("gather: output buffer is null");
  } else if (n > 0) {
    if (device_ != nullptr && !target.on_device) st = EnsureHostCopy(*t);
    GatherArgs g;
    g.rows = reinterpret_cast<const void* const*>(
        (target.on_device ? DeviceAt(t->offset) : HostAt(t->offset)) + t->layout.ptrs);
    g.n = n;
    g.dtype = table_->dtype();
    g.dim = table_->dim();
    g.row_bytes = row_bytes_;
    g.out_type = target.type;
    g.out = target.out;
    g.out_stride = target.out_stride;
    if (!st.ok()) {
      // EnsureHostCopy failed.
    } else if (!target.on_device) {
      GatherRowsCpu(g);
    } else {
      Stream* s = target.stream != nullptr ? target.stream : gather_stream_.get();
      st = device_->GatherAsync(g, s);
      if (st.ok()) {
        auto recorded = device_->Record(s);
        if (!recorded.ok()) {
          st = recorded.status();
        } else if (target.stream == nullptr) {
          st = device_->Synchronize(recorded->get());
        } else {
          event = std::move(recorded).value();
        }
      }
      if (!st.ok()) st = st.WithContext(TicketName(id) + ": gather");
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (event) t->gather_events.push_back(std::move(event));
    --t->gathers;
  }
  state_cv_.notify_all();
  return st;
}

Status Prefetcher::Impl::AwaitReady(std::unique_lock<std::mutex>& lock,
                                    const std::shared_ptr<Ticket>& t) {
  state_cv_.wait(lock, [&] { return Final(t->state); });
  if (t->state == State::kCancelled) return NotLive(t->id);
  if (t->state == State::kFailed) return t->status;
  ++t->gathers;
  return Status::OK();
}

// ---- Gather plans ---------------------------------------------------------------------------

Result<GatherPlanId> Prefetcher::Impl::NewGatherPlan(size_t max_rows, const GatherTarget& target) {
  if (device_ == nullptr) {
    return Status::NotSupported(
        "gather plan: the prefetcher is host only; plans need a device (PrefetchOptions::device)");
  }
  if (!target.on_device) {
    return Status::InvalidArgument(
        "gather plan: the target must be device memory (on_device), as the kernel writes it");
  }
  if (target.stream != nullptr) {
    return Status::InvalidArgument(
        "gather plan: the target's stream must be null (LaunchGatherPlan takes the stream)");
  }
  ENGRAM_RETURN_IF_ERROR(CheckTarget(target));
  if (target.out == nullptr) return Status::InvalidArgument("gather plan: output buffer is null");
  if (max_rows == 0) return Status::InvalidArgument("gather plan: max_rows is 0");
  if (max_rows > MaxTicketRows()) {
    return Status::InvalidArgument("gather plan: max_rows " + std::to_string(max_rows) +
                                   " is more than a ticket can hold (" +
                                   std::to_string(MaxTicketRows()) + " rows of staging)");
  }
  auto plan = std::make_shared<Plan>(device_);
  plan->max_rows = max_rows;
  const size_t bytes = kPlanRows + max_rows * sizeof(void*);
  ENGRAM_RETURN_IF_ERROR(plan->host.Allocate(device_, Buffer::kPinned, bytes, "gather plan"));
  ENGRAM_RETURN_IF_ERROR(plan->dev.Allocate(device_, Buffer::kDevice, bytes, "gather plan"));
  GatherArgs& g = plan->args;
  g.rows = reinterpret_cast<const void* const*>(plan->dev.data() + kPlanRows);
  g.n = max_rows;
  g.device_n = reinterpret_cast<const uint64_t*>(plan->dev.data() + kPlanCount);
  g.dtype = table_->dtype();
  g.dim = table_->dim();
  g.row_bytes = row_bytes_;
  g.out_type = target.type;
  g.out = target.out;
  g.out_stride = target.out_stride;
  ENGRAM_RETURN_IF_ERROR(CheckGatherArgs(g, "gather plan"));
  std::lock_guard<std::mutex> lock(mu_);
  const GatherPlanId id = next_plan_++;
  plans_.emplace(id, std::move(plan));
  return id;
}

Status Prefetcher::Impl::StagePlan(Plan& plan, const Ticket& t, Stream* stream,
                                   std::shared_ptr<Event>* event) {
  if (plan.last_bind) {  // reported once: later binds do not wait for it again
    const std::shared_ptr<Event> last = std::move(plan.last_bind);
    ENGRAM_RETURN_IF_ERROR(
        device_->Synchronize(last.get()).WithContext("the previous bind's copies"));
  }
  const size_t n = t.ids.size();
  const uint64_t count = n;
  std::memcpy(plan.host.data() + kPlanCount, &count, sizeof(count));
  auto* rows = reinterpret_cast<const uint8_t**>(plan.host.data() + kPlanRows);
  for (size_t i = 0; i < n; ++i) rows[i] = DeviceRow(t, t.stage_of[i]);
  ENGRAM_RETURN_IF_ERROR(device_->CopyAsync(plan.dev.data(), plan.host.data(),
                                            kPlanRows + n * sizeof(void*), CopyKind::kHostToDevice,
                                            stream));
  ENGRAM_ASSIGN_OR_RETURN(*event, device_->Record(stream));
  return Status::OK();
}

Status Prefetcher::Impl::BindGatherPlan(GatherPlanId plan_id, TicketId id, Stream* stream) {
  std::shared_ptr<Plan> plan;
  std::shared_ptr<Ticket> t;
  TicketId before = 0;  // bound until now
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = plans_.find(plan_id);
    if (it == plans_.end()) return PlanNotLive(plan_id);
    plan = it->second;
    t = Find(id);
    if (!t) return NotLive(id);
    if (t->ids.size() > plan->max_rows) {
      return Status::InvalidArgument(
          PlanName(plan_id) + ": " + TicketName(id) + " has " + std::to_string(t->ids.size()) +
          " rows, more than the plan's max_rows " + std::to_string(plan->max_rows));
    }
    ENGRAM_RETURN_IF_ERROR(AwaitReady(lock, t));
  }
  Stream* s = stream != nullptr ? stream : gather_stream_.get();
  std::shared_ptr<Event> event;
  Status st;
  {
    std::lock_guard<std::mutex> bind_lock(plan->bind_mu);
    {
      std::lock_guard<std::mutex> lock(mu_);
      before = std::exchange(plan->bound, 0);
    }
    st = StagePlan(*plan, *t, s, &event);
    if (st.ok() && stream == nullptr) st = device_->Synchronize(event.get());
    if (!st.ok()) {
      device_->SynchronizeStream(s).PermitUnchecked();  // nothing left reading `host`
      event.reset();
    } else if (stream != nullptr) {
      plan->last_bind = event;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (st.ok()) plan->bound = id;
    if (event && stream != nullptr) {
      t->gather_events.push_back(event);
      if (before != id) {
        if (std::shared_ptr<Ticket> prev = Find(before)) prev->gather_events.push_back(event);
      }
    }
    --t->gathers;
  }
  state_cv_.notify_all();
  return st.WithContext(PlanName(plan_id) + ": binding " + TicketName(id));
}

Status Prefetcher::Impl::LaunchGatherPlan(GatherPlanId plan_id, Stream* stream) {
  std::shared_ptr<Plan> plan;
  std::shared_ptr<Ticket> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(plan_id);
    if (it == plans_.end()) return PlanNotLive(plan_id);
    plan = it->second;
    if (plan->bound == 0) {
      return Status::InvalidArgument(PlanName(plan_id) +
                                     " is not bound to a ticket (BindGatherPlan first)");
    }
    t = Find(plan->bound);
    if (!t) {
      return Status::NotFound(PlanName(plan_id) + " is bound to " + TicketName(plan->bound) +
                              ", which is not live (released or cancelled)");
    }
    ++t->gathers;  // bound tickets are ready
  }
  Stream* s = stream != nullptr ? stream : gather_stream_.get();
  Status st = device_->GatherAsync(plan->args, s);
  if (st.ok() && stream == nullptr) {
    auto event = device_->Record(s);
    st = event.ok() ? device_->Synchronize(event->get()) : event.status();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    --t->gathers;
  }
  state_cv_.notify_all();
  return st.WithContext(PlanName(plan_id) + ": launch");
}

Status Prefetcher::Impl::FreeGatherPlan(GatherPlanId plan_id) {
  std::shared_ptr<Plan> plan;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(plan_id);
    if (it == plans_.end()) return PlanNotLive(plan_id);
    plan = std::move(it->second);
    plans_.erase(it);
  }
  return Status::OK();  // the buffers go with the last reference (a Bind may hold one)
}

PrefetchStats Prefetcher::Impl::stats() const {
  PrefetchStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = stats_;
  }
  s.hot_rows_pinned = hot_rows_pinned_;
  if (hbm_) s.hbm = hbm_->stats();
  return s;
}

// ---- Prefetcher -----------------------------------------------------------------------------

Result<std::unique_ptr<Prefetcher>> Prefetcher::Create(Table* table,
                                                       const PrefetchOptions& options) {
  if (table == nullptr) return Status::InvalidArgument("prefetcher: table is null");
  auto impl = std::make_unique<Impl>(table, options);
  ENGRAM_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Prefetcher>(new Prefetcher(std::move(impl)));
}

Prefetcher::Prefetcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Prefetcher::~Prefetcher() = default;

Result<TicketId> Prefetcher::Prefetch(const uint64_t* ids, size_t n) {
  return impl_->Prefetch(ids, n);
}
Status Prefetcher::Wait(TicketId ticket) { return impl_->Wait(ticket); }
Result<bool> Prefetcher::Poll(TicketId ticket) { return impl_->Poll(ticket); }
Status Prefetcher::Gather(TicketId ticket, const GatherTarget& target) {
  return impl_->Gather(ticket, target);
}
Status Prefetcher::Release(TicketId ticket) { return impl_->Retire(ticket); }
Status Prefetcher::Cancel(TicketId ticket) { return impl_->Retire(ticket); }
Result<GatherPlanId> Prefetcher::NewGatherPlan(size_t max_rows, const GatherTarget& target) {
  return impl_->NewGatherPlan(max_rows, target);
}
Status Prefetcher::BindGatherPlan(GatherPlanId plan, TicketId ticket, Stream* stream) {
  return impl_->BindGatherPlan(plan, ticket, stream);
}
Status Prefetcher::LaunchGatherPlan(GatherPlanId plan, Stream* stream) {
  return impl_->LaunchGatherPlan(plan, stream);
}
Status Prefetcher::FreeGatherPlan(GatherPlanId plan) { return impl_->FreeGatherPlan(plan); }
PrefetchStats Prefetcher::stats() const { return impl_->stats(); }
const std::vector<uint64_t>& Prefetcher::hot_rows_left() const { return impl_->hot_rows_left(); }
Device* Prefetcher::device() const { return impl_->device(); }
Table* Prefetcher::table() const { return impl_->table(); }

}  // namespace engram::gpu
