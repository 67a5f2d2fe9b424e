// OpenCudaDevice and CudaDeviceAvailable for builds without a CUDA compiler: there is never a
// CUDA device, and callers are told why.
#include "gpu_bridge/device.h"

namespace engram::gpu {

Result<std::unique_ptr<Device>> OpenCudaDevice(int ordinal) {
  return Status::NotSupported("cuda:" + std::to_string(ordinal) +
                              ": engram-store was built without CUDA");
}

bool CudaDeviceAvailable(std::string* why) {
  if (why != nullptr) *why = "engram-store was built without CUDA";
  return false;
}

}  // namespace engram::gpu
