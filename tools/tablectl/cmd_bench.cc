// tablectl bench: batch lookups through the tiers of one table, driven by bench/workload.h;
// with --prefetch, through gpu::Prefetcher pipelined one batch ahead (optionally gathering into
// a device's memory, with an HBM tier).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/workload.h"
#include "cache/cache_policy.h"
#include "gpu_bridge/device.h"
#include "gpu_bridge/prefetcher.h"
#include "storage/table.h"
#include "tools/tablectl/cmd_common.h"
#include "tools/tablectl/commands.h"
#include "tools/tablectl/output.h"

namespace engram::tablectl {
namespace {

// --prefetch, --device, --hbm-cache.
struct PrefetchFlags {
  bool enabled = false;
  std::string device = "none";
  uint64_t hbm_cache_bytes = 0;
};

struct BenchOptions {
  std::string table;
  bench::TraceSpec trace;
  bench::TraceOptions trace_options;
  TableOptions table_options;
  bench::DriverOptions driver;
  PrefetchFlags prefetch;
};

// The device name itself is checked when the device is opened (gpu::OpenDevice).
Status ParsePrefetchFlags(const ParsedArgs& args, PrefetchFlags* p) {
  p->enabled = args.Has("prefetch");
  if (std::optional<std::string> v = args.Value("device")) {
    if (!p->enabled) {
      return Status::InvalidArgument(
          "--device needs --prefetch (gathers reach the device "
          "through the prefetcher)");
    }
    p->device = *v;
  }
  if (std::optional<std::string> v = args.Value("hbm-cache")) {
    ENGRAM_ASSIGN_OR_RETURN(p->hbm_cache_bytes, ParseByteSize(*v, "--hbm-cache"));
    if (p->hbm_cache_bytes > 0 && (!p->enabled || p->device == "none")) {
      return Status::InvalidArgument(
          "--hbm-cache: the HBM tier needs --prefetch and --device emulated|cuda");
    }
  }
  return Status::OK();
}

Status ParseTierOptions(const ParsedArgs& args, TableOptions* o) {
  if (args.Has("resident")) {
    if (args.Has("dram-cache")) {
      return Status::InvalidArgument("--resident and --dram-cache exclude each other");
    }
    o->dram_mode = DramMode::kResident;
    o->resident.shared = args.Has("shared");
  } else if (args.Has("shared")) {
    return Status::InvalidArgument("--shared needs --resident");
  }
  if (std::optional<std::string> v = args.Value("dram-cache")) {
    ENGRAM_ASSIGN_OR_RETURN(o->dram_cache_bytes, ParseByteSize(*v, "--dram-cache"));
    o->dram_mode = o->dram_cache_bytes == 0 ? DramMode::kNone : DramMode::kCache;
  }
  if (std::optional<std::string> v = args.Value("policy")) {
    o->cache_policy = cache::NewPolicyFactory(*v);
    if (o->cache_policy == nullptr) {
      return Status::InvalidArgument("--policy: unknown cache policy '" + *v + "'");
    }
  }
  if (std::optional<std::string> v = args.Value("hot")) o->hot_rows_path = *v;
  if (std::optional<std::string> v = args.Value("io")) {
    if (*v == "auto") {
      o->nvme.backend = IoBackend::kAuto;
    } else if (*v == "io_uring") {
      o->nvme.backend = IoBackend::kIoUring;
    } else if (*v == "pread") {
      o->nvme.backend = IoBackend::kPread;
    } else {
      return Status::InvalidArgument("--io: '" + *v + "' (expected auto, io_uring or pread)");
    }
  }
  return Status::OK();
}

Result<BenchOptions> ParseBenchOptions(const ParsedArgs& args) {
  ENGRAM_RETURN_IF_ERROR(CheckPositionalCount(args, 1, 1, "TABLE"));
  BenchOptions o;
  ENGRAM_ASSIGN_OR_RETURN(o.table, TablePath(args.positional()[0]));
  ENGRAM_ASSIGN_OR_RETURN(std::string trace, RequiredValue(args, "trace", "SPEC"));
  ENGRAM_ASSIGN_OR_RETURN(o.trace, bench::ParseTraceSpec(trace));
  ENGRAM_RETURN_IF_ERROR(ParseTierOptions(args, &o.table_options));
  ENGRAM_RETURN_IF_ERROR(ParsePrefetchFlags(args, &o.prefetch));
  if (std::optional<std::string> v = args.Value("threads")) {
    ENGRAM_ASSIGN_OR_RETURN(o.driver.threads, ParseUint32(*v, "--threads"));
  }
  if (std::optional<std::string> v = args.Value("batch")) {
    ENGRAM_ASSIGN_OR_RETURN(o.driver.batch, ParseUint32(*v, "--batch"));
  }
  if (o.driver.threads == 0 || o.driver.batch == 0) {
    return Status::InvalidArgument("--threads and --batch must be at least 1");
  }
  if (std::optional<std::string> v = args.Value("duration")) {
    ENGRAM_ASSIGN_OR_RETURN(o.driver.duration_seconds, ParseSeconds(*v, "--duration"));
  }
  if (std::optional<std::string> v = args.Value("seed")) {
    ENGRAM_ASSIGN_OR_RETURN(o.trace_options.seed, ParseUint64(*v, "--seed"));
  }
  return o;
}

// Lookups through a Prefetcher, pipelined one batch ahead on each driver thread: a thread's
// call k issues batch k's prefetch, then waits for, gathers and releases batch k-1's ticket
// (issued by its previous call) into the caller's buffer, or into the thread's device buffer
// when the prefetcher has a device. A thread's first call (one of the driver's untimed warm-up
// batches) only issues. Every call thus delivers one batch of rows, and the driver's counts
// and rates hold. Thread-safe: one state per calling thread.
class PipelinedLookup {
 public:
  PipelinedLookup(gpu::Prefetcher* pf, uint32_t batch, uint32_t row_bytes)
      : pf_(pf), batch_(batch), row_bytes_(row_bytes) {}
  PipelinedLookup(const PipelinedLookup&) = delete;
  PipelinedLookup& operator=(const PipelinedLookup&) = delete;
  ~PipelinedLookup() { (void)Finish(); }

