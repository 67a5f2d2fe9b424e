#include "bench/workload.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "storage/array_file.h"
#include "storage/table.h"

namespace engram::bench {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Mixed into the trace seed to seed the Zipf scrambling permutation (MakeTrace, DriftRankMap).
constexpr uint64_t kScrambleSalt = 0x5bd1e995ULL;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// log1p(x) / x, accurate near 0.
double Helper1(double x) {
  return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}
// expm1(x) / x, accurate near 0.
double Helper2(double x) {
  return std::abs(x) > 1e-8 ? std::expm1(x) / x
                            : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Rng

Rng::Rng(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& s : s_) s = SplitMix64(state);
}

uint64_t Rng::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

uint64_t Rng::Below(uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
}

double Rng::NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

// ---------------------------------------------------------------------------------------------
// ZipfSampler

ZipfSampler::ZipfSampler(uint64_t n, double alpha) : n_(n), alpha_(alpha) {
  h_integral_x1_ = H(1.5) - 1.0;
  h_integral_n_ = H(static_cast<double>(n_) + 0.5);
  s_ = 2.0 - HInverse(H(2.5) - h(2.0));
}

double ZipfSampler::H(double x) const {
  const double log_x = std::log(x);
  return Helper2((1.0 - alpha_) * log_x) * log_x;
}

double ZipfSampler::HInverse(double x) const {
  double t = x * (1.0 - alpha_);
  if (t < -1.0) t = -1.0;  // rounding guard, as in the reference implementation
  return std::exp(Helper1(t) * x);
}

uint64_t ZipfSampler::Sample(Rng& rng) const {
  for (;;) {
    // u is uniform in (h_integral_x1_, h_integral_n_].
    const double u = h_integral_n_ + rng.NextDouble() * (h_integral_x1_ - h_integral_n_);
    const double x = HInverse(u);
    double kd = std::floor(x + 0.5);
    if (kd < 1.0) kd = 1.0;
    if (kd > static_cast<double>(n_)) kd = static_cast<double>(n_);
    const uint64_t k = static_cast<uint64_t>(kd);
    if (kd - x <= s_ || u >= H(kd + 0.5) - h(kd)) return k;
  }
}

// ---------------------------------------------------------------------------------------------
// IdPermutation

IdPermutation::IdPermutation(uint64_t n, uint64_t seed) : n_(n) {
  const int bits = n <= 1 ? 0 : std::bit_width(n - 1);
  mask_ = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  half_bits_ = std::max(1, (bits + 1) / 2);
  uint64_t state = seed;
  k0_ = SplitMix64(state);
  k1_ = SplitMix64(state);
}

uint64_t IdPermutation::Mix(uint64_t x) const {
  // Each step is a bijection of [0, 2^bits): add, odd multiply, xor with a right shift.
  x = (x + k0_) & mask_;
  x = (x * 0x9e3779b97f4a7c15ULL) & mask_;
  x ^= x >> half_bits_;
  x = (x * 0xbf58476d1ce4e5b9ULL) & mask_;
  x ^= x >> half_bits_;
  x = (x + k1_) & mask_;
  x = (x * 0x94d049bb133111ebULL) & mask_;
  x ^= x >> half_bits_;
  return x;
}

uint64_t IdPermutation::operator()(uint64_t x) const {
  // Cycle walking: Mix permutes [0, 2^bits), so following it until the value lands in [0, n)
  // permutes [0, n).
  uint64_t y = Mix(x);
  while (y >= n_) y = Mix(y);
  return y;
}

// ---------------------------------------------------------------------------------------------
// Traces

Result<TraceSpec> ParseTraceSpec(std::string_view text) {
  TraceSpec spec;
  if (text == "uniform") return spec;
  if (text == "zipf") {
    spec.kind = TraceKind::kZipf;
    return spec;
  }
  if (text.substr(0, 5) == "zipf:") {
    const std::string number(text.substr(5));
    char* end = nullptr;
    const double alpha = std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size() || !(alpha > 0) ||
        !std::isfinite(alpha)) {
      return Status::InvalidArgument("trace '" + std::string(text) +
                                     "': zipf exponent must be a number > 0");
    }
    spec.kind = TraceKind::kZipf;
    spec.zipf_alpha = alpha;
    return spec;
  }
  if (text.size() > 4 && text.substr(text.size() - 4) == ".npy") {
    spec.kind = TraceKind::kFile;
    spec.path = std::string(text);
    return spec;
  }
  return Status::InvalidArgument("trace '" + std::string(text) +
                                 "': expected uniform, zipf:ALPHA or a .npy file of ids");
}

