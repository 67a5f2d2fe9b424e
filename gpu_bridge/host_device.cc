// The host-emulated device (device.h, NewHostDevice): what CI runs every path above the device
// on, so it is stricter than CUDA where that catches bugs early:
//   - Memory: Malloc hands out 64-byte aligned host memory up to memory_limit_bytes, MallocHost
//     4096-byte aligned host memory; both are tracked, and every async call checks at enqueue
//     that its ranges lie in memory of the right kind (CopyAsync: device memory on the device
//     side and none on the host side; MemsetAsync: device memory; kernel arguments: device or
//     pinned memory, as CUDA kernels may read pinned memory). A gather or scatter also checks
//     each row pointer when it runs; a bad one fails the stream (sticky) naming the row.
//   - Streams: one worker thread each, running its queued closures in order (WrapStream(null)
//     views the device's default stream, made on first use: a stream like the others). An event is
//     a sequence number in its stream's queue, done once the stream has completed that many
//     closures; WaitEvent enqueues a closure that blocks the worker until then.
//   - Errors: the first closure to fail sets the stream's sticky Status; later closures are
//     skipped (they complete at once) and every event recorded after the failing closure
//     reports it; a stream waiting on such an event fails too.
//   - Free/FreeHost (and destroying the device) first wait for the work enqueued so far on
//     every live stream of the device, as cudaFree does.
//
// Lock order: DeviceState::streams_mu before StreamState::mu; DeviceState::mem_mu is never held
// with either.
#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gpu_bridge/device.h"
#include "gpu_bridge/row_kernels.h"

namespace engram::gpu {
namespace {

constexpr size_t kDeviceAlignment = 64;
constexpr size_t kHostAlignment = 4096;

using Work = std::function<Status()>;

std::string Hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%p", p);
  return buf;
}

std::string Range(const void* p, size_t bytes) {
  return "[" + Hex(p) + ", +" + std::to_string(bytes) + ")";
}

// One stream's queue and progress. Shared by the stream, its worker thread, its events and
// the WaitEvent closures of other streams, so it outlives whichever of them goes first.
struct StreamState {
  std::mutex mu;
  std::condition_variable work_cv;  // to the worker: work arrived, or stop
  std::condition_variable done_cv;  // to waiters: completed advanced
  std::deque<Work> queue;           // GUARDED_BY(mu)
  uint64_t enqueued = 0;            // closures ever enqueued; GUARDED_BY(mu)
  uint64_t completed = 0;           // closures run or skipped; GUARDED_BY(mu)
  Status error;                     // the first failure (sticky); GUARDED_BY(mu)
  uint64_t error_seq = 0;           // its position, 1-based; 0 = none; GUARDED_BY(mu)
  bool stop = false;                // GUARDED_BY(mu)

  // The error of the work up to position `seq`. REQUIRES(mu)
  Status ErrorUpTo(uint64_t seq) const {
    return error_seq != 0 && error_seq <= seq ? error : Status::OK();
  }

  // Blocks until the first `seq` closures have completed; their error, if any.
  Status WaitFor(uint64_t seq) {
    std::unique_lock<std::mutex> lock(mu);
    done_cv.wait(lock, [&] { return completed >= seq; });
    return ErrorUpTo(seq);
  }

  void Enqueue(Work work) {
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back(std::move(work));
      ++enqueued;
    }
    work_cv.notify_one();
  }
};

// Runs `state`'s closures in order until stopped with an empty queue.
void RunWorker(const std::shared_ptr<StreamState>& state) {
  std::unique_lock<std::mutex> lock(state->mu);
  for (;;) {
    state->work_cv.wait(lock, [&] { return state->stop || !state->queue.empty(); });
    if (state->queue.empty()) return;  // stopped and drained
    Work work = std::move(state->queue.front());
    state->queue.pop_front();
    const bool skip = !state->error.ok();
    lock.unlock();
    Status status = skip ? Status::OK() : work();
    work = nullptr;  // captured state released outside the lock
    lock.lock();
    ++state->completed;
    if (!status.ok() && state->error.ok()) {
      state->error = std::move(status);
      state->error_seq = state->completed;
    }
    state->done_cv.notify_all();
  }
}

enum class MemKind : uint8_t { kDevice, kPinned };

struct Block {
  size_t bytes;
  MemKind kind;
};

// What a device's streams, events and queued work share with it: the allocation map and the
// registry of live streams.
struct DeviceState {
  explicit DeviceState(uint64_t limit) : memory_limit(limit) {}

