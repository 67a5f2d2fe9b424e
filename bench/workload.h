// Workloads for the benchmarks: id traces and a multi-threaded batch-lookup driver.
//
// Used by store_bench (bench/store_bench.cc) and by `tablectl bench`. Everything here is
// measurement scaffolding: it reads tables only through Table::Lookup / Table::Stats (or any
// callable with the same shape), so what it measures is what a user of the library gets.
//
// Traces (a vector of row ids, generated once, before timing starts):
//   uniform          ids uniform in [0, rows) from a seeded xoshiro256** generator.
//   zipf:ALPHA       rank k in [1, rows] with P(k) ~ k^-ALPHA (ALPHA > 0), drawn with Hörmann &
//                    Derflinger's rejection-inversion sampler: O(1) memory and ~1.1 uniform
//                    draws per sample whatever `rows` is, so 100M-row tables need no CDF array.
//                    Ranks are then SCRAMBLED by default: rank r -> Permute(r), a seeded
//                    bijection of [0, rows), so the hot rows are spread over the whole table as
//                    hashed n-gram ids are (rank 1 is not row 0, and the hot rows do not share
//                    pages). TraceOptions::scramble = false keeps id = rank - 1 (hot rows packed
//                    at the start of the table: the friendliest case for page-grained caches).
//   PATH.npy         ids read with ReadIdsNpy (int64/uint64/int32/uint32); every id must be
//                    < rows. The file's ids are used as they are (never scrambled); they are
//                    repeated from the start when the driver needs more.
//
// Driver: `threads` threads, each owning a private output buffer of batch * out_stride bytes,
// repeatedly look up the next `batch` ids of the trace. Thread t starts at position
// trace_offset + t * len / threads and walks forward, wrapping around, so threads read different
// parts of the trace. A warm-up (a few batches per thread, not timed) runs first; then all threads
// start together; they stop after `duration_seconds` or after `max_batches` batches each, whichever
// comes first. Batch latency is the wall time of one lookup call; percentiles are exact over
// the recorded batch latencies (all of them up to latency_samples_per_thread per thread, then a
// uniform reservoir sample of that size).
//
// Thread safety: MakeTrace / ZipfSampler / IdPermutation are plain values (a ZipfSampler is
// const after construction; the random generator is passed in). RunLookups runs its own
// threads and returns when they are done; the lookup callable must be thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "storage/env.h"
#include "storage/status.h"
#include "storage/tier_stats.h"

namespace engram {
class Table;
}  // namespace engram

namespace engram::bench {

// ---------------------------------------------------------------------------------------------
// Random numbers

// xoshiro256** (Blackman & Vigna), seeded through splitmix64. Fast, 2^256-1 period; not for
// cryptography. One per thread.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, n) (Lemire's multiply-shift; the bias is < n / 2^64, negligible here).
  // REQUIRES: n > 0.
  uint64_t Below(uint64_t n);
  // Uniform in [0, 1) with 53 random bits.
  double NextDouble();

 private:
  uint64_t s_[4];
};

// Zipf over ranks [1, n]: P(k) = k^-alpha / H(n, alpha). Rejection-inversion (W. Hörmann,
// G. Derflinger, "Rejection-inversion to generate variates from monotone discrete
// distributions", 1996), as in Apache Commons RNG. REQUIRES: n >= 1, alpha > 0.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double alpha);
  // A rank in [1, n].
  uint64_t Sample(Rng& rng) const;
  uint64_t n() const { return n_; }
  double alpha() const { return alpha_; }

 private:
  double H(double x) const;         // integral of h from 1 to x, shifted
  double HInverse(double x) const;  // inverse of H
  double h(double x) const { return std::exp(-alpha_ * std::log(x)); }

  uint64_t n_;
  double alpha_;
  double h_integral_x1_;
  double h_integral_n_;
  double s_;
};

// A seeded bijection of [0, n): an invertible mix on the smallest power-of-two domain that
// holds n (odd multiplications, xor-shifts and a seeded add, all mod 2^k), cycle-walked until
// the value falls below n (fewer than 2 steps on average since n > 2^(k-1)).
class IdPermutation {
 public:
  IdPermutation(uint64_t n, uint64_t seed);
  uint64_t operator()(uint64_t x) const;

 private:
  uint64_t Mix(uint64_t x) const;
  uint64_t n_;
  uint64_t mask_;
  int half_bits_;
  uint64_t k0_, k1_;
};

// ---------------------------------------------------------------------------------------------
// Traces

enum class TraceKind { kUniform, kZipf, kFile };