std::string TraceSpecName(const TraceSpec& spec) {
  switch (spec.kind) {
    case TraceKind::kUniform:
      return "uniform";
    case TraceKind::kZipf: {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "zipf:%g", spec.zipf_alpha);
      return buf;
    }
    case TraceKind::kFile:
      return "file:" + spec.path;
  }
  return "?";
}

Result<std::vector<uint64_t>> MakeTrace(const TraceSpec& spec, uint64_t rows,
                                        const TraceOptions& options) {
  if (rows == 0) return Status::InvalidArgument("trace: the table has no rows");
  if (spec.kind == TraceKind::kFile) {
    ENGRAM_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, ReadIdsNpy(options.env, spec.path));
    if (ids.empty()) return Status::InvalidArgument("trace " + spec.path + ": no ids");
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] >= rows) {
        return Status::InvalidArgument("trace " + spec.path + ": id " + std::to_string(ids[i]) +
                                       " at position " + std::to_string(i) +
                                       " is out of range (the table has " + std::to_string(rows) +
                                       " rows)");
      }
    }
    return ids;
  }
  if (options.length == 0) return Status::InvalidArgument("trace: length must be > 0");
  std::vector<uint64_t> ids(options.length);
  Rng rng(options.seed);
  if (spec.kind == TraceKind::kUniform) {
    for (uint64_t& id : ids) id = rng.Below(rows);
    return ids;
  }
  if (!(spec.zipf_alpha > 0)) return Status::InvalidArgument("trace: zipf exponent must be > 0");
  const ZipfSampler zipf(rows, spec.zipf_alpha);
  const IdPermutation permute(rows, options.seed ^ kScrambleSalt);
  for (uint64_t& id : ids) {
    const uint64_t rank0 = zipf.Sample(rng) - 1;
    id = options.scramble ? permute(rank0) : rank0;
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Drifting Zipf traces

DriftRankMap::DriftRankMap(uint64_t rows, uint64_t seed, double shift)
    : rows_(rows), seed_(seed), shift_(shift) {}

bool DriftRankMap::Moves(uint64_t rank0, uint64_t period) const {
  if (period == 0 || shift_ >= 1.0) return true;
  uint64_t state = seed_ ^ (rank0 * 0xd6e8feb86659fd93ULL) ^ (period * 0x9e3779b97f4a7c15ULL);
  SplitMix64(state);
  const double u = static_cast<double>(SplitMix64(state) >> 11) * 0x1.0p-53;
  return u < shift_;
}

uint64_t DriftRankMap::Row(uint64_t rank0, uint64_t period) const {
  uint64_t q = period;
  while (!Moves(rank0, q)) --q;  // terminates: Moves(r, 0) is true
  return IdPermutation(rows_, (seed_ + q) ^ kScrambleSalt)(rank0);
}

Result<std::vector<uint64_t>> MakeDriftTrace(uint64_t rows, double alpha,
                                             const DriftOptions& options) {
  if (rows == 0) return Status::InvalidArgument("drift trace: the table has no rows");
  if (!(alpha > 0) || !std::isfinite(alpha)) {
    return Status::InvalidArgument("drift trace: zipf exponent must be > 0");
  }
  if (options.length == 0) return Status::InvalidArgument("drift trace: length must be > 0");
  if (options.period == 0) return Status::InvalidArgument("drift trace: period must be > 0");
  if (!(options.shift > 0 && options.shift <= 1)) {
    return Status::InvalidArgument("drift trace: shift must be in (0, 1]");
  }
  const ZipfSampler zipf(rows, alpha);
  const DriftRankMap map(rows, options.seed, options.shift);
  Rng rng(options.seed);
  std::vector<uint64_t> ids(options.length);
  for (uint64_t begin = 0; begin < options.length; begin += options.period) {
    const uint64_t period = begin / options.period;
    const uint64_t end = std::min(options.length, begin + options.period);
    if (options.shift >= 1.0) {
      // Fast path: one permutation for the whole period.
      const IdPermutation permute(rows, (options.seed + period) ^ kScrambleSalt);
      for (uint64_t i = begin; i < end; ++i) ids[i] = permute(zipf.Sample(rng) - 1);
    } else {
      for (uint64_t i = begin; i < end; ++i) ids[i] = map.Row(zipf.Sample(rng) - 1, period);
    }
  }
  return ids;
}

Result<TraceSummary> SummarizeTrace(const uint64_t* ids, size_t n, uint64_t rows,
                                    const std::vector<double>& fractions) {
  for (double f : fractions) {
    if (!(f >= 0 && f <= 1)) {
      return Status::InvalidArgument("trace summary: fraction " + std::to_string(f) +
                                     " is outside [0, 1]");
    }
  }
  std::vector<uint64_t> counts(rows, 0);
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] >= rows) {
      return Status::InvalidArgument(
          "trace summary: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
          " is out of range (the table has " + std::to_string(rows) + " rows)");
    }
    ++counts[ids[i]];
  }
  TraceSummary summary;
  summary.accesses = n;
  summary.fractions = fractions;
  // Only accessed rows matter for the top shares: drop the zeros, then sort descending.
  std::erase(counts, uint64_t{0});
  summary.distinct = counts.size();
  std::sort(counts.begin(), counts.end(), std::greater<>());
  std::vector<uint64_t> prefix(counts.size() + 1, 0);
  for (size_t i = 0; i < counts.size(); ++i) prefix[i + 1] = prefix[i] + counts[i];
  for (double f : fractions) {
    // ceil, tolerant of rounding (0.01 * 1e7 must give 100000, not 100001).
    const uint64_t k = static_cast<uint64_t>(std::ceil(f * static_cast<double>(rows) - 1e-6));
    const uint64_t hot = prefix[std::min<uint64_t>(k, counts.size())];
    summary.top_share.push_back(n ? static_cast<double>(hot) / static_cast<double>(n) : 0.0);
  }
  return summary;
}

