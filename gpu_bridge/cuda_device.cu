// The CUDA device (device.h, OpenCudaDevice): cudaMalloc / cudaHostAlloc memory, non-blocking
// streams, events without timing, and the row kernels of row_kernels.cu.
//
// Every call first makes the device current on the calling thread (cudaSetDevice: a cheap
// per-thread setting), so one Device may be used from any thread, next to other devices.
// CUDA errors become Status naming the operation and the device (model/cuda_status.h's
// mapping: out of memory -> ResourceExhausted, bad values -> InvalidArgument, no driver or
// device -> NotSupported, faults -> IOError). Destructors ignore CUDA's results: they can only
// repeat an error the owner's own calls have already surfaced.
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "gpu_bridge/device.h"
#include "gpu_bridge/row_kernels.h"
#include "gpu_bridge/row_kernels_cuda.h"
#include "model/cuda_status.h"

namespace engram::gpu {
namespace {

// CudaStatus(err, context), after clearing the calling thread's last-error state, so a failed
// call (an out-of-memory cudaMalloc, say) is not reported again by the next kernel launch's
// check. Sticky errors (faults) stay: they are reported by every later call, as they must be.
Status Check(cudaError_t err, const std::string& context) {
  if (err == cudaSuccess) return Status::OK();
  cudaGetLastError();  // clears the non-sticky error; the result is deliberately unused
  return cuda::CudaStatus(err, context);
}

// Returns Check(expr, context) from the enclosing function when expr fails.
#define ENGRAM_DEVICE_CHECK(expr, context) ENGRAM_RETURN_IF_ERROR(Check((expr), (context)))

// Owns its cudaStream_t, or (owned false: WrapStream) only refers to the caller's.
class CudaStream final : public Stream {
 public:
  CudaStream(int ordinal, cudaStream_t stream, bool owned = true)
      : ordinal_(ordinal), stream_(stream), owned_(owned) {}
  ~CudaStream() override {
    if (!owned_) return;
    cudaSetDevice(ordinal_);
    cudaStreamSynchronize(stream_);  // results deliberately ignored (see the file comment)
    cudaStreamDestroy(stream_);
  }
  void* native_handle() const override { return stream_; }

  int ordinal() const { return ordinal_; }
  cudaStream_t stream() const { return stream_; }

 private:
  const int ordinal_;
  const cudaStream_t stream_;
  const bool owned_;
};

class CudaEvent final : public Event {
 public:
  CudaEvent(int ordinal, cudaEvent_t event) : ordinal_(ordinal), event_(event) {}
  ~CudaEvent() override {
    cudaSetDevice(ordinal_);
    cudaEventDestroy(event_);  // result deliberately ignored
  }

  int ordinal() const { return ordinal_; }
  cudaEvent_t event() const { return event_; }

 private:
  const int ordinal_;
  const cudaEvent_t event_;
};

class CudaDevice final : public Device {
 public:
  CudaDevice(int ordinal, std::string description)
      : ordinal_(ordinal),
        name_("cuda:" + std::to_string(ordinal)),
        description_(std::move(description)) {}

  std::string description() const override { return description_; }
  bool emulated() const override { return false; }

  Result<void*> Malloc(size_t bytes) override {
    if (bytes == 0) return static_cast<void*>(nullptr);
    ENGRAM_RETURN_IF_ERROR(Use());
    void* p = nullptr;
    ENGRAM_DEVICE_CHECK(cudaMalloc(&p, bytes),
                        Op("cudaMalloc of " + std::to_string(bytes) + " bytes"));
    return p;
  }

  void Free(void* ptr) override {
    if (ptr == nullptr || !Use().ok()) return;
    cudaFree(ptr);  // result deliberately ignored (see the file comment)
  }

  Result<void*> MallocHost(size_t bytes) override {
    if (bytes == 0) return static_cast<void*>(nullptr);
    ENGRAM_RETURN_IF_ERROR(Use());
    void* p = nullptr;
    ENGRAM_DEVICE_CHECK(cudaHostAlloc(&p, bytes, cudaHostAllocPortable),
                        Op("cudaHostAlloc of " + std::to_string(bytes) + " bytes"));
    return p;
  }