  Status Lookup(const uint64_t* ids, size_t n, void* out, size_t stride) {
    ENGRAM_ASSIGN_OR_RETURN(ThreadState * st, State());
    ENGRAM_ASSIGN_OR_RETURN(gpu::TicketId ticket, pf_->Prefetch(ids, n));
    const gpu::TicketId previous = st->pending;
    st->pending = ticket;
    if (previous == 0) return Status::OK();
    gpu::GatherTarget target;
    if (st->device_out != nullptr) {
      target.out = st->device_out;
      target.out_stride = row_bytes_;
      target.on_device = true;
    } else {
      target.out = out;
      target.out_stride = stride;
    }
    Status s = pf_->Gather(previous, target);
    Status r = pf_->Release(previous);
    return s.ok() ? r : s;
  }

  // Waits for and releases every thread's last ticket and frees the device buffers; the
  // first error, if any. Call once the driver's threads are done.
  Status Finish() {
    std::lock_guard<std::mutex> lock(mu_);
    Status first;
    for (auto& [id, st] : states_) {
      if (st->pending != 0) {
        Status w = pf_->Wait(st->pending);
        Status r = pf_->Release(st->pending);
        if (first.ok()) first = w.ok() ? r : w;
        st->pending = 0;
      }
      if (st->device_out != nullptr) pf_->device()->Free(st->device_out);
      st->device_out = nullptr;
    }
    return first;
  }

 private:
  struct ThreadState {
    gpu::TicketId pending = 0;   // the ticket of this thread's previous call
    void* device_out = nullptr;  // batch rows of device memory (with a device)
  };

  Result<ThreadState*> State() {
    std::lock_guard<std::mutex> lock(mu_);
    std::unique_ptr<ThreadState>& st = states_[std::this_thread::get_id()];
    if (st == nullptr) {
      st = std::make_unique<ThreadState>();
      if (gpu::Device* device = pf_->device()) {
        ENGRAM_ASSIGN_OR_RETURN(st->device_out, device->Malloc(size_t{batch_} * row_bytes_));
      }
    }
    return st.get();
  }