// ---------------------------------------------------------------------------------------------
// Driver

namespace {

struct ThreadState {
  std::vector<double> latencies_us;
  uint64_t batches = 0;
  uint64_t seen = 0;
  int64_t end_ns = 0;
};

// Shared coordination of one RunLookups call.
struct RunControl {
  std::atomic<uint32_t> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> deadline_ns{0};
  std::mutex mu;
  Status error;  // GUARDED_BY(mu): the first error

  void Fail(Status st) {
    std::lock_guard<std::mutex> lock(mu);
    if (error.ok()) error = std::move(st);
    stop.store(true);
  }
};

// Cursor over the trace for one thread: hands out `batch` ids at a time, wrapping around.
class TraceCursor {
 public:
  TraceCursor(const std::vector<uint64_t>& trace, size_t start, size_t batch)
      : trace_(trace), pos_(start % trace.size()), batch_(batch), copy_(batch) {}
  const uint64_t* Next() {
    const uint64_t* ids;
    if (pos_ + batch_ <= trace_.size()) {
      ids = trace_.data() + pos_;
      pos_ += batch_;
    } else {
      for (size_t i = 0; i < batch_; ++i) {
        copy_[i] = trace_[pos_];
        if (++pos_ == trace_.size()) pos_ = 0;
      }
      ids = copy_.data();
    }
    if (pos_ == trace_.size()) pos_ = 0;
    return ids;
  }
  size_t position() const { return pos_; }

