// Shared pieces of the prefetcher tests: real tables in a temp dir with known row contents, a
// prefetcher rig per tier configuration (host only, host-emulated device with and without an
// HBM tier, CUDA), gathers read back to host memory, the expected gather output, a Zipf id
// source and an Env whose data-file reads wait at a gate.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "gpu_bridge/device.h"
#include "gpu_bridge/prefetcher.h"
#include "storage/dtype.h"
#include "storage/env.h"
#include "storage/table.h"
#include "storage/table_builder.h"

namespace engram::gpu::testing {

inline constexpr uint64_t kSeed = 42;

inline Status MakeTable(const std::string& path, uint64_t rows, uint32_t dim, DType dtype,
                        Env* env = Env::Default()) {
  CreationInfo info;
  info.fill = "random";
  info.seed = kSeed;
  return BuildTable(env, path, rows, dim, dtype, info, /*replace=*/false,
                    [&](uint64_t id, uint8_t* out) { RandomRow(dtype, dim, kSeed, id, out); });
}

inline std::vector<uint8_t> ExpectedRow(DType dtype, uint32_t dim, uint64_t id) {
  std::vector<uint8_t> row(*RowBytes(dtype, dim));
  RandomRow(dtype, dim, kSeed, id, row.data());
  return row;
}

inline TableOptions TableOpts(DramMode mode, Env* env = Env::Default(),
                              uint64_t dram_cache_bytes = 64 << 10) {
  TableOptions o;
  o.env = env;
  o.dram_mode = mode;
  o.dram_cache_bytes = dram_cache_bytes;
  o.dram_cache_shards = 4;
  o.resident.huge_pages = false;
  return o;
}

enum class Tier { kHostOnly, kEmulated, kEmulatedHbm, kCuda, kCudaHbm };

inline const char* TierName(Tier t) {
  switch (t) {
    case Tier::kHostOnly:
      return "host-only";
    case Tier::kEmulated:
      return "emulated";
    case Tier::kEmulatedHbm:
      return "emulated+hbm";
    case Tier::kCuda:
      return "cuda";
    case Tier::kCudaHbm:
      return "cuda+hbm";
  }
  return "?";
}

inline const char* ModeName(DramMode m) {
  switch (m) {
    case DramMode::kNone:
      return "nvme-only";
    case DramMode::kResident:
      return "resident";
    case DramMode::kCache:
      return "dram-cache";
  }
  return "?";
}

// Members in destruction order: the prefetcher before its device and table. Assigning to a
// Rig replaces the members in declaration order: Reset() one before assigning to it.
struct Rig {
  std::unique_ptr<Table> table;
  std::unique_ptr<Device> device;
  std::unique_ptr<Prefetcher> prefetcher;

