// bridge_bench: the device layer's CUDA paths (gpu_bridge/device.h) against plain CUDA copies of
// the same bytes, measured in the same run on the same stream.
//
//   bridge_bench [--sizes 128,256,264,1024] [--rows 65536] [--pool_mib 4096] [--iters 20]
//                [--warmup 3] [--cold 1] [--json PATH]
//
// For each raw row size R it picks --rows distinct random slots of R bytes in a --pool_mib
// device pool, then times (median of --iters event-timed runs after --warmup untimed ones):
//   prefetch     pinned staging -> device staging (Device::CopyAsync) + ScatterAsync into the
//                slots: what the prefetcher does for rows missing from HBM.
//     vs h2d     cudaMemcpyAsync of the same rows x R bytes, pinned -> device.
//     GB/s       rows x R / time (bytes crossing PCIe / C2C).
//   gather       GatherAsync (kRaw) of those slots into a packed buffer.
//     vs d2d     cudaMemcpyAsync device -> device of rows x R bytes.
//     GB/s       2 x rows x R / time (bytes read + written, both sides).
// For 264-byte rows (fp8_e4m3_ue8m0, dim 256, DeepSeek's layout) it also times the dequantising
// gathers to bf16 and f32 (GB/s = bytes read + written; the d2d reference copies half of that).
// With --cold 1 a 512 MiB memset evicts L2 before each timed run (outside the timing), so rows
// come from HBM as they would after other work; --cold 0 measures L2-warm repeats.
// Before timing, each size is checked end to end: random staging bytes are scattered into the
// slots, gathered back and compared (exit 1 on a mismatch). Without a CUDA device it says why
// and exits 1. The table is printed last.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "gpu_bridge/device.h"
#include "model/cuda_status.h"
#include "storage/dtype.h"

namespace engram::gpu {
namespace {

struct Flags {
  std::vector<uint32_t> sizes = {128, 256, 264, 1024};
  size_t rows = 65536;
  size_t pool_mib = 4096;
  int iters = 20;
  int warmup = 3;
  bool cold = true;
  std::string json;
};

bool ParseNumber(const std::string& v, uint64_t* out) {
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || v[0] == '-') return false;
  *out = x;
  return true;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return false;
    const std::string a = argv[i], v = argv[i + 1];
    uint64_t x = 0;
    if (a == "--json") {
      f->json = v;
    } else if (a == "--sizes") {
      f->sizes.clear();
      std::stringstream ss(v);
      std::string item;
      while (std::getline(ss, item, ',')) {
        if (!ParseNumber(item, &x) || x == 0 || x > (1u << 20)) return false;
        f->sizes.push_back(static_cast<uint32_t>(x));
      }
      if (f->sizes.empty()) return false;
    } else if (!ParseNumber(v, &x) || x > (uint64_t{1} << 32)) {
      return false;
    } else if (a == "--rows") {
      f->rows = x;
    } else if (a == "--pool_mib") {
      f->pool_mib = x;
    } else if (a == "--iters") {
      f->iters = static_cast<int>(x);
    } else if (a == "--warmup") {
      f->warmup = static_cast<int>(x);
    } else if (a == "--cold") {
      f->cold = x != 0;
    } else {
      return false;
    }
  }
  return f->rows > 0 && f->pool_mib > 0 && f->iters > 0;
}

// Device memory from a Device, freed on destruction.
struct Buffer {
  Device* device = nullptr;
  void* ptr = nullptr;
  bool pinned = false;
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (ptr == nullptr) return;
    if (pinned) {
      device->FreeHost(ptr);
    } else {
      device->Free(ptr);
    }
  }
  uint8_t* get() const { return static_cast<uint8_t*>(ptr); }
};

Status Allocate(Device* device, size_t bytes, bool pinned, Buffer* out) {
  out->device = device;
  out->pinned = pinned;
  ENGRAM_ASSIGN_OR_RETURN(out->ptr, pinned ? device->MallocHost(bytes) : device->Malloc(bytes));
  return Status::OK();
}