 private:
  const std::vector<uint64_t>& trace_;
  size_t pos_;
  const size_t batch_;
  std::vector<uint64_t> copy_;
};

void RecordLatency(ThreadState& st, Rng& rng, size_t cap, double us) {
  ++st.seen;
  if (st.latencies_us.size() < cap) {
    st.latencies_us.push_back(us);
    return;
  }
  const uint64_t j = rng.Below(st.seen);
  if (j < cap) st.latencies_us[j] = us;
}

void LookupThread(const LookupFn& lookup, const std::vector<uint64_t>& trace,
                  const DriverOptions& o, size_t stride, uint32_t t, RunControl& ctl,
                  ThreadState& st) {
  const size_t out_bytes = (size_t{o.batch} * stride + 63) / 64 * 64;
  std::unique_ptr<uint8_t, decltype(&std::free)> out(
      static_cast<uint8_t*>(std::aligned_alloc(64, out_bytes)), &std::free);
  if (out == nullptr) {
    ctl.Fail(Status::ResourceExhausted("bench: output buffer of " + std::to_string(out_bytes) +
                                       " bytes"));
  } else {
    std::memset(out.get(), 0, out_bytes);  // fault the pages in before timing
  }
  TraceCursor cursor(trace, (o.trace_offset % trace.size()) + trace.size() / o.threads * t,
                     o.batch);
  Rng rng(o.seed + t);
  st.latencies_us.reserve(std::min<size_t>(o.latency_samples_per_thread, 1 << 16));

  for (uint32_t w = 0; w < o.warmup_batches && !ctl.stop.load(); ++w) {
    Status s = lookup(cursor.Next(), o.batch, out.get(), stride);
    if (!s.ok()) ctl.Fail(s.WithContext("warm-up batch of thread " + std::to_string(t)));
  }
  ctl.ready.fetch_add(1);
  while (!ctl.go.load(std::memory_order_acquire)) std::this_thread::yield();

  const int64_t deadline = ctl.deadline_ns.load();
  while (!ctl.stop.load(std::memory_order_relaxed)) {
    if (o.max_batches != 0 && st.batches >= o.max_batches) break;
    const size_t pos = cursor.position();
    const uint64_t* ids = cursor.Next();
    const int64_t t0 = NowNs();
    Status s = lookup(ids, o.batch, out.get(), stride);
    const int64_t t1 = NowNs();
    if (!s.ok()) {
      ctl.Fail(s.WithContext("thread " + std::to_string(t) + ", batch at trace position " +
                             std::to_string(pos)));
      break;
    }
    ++st.batches;
    RecordLatency(st, rng, o.latency_samples_per_thread, (t1 - t0) / 1e3);
    if (o.duration_seconds > 0 && t1 >= deadline) break;
  }
  st.end_ns = NowNs();
}

Status CheckDriverArgs(uint32_t row_bytes, const std::vector<uint64_t>& trace,
                       const DriverOptions& o) {
  if (trace.empty()) return Status::InvalidArgument("bench: empty trace");
  if (row_bytes == 0) return Status::InvalidArgument("bench: row_bytes must be > 0");
  if (o.threads == 0) return Status::InvalidArgument("bench: threads must be >= 1");
  if (o.batch == 0) return Status::InvalidArgument("bench: batch must be >= 1");
  if (o.out_stride != 0 && o.out_stride < row_bytes) {
    return Status::InvalidArgument("bench: out_stride " + std::to_string(o.out_stride) +
                                   " is smaller than a row (" + std::to_string(row_bytes) + ")");
  }
  if (!(o.duration_seconds > 0) && o.max_batches == 0) {
    return Status::InvalidArgument("bench: give a duration > 0 or a batch count");
  }
  if (o.latency_samples_per_thread == 0) {
    return Status::InvalidArgument("bench: latency_samples_per_thread must be >= 1");
  }
  return Status::OK();
}

// Fills the latency fields of `r` from an ascending sample.
void SetLatencies(DriverResult& r, std::vector<double> sorted) {
  r.latency_samples = sorted.size();
  r.batch_p50_us = PercentileOfSorted(sorted, 50);
  r.batch_p99_us = PercentileOfSorted(sorted, 99);
  r.batch_max_us = sorted.empty() ? 0 : sorted.back();
  r.batch_latencies_us = std::move(sorted);
}

// Adds `t` into the entry of `sum` with the same tier name (appended when absent).
void AddTierStats(std::vector<TierStats>& sum, const TierStats& t) {
  for (TierStats& s : sum) {
    if (s.tier != t.tier) continue;
    s.lookups += t.lookups;
    s.hits += t.hits;
    s.misses += t.misses;
    s.bytes_read += t.bytes_read;
    s.reads += t.reads;
    for (int i = 0; i < kLatencyBuckets; ++i) s.latency_us_buckets[i] += t.latency_us_buckets[i];
    return;
  }
  sum.push_back(t);
}

}  // namespace

double PercentileOfSorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  size_t idx = rank <= 1 ? 0 : static_cast<size_t>(rank) - 1;
  if (idx >= sorted.size()) idx = sorted.size() - 1;
  return sorted[idx];
}

std::vector<TierStats> StatsDelta(const std::vector<TierStats>& before,
                                  const std::vector<TierStats>& after) {
  auto sub = [](uint64_t a, uint64_t b) { return a >= b ? a - b : 0; };
  std::vector<TierStats> out;
  for (const TierStats& a : after) {
    TierStats d = a;
    for (const TierStats& b : before) {
      if (b.tier != a.tier) continue;
      d.lookups = sub(a.lookups, b.lookups);
      d.hits = sub(a.hits, b.hits);
      d.misses = sub(a.misses, b.misses);
      d.bytes_read = sub(a.bytes_read, b.bytes_read);
      d.reads = 0;
      for (int i = 0; i < kLatencyBuckets; ++i) {
        d.latency_us_buckets[i] = sub(a.latency_us_buckets[i], b.latency_us_buckets[i]);
        d.reads += d.latency_us_buckets[i];
      }
      break;
    }
    out.push_back(std::move(d));
  }
  return out;
}

Result<DriverResult> RunLookups(const LookupFn& lookup, const StatsFn& stats, uint32_t row_bytes,
                                const std::vector<uint64_t>& trace, const DriverOptions& o) {
  ENGRAM_RETURN_IF_ERROR(CheckDriverArgs(row_bytes, trace, o));
  const size_t stride = o.out_stride ? o.out_stride : row_bytes;
  RunControl ctl;
  std::vector<ThreadState> states(o.threads);
  std::vector<std::thread> threads;
  threads.reserve(o.threads);
  for (uint32_t t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] { LookupThread(lookup, trace, o, stride, t, ctl, states[t]); });
  }
  while (ctl.ready.load() < o.threads) std::this_thread::sleep_for(std::chrono::microseconds(200));

  const std::vector<TierStats> before = stats ? stats() : std::vector<TierStats>{};
  const int64_t start = NowNs();
  ctl.deadline_ns.store(start + static_cast<int64_t>(o.duration_seconds * 1e9));
  ctl.go.store(true, std::memory_order_release);
  for (std::thread& th : threads) th.join();
  const std::vector<TierStats> after = stats ? stats() : std::vector<TierStats>{};
  if (!ctl.error.ok()) return ctl.error;

  DriverResult r;
  r.threads = o.threads;
  r.batch = o.batch;
  r.row_bytes = row_bytes;
  int64_t end = start;
  std::vector<double> lat;
  for (const ThreadState& st : states) {
    end = std::max(end, st.end_ns);
    r.batches += st.batches;
    lat.insert(lat.end(), st.latencies_us.begin(), st.latencies_us.end());
  }
  r.seconds = (end - start) / 1e9;
  r.rows = r.batches * o.batch;
  if (r.seconds > 0) {
    r.rows_per_sec = r.rows / r.seconds;
    r.batches_per_sec = r.batches / r.seconds;
    r.bytes_per_sec = r.rows_per_sec * row_bytes;
  }
  std::sort(lat.begin(), lat.end());
  SetLatencies(r, std::move(lat));
  r.tier_deltas = StatsDelta(before, after);
  return r;
}

