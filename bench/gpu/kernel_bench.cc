// kernel_bench: times the Engram layer's CUDA gating and fusion kernels (model/cuda_kernels.h)
// against a device-to-device cudaMemcpyAsync of the same bytes, measured in the same run.
//
//   kernel_bench [--tokens 8192] [--batch 1] [--hidden 2560] [--hc_mult 4] [--kernel_size 4]
//                [--dilation 3] [--iters 20] [--warmup 3] [--dtype all|f32|bf16]
//                [--check 1] [--json PATH]
//
// tokens = batch * seq_len. For each dtype it fills the inputs with random values (never
// zeros), checks one call of each kernel against its CPU twin (--check 1; max errors printed,
// exit 1 when out of tolerance), then times, each as the median of --iters event-timed
// launches after --warmup untimed ones:
//   gating            reads proj [N, (M+1)H] and hidden [N, M, H], writes u [N, M, H]
//   fusion            reads u, writes y (out of place)
//   fusion_inplace    reads u, writes u (adds the halo copy: (K-1)*dil rows per chunk)
//   gating+fusion     both, back to back, out of place
//   copy(<kernel>)    cudaMemcpyAsync device-to-device of half that kernel's bytes, i.e. the
//                     same bytes read + written
// GB/s counts the bytes a kernel must read + write (each input element read once, each output
// written once; weights, gates and row scales excluded: < 0.1 %), 1 GB = 1e9 bytes. The ratio
// kernel GB/s / copy GB/s is the figure with the >= 0.70 target. The table is printed last.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "model/cuda_kernels.h"
#include "model/cuda_status.h"
#include "model/fusion_kernel.h"
#include "model/gating_kernel.h"
#include "storage/dtype.h"

namespace engram::model {
namespace {

using cuda::DeviceBuffer;

struct Flags {
  int64_t tokens = 8192;
  int64_t batch = 1;
  int hidden = 2560;
  int hc_mult = 4;
  int kernel_size = 4;
  int dilation = 3;
  int iters = 20;
  int warmup = 3;
  std::string dtype = "all";
  bool check = true;
  std::string json;
};

// Reads "--name value" pairs; false on an unknown flag, a bad number or a bad combination.
bool ParseFlags(int argc, char** argv, Flags* f) {
  auto number = [](const std::string& v, int64_t* out) {
    char* end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0') return false;
    *out = x;
    return true;
  };
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) return false;
    const std::string a = argv[i], v = argv[i + 1];
    int64_t x = 0;
    const bool is_number = number(v, &x);
    if (a == "--dtype") {
      f->dtype = v;
    } else if (a == "--json") {
      f->json = v;
    } else if (!is_number || x < 0 || x > (int64_t{1} << 40)) {
      return false;
    } else if (a == "--tokens") {
      f->tokens = x;
    } else if (a == "--batch") {
      f->batch = x;
    } else if (a == "--hidden") {
      f->hidden = static_cast<int>(std::min<int64_t>(x, 1 << 30));
    } else if (a == "--hc_mult") {
      f->hc_mult = static_cast<int>(std::min<int64_t>(x, 1 << 30));
    } else if (a == "--kernel_size") {
      f->kernel_size = static_cast<int>(std::min<int64_t>(x, 1 << 30));
    } else if (a == "--dilation") {
      f->dilation = static_cast<int>(std::min<int64_t>(x, 1 << 30));
    } else if (a == "--iters") {
      f->iters = static_cast<int>(std::min<int64_t>(x, 1 << 20));
    } else if (a == "--warmup") {
      f->warmup = static_cast<int>(std::min<int64_t>(x, 1 << 20));
    } else if (a == "--check") {
      f->check = x != 0;
    } else {
      return false;
    }
  }
  return f->tokens > 0 && f->batch > 0 && f->tokens % f->batch == 0 && f->hidden > 0 &&
         f->hc_mult > 0 && f->kernel_size > 0 && f->dilation > 0 && f->iters > 0 &&
         (f->dtype == "all" || f->dtype == "f32" || f->dtype == "bf16");
}

// ---- inputs ------------------------------------------------------------------------------