  const uint64_t memory_limit;  // constant after construction

  std::mutex mem_mu;
  std::map<uintptr_t, Block> blocks;  // by start address; GUARDED_BY(mem_mu)
  uint64_t device_bytes = 0;          // Malloc'd bytes in use (and reserved); GUARDED_BY(mem_mu)

  std::mutex streams_mu;
  std::unordered_map<const StreamState*, std::weak_ptr<StreamState>> streams;  // GUARDED_BY

  // The kind of the block holding [p, p + bytes), if one does. REQUIRES(mem_mu)
  std::optional<MemKind> FindLocked(const void* p, size_t bytes) const {
    const auto addr = reinterpret_cast<uintptr_t>(p);
    auto it = blocks.upper_bound(addr);
    if (it == blocks.begin()) return std::nullopt;
    --it;
    const uintptr_t offset = addr - it->first;
    if (offset >= it->second.bytes || bytes > it->second.bytes - offset) return std::nullopt;
    return it->second.kind;
  }

  // OK when [p, p + bytes) lies in device memory (or pinned memory, when allowed).
  Status CheckRange(const std::string& op, const char* what, const void* p, size_t bytes,
                    bool allow_pinned) {
    std::optional<MemKind> kind;
    {
      std::lock_guard<std::mutex> lock(mem_mu);
      kind = FindLocked(p, bytes);
    }
    if (kind == MemKind::kDevice || (allow_pinned && kind == MemKind::kPinned)) {
      return Status::OK();
    }
    return Status::InvalidArgument(op + ": " + what + " " + Range(p, bytes) + " is not " +
                                   (allow_pinned ? "device or pinned memory" : "device memory") +
                                   " of this device");
  }

  // OK when no byte of [p, p + bytes) is device memory (the host side of a copy).
  Status CheckHostRange(const std::string& op, const char* what, const void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mem_mu);
    const auto addr = reinterpret_cast<uintptr_t>(p);
    auto it = blocks.upper_bound(addr);
    if (it != blocks.begin()) --it;
    for (; it != blocks.end() && it->first < addr + bytes; ++it) {
      if (it->second.kind == MemKind::kDevice && it->first + it->second.bytes > addr) {
        return Status::InvalidArgument(op + ": " + what + " " + Range(p, bytes) +
                                       " overlaps device memory (wrong CopyKind?)");
      }
    }
    return Status::OK();
  }

  // Checks, when the work runs, that each of the n row pointers is non-null and holds `bytes`
  // bytes of device or pinned memory (rows of one slot pool hit the cached block).
  Status CheckRows(const char* op, const void* const* rows, size_t n, size_t bytes) {
    std::lock_guard<std::mutex> lock(mem_mu);
    uintptr_t lo = 0, hi = 0;  // the last block found
    for (size_t i = 0; i < n; ++i) {
      const auto addr = reinterpret_cast<uintptr_t>(rows[i]);
      if (addr == 0) {
        return Status::InvalidArgument(std::string(op) + ": row " + std::to_string(i) + " of " +
                                       std::to_string(n) + " is a null pointer");
      }
      if (addr >= lo && addr <= hi && bytes <= hi - addr) continue;
      if (!FindLocked(rows[i], bytes)) {
        return Status::InvalidArgument(std::string(op) + ": row " + std::to_string(i) + " of " +
                                       std::to_string(n) + " " + Range(rows[i], bytes) +
                                       " is not device or pinned memory of this device");
      }
      auto it = std::prev(blocks.upper_bound(addr));
      lo = it->first;
      hi = it->first + it->second.bytes;
    }
    return Status::OK();
  }

  // Waits for the work enqueued so far on every live stream (errors are theirs to report).
  void DrainStreams() {
    std::vector<std::pair<std::shared_ptr<StreamState>, uint64_t>> targets;
    {
      std::lock_guard<std::mutex> lock(streams_mu);
      for (const auto& [key, weak] : streams) {
        if (auto state = weak.lock()) {
          std::lock_guard<std::mutex> state_lock(state->mu);
          targets.emplace_back(state, state->enqueued);
        }
      }
    }
    for (const auto& [state, seq] : targets) state->WaitFor(seq).PermitUnchecked();
  }
};

class HostStream final : public Stream {
 public:
  explicit HostStream(std::shared_ptr<DeviceState> device)
      : device_(std::move(device)), state_(std::make_shared<StreamState>()) {
    {
      std::lock_guard<std::mutex> lock(device_->streams_mu);
      device_->streams.emplace(state_.get(), state_);
    }
    worker_ = std::thread(RunWorker, state_);
  }

