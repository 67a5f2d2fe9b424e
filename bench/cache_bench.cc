// cache_bench: throughput of RowCache hits, measured in the same run against the textbook
// concurrent cache: one std::mutex over a std::unordered_map<id, list iterator> + std::list LRU
// (bench/locked_lru.h). Issue 4's targets are about the first workload below.
//
//   cache_bench [--rows N] [--alpha A] [--seconds S] [--rounds R] [--threads-list 1,2]
//               [--batch B] [--trace-length N] [--seed S] [--policies clock,sieve,s3fifo,...]
//               [--workloads W,W,...] [--spread] [--json] [--json-out PATH]   (--help: defaults)
//
// Setup (untimed): an id space of --rows ids and one trace of --trace-length Zipf(--alpha) ranks
// scrambled over it (MakeTrace: ZipfSampler + IdPermutation). Every cache has room for every id
// of the space (RowCache: rows + 1/8 or more, as hashed shards fill unevenly) and is warmed by
// inserting each id, so every measured lookup is a hit (misses are counted and shown: 0 expected).
// The ids are [0, rows), or with --spread those times a large odd constant (a cache holding
// scattered rows of a bigger table): dense ids are std::unordered_map's best case (its identity
// hash puts each in its own bucket), so the default flatters the peer.
// Workloads, each in batches of --batch ids of the trace (thread t of T starts at t/T of it):
//   rowcache-touch       RowCache::TouchBatch, default policy, row_bytes 0 (a directory): index
//                        probe + policy update, no row copy. What the targets are about.
//   rowcache-touch-r64   the same with 64-byte rows (Touch reads no row: should not matter)
//   rowcache-pin         PinBatch, then Release of each row (a reader that holds its rows)
//   rowcache-get         Get per id, copying its 64-byte row out (what the DRAM tier does)
//   lru-mutex-touch      the peer: a hit locks, finds, splices the node to the front, unlocks
//   lru-mutex-get        the peer with 64-byte rows in its nodes, copied out under the lock
//   lru-sharded64-touch  the peer split in 64 shards, each with its own mutex (informational)
//   policy-NAME-touch    rowcache-touch with policy NAME, for each of --policies (informational;
//                        a policy without lock-free hits runs at 1 thread only)
// Every (workload, threads) pair runs once per round, in the same order each round, so all see
// the same background load of this shared machine; the median round is reported.
//
// Output: a table on stdout (stderr with --json, where stdout gets one JSON document), then the
// targets: rowcache-touch >= 15 M lookups/s per core (total / threads, at each thread count),
// rowcache-touch >= 2x lru-mutex-touch at 2 threads, default policy metadata <= 24 B/row.
// Exit status 0 when everything ran (a missed target is reported, not an error), 1 on an
// error, 2 on bad flags.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_flags.h"
#include "bench/bench_util.h"
#include "bench/locked_lru.h"
#include "bench/workload.h"
#include "cache/cache_policy.h"
#include "cache/row_cache.h"

