// tablectl bench: batch lookups through the tiers of one table, driven by bench/workload.h.
#include <cstdio>
#include <memory>
#include <string>

#include "bench/workload.h"
#include "cache/cache_policy.h"
#include "storage/table.h"
#include "tools/tablectl/cmd_common.h"
#include "tools/tablectl/commands.h"
#include "tools/tablectl/output.h"

namespace engram::tablectl {
namespace {

struct BenchOptions {
  std::string table;
  bench::TraceSpec trace;
  bench::TraceOptions trace_options;
  TableOptions table_options;
  bench::DriverOptions driver;
};

Status ParseTierOptions(const ParsedArgs& args, TableOptions* o) {
  if (args.Has("hbm-cache")) {
    return Status::NotSupported("--hbm-cache: the HBM tier is not part of this build yet");
  }
  if (args.Has("prefetch")) {
    return Status::NotSupported("--prefetch: the prefetch API is not part of this build yet");
  }
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
  Result<std::unique_ptr<Table>> table = Table::Open(o->table, o->table_options);
  if (!table.ok()) return ReportFailure(table.status());
  Result<std::vector<uint64_t>> trace =
      bench::MakeTrace(o->trace, (*table)->rows(), o->trace_options);
  if (!trace.ok()) return ReportFailure(trace.status());
  Result<bench::DriverResult> r = bench::RunTableLookups(table->get(), *trace, o->driver);
  if (!r.ok()) return ReportFailure(r.status());
  if (args.Has("json")) {
    Json doc = bench::ToJson(*r);
    doc["table"] = o->table;
    doc["trace"] = bench::TraceSpecName(o->trace);
    doc["dram"] = (*table)->DramDescription();
    doc["nvme"] = (*table)->NvmeDescription();
    doc["dram_cache"] = (*table)->DramCacheJson();
    PrintJson(doc);
  } else {
    PrintText(*o, **table, *r);
  }
  return kExitOk;
}

}  // namespace engram::tablectl
