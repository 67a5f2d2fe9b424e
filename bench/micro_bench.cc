// micro_bench: Google Benchmark micro-benchmarks of the storage hot paths that do no I/O.
//
//   DequantizeRow/<dtype>   one row of dim 256 to f32 (items = rows, bytes = stored row bytes)
//   Checksum4KiB            XXH3-64 of one 4 KiB page (the per-page checksum)
//   DramRowCacheGet/<thr>   Get of rows that are all cached (hits), 256-byte rows, ids uniform
//                           over the cached set; run on 1 and 2 threads to show lock contention
//
//   micro_bench [--benchmark_filter=REGEX] [--benchmark_format=json] ...
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "bench/workload.h"
#include "storage/cache_policy.h"
#include "storage/dram_cache.h"
#include "storage/dtype.h"
#include "storage/table_builder.h"
#include "storage/table_format.h"

namespace engram::bench {
namespace {

constexpr uint32_t kDequantDim = 256;

void BM_DequantizeRow(benchmark::State& state) {
  const auto dtype = static_cast<DType>(state.range(0));
  const uint32_t row_bytes = RowBytes(dtype, kDequantDim).value();
  constexpr int kRows = 64;  // a few rows, cycled, so the data stays in L1/L2
  std::vector<uint8_t> rows(size_t{row_bytes} * kRows);
  for (int i = 0; i < kRows; ++i) {
    RandomRow(dtype, kDequantDim, 1, i, rows.data() + size_t{row_bytes} * i);
  }
  std::vector<float> out(kDequantDim);
  int i = 0;
  for (auto _ : state) {
    DequantizeRow(dtype, kDequantDim, rows.data() + size_t{row_bytes} * i, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    if (++i == kRows) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * int64_t{row_bytes});
  state.SetLabel(std::string(DTypeName(dtype)));
}
BENCHMARK(BM_DequantizeRow)
    ->Arg(static_cast<int>(DType::kF32))
    ->Arg(static_cast<int>(DType::kF16))
    ->Arg(static_cast<int>(DType::kBF16))
    ->Arg(static_cast<int>(DType::kInt8))
    ->Arg(static_cast<int>(DType::kFp8E4M3Ue8m0));

void BM_Checksum4KiB(benchmark::State& state) {
  std::vector<uint8_t> page(kPageSize);
  Rng rng(3);
  for (size_t i = 0; i < page.size(); i += 8) {
    const uint64_t v = rng.Next();
    std::memcpy(page.data() + i, &v, 8);
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(Checksum(page.data(), page.size()));
  }
  state.SetBytesProcessed(state.iterations() * int64_t{kPageSize});
}
BENCHMARK(BM_Checksum4KiB);

// A cache holding every row of a 64 MiB working set (256K rows of 256 B), shared by the
// benchmark's threads.
class CacheFixture : public benchmark::Fixture {
 public:
  static constexpr uint32_t kRowBytes = 256;
  static constexpr uint64_t kRows = uint64_t{1} << 18;

  void SetUp(const benchmark::State& state) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (users_++ > 0) return;
    // 2x headroom so every shard has room for its share of the rows.
    cache_ = std::make_unique<DramRowCache>(2 * kRows * kRowBytes, kRowBytes, 64,
                                            *NewClockPolicyFactory());
    std::vector<uint8_t> row(kRowBytes);
    for (uint64_t id = 0; id < kRows; ++id) {
      RandomRow(DType::kF32, kRowBytes / 4, 1, id, row.data());
      cache_->Put(id, row.data());
    }
  }
  void TearDown(const benchmark::State& state) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (--users_ == 0) cache_.reset();
  }

 protected:
  std::mutex mu_;
  int users_ = 0;
  std::unique_ptr<DramRowCache> cache_;
};

BENCHMARK_DEFINE_F(CacheFixture, DramRowCacheGet)(benchmark::State& state) {
  Rng rng(11 + state.thread_index());
  alignas(64) uint8_t dst[kRowBytes];
  int64_t hits = 0;
  for (auto _ : state) {
    hits += cache_->Get(rng.Below(kRows), dst) ? 1 : 0;
    benchmark::DoNotOptimize(dst);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["hit_ratio"] =
      benchmark::Counter(static_cast<double>(hits) / std::max<int64_t>(1, state.iterations()),
                         benchmark::Counter::kAvgThreads);
}
BENCHMARK_REGISTER_F(CacheFixture, DramRowCacheGet)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace engram::bench

BENCHMARK_MAIN();
