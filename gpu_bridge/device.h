// Device: the GPU side of the store behind one interface, with two implementations that run
// the same code above them (the prefetcher, the HBM tier):
//
//   CUDA (cuda_device.cu, built when nvcc is found): Malloc = cudaMalloc (HBM), MallocHost =
//     cudaHostAlloc (pinned staging), streams = cudaStream_t (non-blocking), events =
//     cudaEvent_t (timing off), GatherAsync/ScatterAsync = the kernels of row_kernels.cu.
//   Host-emulated (host_device.cc, always built): device memory is 64-byte aligned host
//     memory, each stream is a worker thread running its queued work in order, events mark a
//     point in a stream's queue, and the kernels run their CPU twins (row_kernels.h). CI has
//     no GPU: every path above the device is tested here.
//
// Pointers: "device pointers" come from Malloc (on the emulated device they are host
// addresses, so tests can read them, but callers must not rely on that: copy with CopyAsync).
// Async calls check their arguments (InvalidArgument naming the call and the problem) and
// enqueue; errors of the work itself (a CUDA fault) surface at the next Synchronize/Query on
// that stream or event, as a Status naming the operation. Such an error is sticky: later work
// on that stream fails too (on CUDA, later calls may also return it at once).
//
// Thread safety: a Device may be used from many threads. A Stream's work runs in enqueue
// order; enqueueing on one stream from several threads at once is allowed but orders the work
// arbitrarily. Events are recorded once and may be queried from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "storage/dtype.h"
#include "storage/status.h"

namespace engram::gpu {

// What a gather writes per row: the stored bytes, or the row dequantised (DequantizeRow) to
// float32 or to bfloat16 (float32 rounded to nearest even).
enum class OutType : uint8_t { kRaw = 0, kF32 = 1, kBF16 = 2 };

// Bytes of one output row of `type` for rows of (dtype, dim, row_bytes).
size_t OutRowBytes(OutType type, uint32_t dim, uint32_t row_bytes);
// "raw", "f32", "bf16".
const char* OutTypeName(OutType type);

// out + i * out_stride  <-  convert(rows[i])  for i < n.
struct GatherArgs {
  const void* const* rows = nullptr;  // DEVICE array of n device pointers, row_bytes each
  size_t n = 0;
  DType dtype = DType::kF32;
  uint32_t dim = 0;
  uint32_t row_bytes = 0;
  OutType out_type = OutType::kRaw;
  void* out = nullptr;    // device memory
  size_t out_stride = 0;  // bytes; REQUIRES >= OutRowBytes(out_type, dim, row_bytes)
  // When non-null, a DEVICE uint64 read by the kernel for the row count instead of `n`
  // (n is then the capacity of `rows`): lets a captured CUDA graph gather a different number
  // of rows on each replay with unchanged arguments. Counts above n are clamped to n.
  const uint64_t* device_n = nullptr;
};

// dst[i]  <-  src + i * row_bytes  (row_bytes bytes)  for i < n: spreads rows packed in a
// staging buffer into their slots. REQUIRES: the dst rows do not overlap (on CUDA, which of two
// rows for one slot lands is unspecified).
struct ScatterArgs {
  const void* src = nullptr;   // device memory, n * row_bytes bytes
  void* const* dst = nullptr;  // DEVICE array of n device pointers
  size_t n = 0;
  uint32_t row_bytes = 0;
};

enum class CopyKind : uint8_t { kHostToDevice, kDeviceToHost, kDeviceToDevice };

// A queue of device work. Destroying a stream waits for its queued work.
class Stream {
 public:
  virtual ~Stream() = default;
  // The native handle (cudaStream_t) for callers that enqueue their own work; null when
  // emulated.
  virtual void* native_handle() const = 0;
};

// A point in a stream's work: done once everything enqueued before it has run.
class Event {
 public:
  virtual ~Event() = default;
};

class Device {
 public:
  virtual ~Device() = default;

  // "cuda:0 NVIDIA H200 (139 GiB, sm_90)" or "host-emulated (2 stream threads...)".
  virtual std::string description() const = 0;
  virtual bool emulated() const = 0;

  // Device memory (HBM); ResourceExhausted naming the size when it cannot be had. Free(null)
  // is a no-op. Memory is uninitialised; Malloc(0) returns null. Free and FreeHost wait for
  // the work already enqueued on this device's streams (as cudaFree does).
  virtual Result<void*> Malloc(size_t bytes) = 0;
  virtual void Free(void* ptr) = 0;
  // Page-locked host memory for staging; Free with FreeHost. Kernels (GatherAsync,
  // ScatterAsync) may read and write it directly, as device memory.
  virtual Result<void*> MallocHost(size_t bytes) = 0;
  virtual void FreeHost(void* ptr) = 0;

  virtual Result<std::unique_ptr<Stream>> NewStream() = 0;
  // A Stream over a native stream the caller owns (CUDA: a cudaStream_t, null meaning the
  // legacy default stream), so device work can be enqueued on the caller's stream, e.g. while
  // it is being captured into a CUDA graph. Not owning: destroying the result neither waits for
  // nor destroys the native stream; events recorded on it stay valid after. REQUIRES: the
  // native stream belongs to this device and outlives every use of the result. The emulated
  // device has no native streams: NotSupported unless `native_handle` is null, which gives a
  // view of its one default stream (made on first use, kept until the device goes).
  virtual Result<std::unique_ptr<Stream>> WrapStream(void* native_handle) = 0;

  // Enqueue work on `stream` (REQUIRES: non-null, from this device).
  virtual Status CopyAsync(void* dst, const void* src, size_t bytes, CopyKind kind,
                           Stream* stream) = 0;
  virtual Status MemsetAsync(void* dst, int value, size_t bytes, Stream* stream) = 0;
  virtual Status GatherAsync(const GatherArgs& args, Stream* stream) = 0;
  virtual Status ScatterAsync(const ScatterArgs& args, Stream* stream) = 0;

  // An event done when the work enqueued on `stream` so far has run.
  virtual Result<std::unique_ptr<Event>> Record(Stream* stream) = 0;
  // Makes later work on `stream` wait for `event` (no host blocking).
  virtual Status WaitEvent(Stream* stream, Event* event) = 0;
  // true once the event is done; an error if work before it failed.
  virtual Result<bool> Query(Event* event) = 0;
  // Blocks until the event is done; an error if work before it failed.
  virtual Status Synchronize(Event* event) = 0;
  virtual Status SynchronizeStream(Stream* stream) = 0;
};

struct HostDeviceOptions {
  // Memory Malloc may hand out in all (emulates HBM capacity); 0 = unlimited.
  uint64_t memory_limit_bytes = 0;
};
// The host-emulated device. Never fails.
std::unique_ptr<Device> NewHostDevice(const HostDeviceOptions& options = {});

// CUDA device `ordinal`. NotSupported when the library was built without CUDA, or when no
// device is present (message says which, with the CUDA error string).
Result<std::unique_ptr<Device>> OpenCudaDevice(int ordinal = 0);
// True when OpenCudaDevice(0) would succeed; otherwise *why (if non-null) says why not.
bool CudaDeviceAvailable(std::string* why = nullptr);

// Parses a device name: "none" (null device), "emulated", "cuda" or "cuda:N".
Result<std::unique_ptr<Device>> OpenDevice(const std::string& name);

}  // namespace engram::gpu