Result<DriverResult> MergeResults(const std::vector<DriverResult>& runs) {
  if (runs.empty()) return Status::InvalidArgument("bench: no runs to merge");
  DriverResult m;
  m.threads = runs[0].threads;
  m.batch = runs[0].batch;
  m.row_bytes = runs[0].row_bytes;
  std::vector<double> lat;
  for (const DriverResult& r : runs) {
    if (r.threads != m.threads || r.batch != m.batch || r.row_bytes != m.row_bytes) {
      return Status::InvalidArgument("bench: merging runs of different shapes");
    }
    m.seconds += r.seconds;
    m.batches += r.batches;
    m.rows += r.rows;
    lat.insert(lat.end(), r.batch_latencies_us.begin(), r.batch_latencies_us.end());
    for (const TierStats& t : r.tier_deltas) AddTierStats(m.tier_deltas, t);
  }
  if (m.seconds > 0) {
    m.rows_per_sec = m.rows / m.seconds;
    m.batches_per_sec = m.batches / m.seconds;
    m.bytes_per_sec = m.rows_per_sec * m.row_bytes;
  }
  std::sort(lat.begin(), lat.end());
  SetLatencies(m, std::move(lat));
  return m;
}

Result<DriverResult> RunTableLookups(Table* table, const std::vector<uint64_t>& trace,
                                     const DriverOptions& options) {
  if (table == nullptr) return Status::InvalidArgument("bench: null table");
  LookupFn lookup = [table](const uint64_t* ids, size_t n, void* out, size_t stride) {
    return table->Lookup(ids, n, out, stride);
  };
  StatsFn stats = [table] { return table->Stats(); };
  return RunLookups(lookup, stats, table->row_bytes(), trace, options);
}

// ---------------------------------------------------------------------------------------------
// Reporting

std::string FormatSummary(const DriverResult& r) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "%.0f rows/s  %.1f MB/s  %.0f batches/s  batch p50 %.1f us p99 %.1f us  "
                "(%u thr x %u ids, %.2f s)",
                r.rows_per_sec, r.bytes_per_sec / 1e6, r.batches_per_sec, r.batch_p50_us,
                r.batch_p99_us, r.threads, r.batch, r.seconds);
  std::string s = buf;
  for (const TierStats& t : r.tier_deltas) {
    std::snprintf(buf, sizeof(buf), "  [%s: %llu lookups, %llu hits, %llu misses, %.1f MB read",
                  t.tier.c_str(), static_cast<unsigned long long>(t.lookups),
                  static_cast<unsigned long long>(t.hits),
                  static_cast<unsigned long long>(t.misses), t.bytes_read / 1e6);
    s += buf;
    if (t.reads > 0) {
      std::snprintf(buf, sizeof(buf), ", %llu reads p50<=%.0f us p99<=%.0f us",
                    static_cast<unsigned long long>(t.reads), t.LatencyPercentileUs(50),
                    t.LatencyPercentileUs(99));
      s += buf;
    }
    s += "]";
  }
  return s;
}

nlohmann::json ToJson(const DriverResult& r) {
  nlohmann::json tiers = nlohmann::json::array();
  for (const TierStats& t : r.tier_deltas) tiers.push_back(TierStatsToJson(t));
  return {{"threads", r.threads},
          {"batch", r.batch},
          {"row_bytes", r.row_bytes},
          {"seconds", r.seconds},
          {"batches", r.batches},
          {"rows", r.rows},
          {"rows_per_sec", r.rows_per_sec},
          {"batches_per_sec", r.batches_per_sec},
          {"bytes_per_sec", r.bytes_per_sec},
          {"batch_p50_us", r.batch_p50_us},
          {"batch_p99_us", r.batch_p99_us},
          {"batch_max_us", r.batch_max_us},
          {"latency_samples", r.latency_samples},
          {"tiers", std::move(tiers)}};
}

}  // namespace engram::bench