  // A view of `owner`'s queue (WrapStream): no worker of its own; destroying it does nothing.
  struct View {};
  HostStream(View, const HostStream& owner) : device_(owner.device_), state_(owner.state_) {}

  // Runs the queued work, then stops the worker (a view: nothing).
  ~HostStream() override {
    if (!worker_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->stop = true;
    }
    state_->work_cv.notify_one();
    worker_.join();
    std::lock_guard<std::mutex> lock(device_->streams_mu);
    device_->streams.erase(state_.get());
  }

  void* native_handle() const override { return nullptr; }

  const DeviceState* device() const { return device_.get(); }
  const std::shared_ptr<StreamState>& state() const { return state_; }

 private:
  const std::shared_ptr<DeviceState> device_;
  const std::shared_ptr<StreamState> state_;
  std::thread worker_;  // not joinable in a view
};

class HostEvent final : public Event {
 public:
  HostEvent(const DeviceState* device, std::shared_ptr<StreamState> state, uint64_t seq)
      : device_(device), state_(std::move(state)), seq_(seq) {}

  const DeviceState* device() const { return device_; }
  const std::shared_ptr<StreamState>& state() const { return state_; }
  uint64_t seq() const { return seq_; }

 private:
  const DeviceState* const device_;
  const std::shared_ptr<StreamState> state_;
  const uint64_t seq_;
};

class HostDevice final : public Device {
 public:
  explicit HostDevice(const HostDeviceOptions& options)
      : state_(std::make_shared<DeviceState>(options.memory_limit_bytes)) {}

  ~HostDevice() override {
    default_stream_.reset();  // runs its queued work
    state_->DrainStreams();
    std::lock_guard<std::mutex> lock(state_->mem_mu);
    for (const auto& [addr, block] : state_->blocks) std::free(reinterpret_cast<void*>(addr));
    state_->blocks.clear();
  }

  std::string description() const override {
    return "host-emulated (one worker thread per stream, " +
           (state_->memory_limit == 0
                ? std::string("no memory limit")
                : "memory limit " + std::to_string(state_->memory_limit) + " bytes") +
           ")";
  }
  bool emulated() const override { return true; }

  Result<void*> Malloc(size_t bytes) override {
    if (bytes == 0) return static_cast<void*>(nullptr);
    const uint64_t limit = state_->memory_limit;
    {
      std::lock_guard<std::mutex> lock(state_->mem_mu);
      if (limit != 0 && bytes > limit - std::min(limit, state_->device_bytes)) {
        return Status::ResourceExhausted(
            "host-emulated device: Malloc of " + std::to_string(bytes) +
            " bytes exceeds the memory limit (" + std::to_string(state_->device_bytes) + " of " +
            std::to_string(limit) + " bytes in use)");
      }
      state_->device_bytes += bytes;  // reserved while allocating
    }
    void* p = AlignedAlloc(bytes, kDeviceAlignment);
    std::lock_guard<std::mutex> lock(state_->mem_mu);
    if (p == nullptr) {
      state_->device_bytes -= bytes;
      return Status::ResourceExhausted("host-emulated device: Malloc of " + std::to_string(bytes) +
                                       " bytes: out of host memory");
    }
    state_->blocks.emplace(reinterpret_cast<uintptr_t>(p), Block{bytes, MemKind::kDevice});
    return p;
  }

  void Free(void* ptr) override { Release(ptr, MemKind::kDevice); }

  Result<void*> MallocHost(size_t bytes) override {
    if (bytes == 0) return static_cast<void*>(nullptr);
    void* p = AlignedAlloc(bytes, kHostAlignment);
    if (p == nullptr) {
      return Status::ResourceExhausted("host-emulated device: MallocHost of " +
                                       std::to_string(bytes) + " bytes: out of host memory");
    }
    std::lock_guard<std::mutex> lock(state_->mem_mu);
    state_->blocks.emplace(reinterpret_cast<uintptr_t>(p), Block{bytes, MemKind::kPinned});
    return p;
  }

  void FreeHost(void* ptr) override { Release(ptr, MemKind::kPinned); }

  Result<std::unique_ptr<Stream>> NewStream() override {
    return std::unique_ptr<Stream>(std::make_unique<HostStream>(state_));
  }