// Deterministic values in [lo, hi) from (seed, index): splitmix64, fast enough for 10^8.
std::vector<float> Random(size_t n, uint64_t seed, float lo, float hi) {
  std::vector<float> v(n);
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t i = t; i < n; i += threads) {
        uint64_t z = seed * 0x9e3779b97f4a7c15ull + i + 1;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        v[i] = lo + (hi - lo) * static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
      }
    });
  }
  for (auto& th : pool) th.join();
  return v;
}

template <typename E>
std::vector<E> As(const std::vector<float>& f) {
  if constexpr (std::is_same_v<E, float>) {
    return f;
  } else {
    std::vector<E> v(f.size());
    for (size_t i = 0; i < f.size(); ++i) v[i] = FloatToBFloat16(f[i]);
    return v;
  }
}

template <typename E>
float F32(E v) {
  if constexpr (std::is_same_v<E, float>) {
    return v;
  } else {
    return BFloat16ToFloat(v);
  }
}

// ---- timing ------------------------------------------------------------------------------

// Median milliseconds of `iters` event-timed calls of fn after `warmup` untimed ones.
Result<double> TimeMs(const Flags& flags, const std::function<Status()>& fn) {
  for (int i = 0; i < flags.warmup; ++i) ENGRAM_RETURN_IF_ERROR(fn());
  cudaEvent_t start, stop;
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaEventCreate(&start), "cudaEventCreate");
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> ms;
  Status status;
  for (int i = 0; i < flags.iters && status.ok(); ++i) {
    status = cuda::CudaStatus(cudaEventRecord(start, nullptr), "cudaEventRecord");
    if (status.ok()) status = fn();
    if (status.ok()) status = cuda::CudaStatus(cudaEventRecord(stop, nullptr), "cudaEventRecord");
    if (status.ok()) status = cuda::CudaStatus(cudaEventSynchronize(stop), "kernel run");
    float t = 0;
    if (status.ok()) status = cuda::CudaStatus(cudaEventElapsedTime(&t, start, stop), "elapsed");
    ms.push_back(t);
  }
  cudaEventDestroy(start);  // results deliberately ignored: nothing to do on failure
  cudaEventDestroy(stop);
  ENGRAM_RETURN_IF_ERROR(status);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct Row {
  std::string kernel, dtype;
  double bytes = 0, ms = 0, copy_ms = 0;
  double gbs() const { return bytes / (ms * 1e6); }
  double copy_gbs() const { return bytes / (copy_ms * 1e6); }
};

// ---- per dtype ---------------------------------------------------------------------------

struct Check {
  double max_gate_err = 0, max_u_err = 0, max_y_err = 0, max_y_inplace_err = 0;
  bool ok = true;
};

