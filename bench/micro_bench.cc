// micro_bench: Google Benchmark micro-benchmarks of the storage hot paths that do no I/O.
//
//   DequantizeRow/<dtype>   one row of dim 256 to f32 (items = rows, bytes = stored row bytes)
//   Checksum4KiB            XXH3-64 of one 4 KiB page (the per-page checksum)
// (The DRAM row cache's hit path is measured by cache_bench.)
//
//   micro_bench [--benchmark_filter=REGEX] [--benchmark_format=json] ...
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "bench/workload.h"
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

}  // namespace
}  // namespace engram::bench

BENCHMARK_MAIN();