  Result<std::unique_ptr<Stream>> WrapStream(void* native_handle) override {
    if (native_handle != nullptr) {
      return Status::NotSupported(
          "WrapStream: the host-emulated device has no native streams (got " + Hex(native_handle) +
          ")");
    }
    std::lock_guard<std::mutex> lock(default_mu_);
    if (!default_stream_) default_stream_ = std::make_unique<HostStream>(state_);
    return std::unique_ptr<Stream>(
        std::make_unique<HostStream>(HostStream::View{}, *default_stream_));
  }

  Status CopyAsync(void* dst, const void* src, size_t bytes, CopyKind kind,
                   Stream* stream) override {
    const std::string op = std::string("CopyAsync (") + KindName(kind) + ")";
    ENGRAM_ASSIGN_OR_RETURN(HostStream * s, Own(stream, op));
    if (bytes == 0) return Status::OK();
    if (dst == nullptr || src == nullptr) return Status::InvalidArgument(op + ": null pointer");
    switch (kind) {
      case CopyKind::kHostToDevice:
        ENGRAM_RETURN_IF_ERROR(state_->CheckRange(op, "dst", dst, bytes, false));
        ENGRAM_RETURN_IF_ERROR(state_->CheckHostRange(op, "src", src, bytes));
        break;
      case CopyKind::kDeviceToHost:
        ENGRAM_RETURN_IF_ERROR(state_->CheckRange(op, "src", src, bytes, false));
        ENGRAM_RETURN_IF_ERROR(state_->CheckHostRange(op, "dst", dst, bytes));
        break;
      case CopyKind::kDeviceToDevice:
        ENGRAM_RETURN_IF_ERROR(state_->CheckRange(op, "dst", dst, bytes, false));
        ENGRAM_RETURN_IF_ERROR(state_->CheckRange(op, "src", src, bytes, false));
        break;
      default:
        return Status::InvalidArgument(op + ": unknown CopyKind");
    }
    s->state()->Enqueue([dst, src, bytes] {
      std::memmove(dst, src, bytes);
      return Status::OK();
    });
    return Status::OK();
  }

  Status MemsetAsync(void* dst, int value, size_t bytes, Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(HostStream * s, Own(stream, "MemsetAsync"));
    if (bytes == 0) return Status::OK();
    ENGRAM_RETURN_IF_ERROR(state_->CheckRange("MemsetAsync", "dst", dst, bytes, false));
    s->state()->Enqueue([dst, value, bytes] {
      std::memset(dst, value, bytes);
      return Status::OK();
    });
    return Status::OK();
  }

  Status GatherAsync(const GatherArgs& args, Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(HostStream * s, Own(stream, "GatherAsync"));
    ENGRAM_RETURN_IF_ERROR(CheckGatherArgs(args));
    if (args.n == 0) return Status::OK();
    const size_t out_row = OutRowBytes(args.out_type, args.dim, args.row_bytes);
    ENGRAM_RETURN_IF_ERROR(
        state_->CheckRange("GatherAsync", "rows", args.rows, args.n * sizeof(void*), true));
    ENGRAM_RETURN_IF_ERROR(state_->CheckRange("GatherAsync", "out", args.out,
                                              (args.n - 1) * args.out_stride + out_row, true));
    if (args.device_n != nullptr) {
      ENGRAM_RETURN_IF_ERROR(
          state_->CheckRange("GatherAsync", "device_n", args.device_n, sizeof(uint64_t), true));
    }
    s->state()->Enqueue([device = state_, args]() {
      GatherArgs a = args;
      if (a.device_n != nullptr) a.n = std::min<uint64_t>(*a.device_n, a.n);
      a.device_n = nullptr;
      ENGRAM_RETURN_IF_ERROR(device->CheckRows("GatherAsync", a.rows, a.n, a.row_bytes));
      GatherRowsCpu(a);
      return Status::OK();
    });
    return Status::OK();
  }

  Status ScatterAsync(const ScatterArgs& args, Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(HostStream * s, Own(stream, "ScatterAsync"));
    ENGRAM_RETURN_IF_ERROR(CheckScatterArgs(args));
    if (args.n == 0) return Status::OK();
    ENGRAM_RETURN_IF_ERROR(
        state_->CheckRange("ScatterAsync", "src", args.src, args.n * args.row_bytes, true));
    ENGRAM_RETURN_IF_ERROR(
        state_->CheckRange("ScatterAsync", "dst", args.dst, args.n * sizeof(void*), true));
    s->state()->Enqueue([device = state_, args]() {
      ENGRAM_RETURN_IF_ERROR(device->CheckRows("ScatterAsync", args.dst, args.n, args.row_bytes));
      ScatterRowsCpu(args);
      return Status::OK();
    });
    return Status::OK();
  }