template <typename E>
Status RunDtype(const Flags& f, std::vector<Row>* rows, Check* check) {
  using GP = std::conditional_t<std::is_same_v<E, float>, GatingParams, GatingParamsBf16>;
  using FP = std::conditional_t<std::is_same_v<E, float>, FusionParams, FusionParamsBf16>;
  const char* dtype = std::is_same_v<E, float> ? "f32" : "bf16";
  const int64_t N = f.tokens, H = f.hidden, M = f.hc_mult, K = f.kernel_size;
  const int64_t width = (M + 1) * H;

  const std::vector<E> proj = As<E>(Random(N * width, 1, -1.0f, 1.0f));
  const std::vector<E> hidden = As<E>(Random(N * M * H, 2, -1.0f, 1.0f));
  const std::vector<float> key_bias = Random(M * H, 3, -0.2f, 0.2f);
  const std::vector<float> value_bias = Random(H, 4, -0.2f, 0.2f);
  const std::vector<float> norm1 = Random(M * H, 5, 0.8f, 1.2f);
  const std::vector<float> norm2 = Random(M * H, 6, 0.8f, 1.2f);
  const std::vector<float> conv_norm = Random(M * H, 7, 0.8f, 1.2f);
  const std::vector<float> conv = Random(K * M * H, 8, -0.5f, 0.5f);

  ENGRAM_ASSIGN_OR_RETURN(auto d_proj, DeviceBuffer<E>::FromHost(proj));
  ENGRAM_ASSIGN_OR_RETURN(auto d_hidden, DeviceBuffer<E>::FromHost(hidden));
  ENGRAM_ASSIGN_OR_RETURN(auto d_kb, DeviceBuffer<float>::FromHost(key_bias));
  ENGRAM_ASSIGN_OR_RETURN(auto d_vb, DeviceBuffer<float>::FromHost(value_bias));
  ENGRAM_ASSIGN_OR_RETURN(auto d_n1, DeviceBuffer<float>::FromHost(norm1));
  ENGRAM_ASSIGN_OR_RETURN(auto d_n2, DeviceBuffer<float>::FromHost(norm2));
  ENGRAM_ASSIGN_OR_RETURN(auto d_cn, DeviceBuffer<float>::FromHost(conv_norm));
  ENGRAM_ASSIGN_OR_RETURN(auto d_conv, DeviceBuffer<float>::FromHost(conv));
  ENGRAM_ASSIGN_OR_RETURN(auto d_u, DeviceBuffer<E>::Allocate(N * M * H));
  ENGRAM_ASSIGN_OR_RETURN(auto d_u2, DeviceBuffer<E>::Allocate(N * M * H));  // in-place target
  ENGRAM_ASSIGN_OR_RETURN(auto d_y, DeviceBuffer<E>::Allocate(N * M * H));
  ENGRAM_ASSIGN_OR_RETURN(auto d_gate, DeviceBuffer<float>::Allocate(N * M));
  ENGRAM_ASSIGN_OR_RETURN(auto d_scale, DeviceBuffer<float>::Allocate(N * M));
  // Copy reference buffers: the largest kernel's bytes / 2.
  const size_t gating_bytes = static_cast<size_t>((2 * M + 1) * H + M * H) * N * sizeof(E);
  ENGRAM_ASSIGN_OR_RETURN(auto d_src, DeviceBuffer<uint8_t>::Allocate(gating_bytes));
  ENGRAM_ASSIGN_OR_RETURN(auto d_dst, DeviceBuffer<uint8_t>::Allocate(gating_bytes));
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaMemset(d_src.get(), 0x3c, d_src.bytes()), "cudaMemset");

  GP g;
  g.tokens = N;
  g.hidden = f.hidden;
  g.hc_mult = f.hc_mult;
  g.proj = d_proj.get();
  g.proj_stride = width;
  g.key_bias = d_kb.get();
  g.value_bias = d_vb.get();
  g.norm1 = d_n1.get();
  g.norm2 = d_n2.get();
  g.hidden_states = d_hidden.get();
  g.eps_key = 1e-5f;
  g.eps_query = 1.1920928955078125e-07f;
  g.out_u = d_u.get();
  g.out_gate = d_gate.get();
  FP fu;
  fu.batch = f.batch;
  fu.seq_len = N / f.batch;
  fu.hidden = f.hidden;
  fu.hc_mult = f.hc_mult;
  fu.kernel_size = f.kernel_size;
  fu.dilation = f.dilation;
  fu.u = d_u.get();
  fu.norm = d_cn.get();
  fu.conv = d_conv.get();
  fu.eps = 1e-5f;
  fu.row_scale = d_scale.get();
  fu.out = d_y.get();
  FP fi = fu;  // in place on d_u2 (refilled from d_u before the check)
  fi.u = d_u2.get();
  fi.out = d_u2.get();

  // One checked run of each.
  ENGRAM_RETURN_IF_ERROR(GatingCuda(g, nullptr));
  ENGRAM_RETURN_IF_ERROR(FusionCuda(fu, nullptr));
  ENGRAM_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(d_u2.get(), d_u.get(), d_u.bytes(), cudaMemcpyDeviceToDevice), "copy u");
  ENGRAM_RETURN_IF_ERROR(FusionCuda(fi, nullptr));
  ENGRAM_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize(), "first runs");
  if (f.check) {
    ENGRAM_ASSIGN_OR_RETURN(const std::vector<E> u, d_u.Download());
    ENGRAM_ASSIGN_OR_RETURN(const std::vector<E> y, d_y.Download());
    ENGRAM_ASSIGN_OR_RETURN(const std::vector<E> yi, d_u2.Download());
    ENGRAM_ASSIGN_OR_RETURN(const std::vector<float> gate, d_gate.Download());
    const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<E> u_ref(N * M * H), y_ref(N * M * H);
    std::vector<float> gate_ref(N * M), scale_ref(N * M);
    GP gc = g;
    gc.proj = proj.data();
    gc.key_bias = key_bias.data();
    gc.value_bias = value_bias.data();
    gc.norm1 = norm1.data();
    gc.norm2 = norm2.data();
    gc.hidden_states = hidden.data();
    gc.out_u = u_ref.data();
    gc.out_gate = gate_ref.data();
    FP fc = fu;
    fc.u = u.data();  // the device's u: fusion checked on its own inputs
    fc.norm = conv_norm.data();
    fc.conv = conv.data();
    fc.row_scale = scale_ref.data();
    fc.out = y_ref.data();
    if constexpr (std::is_same_v<E, float>) {
      GatingCpu(gc, threads);
      FusionCpu(fc, threads);
    } else {
      GatingBf16Cpu(gc, threads);
      FusionBf16Cpu(fc, threads);
    }
    // Errors relative to max(1, |ref|); bf16 allows one rounding flip (2^-7 relative).
    const double ulp = std::is_same_v<E, float> ? 0.0 : 1.0 / 128;
    auto max_err = [&](const std::vector<E>& a, const std::vector<E>& b) {
      double m = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        const double r = F32(b[i]);
        double e = std::fabs(double(F32(a[i])) - r) / std::max(1.0, std::fabs(r));
        if (std::isnan(e)) e = 1e30;
        m = std::max(m, e);
      }
      return m;
    };
    for (size_t i = 0; i < gate.size(); ++i) {
      const double e = std::fabs(double(gate[i]) - gate_ref[i]);
      check->max_gate_err = std::max(check->max_gate_err, std::isnan(e) ? 1e30 : e);
    }
    check->max_u_err = max_err(u, u_ref);
    check->max_y_err = max_err(y, y_ref);
    check->max_y_inplace_err = max_err(yi, y_ref);
    // Gates near x = 0 may move by up to ~5e-4 (tests/model/cuda_kernels_test.cc explains).
    check->ok = check->max_gate_err <= 2e-3 && check->max_u_err <= 2e-3 + ulp &&
                check->max_y_err <= 1e-4 + ulp && check->max_y_inplace_err <= 1e-4 + ulp;
    std::printf("check %s: max |gate err| %.3g, max rel err u %.3g, y %.3g, y in place %.3g: %s\n",
                dtype, check->max_gate_err, check->max_u_err, check->max_y_err,
                check->max_y_inplace_err, check->ok ? "ok" : "OUT OF TOLERANCE");
  }

  auto copy_of = [&](size_t bytes) -> std::function<Status()> {
    return [&, bytes] {
      ENGRAM_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(d_dst.get(), d_src.get(), bytes, cudaMemcpyDeviceToDevice, nullptr),
          "cudaMemcpyAsync");
      return Status::OK();
    };
  };
  auto add = [&](const std::string& name, double bytes, const std::function<Status()>& fn) {
    Row r{name, dtype, bytes};
    ENGRAM_ASSIGN_OR_RETURN(r.ms, TimeMs(f, fn));
    ENGRAM_ASSIGN_OR_RETURN(r.copy_ms, TimeMs(f, copy_of(static_cast<size_t>(bytes / 2))));
    std::printf("%-15s %-5s %9.1f MB %9.1f us %8.1f GB/s  copy %8.1f GB/s  ratio %.3f\n",
                r.kernel.c_str(), dtype, r.bytes / 1e6, r.ms * 1e3, r.gbs(), r.copy_gbs(),
                r.gbs() / r.copy_gbs());
    rows->push_back(r);
    return Status::OK();
  };
  const double fusion_bytes = 2.0 * N * M * H * sizeof(E);
  ENGRAM_RETURN_IF_ERROR(add("gating", gating_bytes, [&] { return GatingCuda(g, nullptr); }));
  ENGRAM_RETURN_IF_ERROR(add("fusion", fusion_bytes, [&] { return FusionCuda(fu, nullptr); }));
  ENGRAM_RETURN_IF_ERROR(
      add("fusion_inplace", fusion_bytes, [&] { return FusionCuda(fi, nullptr); }));
  ENGRAM_RETURN_IF_ERROR(add("gating+fusion", gating_bytes + fusion_bytes, [&] {
    ENGRAM_RETURN_IF_ERROR(GatingCuda(g, nullptr));
    return FusionCuda(fu, nullptr);
  }));
  return Status::OK();
}