  void FreeHost(void* ptr) override {
    if (ptr == nullptr || !Use().ok()) return;
    cudaFreeHost(ptr);  // result deliberately ignored
  }

  Result<std::unique_ptr<Stream>> NewStream() override {
    ENGRAM_RETURN_IF_ERROR(Use());
    cudaStream_t stream = nullptr;
    ENGRAM_DEVICE_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                        Op("cudaStreamCreateWithFlags"));
    return std::unique_ptr<Stream>(std::make_unique<CudaStream>(ordinal_, stream));
  }

  // The handle is taken as is (device.h REQUIRES a stream of this device): nothing is asked
  // of a stream that may be under capture.
  Result<std::unique_ptr<Stream>> WrapStream(void* native_handle) override {
    ENGRAM_RETURN_IF_ERROR(Use());
    return std::unique_ptr<Stream>(
        std::make_unique<CudaStream>(ordinal_, static_cast<cudaStream_t>(native_handle), false));
  }

  Status CopyAsync(void* dst, const void* src, size_t bytes, CopyKind kind,
                   Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(cudaStream_t s, Own(stream, "CopyAsync"));
    if (bytes == 0) return Status::OK();
    if (dst == nullptr || src == nullptr) {
      return Status::InvalidArgument("CopyAsync: null pointer on " + name_);
    }
    cudaMemcpyKind cuda_kind;
    switch (kind) {
      case CopyKind::kHostToDevice:
        cuda_kind = cudaMemcpyHostToDevice;
        break;
      case CopyKind::kDeviceToHost:
        cuda_kind = cudaMemcpyDeviceToHost;
        break;
      case CopyKind::kDeviceToDevice:
        cuda_kind = cudaMemcpyDeviceToDevice;
        break;
      default:
        return Status::InvalidArgument("CopyAsync: unknown CopyKind");
    }
    ENGRAM_DEVICE_CHECK(cudaMemcpyAsync(dst, src, bytes, cuda_kind, s),
                        Op("cudaMemcpyAsync of " + std::to_string(bytes) + " bytes"));
    return Status::OK();
  }

  Status MemsetAsync(void* dst, int value, size_t bytes, Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(cudaStream_t s, Own(stream, "MemsetAsync"));
    if (bytes == 0) return Status::OK();
    ENGRAM_DEVICE_CHECK(cudaMemsetAsync(dst, value, bytes, s),
                        Op("cudaMemsetAsync of " + std::to_string(bytes) + " bytes"));
    return Status::OK();
  }

  Status GatherAsync(const GatherArgs& args, Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(cudaStream_t s, Own(stream, "GatherAsync"));
    ENGRAM_RETURN_IF_ERROR(CheckGatherArgs(args));
    return GatherRowsCuda(args, s).WithContext("GatherAsync on " + name_);
  }

  Status ScatterAsync(const ScatterArgs& args, Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(cudaStream_t s, Own(stream, "ScatterAsync"));
    ENGRAM_RETURN_IF_ERROR(CheckScatterArgs(args));
    return ScatterRowsCuda(args, s).WithContext("ScatterAsync on " + name_);
  }