  Result<std::unique_ptr<Event>> Record(Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(HostStream * s, Own(stream, "Record"));
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lock(s->state()->mu);
      seq = s->state()->enqueued;
    }
    return std::unique_ptr<Event>(std::make_unique<HostEvent>(state_.get(), s->state(), seq));
  }

  Status WaitEvent(Stream* stream, Event* event) override {
    ENGRAM_ASSIGN_OR_RETURN(HostStream * s, Own(stream, "WaitEvent"));
    ENGRAM_ASSIGN_OR_RETURN(HostEvent * e, Own(event, "WaitEvent"));
    s->state()->Enqueue([awaited = e->state(), seq = e->seq()] {
      return awaited->WaitFor(seq).WithContext("WaitEvent: the awaited work failed");
    });
    return Status::OK();
  }

  Result<bool> Query(Event* event) override {
    ENGRAM_ASSIGN_OR_RETURN(HostEvent * e, Own(event, "Query"));
    StreamState& st = *e->state();
    std::lock_guard<std::mutex> lock(st.mu);
    if (st.completed < e->seq()) return false;
    ENGRAM_RETURN_IF_ERROR(st.ErrorUpTo(e->seq()));
    return true;
  }

  Status Synchronize(Event* event) override {
    ENGRAM_ASSIGN_OR_RETURN(HostEvent * e, Own(event, "Synchronize"));
    return e->state()->WaitFor(e->seq());
  }

  Status SynchronizeStream(Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(HostStream * s, Own(stream, "SynchronizeStream"));
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lock(s->state()->mu);
      seq = s->state()->enqueued;
    }
    return s->state()->WaitFor(seq);
  }

 private:
  static const char* KindName(CopyKind kind) {
    switch (kind) {
      case CopyKind::kHostToDevice:
        return "host to device";
      case CopyKind::kDeviceToHost:
        return "device to host";
      case CopyKind::kDeviceToDevice:
        return "device to device";
    }
    return "unknown kind";
  }

  // `bytes` rounded up to `alignment`, or null (also when the rounding overflows).
  static void* AlignedAlloc(size_t bytes, size_t alignment) {
    if (bytes > SIZE_MAX - alignment) return nullptr;
    return std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
  }

  // Frees a block of `kind` after draining the streams; pointers not from this device's
  // Malloc/MallocHost (or of the other kind) are ignored, and assert in debug builds.
  void Release(void* ptr, MemKind kind) {
    if (ptr == nullptr) return;
    const auto addr = reinterpret_cast<uintptr_t>(ptr);
    auto known = [&] {
      auto it = state_->blocks.find(addr);
      return it != state_->blocks.end() && it->second.kind == kind;
    };
    {
      std::lock_guard<std::mutex> lock(state_->mem_mu);
      if (!known()) {
        assert(false && "Free/FreeHost of a pointer this device did not allocate");
        return;
      }
    }
    state_->DrainStreams();
    {
      std::lock_guard<std::mutex> lock(state_->mem_mu);
      if (!known()) return;  // freed by another thread meanwhile
      auto it = state_->blocks.find(addr);
      if (kind == MemKind::kDevice) state_->device_bytes -= it->second.bytes;
      state_->blocks.erase(it);
    }
    std::free(ptr);
  }

  Result<HostStream*> Own(Stream* stream, const std::string& op) const {
    if (stream == nullptr) return Status::InvalidArgument(op + ": stream is null");
    auto* s = dynamic_cast<HostStream*>(stream);
    if (s == nullptr || s->device() != state_.get()) {
      return Status::InvalidArgument(op + ": stream is not from this host-emulated device");
    }
    return s;
  }

  Result<HostEvent*> Own(Event* event, const std::string& op) const {
    if (event == nullptr) return Status::InvalidArgument(op + ": event is null");
    auto* e = dynamic_cast<HostEvent*>(event);
    if (e == nullptr || e->device() != state_.get()) {
      return Status::InvalidArgument(op + ": event is not from this host-emulated device");
    }
    return e;
  }

  const std::shared_ptr<DeviceState> state_;
  std::mutex default_mu_;
  std::unique_ptr<HostStream> default_stream_;  // WrapStream(null); GUARDED_BY(default_mu_)
};

}  // namespace

std::unique_ptr<Device> NewHostDevice(const HostDeviceOptions& options) {
  return std::make_unique<HostDevice>(options);
}

}  // namespace engram::gpu