int Main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, &f)) {
    std::fprintf(stderr,
                 "usage: kernel_bench [--tokens N] [--batch B] [--hidden H] [--hc_mult M] "
                 "[--kernel_size K] [--dilation D] [--iters I] [--warmup W] "
                 "[--dtype all|f32|bf16] [--check 0|1] [--json PATH]\n");
    return 2;
  }
  const auto devices = cuda::CudaDeviceCount();
  if (!devices.ok()) {
    std::printf("kernel_bench: no CUDA device: %s\n", devices.status().ToString().c_str());
    return 0;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    std::printf("device: %s, %d SMs, L2 %d MB, cc %d.%d\n", prop.name, prop.multiProcessorCount,
                prop.l2CacheSize >> 20, prop.major, prop.minor);
  }
  std::printf(
      "shape: tokens %lld (batch %lld), hidden %d, hc_mult %d, kernel_size %d, "
      "dilation %d; median of %d\n",
      static_cast<long long>(f.tokens), static_cast<long long>(f.batch), f.hidden, f.hc_mult,
      f.kernel_size, f.dilation, f.iters);
  std::vector<Row> rows;
  std::vector<std::pair<std::string, Check>> checks;
  for (const std::string dtype : {"f32", "bf16"}) {
    if (f.dtype != "all" && f.dtype != dtype) continue;
    Check c;
    const Status s = dtype == "f32" ? RunDtype<float>(f, &rows, &c) : RunDtype<Bf16>(f, &rows, &c);
    if (!s.ok()) {
      std::fprintf(stderr, "kernel_bench %s: %s\n", dtype.c_str(), s.ToString().c_str());
      return 1;
    }
    checks.emplace_back(dtype, c);
  }
  bool ok = true;
  for (const auto& [dtype, c] : checks) ok = ok && c.ok;

  if (!f.json.empty()) {
    std::ofstream out(f.json);
    out << "{\"tokens\": " << f.tokens << ", \"batch\": " << f.batch << ", \"hidden\": " << f.hidden
        << ", \"hc_mult\": " << f.hc_mult << ", \"kernel_size\": " << f.kernel_size
        << ", \"dilation\": " << f.dilation << ", \"checks_ok\": " << (ok ? "true" : "false")
        << ", \"rows\": [";
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      out << (i ? ", " : "") << "{\"kernel\": \"" << r.kernel << "\", \"dtype\": \"" << r.dtype
          << "\", \"bytes\": " << r.bytes << ", \"ms\": " << r.ms << ", \"gbs\": " << r.gbs()
          << ", \"copy_gbs\": " << r.copy_gbs() << ", \"ratio\": " << r.gbs() / r.copy_gbs() << "}";
    }
    out << "]}\n";
  }
  std::printf(
      "\n| kernel | dtype | MB r+w | us | GB/s | copy GB/s | ratio (target >= 0.70) |\n"
      "|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    std::printf("| %s | %s | %.1f | %.1f | %.0f | %.0f | %.3f |\n", r.kernel.c_str(),
                r.dtype.c_str(), r.bytes / 1e6, r.ms * 1e3, r.gbs(), r.copy_gbs(),
                r.gbs() / r.copy_gbs());
  }
  if (!ok) std::printf("\nkernel_bench: CHECK FAILED (see the check lines above)\n");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace engram::model

int main(int argc, char** argv) { return engram::model::Main(argc, argv); }