struct Row {
  std::string path;
  uint32_t row_bytes = 0;
  double bytes = 0;  // counted as described in the file comment
  double ms = 0;
  std::string ref;
  double ref_ms = 0;
  double gbs() const { return bytes / (ms * 1e6); }
  double ref_gbs() const { return bytes / (ref_ms * 1e6); }
  double ratio() const { return ref_ms / ms; }
};

class Bench {
 public:
  Bench(const Flags& flags, Device* device, Stream* stream)
      : f_(flags),
        device_(device),
        stream_(stream),
        s_(static_cast<cudaStream_t>(stream->native_handle())) {}

  Status Init() {
    ENGRAM_RETURN_IF_ERROR(Allocate(device_, f_.pool_mib << 20, false, &pool_));
    if (f_.cold) ENGRAM_RETURN_IF_ERROR(Allocate(device_, kFlushBytes, false, &flush_));
    ENGRAM_CUDA_RETURN_IF_ERROR(cudaEventCreate(&start_), "cudaEventCreate");
    ENGRAM_CUDA_RETURN_IF_ERROR(cudaEventCreate(&stop_), "cudaEventCreate");
    return Status::OK();
  }
  ~Bench() {
    if (start_ != nullptr) cudaEventDestroy(start_);  // results deliberately ignored
    if (stop_ != nullptr) cudaEventDestroy(stop_);
  }

  Status RunSize(uint32_t row_bytes, std::vector<Row>* rows, bool* check_ok);

 private:
  static constexpr size_t kFlushBytes = size_t{512} << 20;

  // Median milliseconds of fn, event-timed on the bench stream.
  Result<double> TimeMs(const std::function<Status()>& fn) {
    for (int i = 0; i < f_.warmup; ++i) ENGRAM_RETURN_IF_ERROR(fn());
    std::vector<double> ms;
    for (int i = 0; i < f_.iters; ++i) {
      if (f_.cold) {
        ENGRAM_RETURN_IF_ERROR(device_->MemsetAsync(flush_.get(), i & 0xff, kFlushBytes, stream_));
      }
      ENGRAM_CUDA_RETURN_IF_ERROR(cudaEventRecord(start_, s_), "cudaEventRecord");
      ENGRAM_RETURN_IF_ERROR(fn());
      ENGRAM_CUDA_RETURN_IF_ERROR(cudaEventRecord(stop_, s_), "cudaEventRecord");
      ENGRAM_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(stop_), "timed run");
      float t = 0;
      ENGRAM_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&t, start_, stop_), "elapsed");
      ms.push_back(t);
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }

  Status Add(std::vector<Row>* rows, Row r, const std::function<Status()>& fn,
             const std::function<Status()>& ref) {
    ENGRAM_ASSIGN_OR_RETURN(r.ms, TimeMs(fn));
    ENGRAM_ASSIGN_OR_RETURN(r.ref_ms, TimeMs(ref));
    std::printf("%-18s %5u B %9.1f MB %9.1f us %8.1f GB/s   %-4s %8.1f GB/s  ratio %.3f\n",
                r.path.c_str(), r.row_bytes, r.bytes / 1e6, r.ms * 1e3, r.gbs(), r.ref.c_str(),
                r.ref_gbs(), r.ratio());
    std::fflush(stdout);
    rows->push_back(r);
    return Status::OK();
  }

  const Flags& f_;
  Device* const device_;
  Stream* const stream_;
  const cudaStream_t s_;
  Buffer pool_, flush_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