  gpu::Prefetcher* const pf_;
  const uint32_t batch_;
  const uint32_t row_bytes_;
  std::mutex mu_;
  std::unordered_map<std::thread::id, std::unique_ptr<ThreadState>> states_;  // GUARDED_BY(mu_)
};

// The prefetcher's counters; `before` (may be null) is subtracted from the cumulative ones.
Json PrefetchStatsJson(const gpu::PrefetchStats& s, const gpu::PrefetchStats* before) {
  auto d = [before](uint64_t after, uint64_t gpu::PrefetchStats::*field) {
    return before ? after - before->*field : after;
  };
  using P = gpu::PrefetchStats;
  return {{"tickets_issued", d(s.tickets_issued, &P::tickets_issued)},
          {"tickets_failed", d(s.tickets_failed, &P::tickets_failed)},
          {"tickets_cancelled", d(s.tickets_cancelled, &P::tickets_cancelled)},
          {"rows_requested", d(s.rows_requested, &P::rows_requested)},
          {"rows_unique", d(s.rows_unique, &P::rows_unique)},
          {"hbm_hits", d(s.hbm_hits, &P::hbm_hits)},
          {"hbm_inserts", d(s.hbm_inserts, &P::hbm_inserts)},
          {"rows_fetched", d(s.rows_fetched, &P::rows_fetched)},
          {"bytes_to_device", d(s.bytes_to_device, &P::bytes_to_device)},
          {"blocked_prefetches", d(s.blocked_prefetches, &P::blocked_prefetches)},
          {"rejected_prefetches", d(s.rejected_prefetches, &P::rejected_prefetches)},
          {"tickets_live", s.tickets_live},
          {"inflight_bytes", s.inflight_bytes},
          {"inflight_bytes_peak", s.inflight_bytes_peak}};
}

// What --prefetch adds to the report.
struct PrefetchReport {
  std::string device;  // description, or "none"
  uint64_t hbm_cache_bytes = 0;
  gpu::PrefetchStats before, after;  // around the timed run
  gpu::PrefetchStats total;          // at the end, every ticket released
};

Json PrefetchJson(const PrefetchReport& p) {
  const cache::RowCacheStats& h = p.total.hbm;
  return {{"mode", "pipelined, one batch ahead per thread"},
          {"device", p.device},
          {"hbm_cache_bytes", p.hbm_cache_bytes},
          {"timed", PrefetchStatsJson(p.after, &p.before)},
          {"total", PrefetchStatsJson(p.total, nullptr)},
          {"hot_rows_pinned", p.total.hot_rows_pinned},
          {"hbm",
           {{"capacity_rows", h.capacity_rows},
            {"rows", h.size_rows},
            {"pinned_rows", h.pinned_rows},
            {"inserts", h.inserts},
            {"rejections", h.rejections},
            {"evictions", h.evictions},
            {"metadata_bytes", h.metadata_bytes}}}};
}

void PrintPrefetchText(const PrefetchReport& p) {
  const gpu::PrefetchStats& a = p.after;
  const gpu::PrefetchStats& b = p.before;
  const uint64_t unique = a.rows_unique - b.rows_unique;
  const uint64_t hits = a.hbm_hits - b.hbm_hits;
  std::printf("prefetch: pipelined one batch ahead, device %s", p.device.c_str());
  if (p.hbm_cache_bytes > 0) {
    std::printf(", HBM cache %s (%llu rows)",
                FormatBytes(static_cast<double>(p.hbm_cache_bytes)).c_str(),
                static_cast<unsigned long long>(p.total.hbm.capacity_rows));
  }
  std::printf("\n  tickets %llu  rows %llu (unique %llu)  fetched %llu",
              static_cast<unsigned long long>(a.tickets_issued - b.tickets_issued),
              static_cast<unsigned long long>(a.rows_requested - b.rows_requested),
              static_cast<unsigned long long>(unique),
              static_cast<unsigned long long>(a.rows_fetched - b.rows_fetched));
  if (p.hbm_cache_bytes > 0) {
    std::printf("  HBM hits %llu (%.1f %%)", static_cast<unsigned long long>(hits),
                unique ? 100.0 * static_cast<double>(hits) / unique : 0.0);
  }
  if (p.device != "none") {
    std::printf("  to device %s",
                FormatBytes(static_cast<double>(a.bytes_to_device - b.bytes_to_device)).c_str());
  }
  std::printf("  blocked %llu\n",
              static_cast<unsigned long long>(a.blocked_prefetches - b.blocked_prefetches));
}

// The driver through a pipelined prefetcher on `table` (see PipelinedLookup).
Result<bench::DriverResult> RunPrefetchLookups(const BenchOptions& o, Table* table,
                                               gpu::Device* device,
                                               const std::vector<uint64_t>& trace,
                                               PrefetchReport* report) {
  gpu::PrefetchOptions po;
  po.device = device;
  po.hbm_cache_bytes = o.prefetch.hbm_cache_bytes;
  // Two batches in flight per thread (the pending one and the one being issued), doubled.
  po.max_inflight_bytes =
      std::max<uint64_t>(po.max_inflight_bytes, uint64_t{4} * o.driver.threads * o.driver.batch *
                                                    (table->row_bytes() + 16));
  ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<gpu::Prefetcher> pf, gpu::Prefetcher::Create(table, po));
  report->device = device ? device->description() : "none";
  report->hbm_cache_bytes = o.prefetch.hbm_cache_bytes;
  PipelinedLookup pipeline(pf.get(), o.driver.batch, table->row_bytes());
  bench::LookupFn lookup = [&pipeline](const uint64_t* ids, size_t n, void* out, size_t stride) {
    return pipeline.Lookup(ids, n, out, stride);
  };
  // RunLookups calls this once before and once after the timed run.
  int calls = 0;
  bench::StatsFn stats = [&] {
    (calls++ == 0 ? report->before : report->after) = pf->stats();
    return table->Stats();
  };
  Result<bench::DriverResult> r =
      bench::RunLookups(lookup, stats, table->row_bytes(), trace, o.driver);
  Status finished = pipeline.Finish();
  report->total = pf->stats();
  if (!r.ok()) return r.status();
  if (!finished.ok()) return finished;
  return r;
}

void PrintText(const BenchOptions& o, const Table& table, const bench::DriverResult& r) {
  std::printf("table:   %s (%llu rows x %u B)\n", o.table.c_str(),
              static_cast<unsigned long long>(table.rows()), table.row_bytes());
  std::printf("tiers:   dram %s -> nvme %s\n", table.DramDescription().c_str(),
              table.NvmeDescription().c_str());
  if (const cache::RowCacheStats c = table.dram_cache_stats(); c.capacity_rows > 0) {
    std::printf(
        "cache:   %llu / %llu rows, %llu hot rows pinned (%llu skipped), %.1f B metadata/row\n",
        static_cast<unsigned long long>(c.size_rows),
        static_cast<unsigned long long>(c.capacity_rows),
        static_cast<unsigned long long>(table.hot_rows_pinned()),
        static_cast<unsigned long long>(table.hot_rows_skipped()), c.metadata_bytes_per_row);
  }
  std::printf("trace:   %s, %u thread(s), batch %u, %.1f s\n",
              bench::TraceSpecName(o.trace).c_str(), r.threads, r.batch, r.seconds);
  std::printf("result:  %.0f rows/s, %.1f MB/s, batch p50 %.1f us, p99 %.1f us\n", r.rows_per_sec,
              r.bytes_per_sec / 1e6, r.batch_p50_us, r.batch_p99_us);
  for (const TierStats& t : r.tier_deltas) {
    const double hit = t.lookups ? 100.0 * static_cast<double>(t.hits) / t.lookups : 0.0;
    std::printf("  %-5s lookups %llu  hits %llu (%.1f %%)  misses %llu  bytes %s", t.tier.c_str(),
                static_cast<unsigned long long>(t.lookups), static_cast<unsigned long long>(t.hits),
                hit, static_cast<unsigned long long>(t.misses),
                FormatBytes(static_cast<double>(t.bytes_read)).c_str());
    if (t.reads) {
      std::printf("  reads %llu  read p50 <= %.0f us  p99 <= %.0f us",
                  static_cast<unsigned long long>(t.reads), t.LatencyPercentileUs(50),
                  t.LatencyPercentileUs(99));
    }
    std::printf("\n");
  }
}

}  // namespace

