// Device helpers shared by both implementations: output row sizes, names, and the parser of
// device names (OpenDevice).
#include "gpu_bridge/device.h"

#include <charconv>
#include <string>

namespace engram::gpu {

size_t OutRowBytes(OutType type, uint32_t dim, uint32_t row_bytes) {
  switch (type) {
    case OutType::kRaw:
      return row_bytes;
    case OutType::kF32:
      return size_t{dim} * sizeof(float);
    case OutType::kBF16:
      return size_t{dim} * sizeof(uint16_t);
  }
  return 0;
}

const char* OutTypeName(OutType type) {
  switch (type) {
    case OutType::kRaw:
      return "raw";
    case OutType::kF32:
      return "f32";
    case OutType::kBF16:
      return "bf16";
  }
  return "unknown";
}

Result<std::unique_ptr<Device>> OpenDevice(const std::string& name) {
  if (name == "none") return std::unique_ptr<Device>();
  if (name == "emulated") return NewHostDevice();
  if (name == "cuda") return OpenCudaDevice(0);
  constexpr std::string_view kCudaPrefix = "cuda:";
  if (name.size() > kCudaPrefix.size() && name.compare(0, kCudaPrefix.size(), kCudaPrefix) == 0) {
    const char* first = name.data() + kCudaPrefix.size();
    const char* last = name.data() + name.size();
    int ordinal = -1;
    const auto [end, err] = std::from_chars(first, last, ordinal);
    if (err == std::errc() && end == last && ordinal >= 0) return OpenCudaDevice(ordinal);
  }
  return Status::InvalidArgument("unknown device '" + name +
                                 "' (expected none, emulated, cuda or cuda:N)");
}

}  // namespace engram::gpu