namespace engram::bench {
namespace {

using json = nlohmann::json;
using cache::RowCache;

constexpr uint32_t kRowBytes = 64;  // the rows of the r64 caches and of lru-mutex-get
constexpr double kTargetPerCore = 15e6;
constexpr double kTargetVsPeer = 2.0;
constexpr double kTargetMetadata = 24.0;

// ---------------------------------------------------------------------------------------------
// Flags

struct Flags {
  uint64_t rows = uint64_t{1} << 20;
  double alpha = 0.99;
  double seconds = 0.8;  // per (workload, threads) per round: ~90 s for everything by default
  uint32_t rounds = 5;
  std::vector<uint32_t> threads = {1, 2};
  uint32_t batch = 4096;
  uint64_t trace_length = uint64_t{1} << 24;
  uint64_t seed = 42;
  std::vector<std::string> policies = {"clock", "sieve", "s3fifo", "sampled-lfu"};
  std::vector<std::string> workloads;  // empty: all
  bool spread = false;
  bool json = false;
  std::string json_out;
};

constexpr char kUsage[] =
    "usage: cache_bench [--rows N (1048576)] [--alpha A (0.99)] [--seconds S per run (0.8)]\n"
    "  [--rounds R (5)] [--threads-list 1,2] [--batch B (4096)] [--trace-length N (16777216)]\n"
    "  [--seed S (42)] [--policies clock,sieve,s3fifo,sampled-lfu ('' for none)]\n"
    "  [--workloads rowcache-touch,lru-mutex-touch,... (all)] [--spread] [--json]\n"
    "  [--json-out PATH]\n";

Status SetFlag(Flags& f, const std::string& name, const std::string& v) {
  if (name == "rows") {
    ENGRAM_ASSIGN_OR_RETURN(f.rows, ParsePositiveU64(name, v));
    if (f.rows > uint64_t{1} << 30) return Status::InvalidArgument("--rows: at most 2^30");
  } else if (name == "alpha") {
    ENGRAM_ASSIGN_OR_RETURN(f.alpha, ParsePositiveDouble(name, v));
  } else if (name == "seconds") {
    ENGRAM_ASSIGN_OR_RETURN(f.seconds, ParsePositiveDouble(name, v));
  } else if (name == "rounds") {
    ENGRAM_ASSIGN_OR_RETURN(f.rounds, ParsePositiveU32AtMost(name, v, 100));
  } else if (name == "threads-list") {
    ENGRAM_ASSIGN_OR_RETURN(f.threads, ParseList<uint32_t>(name, v, [&](const std::string& t) {
                              return ParsePositiveU32AtMost(name, t, 1024);
                            }));
  } else if (name == "batch") {
    ENGRAM_ASSIGN_OR_RETURN(f.batch, ParsePositiveU32AtMost(name, v, 1u << 20));
  } else if (name == "trace-length") {
    ENGRAM_ASSIGN_OR_RETURN(f.trace_length, ParsePositiveU64(name, v));
  } else if (name == "seed") {
    ENGRAM_ASSIGN_OR_RETURN(f.seed, ParsePositiveU64(name, v));
  } else if (name == "policies") {
    f.policies = SplitComma(v);
  } else if (name == "workloads") {
    ENGRAM_ASSIGN_OR_RETURN(f.workloads, ParseNonEmptyList(name, v));
  } else if (name == "json-out") {
    f.json_out = v;
  } else {
    return Status::InvalidArgument("unknown flag --" + name);
  }
  return Status::OK();
}

// Flags as bench_flags.h reads them: --name=value or --name value, '_' read as '-' in names;
// --json and --spread take no value.
Status ParseFlags(int argc, char** argv, Flags& f, bool& help) {
  FlagLoopOptions options;
  options.boolean_flags = {{"json", &f.json}, {"spread", &f.spread}};
  options.underscore_is_dash = true;
  return ParseFlagLoop(
      argc, argv, options,
      [&f](const std::string& name, const std::string& v) { return SetFlag(f, name, v); }, &help);
}

// ---------------------------------------------------------------------------------------------
// Output helpers

// bench_util.h's machine description plus the load average at the start.
json CacheMachineJson() {
  json machine = MachineJson();
  machine["loadavg_start"] = ReadFirstLine("/proc/loadavg");
  return machine;
}

// Bytes the allocator has handed out (small blocks + mmap'd ones), for the peer's footprint.
uint64_t HeapBytesInUse() {
  const struct mallinfo2 m = ::mallinfo2();
  return m.uordblks + m.hblkhd;
}

// ---------------------------------------------------------------------------------------------
// Rows and caches

// The 64-byte row of `id`: eight 64-bit words derived from it (checked before timing).
void FillRow(uint64_t id, uint8_t* row) {
  for (uint64_t j = 0; j < kRowBytes / 8; ++j) {
    const uint64_t v = id * 0x9E3779B97F4A7C15ull + j;
    std::memcpy(row + 8 * j, &v, 8);
  }
}

bool RowMatches(uint64_t id, const uint8_t* row) {
  uint8_t want[kRowBytes];
  FillRow(id, want);
  return std::memcmp(want, row, kRowBytes) == 0;
}

// The ids the caches hold: i in [0, rows), or i times an odd constant (a bijection of the 64-bit
// ids) with --spread, as a cache holding some rows of a far larger table sees them. Dense ids are
// the best case of std::unordered_map (identity hash: one id per bucket, no collisions).
struct IdSpace {
  uint64_t rows = 0;
  bool spread = false;
  uint64_t Id(uint64_t i) const { return spread ? i * 0xD6E8FEB86659FD93ull : i; }
};

// What setup says about one cache (printed, and in the JSON).
struct CacheInfo {
  std::string name;
  std::string policy;
  uint64_t capacity_rows = 0;
  uint64_t ids_cached = 0;
  double bytes_per_row = 0;  // RowCache: stats().metadata_bytes_per_row; peer: heap / rows
  double warm_seconds = 0;
};

// Room for every id of the space, with slack for hashed shards that fill unevenly: 1/8, or
// 4 standard deviations of 64 shards' counts when that is more (small spaces).
uint64_t CapacityFor(uint64_t rows) {
  const uint64_t deviations = static_cast<uint64_t>(4 * 64 * std::sqrt(rows / 64.0));
  return rows + std::max(rows / 8, deviations) + 64;
}

// A RowCache with room for every id of `space`, holding all of them: each id is inserted, then
// those a policy turned down are inserted again (up to 3 more passes).
std::unique_ptr<RowCache> MakeWarmRowCache(std::shared_ptr<const cache::PolicyFactory> policy,
                                           const IdSpace& space, uint32_t row_bytes,
                                           CacheInfo* info) {
  const double t0 = NowSeconds();
  cache::RowCacheOptions o;
  o.capacity_rows = CapacityFor(space.rows);
  o.row_bytes = row_bytes;
  o.policy = policy;
  auto rc = std::make_unique<RowCache>(o);
  uint8_t row[kRowBytes];
  for (int pass = 0; pass < 4; ++pass) {
    uint64_t missing = 0;
    for (uint64_t i = 0; i < space.rows; ++i) {
      const uint64_t id = space.Id(i);
      if (pass > 0 && rc->Touch(id)) continue;
      if (row_bytes > 0) FillRow(id, row);
      rc->Insert(id, row);
      ++missing;
    }
    if (missing == 0) break;
  }
  const cache::RowCacheStats st = rc->stats();
  info->policy = policy->name();
  info->capacity_rows = st.capacity_rows;
  info->ids_cached = st.size_rows;
  info->bytes_per_row = st.metadata_bytes_per_row;
  info->warm_seconds = NowSeconds() - t0;
  return rc;
}

template <typename Lru>
std::unique_ptr<Lru> MakeWarmLru(std::unique_ptr<Lru> lru, const IdSpace& space, uint64_t capacity,
                                 CacheInfo* info, uint64_t heap_before, double t0) {
  uint8_t row[kRowBytes];
  for (uint64_t i = 0; i < space.rows; ++i) {
    FillRow(space.Id(i), row);
    lru->Insert(space.Id(i), row);
  }
  info->policy = "lru";
  info->capacity_rows = capacity;
  info->ids_cached = lru->size();
  info->bytes_per_row = double(HeapBytesInUse() - heap_before) / space.rows;
  info->warm_seconds = NowSeconds() - t0;
  return lru;
}

// ---------------------------------------------------------------------------------------------
// Workloads

struct Workload {
  std::string name;
  std::string cache;  // CacheInfo::name of the cache it reads
  // Bytes each lookup delivers into the driver's output: 1 (a hit flag) or the row.
  uint32_t out_bytes = 1;
  uint32_t max_threads = 1u << 30;  // 1 for policies without lock-free hits
  LookupFn lookup;
  std::shared_ptr<std::atomic<uint64_t>> misses = std::make_shared<std::atomic<uint64_t>>(0);
};

Workload NewWorkload(const std::string& name, const std::string& cache_name, uint32_t out_bytes,
                     uint32_t max_threads = 1u << 30) {
  Workload w;
  w.name = name;
  w.cache = cache_name;
  w.out_bytes = out_bytes;
  w.max_threads = max_threads;
  return w;
}

void CountMisses(std::atomic<uint64_t>& misses, size_t n, size_t hits) {
  if (hits != n) misses.fetch_add(n - hits, std::memory_order_relaxed);
}

Workload TouchWorkload(const std::string& name, const std::string& cache_name, RowCache* rc,
                       uint32_t max_threads) {
  Workload w = NewWorkload(name, cache_name, 1, max_threads);
  std::atomic<uint64_t>* misses = w.misses.get();
  w.lookup = [rc, misses](const uint64_t* ids, size_t n, void* out, size_t) {
    CountMisses(*misses, n, rc->TouchBatch(ids, n, static_cast<uint8_t*>(out)));
    return Status::OK();
  };
  return w;
}

Workload PinWorkload(const std::string& cache_name, RowCache* rc) {
  Workload w = NewWorkload("rowcache-pin", cache_name, 1);
  std::atomic<uint64_t>* misses = w.misses.get();
  w.lookup = [rc, misses](const uint64_t* ids, size_t n, void* out, size_t) {
    static thread_local std::vector<cache::PinnedRow> rows;
    if (rows.size() < n) rows.resize(n);
    uint8_t* hit = static_cast<uint8_t*>(out);
    CountMisses(*misses, n, rc->PinBatch(ids, n, rows.data(), hit));
    for (size_t i = 0; i < n; ++i) {
      if (hit[i]) rc->Release(rows[i]);
    }
    return Status::OK();
  };
  return w;
}

Workload GetWorkload(const std::string& cache_name, RowCache* rc) {
  Workload w = NewWorkload("rowcache-get", cache_name, kRowBytes);
  std::atomic<uint64_t>* misses = w.misses.get();
  w.lookup = [rc, misses](const uint64_t* ids, size_t n, void* out, size_t stride) {
    auto* dst = static_cast<uint8_t*>(out);
    size_t hits = 0;
    for (size_t i = 0; i < n; ++i) hits += rc->Get(ids[i], dst + i * stride);
    CountMisses(*misses, n, hits);
    return Status::OK();
  };
  return w;
}

template <typename Lru>
Workload LruTouchWorkload(const std::string& name, const std::string& cache_name, Lru* lru) {
  Workload w = NewWorkload(name, cache_name, 1);
  std::atomic<uint64_t>* misses = w.misses.get();
  w.lookup = [lru, misses](const uint64_t* ids, size_t n, void* out, size_t) {
    auto* hit = static_cast<uint8_t*>(out);
    size_t hits = 0;
    for (size_t i = 0; i < n; ++i) hits += hit[i] = lru->Touch(ids[i]);
    CountMisses(*misses, n, hits);
    return Status::OK();
  };
  return w;
}

template <typename Lru>
Workload LruGetWorkload(const std::string& name, const std::string& cache_name, Lru* lru) {
  Workload w = NewWorkload(name, cache_name, kRowBytes);
  std::atomic<uint64_t>* misses = w.misses.get();
  w.lookup = [lru, misses](const uint64_t* ids, size_t n, void* out, size_t stride) {
    auto* dst = static_cast<uint8_t*>(out);
    size_t hits = 0;
    for (size_t i = 0; i < n; ++i) hits += lru->Get(ids[i], dst + i * stride);
    CountMisses(*misses, n, hits);
    return Status::OK();
  };
  return w;
}

// Everything the workloads read; built before timing, destroyed after.
struct Fixture {
  std::vector<uint64_t> trace;
  std::vector<std::unique_ptr<RowCache>> row_caches;
  std::unique_ptr<LockedLru<0>> lru;
  std::unique_ptr<LockedLru<kRowBytes>> lru_rows;
  std::unique_ptr<ShardedLockedLru<0>> lru_sharded;
  std::vector<CacheInfo> caches;
  std::vector<Workload> workloads;
};

bool Wanted(const Flags& f, const std::string& workload) {
  return f.workloads.empty() ||
         std::find(f.workloads.begin(), f.workloads.end(), workload) != f.workloads.end();
}

// Builds the RowCache `name` unless no wanted workload reads it; null then.
RowCache* AddRowCache(Fixture& fx, const std::string& name,
                      std::shared_ptr<const cache::PolicyFactory> policy, const IdSpace& space,
                      uint32_t row_bytes) {
  CacheInfo info;
  info.name = name;
  fx.row_caches.push_back(MakeWarmRowCache(std::move(policy), space, row_bytes, &info));
  Say("  %-24s %-12s %9" PRIu64 " slots, %9" PRIu64
      " ids cached, %6.2f B/row metadata, "
      "warmed in %.1f s\n",
      name.c_str(), info.policy.c_str(), info.capacity_rows, info.ids_cached, info.bytes_per_row,
      info.warm_seconds);
  fx.caches.push_back(info);
  return fx.row_caches.back().get();
}

template <typename Lru>
Lru* AddLru(Fixture& fx, const std::string& name, std::unique_ptr<Lru>* slot,
            const std::function<std::unique_ptr<Lru>()>& make, const IdSpace& space,
            uint64_t capacity) {
  CacheInfo info;
  info.name = name;
  const double t0 = NowSeconds();
  const uint64_t heap0 = HeapBytesInUse();
  *slot = MakeWarmLru(make(), space, capacity, &info, heap0, t0);
  Say("  %-24s %-12s %9" PRIu64 " slots, %9" PRIu64
      " ids cached, %6.2f B/row on the heap "
      "(rows included), warmed in %.1f s\n",
      name.c_str(), info.policy.c_str(), info.capacity_rows, info.ids_cached, info.bytes_per_row,
      info.warm_seconds);
  fx.caches.push_back(info);
  return slot->get();
}

Status BuildFixture(const Flags& f, Fixture& fx) {
  const double t0 = NowSeconds();
  TraceSpec spec;
  spec.kind = TraceKind::kZipf;
  spec.zipf_alpha = f.alpha;
  TraceOptions to;
  to.length = f.trace_length;
  to.seed = f.seed;
  to.scramble = true;
  ENGRAM_ASSIGN_OR_RETURN(fx.trace, MakeTrace(spec, f.rows, to));
  Say("trace: %" PRIu64 " ids, zipf %.2f scrambled over %" PRIu64 " ids, made in %.1f s\n",
      f.trace_length, f.alpha, f.rows, NowSeconds() - t0);

  Say("caches (each holds the whole id space):\n");
  const IdSpace space{f.rows, f.spread};
  if (space.spread) {
    for (uint64_t& id : fx.trace) id = space.Id(id);
  }
  const uint64_t rows = f.rows;
  const uint64_t slack_rows = CapacityFor(rows);
  auto dflt = cache::NewPolicyFactory("default");
  if (dflt == nullptr) return Status::NotFound("policy 'default'");
  if (Wanted(f, "rowcache-touch")) {
    RowCache* rc = AddRowCache(fx, "rowcache-r0", dflt, space, 0);
    fx.workloads.push_back(TouchWorkload("rowcache-touch", "rowcache-r0", rc, 1u << 30));
  }
  if (Wanted(f, "rowcache-touch-r64") || Wanted(f, "rowcache-pin") || Wanted(f, "rowcache-get")) {
    RowCache* rc = AddRowCache(fx, "rowcache-r64", dflt, space, kRowBytes);
    if (Wanted(f, "rowcache-touch-r64")) {
      fx.workloads.push_back(TouchWorkload("rowcache-touch-r64", "rowcache-r64", rc, 1u << 30));
    }
    if (Wanted(f, "rowcache-pin")) fx.workloads.push_back(PinWorkload("rowcache-r64", rc));
    if (Wanted(f, "rowcache-get")) fx.workloads.push_back(GetWorkload("rowcache-r64", rc));
  }
  if (Wanted(f, "lru-mutex-touch")) {
    auto* lru = AddLru<LockedLru<0>>(
        fx, "lru-mutex", &fx.lru, [&] { return std::make_unique<LockedLru<0>>(rows); }, space,
        rows);
    fx.workloads.push_back(LruTouchWorkload("lru-mutex-touch", "lru-mutex", lru));
  }
  if (Wanted(f, "lru-mutex-get")) {
    auto* lru = AddLru<LockedLru<kRowBytes>>(
        fx, "lru-mutex-r64", &fx.lru_rows,
        [&] { return std::make_unique<LockedLru<kRowBytes>>(rows); }, space, rows);
    fx.workloads.push_back(LruGetWorkload("lru-mutex-get", "lru-mutex-r64", lru));
  }
  if (Wanted(f, "lru-sharded64-touch")) {
    auto* lru = AddLru<ShardedLockedLru<0>>(
        fx, "lru-sharded64", &fx.lru_sharded,
        [&] { return std::make_unique<ShardedLockedLru<0>>(slack_rows, 64); }, space, slack_rows);
    fx.workloads.push_back(LruTouchWorkload("lru-sharded64-touch", "lru-sharded64", lru));
  }
  for (const std::string& p : f.policies) {
    const std::string wname = "policy-" + p + "-touch";
    if (!Wanted(f, wname)) continue;
    auto factory = cache::NewPolicyFactory(p);
    if (factory == nullptr) {
      std::string known;
      for (const std::string& n : cache::PolicyNames()) known += (known.empty() ? "" : ", ") + n;
      return Status::InvalidArgument("--policies: unknown policy '" + p + "' (known: " + known +
                                     ")");
    }
    const uint32_t max_threads = factory->concurrent_hits() ? 1u << 30 : 1;
    RowCache* rc = AddRowCache(fx, "rowcache-r0-" + p, factory, space, 0);
    fx.workloads.push_back(TouchWorkload(wname, "rowcache-r0-" + p, rc, max_threads));
  }
  for (const std::string& w : f.workloads) {
    bool known = false;
    for (const Workload& x : fx.workloads) known |= x.name == w;
    if (!known) return Status::InvalidArgument("--workloads: unknown workload '" + w + "'");
  }
  Say("setup took %.1f s\n", NowSeconds() - t0);
  return Status::OK();
}

// One batch of each workload before timing: every id a hit, and the rows copied out (or
// pinned) are the rows inserted. Resets the miss counters afterwards.
Status CheckWorkloads(const Fixture& fx, uint32_t batch) {
  const size_t n = std::min<size_t>(batch, fx.trace.size());
  const uint64_t* ids = fx.trace.data();
  std::vector<uint8_t> out(n * kRowBytes);
  for (const Workload& w : fx.workloads) {
    ENGRAM_RETURN_IF_ERROR(w.lookup(ids, n, out.data(), w.out_bytes));
    const uint64_t misses = w.misses->exchange(0);
    if (misses != 0) {
      Say("  warning: %s missed %" PRIu64 " of the first %zu ids (every id should hit)\n",
          w.name.c_str(), misses, n);
      continue;  // which rows were copied is unknown
    }
    for (size_t i = 0; i < n && w.out_bytes == kRowBytes; ++i) {
      if (!RowMatches(ids[i], out.data() + i * kRowBytes)) {
        return Status::Corruption(w.name + ": wrong row for id " + std::to_string(ids[i]));
      }
    }
  }
  for (const auto& rc : fx.row_caches) {
    if (rc->row_bytes() != kRowBytes) continue;
    std::vector<cache::PinnedRow> rows(n);
    rc->PinBatch(ids, n, rows.data(), out.data());
    Status st;
    for (size_t i = 0; i < n; ++i) {
      if (!out[i]) continue;
      if (st.ok() && (rows[i].id != ids[i] || !RowMatches(ids[i], rows[i].data))) {
        st = Status::Corruption("rowcache-pin: wrong row pinned for id " + std::to_string(ids[i]));
      }
      rc->Release(rows[i]);
    }
    ENGRAM_RETURN_IF_ERROR(st);
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Measurement and report

double MedianOf(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// CPU time of the calling thread, in nanoseconds.
int64_t ThreadCpuNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Lookups and thread CPU time spent in the lookup calls of one run (all threads).
struct CpuMeter {
  std::atomic<uint64_t> lookups{0};
  std::atomic<int64_t> cpu_ns{0};
};

// `inner`, also counting into `meter` (one clock_gettime pair per batch: < 0.5 % of a batch).
LookupFn Metered(const LookupFn& inner, CpuMeter* meter) {
  return [&inner, meter](const uint64_t* ids, size_t n, void* out, size_t stride) {
    const int64_t c0 = ThreadCpuNs();
    Status s = inner(ids, n, out, stride);
    meter->cpu_ns.fetch_add(ThreadCpuNs() - c0, std::memory_order_relaxed);
    meter->lookups.fetch_add(n, std::memory_order_relaxed);
    return s;
  };
}

struct Series {
  const Workload* workload = nullptr;
  uint32_t threads = 0;
  std::vector<DriverResult> rounds;
  // Per round: lookups per second of lookup-thread CPU time (a core's rate while it runs).
  std::vector<double> cpu_rates;
  uint64_t misses = 0;

  std::vector<double> Rates() const {
    std::vector<double> r;
    for (const DriverResult& d : rounds) r.push_back(d.rows_per_sec);
    return r;
  }
  double Median() const { return MedianOf(Rates()); }
  double MedianPerCpuSecond() const { return MedianOf(cpu_rates); }
  double Min() const {
    std::vector<double> r = Rates();
    return *std::min_element(r.begin(), r.end());
  }
  double Max() const {
    std::vector<double> r = Rates();
    return *std::max_element(r.begin(), r.end());
  }
};

Result<std::vector<Series>> Measure(const Flags& f, const Fixture& fx) {
  std::vector<Series> series;
  for (uint32_t t : f.threads) {
    for (const Workload& w : fx.workloads) {
      if (t > w.max_threads) continue;
      series.emplace_back();
      series.back().workload = &w;
      series.back().threads = t;
    }
  }
  Say("measuring %zu (workload, threads) pairs x %u rounds x %.2f s (~%.0f s)\n", series.size(),
      f.rounds, f.seconds, series.size() * f.rounds * f.seconds);
  DriverOptions d;
  d.batch = f.batch;
  d.duration_seconds = f.seconds;
  d.latency_samples_per_thread = 1 << 16;
  for (uint32_t r = 0; r < f.rounds; ++r) {
    const double t0 = NowSeconds();
    for (Series& s : series) {
      d.threads = s.threads;
      const uint64_t misses0 = s.workload->misses->load();
      CpuMeter meter;
      ENGRAM_ASSIGN_OR_RETURN(DriverResult res, RunLookups(Metered(s.workload->lookup, &meter), {},
                                                           s.workload->out_bytes, fx.trace, d));
      s.misses += s.workload->misses->load() - misses0;
      s.rounds.push_back(std::move(res));
      const int64_t cpu_ns = meter.cpu_ns.load();
      s.cpu_rates.push_back(cpu_ns > 0 ? meter.lookups.load() * 1e9 / cpu_ns : 0);
    }
    Say("  round %u/%u: %.1f s, loadavg %s\n", r + 1, f.rounds, NowSeconds() - t0,
        ReadFirstLine("/proc/loadavg").c_str());
  }
  return series;
}

const Series* Find(const std::vector<Series>& all, const std::string& workload, uint32_t threads) {
  for (const Series& s : all) {
    if (s.workload->name == workload && s.threads == threads) return &s;
  }
  return nullptr;
}

struct Target {
  std::string name;
  double value = 0;
  std::string unit;
  std::string target;  // "" for information
  bool pass = false;
};

std::vector<Target> Targets(const Flags& f, const Fixture& fx, const std::vector<Series>& all) {
  std::vector<Target> out;
  for (uint32_t t : f.threads) {
    if (const Series* s = Find(all, "rowcache-touch", t)) {
      const double per_core = s->Median() / t;
      out.push_back({"rowcache-touch per core, " + std::to_string(t) + " thread(s)", per_core / 1e6,
                     "M/s", ">= 15", per_core >= kTargetPerCore});
      out.push_back({"rowcache-touch per CPU-second, " + std::to_string(t) + " thread(s)",
                     s->MedianPerCpuSecond() / 1e6, "M/s", "", false});
    }
  }
  for (uint32_t t : f.threads) {
    const Series* ours = Find(all, "rowcache-touch", t);
    const Series* peer = Find(all, "lru-mutex-touch", t);
    if (ours && peer) {
      const double ratio = ours->Median() / peer->Median();
      const bool is_target = t == 2;
      out.push_back({"rowcache-touch / lru-mutex-touch, " + std::to_string(t) + " thread(s)", ratio,
                     "x", is_target ? ">= 2" : "", ratio >= kTargetVsPeer});
    }
  }
  for (uint32_t t : f.threads) {
    const Series* ours = Find(all, "rowcache-get", t);
    const Series* peer = Find(all, "lru-mutex-get", t);
    if (ours && peer) {
      out.push_back({"rowcache-get / lru-mutex-get, " + std::to_string(t) + " thread(s)",
                     ours->Median() / peer->Median(), "x", "", false});
    }
  }
  for (const CacheInfo& c : fx.caches) {
    if (c.name == "rowcache-r0") {
      out.push_back({"default policy metadata per row (row_bytes 0)", c.bytes_per_row, "B", "<= 24",
                     c.bytes_per_row <= kTargetMetadata});
    }
  }
  return out;
}

void PrintTable(const std::vector<Series>& all) {
  Say("\n%-24s %3s  %-30s %9s %9s %18s %7s\n", "workload", "thr", "M lookups/s median [min - max]",
      "per core", "per CPU-s", "batch p50/p99 us", "misses");
  for (const Series& s : all) {
    Result<DriverResult> pooled = MergeResults(s.rounds);
    char range[64];
    std::snprintf(range, sizeof(range), "%8.2f [%7.2f - %7.2f]", s.Median() / 1e6, s.Min() / 1e6,
                  s.Max() / 1e6);
    Say("%-24s %3u  %-30s %9.2f %9.2f %8.1f / %7.1f %7" PRIu64 "\n", s.workload->name.c_str(),
        s.threads, range, s.Median() / s.threads / 1e6, s.MedianPerCpuSecond() / 1e6,
        pooled.ok() ? pooled->batch_p50_us : 0, pooled.ok() ? pooled->batch_p99_us : 0, s.misses);
  }
  Say("(per core = median / threads; per CPU-s = lookups per second of the lookup threads' CPU\n"
      " time, i.e. a core's rate while it runs: close to per core on an idle machine)\n");
}

void PrintTargets(const std::vector<Target>& targets) {
  Say("\n%-52s %10s  %-7s %s\n", "", "value", "target", "");
  for (const Target& t : targets) {
    Say("%-52s %8.2f %-2s %-7s %s\n", t.name.c_str(), t.value, t.unit.c_str(), t.target.c_str(),
        t.target.empty() ? "(info)"
        : t.pass         ? "PASS"
                         : "MISS");
  }
}

json ReportJson(const Flags& f, const Fixture& fx, const std::vector<Series>& all,
                const std::vector<Target>& targets, json machine) {
  machine["loadavg_end"] = ReadFirstLine("/proc/loadavg");
  json config = {{"rows", f.rows},
                 {"alpha", f.alpha},
                 {"trace_length", f.trace_length},
                 {"spread", f.spread},
                 {"seed", f.seed},
                 {"batch", f.batch},
                 {"seconds_per_run", f.seconds},
                 {"rounds", f.rounds},
                 {"threads", f.threads}};
  json caches = json::array();
  for (const CacheInfo& c : fx.caches) {
    caches.push_back({{"name", c.name},
                      {"policy", c.policy},
                      {"capacity_rows", c.capacity_rows},
                      {"ids_cached", c.ids_cached},
                      {"bytes_per_row", c.bytes_per_row},
                      {"warm_seconds", c.warm_seconds}});
  }
  json results = json::array();
  for (const Series& s : all) {
    Result<DriverResult> pooled = MergeResults(s.rounds);
    results.push_back({{"workload", s.workload->name},
                       {"cache", s.workload->cache},
                       {"threads", s.threads},
                       {"lookups_per_sec_rounds", s.Rates()},
                       {"lookups_per_sec_median", s.Median()},
                       {"lookups_per_sec_per_core", s.Median() / s.threads},
                       {"lookups_per_cpu_second_rounds", s.cpu_rates},
                       {"lookups_per_cpu_second_median", s.MedianPerCpuSecond()},
                       {"misses", s.misses},
                       {"pooled", pooled.ok() ? ToJson(*pooled) : json()}});
  }
  json tj = json::array();
  for (const Target& t : targets) {
    tj.push_back({{"name", t.name},
                  {"value", t.value},
                  {"unit", t.unit},
                  {"target", t.target},
                  {"pass", t.target.empty() ? json() : json(t.pass)}});
  }
  return {{"benchmark", "cache_bench"}, {"machine", machine}, {"config", config},
          {"caches", caches},           {"results", results}, {"targets", tj}};
}

int Main(int argc, char** argv) {
  Flags f;
  bool help = false;
  if (Status s = ParseFlags(argc, argv, f, help); !s.ok()) {
    std::fprintf(stderr, "cache_bench: %s\n%s", s.ToString().c_str(), kUsage);
    return 2;
  }
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (f.json) g_out = stderr;
  json machine = CacheMachineJson();
  Say("cache_bench: %s, %u cpus, loadavg %s\n", machine["cpu"].get<std::string>().c_str(),
      std::thread::hardware_concurrency(), machine["loadavg_start"].get<std::string>().c_str());

  const double load1 = std::strtod(machine["loadavg_start"].get<std::string>().c_str(), nullptr);
  if (load1 > 0.5 * std::thread::hardware_concurrency()) {
    Say("warning: the machine is busy (1-minute load %.1f on %u cpus): the lookup threads share\n"
        "  their cores and caches, so rates are low and noisy; 'per CPU-s' discounts the time\n"
        "  they were off the cpu, but not the shared caches. Ratios measured in the same run\n"
        "  hold better.\n",
        load1, std::thread::hardware_concurrency());
  }
  Fixture fx;
  Status s = BuildFixture(f, fx);
  if (s.ok()) s = CheckWorkloads(fx, f.batch);
  Result<std::vector<Series>> all = s.ok() ? Measure(f, fx) : Result<std::vector<Series>>(s);
  if (!all.ok()) {
    std::fprintf(stderr, "cache_bench: %s\n", all.status().ToString().c_str());
    return 1;
  }
  PrintTable(*all);
  const std::vector<Target> targets = Targets(f, fx, *all);
  PrintTargets(targets);
  if (f.json || !f.json_out.empty()) {
    const std::string doc = ReportJson(f, fx, *all, targets, machine).dump(2);
    if (f.json) std::printf("%s\n", doc.c_str());
    if (!f.json_out.empty()) {
      std::ofstream out(f.json_out);
      out << doc << "\n";
      if (!out) {
        std::fprintf(stderr, "cache_bench: cannot write %s\n", f.json_out.c_str());
        return 1;
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace engram::bench

int main(int argc, char** argv) { return engram::bench::Main(argc, argv); }