struct TraceSpec {
  TraceKind kind = TraceKind::kUniform;
  double zipf_alpha = 0.99;  // kZipf only
  std::string path;          // kFile only
};

// "uniform", "zipf:ALPHA" (ALPHA > 0; zipf alone means 0.99) or a path ending in ".npy".
// InvalidArgument names the bad text.
Result<TraceSpec> ParseTraceSpec(std::string_view text);
// "uniform", "zipf:0.99", "file:PATH".
std::string TraceSpecName(const TraceSpec& spec);

struct TraceOptions {
  // Ids generated for uniform/zipf: 16M ids (128 MiB) are more than the rows a benchmark of a
  // few seconds touches on this machine's 2 cores before wrapping, and the wrap does not help
  // any cache (16M random rows of a large table are far beyond the CPU caches).
  uint64_t length = uint64_t{1} << 24;
  // Seed of the generator (and of the scrambling permutation): same seed, same trace.
  uint64_t seed = 42;
  // Spread Zipf ranks over the table with IdPermutation (see the file comment).
  bool scramble = true;
  // Env for reading PATH.npy traces.
  Env* env = Env::Default();
};

// Generates (or loads) a trace of ids in [0, rows). REQUIRES: rows > 0. A file trace with an id
// >= rows is InvalidArgument naming the id and its position; an empty file trace too.
Result<std::vector<uint64_t>> MakeTrace(const TraceSpec& spec, uint64_t rows,
                                        const TraceOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Drifting Zipf traces (the cache benchmark's moving hot set; written by bench/trace_gen)
//
// Ranks are drawn exactly as zipf:ALPHA draws them (the same Rng(seed) stream), but the map
// from rank to row changes every `period` accesses: access i belongs to period p = i / period
// and rank r (0-based) lands on row DriftRankMap::Row(r, p).
//   shift = 1      every period maps all ranks through its own permutation,
//                  IdPermutation(rows, (seed + p) ^ salt), so the hot rows of one period are
//                  unrelated to the last's. Period 0 uses the Zipf trace's own permutation
//                  (salt as MakeTrace's), so a drift trace's first period is exactly
//                  MakeTrace(zipf:ALPHA, rows, {length, seed}) over those accesses.
//   0 < shift < 1  at each boundary q >= 1 only a pseudo-random `shift` fraction of the ranks
//                  moves (rank r moves at q when a seeded hash of (r, q) falls below shift);
//                  a rank keeps the permutation of the last period it moved in (period 0 if
//                  none). Such a map is not exactly a bijection: a moved rank can land on a row
//                  an unmoved rank still holds (~1/rows per pair, negligible for a cache
//                  benchmark).

class DriftRankMap {
 public:
  // REQUIRES: rows > 0, 0 < shift <= 1.
  DriftRankMap(uint64_t rows, uint64_t seed, double shift);
  // The row of 0-based rank `rank0` (< rows) in period `period`. O(1) for shift = 1, about
  // min(period, 1 / shift) hash evaluations otherwise.
  uint64_t Row(uint64_t rank0, uint64_t period) const;
  // Whether rank `rank0` takes a new row at the start of `period` (always for period 0).
  bool Moves(uint64_t rank0, uint64_t period) const;

 private:
  uint64_t rows_;
  uint64_t seed_;
  double shift_;
};

struct DriftOptions {
  uint64_t length = uint64_t{1} << 24;  // accesses, > 0
  uint64_t period = uint64_t{1} << 22;  // accesses per period, > 0
  double shift = 1.0;                   // fraction of ranks moved per boundary, in (0, 1]
  uint64_t seed = 42;
};

// A drifting Zipf trace over [0, rows). InvalidArgument for rows == 0, alpha <= 0, length or
// period == 0, or shift outside (0, 1].
Result<std::vector<uint64_t>> MakeDriftTrace(uint64_t rows, double alpha,
                                             const DriftOptions& options);

// What a trace asks of a cache: how many rows it touches and how concentrated it is.
struct TraceSummary {
  uint64_t accesses = 0;
  uint64_t distinct = 0;  // rows accessed at least once
  // top_share[i]: share of all accesses that go to the ceil(fractions[i] * rows) most
  // accessed rows -- the hit ratio of a cache of that size pinned, with hindsight, with the
  // trace's hottest rows (compulsory misses not counted).
  std::vector<double> fractions;
  std::vector<double> top_share;
};

// Summarizes ids[0..n) over a table of `rows` rows (O(rows) memory). InvalidArgument naming
// the first id >= rows and its position, or a fraction outside [0, 1].
Result<TraceSummary> SummarizeTrace(const uint64_t* ids, size_t n, uint64_t rows,
                                    const std::vector<double>& fractions);

// ---------------------------------------------------------------------------------------------
// Driver

// One batch lookup: ids[0..n) -> out + i * out_stride. Must be callable from many threads.
using LookupFn = std::function<Status(const uint64_t* ids, size_t n, void* out, size_t stride)>;
// Per-tier counters, fastest tier first (Table::Stats shape); may be empty.
using StatsFn = std::function<std::vector<TierStats>()>;

struct DriverOptions {
  // Lookup threads: 1 measures per-call efficiency; raise it to find the saturation point.
  uint32_t threads = 1;
  // Ids per lookup call: 4096 is about one prefill micro-batch of n-gram lookups.
  uint32_t batch = 4096;
  // Timed run length; ~5 s gives stable figures on this machine (runs vary by ~30 %).
  double duration_seconds = 5.0;
  // Batches per thread before stopping; 0 = no limit (stop on duration only).
  uint64_t max_batches = 0;
  // Untimed batches per thread before the measurement (lazy rings, page faults of the output
  // buffer, first-touch effects).
  uint32_t warmup_batches = 4;
  // Where in the trace the threads start: thread t at (trace_offset + t * len / threads) mod
  // len. Runs that must not reuse each other's ids (a peer measured on the same device) pass
  // different offsets.
  uint64_t trace_offset = 0;
  // Bytes between output rows; 0 means row_bytes (packed).
  size_t out_stride = 0;
  // Batch latencies kept per thread (exact below this count, reservoir-sampled above).
  size_t latency_samples_per_thread = size_t{1} << 20;
  // Seed of the reservoir sampling.
  uint64_t seed = 7;
};

struct DriverResult {
  uint32_t threads = 0;
  uint32_t batch = 0;
  uint32_t row_bytes = 0;
  double seconds = 0;    // timed wall time
  uint64_t batches = 0;  // lookup calls timed
  uint64_t rows = 0;     // ids looked up (batches * batch)
  double rows_per_sec = 0;
  double batches_per_sec = 0;
  double bytes_per_sec = 0;  // rows_per_sec * row_bytes (bytes delivered to the caller)
  double batch_p50_us = 0;
  double batch_p99_us = 0;
  double batch_max_us = 0;
  uint64_t latency_samples = 0;
  std::vector<TierStats> tier_deltas;      // Stats() after minus before the timed run
  std::vector<double> batch_latencies_us;  // the sample the percentiles come from, ascending
};

// Runs `lookup` over `trace` as DriverOptions says. `stats` may be empty. An error of any
// lookup call stops every thread and is returned with the batch position as context.
// REQUIRES: trace non-empty, row_bytes > 0, options.threads >= 1, options.batch >= 1.
Result<DriverResult> RunLookups(const LookupFn& lookup, const StatsFn& stats, uint32_t row_bytes,
                                const std::vector<uint64_t>& trace, const DriverOptions& options);
// The same through Table::Lookup and Table::Stats.
Result<DriverResult> RunTableLookups(Table* table, const std::vector<uint64_t>& trace,
                                     const DriverOptions& options);

// Pools runs of the same shape (threads, batch, row_bytes), e.g. rounds alternated with a
// peer's so both see the same background noise: counts and seconds add up, rates are
// recomputed from the sums, percentiles from the pooled latency samples, tier deltas are
// summed by tier name. InvalidArgument when `runs` is empty or the shapes differ.
Result<DriverResult> MergeResults(const std::vector<DriverResult>& runs);

// after - before, counter by counter, matched by tier name (a tier absent from `before` is
// taken whole).
std::vector<TierStats> StatsDelta(const std::vector<TierStats>& before,
                                  const std::vector<TierStats>& after);

// Exact percentile (0 <= p <= 100, nearest rank) of `sorted` (ascending); 0 when empty.
double PercentileOfSorted(const std::vector<double>& sorted, double p);

// "1234567 rows/s  301.4 MB/s  301 batches/s  batch p50 3301.2 us p99 4102.0 us  [dram: ...]"
std::string FormatSummary(const DriverResult& result);
// {"threads", "batch", "row_bytes", "seconds", "batches", "rows", "rows_per_sec",
//  "batches_per_sec", "bytes_per_sec", "batch_p50_us", "batch_p99_us", "batch_max_us",
//  "latency_samples", "tiers": [{"tier", "lookups", "hits", "misses", "bytes_read", "reads",
//  "read_p50_us", "read_p99_us"}]}
nlohmann::json ToJson(const DriverResult& result);

}  // namespace engram::bench