Status Bench::RunSize(uint32_t row_bytes, std::vector<Row>* rows, bool* check_ok) {
  const size_t n = f_.rows;
  const size_t slots_total = (f_.pool_mib << 20) / row_bytes;
  if (n > slots_total / 2) {
    return Status::InvalidArgument("--rows " + std::to_string(n) + " is more than half the " +
                                   std::to_string(slots_total) + " slots of " +
                                   std::to_string(row_bytes) + " B in the pool");
  }
  // Distinct random slots.
  std::mt19937_64 rng(row_bytes);
  std::unordered_set<size_t> taken;
  std::vector<void*> slot_ptrs;
  slot_ptrs.reserve(n);
  while (slot_ptrs.size() < n) {
    const size_t slot = rng() % slots_total;
    if (taken.insert(slot).second) slot_ptrs.push_back(pool_.get() + slot * row_bytes);
  }
  const size_t payload = n * row_bytes;
  Buffer d_ptrs, staging, d_stage, d_out;
  ENGRAM_RETURN_IF_ERROR(Allocate(device_, n * sizeof(void*), false, &d_ptrs));
  ENGRAM_RETURN_IF_ERROR(Allocate(device_, payload, true, &staging));
  ENGRAM_RETURN_IF_ERROR(Allocate(device_, payload, false, &d_stage));
  ENGRAM_RETURN_IF_ERROR(Allocate(device_, payload, false, &d_out));
  for (size_t i = 0; i < payload; i += 8) {
    const uint64_t v = rng();
    std::memcpy(staging.get() + i, &v, std::min<size_t>(8, payload - i));
  }
  ENGRAM_RETURN_IF_ERROR(device_->CopyAsync(d_ptrs.get(), slot_ptrs.data(), n * sizeof(void*),
                                            CopyKind::kHostToDevice, stream_));

  ScatterArgs scatter;
  scatter.src = d_stage.get();
  scatter.dst = reinterpret_cast<void* const*>(d_ptrs.get());
  scatter.n = n;
  scatter.row_bytes = row_bytes;
  GatherArgs gather;
  gather.rows = reinterpret_cast<const void* const*>(d_ptrs.get());
  gather.n = n;
  gather.row_bytes = row_bytes;
  gather.out_type = OutType::kRaw;
  gather.out = d_out.get();
  gather.out_stride = row_bytes;

  auto prefetch = [&] {
    ENGRAM_RETURN_IF_ERROR(device_->CopyAsync(d_stage.get(), staging.get(), payload,
                                              CopyKind::kHostToDevice, stream_));
    return device_->ScatterAsync(scatter, stream_);
  };
  auto h2d = [&] {
    ENGRAM_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(d_stage.get(), staging.get(), payload, cudaMemcpyHostToDevice, s_),
        "cudaMemcpyAsync h2d");
    return Status::OK();
  };
  auto d2d = [&](size_t bytes) {
    return [&, bytes] {
      ENGRAM_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(d_out.get(), d_stage.get(), bytes, cudaMemcpyDeviceToDevice, s_),
          "cudaMemcpyAsync d2d");
      return Status::OK();
    };
  };
  auto gather_raw = [&] { return device_->GatherAsync(gather, stream_); };

  // End-to-end check: scatter the staging rows into their slots, gather them back.
  ENGRAM_RETURN_IF_ERROR(prefetch());
  ENGRAM_RETURN_IF_ERROR(gather_raw());
  std::vector<uint8_t> back(payload);
  ENGRAM_RETURN_IF_ERROR(
      device_->CopyAsync(back.data(), d_out.get(), payload, CopyKind::kDeviceToHost, stream_));
  ENGRAM_RETURN_IF_ERROR(device_->SynchronizeStream(stream_));
  const bool same = std::memcmp(back.data(), staging.get(), payload) == 0;
  std::printf("check %u B rows: scatter + gather round trip %s\n", row_bytes,
              same ? "ok" : "MISMATCH");
  *check_ok = *check_ok && same;

  const double p = static_cast<double>(payload);
  ENGRAM_RETURN_IF_ERROR(Add(rows, Row{"prefetch h2d", row_bytes, p, 0, "h2d"}, prefetch, h2d));
  ENGRAM_RETURN_IF_ERROR(
      Add(rows, Row{"gather raw", row_bytes, 2 * p, 0, "d2d"}, gather_raw, d2d(payload)));

  if (row_bytes == 264) {  // fp8_e4m3_ue8m0 rows of dim 256, dequantised
    for (OutType out : {OutType::kBF16, OutType::kF32}) {
      const size_t out_bytes = n * OutRowBytes(out, 256, row_bytes);
      Buffer d_deq;
      ENGRAM_RETURN_IF_ERROR(Allocate(device_, out_bytes, false, &d_deq));
      GatherArgs g = gather;
      g.dtype = DType::kFp8E4M3Ue8m0;
      g.dim = 256;
      g.out_type = out;
      g.out = d_deq.get();
      g.out_stride = OutRowBytes(out, 256, row_bytes);
      const double bytes = p + static_cast<double>(out_bytes);
      const size_t half = static_cast<size_t>(bytes / 2);  // the copy reads + writes `bytes`
      Buffer ref_src, ref_dst;
      ENGRAM_RETURN_IF_ERROR(Allocate(device_, half, false, &ref_src));
      ENGRAM_RETURN_IF_ERROR(Allocate(device_, half, false, &ref_dst));
      auto ref = [&] {
        ENGRAM_CUDA_RETURN_IF_ERROR(
            cudaMemcpyAsync(ref_dst.get(), ref_src.get(), half, cudaMemcpyDeviceToDevice, s_),
            "cudaMemcpyAsync d2d");
        return Status::OK();
      };
      ENGRAM_RETURN_IF_ERROR(Add(
          rows, Row{std::string("gather fp8->") + OutTypeName(out), row_bytes, bytes, 0, "d2d"},
          [&] { return device_->GatherAsync(g, stream_); }, ref));
    }
  }
  return device_->SynchronizeStream(stream_);
}

