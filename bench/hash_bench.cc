// hash_bench: Google Benchmark micro-benchmarks of the Engram n-gram hashing (model/ngram_hash.h)
// on one thread. items/s = token positions x hash columns (heads of all orders) per second;
// the target is >= 50 M/s per core.
//
//   Prefill/<cfg>     a [4, 4096] batch of raw ids through HashBatch (compress + hash)
//   PrefillDead/<cfg> the same with 10 % dead positions (the DeepSeek-V4.1 path)
//   Decode/<cfg>      256 requests x 1 token with carried histories, committed (HashVarlen)
//   <cfg>: 0 = the reference demo (3-grams, 8 heads: 16 columns), 1 = DeepSeek-V4.1-like
//          (4-grams, 8 heads: 24 columns)
//
//   hash_bench [--benchmark_filter=REGEX] [--benchmark_format=json] ...
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "model/engram_config.h"
#include "model/ngram_hash.h"

namespace engram::model {
namespace {

EngramConfig BenchConfig(int which) {
  EngramConfig c;  // the reference demo's defaults
  c.compressed_vocab_size = 129280;
  if (which == 1) {
    c.max_ngram_size = 4;
    c.engram_vocab_size = {1000003, 800011, 600001};
    c.layer_ids = {2, 9, 17};
  }
  return c;
}

NgramHasher MakeHasher(int which) {
  const EngramConfig c = BenchConfig(which);
  return NgramHasher::Create(c, c.layer_ids[0], nullptr).value();
}

std::vector<int64_t> RandomIds(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> ids(n);
  for (auto& id : ids) id = static_cast<int64_t>(rng() % 129280);
  return ids;
}

void RunPrefill(benchmark::State& state, bool with_dead) {
  const NgramHasher h = MakeHasher(static_cast<int>(state.range(0)));
  constexpr size_t kBatch = 4, kSeq = 4096;
  const std::vector<int64_t> ids = RandomIds(kBatch * kSeq, 1);
  std::vector<uint8_t> dead(kBatch * kSeq, 0);
  if (with_dead) {
    std::mt19937_64 rng(2);
    for (auto& d : dead) d = rng() % 10 == 0;
  }
  std::vector<int64_t> out(kBatch * kSeq * h.num_columns());
  for (auto _ : state) {
    Status s = h.HashBatch(ids.data(), kBatch, kSeq, with_dead ? dead.data() : nullptr,
                           /*add_offsets=*/true, out.data());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBatch * kSeq *
                          h.num_columns());
}

void BM_Prefill(benchmark::State& state) { RunPrefill(state, false); }
void BM_PrefillDead(benchmark::State& state) { RunPrefill(state, true); }

void BM_Decode(benchmark::State& state) {
  const NgramHasher h = MakeHasher(static_cast<int>(state.range(0)));
  constexpr size_t kRequests = 256;
  std::vector<NgramHistory> histories(kRequests, NgramHistory(h));
  std::vector<NgramHistory*> ptrs;
  for (auto& hist : histories) ptrs.push_back(&hist);
  std::vector<int64_t> cu(kRequests + 1);
  for (size_t r = 0; r <= kRequests; ++r) cu[r] = static_cast<int64_t>(r);
  const std::vector<int64_t> ids = RandomIds(kRequests * 64, 3);
  std::vector<int64_t> out(kRequests * h.num_columns());
  size_t step = 0;
  for (auto _ : state) {
    const int64_t* step_ids = ids.data() + (step++ % 64) * kRequests;
    Status s = h.HashVarlen(step_ids, cu.data(), kRequests, ptrs.data(), nullptr,
                            /*add_offsets=*/true, /*commit=*/true, out.data());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kRequests * h.num_columns());
}

BENCHMARK(BM_Prefill)->Arg(0)->Arg(1);
BENCHMARK(BM_PrefillDead)->Arg(0)->Arg(1);
BENCHMARK(BM_Decode)->Arg(0)->Arg(1);

}  // namespace
}  // namespace engram::model

BENCHMARK_MAIN();