  Result<std::unique_ptr<Event>> Record(Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(cudaStream_t s, Own(stream, "Record"));
    cudaEvent_t event = nullptr;
    ENGRAM_DEVICE_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming),
                        Op("cudaEventCreateWithFlags"));
    auto owned = std::make_unique<CudaEvent>(ordinal_, event);  // destroys it on failure
    ENGRAM_DEVICE_CHECK(cudaEventRecord(event, s), Op("cudaEventRecord"));
    return std::unique_ptr<Event>(std::move(owned));
  }

  Status WaitEvent(Stream* stream, Event* event) override {
    ENGRAM_ASSIGN_OR_RETURN(cudaStream_t s, Own(stream, "WaitEvent"));
    ENGRAM_ASSIGN_OR_RETURN(cudaEvent_t e, Own(event, "WaitEvent"));
    ENGRAM_DEVICE_CHECK(cudaStreamWaitEvent(s, e, 0), Op("cudaStreamWaitEvent"));
    return Status::OK();
  }

  Result<bool> Query(Event* event) override {
    ENGRAM_ASSIGN_OR_RETURN(cudaEvent_t e, Own(event, "Query"));
    const cudaError_t err = cudaEventQuery(e);
    if (err == cudaSuccess) return true;
    if (err == cudaErrorNotReady) return false;
    return Check(err, Op("cudaEventQuery (work before the event)"));
  }

  Status Synchronize(Event* event) override {
    ENGRAM_ASSIGN_OR_RETURN(cudaEvent_t e, Own(event, "Synchronize"));
    ENGRAM_DEVICE_CHECK(cudaEventSynchronize(e),
                        Op("cudaEventSynchronize (work before the event)"));
    return Status::OK();
  }

  Status SynchronizeStream(Stream* stream) override {
    ENGRAM_ASSIGN_OR_RETURN(cudaStream_t s, Own(stream, "SynchronizeStream"));
    ENGRAM_DEVICE_CHECK(cudaStreamSynchronize(s), Op("cudaStreamSynchronize (work on the stream)"));
    return Status::OK();
  }

 private:
  std::string Op(const std::string& what) const { return what + " on " + name_; }

  // Makes this device current on the calling thread.
  Status Use() const {
    ENGRAM_DEVICE_CHECK(cudaSetDevice(ordinal_), Op("cudaSetDevice"));
    return Status::OK();
  }

  // The stream's handle, after Use(); InvalidArgument for a null or foreign stream.
  Result<cudaStream_t> Own(Stream* stream, const char* op) const {
    auto* s = dynamic_cast<CudaStream*>(stream);
    if (s == nullptr || s->ordinal() != ordinal_) {
      return Status::InvalidArgument(std::string(op) + ": stream is " +
                                     (stream == nullptr ? "null" : "not from " + name_));
    }
    ENGRAM_RETURN_IF_ERROR(Use());
    return s->stream();
  }

  Result<cudaEvent_t> Own(Event* event, const char* op) const {
    auto* e = dynamic_cast<CudaEvent*>(event);
    if (e == nullptr || e->ordinal() != ordinal_) {
      return Status::InvalidArgument(std::string(op) + ": event is " +
                                     (event == nullptr ? "null" : "not from " + name_));
    }
    ENGRAM_RETURN_IF_ERROR(Use());
    return e->event();
  }

  const int ordinal_;
  const std::string name_;
  const std::string description_;
};

// "cuda:0 NVIDIA H200 (139 GiB, sm_90)".
std::string Describe(int ordinal, const cudaDeviceProp& prop) {
  return "cuda:" + std::to_string(ordinal) + " " + prop.name + " (" +
         std::to_string(prop.totalGlobalMem >> 30) + " GiB, sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ")";
}

}  // namespace

Result<std::unique_ptr<Device>> OpenCudaDevice(int ordinal) {
  const Result<int> count = cuda::CudaDeviceCount();
  if (!count.ok()) {
    return Status::NotSupported("cuda:" + std::to_string(ordinal) +
                                " unavailable: " + count.status().message());
  }
  if (ordinal < 0 || ordinal >= *count) {
    return Status::InvalidArgument("cuda:" + std::to_string(ordinal) + ": there are " +
                                   std::to_string(*count) + " CUDA device(s)");
  }
  const std::string name = "cuda:" + std::to_string(ordinal);
  cudaDeviceProp prop{};
  ENGRAM_DEVICE_CHECK(cudaGetDeviceProperties(&prop, ordinal),
                      "cudaGetDeviceProperties of " + name);
  ENGRAM_DEVICE_CHECK(cudaSetDevice(ordinal), "cudaSetDevice of " + name);
  ENGRAM_DEVICE_CHECK(cudaFree(nullptr), "creating the CUDA context of " + name);
  ENGRAM_RETURN_IF_ERROR(CheckRowKernelsLoadable().WithContext(name));
  return std::unique_ptr<Device>(std::make_unique<CudaDevice>(ordinal, Describe(ordinal, prop)));
}

bool CudaDeviceAvailable(std::string* why) {
  const Result<std::unique_ptr<Device>> device = OpenCudaDevice(0);
  if (!device.ok() && why != nullptr) *why = device.status().ToString();
  return device.ok();
}

}  // namespace engram::gpu