int Main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, &f)) {
    std::fprintf(stderr,
                 "usage: bridge_bench [--sizes 128,256,264,1024] [--rows N] [--pool_mib M] "
                 "[--iters I] [--warmup W] [--cold 0|1] [--json PATH]\n");
    return 2;
  }
  auto device = OpenCudaDevice(0);
  if (!device.ok()) {
    std::fprintf(stderr, "bridge_bench: no CUDA device: %s\n", device.status().ToString().c_str());
    return 1;
  }
  Device* d = device->get();
  auto stream = d->NewStream();
  if (!stream.ok()) {
    std::fprintf(stderr, "bridge_bench: %s\n", stream.status().ToString().c_str());
    return 1;
  }
  std::printf("device: %s; %zu rows from random distinct slots of a %zu MiB pool, median of %d%s\n",
              d->description().c_str(), f.rows, f.pool_mib, f.iters,
              f.cold ? ", L2 flushed before each run" : ", L2 warm");
  std::vector<Row> rows;
  bool check_ok = true;
  {
    Bench bench(f, d, stream->get());
    Status s = bench.Init();
    for (size_t i = 0; s.ok() && i < f.sizes.size(); ++i) {
      s = bench.RunSize(f.sizes[i], &rows, &check_ok);
    }
    if (!s.ok()) {
      std::fprintf(stderr, "bridge_bench: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  if (!f.json.empty()) {
    std::ofstream out(f.json);
    out << "{\"device\": \"" << d->description() << "\", \"rows\": " << f.rows
        << ", \"pool_mib\": " << f.pool_mib << ", \"cold\": " << (f.cold ? "true" : "false")
        << ", \"checks_ok\": " << (check_ok ? "true" : "false") << ", \"results\": [";
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      out << (i ? ", " : "") << "{\"path\": \"" << r.path << "\", \"row_bytes\": " << r.row_bytes
          << ", \"bytes\": " << r.bytes << ", \"ms\": " << r.ms << ", \"gbs\": " << r.gbs()
          << ", \"ref\": \"" << r.ref << "\", \"ref_gbs\": " << r.ref_gbs()
          << ", \"ratio\": " << r.ratio() << "}";
    }
    out << "]}\n";
  }
  std::printf(
      "\n| path | row B | MB | us | GB/s | reference | ref GB/s | ratio |\n"
      "|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    std::printf("| %s | %u | %.1f | %.1f | %.0f | %s | %.0f | %.3f |\n", r.path.c_str(),
                r.row_bytes, r.bytes / 1e6, r.ms * 1e3, r.gbs(), r.ref.c_str(), r.ref_gbs(),
                r.ratio());
  }
  if (!check_ok) std::printf("\nbridge_bench: CHECK FAILED (see the check lines above)\n");
  return check_ok ? 0 : 1;
}

}  // namespace
}  // namespace engram::gpu

int main(int argc, char** argv) { return engram::gpu::Main(argc, argv); }