  void Reset() {
    prefetcher.reset();
    device.reset();
    table.reset();
  }
};

// Opens `path` and a prefetcher over it on `tier`; `options` supplies everything but the
// device (hbm_cache_bytes is set for the HBM tiers when left 0).
inline Result<Rig> OpenRig(const std::string& path, const TableOptions& table_options, Tier tier,
                           PrefetchOptions options = {}) {
  Rig rig;
  ENGRAM_ASSIGN_OR_RETURN(rig.table, Table::Open(path, table_options));
  if (tier == Tier::kEmulated || tier == Tier::kEmulatedHbm) rig.device = NewHostDevice();
  if (tier == Tier::kCuda || tier == Tier::kCudaHbm) {
    ENGRAM_ASSIGN_OR_RETURN(rig.device, OpenCudaDevice(0));
  }
  options.device = rig.device.get();
  if ((tier == Tier::kEmulatedHbm || tier == Tier::kCudaHbm) && options.hbm_cache_bytes == 0) {
    options.hbm_cache_bytes = uint64_t{256} * rig.table->row_bytes();
    options.hbm_shards = 4;
  }
  ENGRAM_ASSIGN_OR_RETURN(rig.prefetcher, Prefetcher::Create(rig.table.get(), options));
  return rig;
}

// Device memory freed on scope exit.
class DeviceBuffer {
 public:
  DeviceBuffer(Device* device, size_t bytes) : device_(device) {
    auto p = device->Malloc(bytes);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (p.ok()) ptr_ = *p;
  }
  ~DeviceBuffer() { device_->Free(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }

 private:
  Device* device_;
  void* ptr_ = nullptr;
};

// Gathers ticket `t` (n rows) as `type` at `stride` and returns the output bytes as the host
// sees them. With `on_device` the gather goes to device memory (set to 0xab first, so
// padding can be checked) on the prefetcher's stream or, with `caller_stream`, on a stream of
// the test's, and is then copied back.
inline Result<std::vector<uint8_t>> GatherToHost(Prefetcher& p, TicketId t, size_t n, OutType type,
                                                 size_t stride, bool on_device,
                                                 bool caller_stream = false) {
  std::vector<uint8_t> out(std::max<size_t>(n, 1) * stride, 0xab);
  GatherTarget target;
  target.out_stride = stride;
  target.type = type;
  if (!on_device) {
    target.out = out.data();
    ENGRAM_RETURN_IF_ERROR(p.Gather(t, target));
    return out;
  }
  Device* d = p.device();
  DeviceBuffer buf(d, out.size());
  ENGRAM_ASSIGN_OR_RETURN(auto stream, d->NewStream());
  ENGRAM_RETURN_IF_ERROR(d->MemsetAsync(buf.get(), 0xab, out.size(), stream.get()));
  ENGRAM_RETURN_IF_ERROR(d->SynchronizeStream(stream.get()));
  target.out = buf.get();
  target.on_device = true;
  if (caller_stream) target.stream = stream.get();
  ENGRAM_RETURN_IF_ERROR(p.Gather(t, target));
  ENGRAM_RETURN_IF_ERROR(
      d->CopyAsync(out.data(), buf.get(), out.size(), CopyKind::kDeviceToHost, stream.get()));
  ENGRAM_RETURN_IF_ERROR(d->SynchronizeStream(stream.get()));
  return out;
}

// What a gather of `type` writes for the raw rows rows[i * row_stride] (i < n), at `stride`,
// with untouched padding 0xab.
inline std::vector<uint8_t> ExpectedOut(DType dtype, uint32_t dim, const uint8_t* rows,
                                        size_t row_stride, size_t n, OutType type, size_t stride) {
  const size_t row_bytes = *RowBytes(dtype, dim);
  std::vector<uint8_t> out(std::max<size_t>(n, 1) * stride, 0xab);
  std::vector<float> f(dim);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* src = rows + i * row_stride;
    uint8_t* dst = out.data() + i * stride;
    if (type == OutType::kRaw) {
      std::memcpy(dst, src, row_bytes);
      continue;
    }
    DequantizeRow(dtype, dim, src, f.data());
    if (type == OutType::kF32) {
      std::memcpy(dst, f.data(), dim * sizeof(float));
    } else {
      for (uint32_t k = 0; k < dim; ++k) {
        const uint16_t b = FloatToBFloat16(f[k]);
        std::memcpy(dst + 2 * k, &b, 2);
      }
    }
  }
  return out;
}

// Ids with Zipf(alpha) popularity over [0, rows), rank r mapped to a scattered id.
class ZipfIds {
 public:
  ZipfIds(uint64_t rows, double alpha, uint64_t seed) : rows_(rows), rng_(seed) {
    cdf_.resize(rows);
    double sum = 0;
    for (uint64_t r = 0; r < rows; ++r) cdf_[r] = (sum += 1.0 / std::pow(double(r + 1), alpha));
    for (double& c : cdf_) c /= sum;
  }
  uint64_t Next() {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    const uint64_t rank =
        std::min<uint64_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin(), rows_ - 1);
    return (rank * 7919 + 13) % rows_;  // 7919 is prime: a permutation for rows_ < 7919 * k
  }
  std::vector<uint64_t> Batch(size_t n) {
    std::vector<uint64_t> ids(n);
    for (auto& id : ids) id = Next();
    return ids;
  }

 private:
  uint64_t rows_;
  std::mt19937_64 rng_;
  std::vector<double> cdf_;
};

// An Env over the POSIX one whose reads of table data files (through Read and io_uring
// completions) wait while the gate is closed, so a test can hold a fetch in flight.
class GateEnv : public EnvWrapper {
 public:
  GateEnv() : EnvWrapper(Env::Default()) {}
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Blocks until some read waits at the closed gate.
  void WaitForBlockedRead() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return blocked_ > 0; });
  }
  void Pass() const {
    std::unique_lock<std::mutex> lock(mu_);
    ++blocked_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    --blocked_;
  }

  Result<std::unique_ptr<RandomAccessFile>> OpenRandomAccess(const std::string& path,
                                                             bool direct_io) override;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool open_ = true;         // GUARDED_BY(mu_)
  mutable int blocked_ = 0;  // GUARDED_BY(mu_)
};

class GatedFile final : public RandomAccessFile {
 public:
  GatedFile(const GateEnv* env, std::unique_ptr<RandomAccessFile> base)
      : env_(env), base_(std::move(base)) {}
  const std::string& path() const override { return base_->path(); }
  int fd() const override { return base_->fd(); }
  bool direct_io() const override { return base_->direct_io(); }
  Result<uint64_t> Size() const override { return base_->Size(); }
  Status Read(uint64_t offset, size_t n, void* buf) const override {
    env_->Pass();
    return base_->Read(offset, n, buf);
  }
  int64_t FilterCompletion(uint64_t offset, size_t n, void* buf, int64_t res) const override {
    env_->Pass();
    return base_->FilterCompletion(offset, n, buf, res);
  }

 private:
  const GateEnv* env_;
  std::unique_ptr<RandomAccessFile> base_;
};

inline Result<std::unique_ptr<RandomAccessFile>> GateEnv::OpenRandomAccess(const std::string& path,
                                                                           bool direct_io) {
  ENGRAM_ASSIGN_OR_RETURN(auto file, EnvWrapper::OpenRandomAccess(path, direct_io));
  if (path.size() < 5 || path.compare(path.size() - 5, 5, "/data") != 0) return file;
  return std::unique_ptr<RandomAccessFile>(new GatedFile(this, std::move(file)));
}

}  // namespace engram::gpu::testing