int RunBench(const ParsedArgs& args) {
  Result<BenchOptions> o = ParseBenchOptions(args);
  if (!o.ok()) {
    if (o.status().IsNotSupported()) return ReportFailure(o.status());
    return ReportArgumentError("bench", o.status());
  }
  std::unique_ptr<gpu::Device> device;
  if (o->prefetch.enabled) {
    Result<std::unique_ptr<gpu::Device>> d = gpu::OpenDevice(o->prefetch.device);
    if (!d.ok()) {
      if (d.status().IsInvalidArgument()) return ReportArgumentError("bench", d.status());
      return ReportFailure(d.status());
    }
    device = std::move(*d);
  }
  Result<std::unique_ptr<Table>> table = Table::Open(o->table, o->table_options);
  if (!table.ok()) return ReportFailure(table.status());
  Result<std::vector<uint64_t>> trace =
      bench::MakeTrace(o->trace, (*table)->rows(), o->trace_options);
  if (!trace.ok()) return ReportFailure(trace.status());
  PrefetchReport prefetch;
  Result<bench::DriverResult> r =
      o->prefetch.enabled ? RunPrefetchLookups(*o, table->get(), device.get(), *trace, &prefetch)
                          : bench::RunTableLookups(table->get(), *trace, o->driver);
  if (!r.ok()) return ReportFailure(r.status());
  if (args.Has("json")) {
    Json doc = bench::ToJson(*r);
    doc["table"] = o->table;
    doc["trace"] = bench::TraceSpecName(o->trace);
    doc["dram"] = (*table)->DramDescription();
    doc["nvme"] = (*table)->NvmeDescription();
    doc["dram_cache"] = (*table)->DramCacheJson();
    if (o->prefetch.enabled) doc["prefetch"] = PrefetchJson(prefetch);
    PrintJson(doc);
  } else {
    PrintText(*o, **table, *r);
    if (o->prefetch.enabled) PrintPrefetchText(prefetch);
  }
  return kExitOk;
}

}  // namespace engram::tablectl
