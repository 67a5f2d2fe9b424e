// CUDA runtime errors as engram::Status, and a move-only device buffer for tests and
// benchmarks.
//
// Every host function of the CUDA kernels (model/cuda_kernels.h) turns a cudaError_t into a
// Status here before returning, so no CUDA error code crosses the module edge:
//   cudaErrorMemoryAllocation                          -> ResourceExhausted
//   cudaErrorInvalidValue, cudaErrorInvalidConfiguration,
//   cudaErrorInvalidDevicePointer, cudaErrorInvalidPitchValue -> InvalidArgument
//   cudaErrorNoDevice, cudaErrorInsufficientDriver,
//   cudaErrorNotSupported, cudaErrorNoKernelImageForDevice,
//   cudaErrorUnsupportedPtxVersion                       -> NotSupported
//   anything else (launch failures, illegal address...)  -> IOError (the device is an I/O
//                                                           device; the message names the error)
//
// Thread safety: free functions are thread-safe as the CUDA runtime is; a DeviceBuffer is a
// value owned by one thread at a time.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/status.h"

namespace engram::cuda {

// OK for cudaSuccess; otherwise a Status whose message is
// "<context>: <cudaGetErrorName> (<code>): <cudaGetErrorString>".
inline Status CudaStatus(cudaError_t err, std::string_view context) {
  if (err == cudaSuccess) return Status::OK();
  std::string msg(context);
  msg += ": ";
  msg += cudaGetErrorName(err);
  msg += " (" + std::to_string(static_cast<int>(err)) + "): ";
  msg += cudaGetErrorString(err);
  switch (err) {
    case cudaErrorMemoryAllocation:
      return Status::ResourceExhausted(msg);
    case cudaErrorInvalidValue:
    case cudaErrorInvalidConfiguration:
    case cudaErrorInvalidDevicePointer:
    case cudaErrorInvalidPitchValue:
      return Status::InvalidArgument(msg);
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorNotSupported:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
      return Status::NotSupported(msg);
    default:
      return Status::IOError(msg);
  }
}

// Returns CudaStatus(expr, context) from the enclosing function when expr fails.
#define ENGRAM_CUDA_RETURN_IF_ERROR(expr, context)             \
  do {                                                         \
    const cudaError_t _cuda_err = (expr);                      \
    if (_cuda_err != cudaSuccess) {                            \
      return ::engram::cuda::CudaStatus(_cuda_err, (context)); \
    }                                                          \
  } while (0)

// The number of CUDA devices, or NotSupported naming why there are none (no driver, no
// device). Tests skip on a non-OK result.
inline Result<int> CudaDeviceCount() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clears the (non-sticky) error; the result is deliberately unused
    return CudaStatus(err, "cudaGetDeviceCount");
  }
  if (count == 0) return Status::NotSupported("cudaGetDeviceCount: 0 devices");
  return count;
}

// `count` elements of T in device memory (cudaMalloc), freed by the destructor. Move-only.
// The destructor never throws and ignores cudaFree's result (it can only report an earlier
// asynchronous error, which the owner's own calls have already surfaced).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { Reset(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      ptr_ = std::exchange(other.ptr_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // A buffer of `count` elements (contents undefined); count 0 gives an empty buffer.
  static Result<DeviceBuffer> Allocate(size_t count) {
    DeviceBuffer buf;
    if (count > 0) {
      void* p = nullptr;
      ENGRAM_CUDA_RETURN_IF_ERROR(cudaMalloc(&p, count * sizeof(T)),
                                  "cudaMalloc of " + std::to_string(count * sizeof(T)) + " bytes");
      buf.ptr_ = static_cast<T*>(p);
      buf.count_ = count;
    }
    return buf;
  }
  // A buffer holding a copy of `host` (synchronous).
  static Result<DeviceBuffer> FromHost(const std::vector<T>& host) {
    ENGRAM_ASSIGN_OR_RETURN(DeviceBuffer buf, Allocate(host.size()));
    ENGRAM_RETURN_IF_ERROR(buf.Upload(host));
    return buf;
  }

  // Synchronous copies of the first host.size() / count elements. REQUIRES: they fit.
  Status Upload(const std::vector<T>& host) {
    if (host.size() > count_) return Status::InvalidArgument("DeviceBuffer::Upload: too large");
    ENGRAM_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
        "cudaMemcpy to device");
    return Status::OK();
  }
  Result<std::vector<T>> Download(size_t count) const {
    if (count > count_) return Status::InvalidArgument("DeviceBuffer::Download: too large");
    std::vector<T> host(count);
    ENGRAM_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(host.data(), ptr_, count * sizeof(T), cudaMemcpyDeviceToHost),
        "cudaMemcpy to host");
    return host;
  }
  Result<std::vector<T>> Download() const { return Download(count_); }

  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  void Reset() {
    if (ptr_ != nullptr) cudaFree(ptr_);  // result deliberately ignored (see class comment)
    ptr_ = nullptr;
    count_ = 0;
  }

  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace engram::cuda
