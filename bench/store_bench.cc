// store_bench: db_bench-style driver of the storage tiers, each workload measured against a
// peer (the best the hardware gives without our code in the way) in the same run.
//
//   store_bench --workloads resident_rss,resident_gather,nvme_random --dir /var/tmp/engram-bench
//               [--json] [--json_out PATH] [other flags: --help]
//
// Workloads (always run in this order, whatever order --workloads lists them in, so the
// memory-hungry ones never overlap: 8 GiB resident + 8 GiB ceiling buffer at most):
//   resident_rss     VmRSS growth while opening the resident table / its data bytes (<= 1.02).
//   resident_gather  Table::Lookup on the resident table (private, THP) vs a memcpy-per-row
//                    gather of the same ids from an anonymous MADV_HUGEPAGE buffer (>= 0.8).
//   nvme_random      Table::Lookup with DramMode::kNone over io_uring vs a raw io_uring loop of
//                    4 KiB O_DIRECT random reads at the same queue depth and thread count
//                    (>= 0.85 of its IOPS), for each thread count in --nvme_threads.
// Tables ("f32x64-<rows>" under --dir) are created with BuildTable + RandomRow when absent or
// of the wrong shape, and reused otherwise.
//
// Output: human lines on stdout (stderr with --json, where stdout gets one JSON document);
// --json_out also writes the JSON to a file. Exit status 0 when every measurement ran (targets
// missed are reported, not errors), 1 on an error, 2 on bad flags.
#include <fcntl.h>
#include <liburing.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_flags.h"
#include "bench/bench_table.h"
#include "bench/bench_util.h"
#include "bench/workload.h"
#include "storage/table.h"
#include "storage/table_builder.h"

namespace engram::bench {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Flags

struct Flags {
  std::vector<std::string> workloads = {"resident_rss", "resident_gather", "nvme_random"};
  std::string dir = "/var/tmp/engram-bench";
  bool json = false;
  std::string json_out;
  uint64_t resident_rows = uint64_t{1} << 25;  // 8 GiB of 256-byte rows
  uint64_t nvme_rows = uint64_t{1} << 26;      // 16 GiB: beyond what the page cache could fake
  std::string trace = "uniform";
  uint64_t trace_length = uint64_t{1} << 24;
  uint64_t seed = 42;
  uint32_t gather_threads = 2;
  uint32_t gather_batch = 4096;
  double gather_seconds = 5;
  uint32_t nvme_batch = 256;
  uint32_t queue_depth = 32;
  std::vector<uint32_t> nvme_threads = {1, 2};
  double nvme_seconds = 8;
  // Each side's time is split into this many rounds, alternated with its peer's.
  uint32_t rounds = 3;
};

constexpr char kUsage[] =
    "usage: store_bench [--workloads resident_rss,resident_gather,nvme_random] [--dir DIR]\n"
    "  [--json] [--json_out PATH] [--resident_rows N] [--nvme_rows N] [--trace uniform|zipf:A]\n"
    "  [--trace_length N] [--seed S] [--gather_threads N] [--gather_batch B]\n"
    "  [--gather_seconds S] [--nvme_batch B] [--queue_depth QD] [--nvme_threads 1,2]\n"
    "  [--nvme_seconds S] [--rounds R]\n";

Status SetFlag(Flags& f, const std::string& name, const std::string& v) {
  if (name == "workloads") {
    ENGRAM_ASSIGN_OR_RETURN(
        f.workloads,
        ParseWorkloadList(name, v, {"resident_rss", "resident_gather", "nvme_random"}));
  } else if (name == "dir") {
    f.dir = v;
  } else if (name == "json_out") {
    f.json_out = v;
  } else if (name == "trace") {
    ENGRAM_ASSIGN_OR_RETURN(TraceSpec spec, ParseTraceSpec(v));
    if (spec.kind == TraceKind::kFile) {
      return Status::InvalidArgument("--trace: store_bench generates its traces (uniform|zipf:A)");
    }
    f.trace = v;
  } else if (name == "resident_rows") {
    ENGRAM_ASSIGN_OR_RETURN(f.resident_rows, ParseU64(name, v));
  } else if (name == "nvme_rows") {
    ENGRAM_ASSIGN_OR_RETURN(f.nvme_rows, ParseU64(name, v));
  } else if (name == "trace_length") {
    ENGRAM_ASSIGN_OR_RETURN(f.trace_length, ParseU64(name, v));
  } else if (name == "seed") {
    ENGRAM_ASSIGN_OR_RETURN(f.seed, ParseU64(name, v));
  } else if (name == "gather_threads") {
    ENGRAM_ASSIGN_OR_RETURN(f.gather_threads, ParsePositiveU32(name, v));
  } else if (name == "gather_batch") {
    ENGRAM_ASSIGN_OR_RETURN(f.gather_batch, ParsePositiveU32(name, v));
  } else if (name == "gather_seconds") {
    ENGRAM_ASSIGN_OR_RETURN(f.gather_seconds, ParsePositiveDouble(name, v));
  } else if (name == "nvme_batch") {
    ENGRAM_ASSIGN_OR_RETURN(f.nvme_batch, ParsePositiveU32(name, v));
  } else if (name == "queue_depth") {
    ENGRAM_ASSIGN_OR_RETURN(f.queue_depth, ParsePositiveU32(name, v));
    if (f.queue_depth > 4096) return Status::InvalidArgument("--queue_depth: at most 4096");
  } else if (name == "nvme_threads") {
    ENGRAM_ASSIGN_OR_RETURN(f.nvme_threads, ParseList<uint32_t>(name, v, [&](const std::string& t) {
                              return ParsePositiveU32(name, t);
                            }));
  } else if (name == "rounds") {
    ENGRAM_ASSIGN_OR_RETURN(f.rounds, ParsePositiveU32(name, v));
    if (f.rounds > 100) return Status::InvalidArgument("--rounds: at most 100");
  } else if (name == "nvme_seconds") {
    ENGRAM_ASSIGN_OR_RETURN(f.nvme_seconds, ParsePositiveDouble(name, v));
  } else {
    return Status::InvalidArgument("unknown flag --" + name);
  }
  return Status::OK();
}

// Flags as bench_flags.h reads them: --name=value or --name value, names as written; --json
// takes no value.
Status ParseFlags(int argc, char** argv, Flags& f, bool& help) {
  FlagLoopOptions options;
  options.boolean_flags = {{"json", &f.json}};
  return ParseFlagLoop(
      argc, argv, options,
      [&f](const std::string& name, const std::string& v) { return SetFlag(f, name, v); }, &help);
}

// ---------------------------------------------------------------------------------------------
// Output helpers

// A "Key:   123 kB" field of a /proc file, in bytes; -1 when absent.
int64_t ProcKb(const char* file, const char* key) {
  std::ifstream in(file);
  std::string line;
  const size_t klen = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, klen, key) == 0 && line.size() > klen && line[klen] == ':') {
      return std::strtoll(line.c_str() + klen + 1, nullptr, 10) * 1024;
    }
  }
  return -1;
}
int64_t VmRssBytes() { return ProcKb("/proc/self/status", "VmRSS"); }
int64_t AnonHugePagesBytes() { return ProcKb("/proc/self/smaps_rollup", "AnonHugePages"); }

// bench_util.h's machine description plus memory and transparent huge page settings.
json StoreMachineJson() {
  json machine = MachineJson();
  machine["mem_total_bytes"] = ProcKb("/proc/meminfo", "MemTotal");
  machine["thp_enabled"] = ReadFirstLine("/sys/kernel/mm/transparent_hugepage/enabled");
  machine["thp_defrag"] = ReadFirstLine("/sys/kernel/mm/transparent_hugepage/defrag");
  return machine;
}

// ---------------------------------------------------------------------------------------------
// Summary rows

struct SummaryRow {
  std::string workload;
  std::string ours;
  std::string peer;
  double ratio = 0;
  std::string target;
  bool pass = false;
};

struct Report {
  json workloads = json::object();
  std::vector<SummaryRow> summary;
};

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Resident workloads

Result<std::unique_ptr<Table>> OpenResident(const std::string& path, double* seconds) {
  TableOptions o;
  o.dram_mode = DramMode::kResident;
  o.resident.shared = false;
  o.resident.huge_pages = true;
  const double t0 = NowSeconds();
  auto table = Table::Open(path, o);
  *seconds = NowSeconds() - t0;
  return table;
}

Status RunResidentRss(std::unique_ptr<Table>& table, const std::string& path, Report& rep) {
  const int64_t rss0 = VmRssBytes();
  const int64_t thp0 = AnonHugePagesBytes();
  double open_s = 0;
  ENGRAM_ASSIGN_OR_RETURN(table, OpenResident(path, &open_s));
  const int64_t rss1 = VmRssBytes();
  const int64_t thp1 = AnonHugePagesBytes();
  const double data = static_cast<double>(table->layout().data_bytes());
  const double ratio = (rss1 - rss0) / data;
  Say("resident_rss     : open %.1f s (%.2f GB/s), VmRSS %s -> %s (+%s) for %s of data: "
      "%.4f x; AnonHugePages +%s; %s\n",
      open_s, data / 1e9 / open_s, GiB(rss0).c_str(), GiB(rss1).c_str(), GiB(rss1 - rss0).c_str(),
      GiB(data).c_str(), ratio, GiB(thp1 - thp0).c_str(), table->DramDescription().c_str());
  rep.workloads["resident_rss"] = {{"table", path},
                                   {"data_bytes", data},
                                   {"open_seconds", open_s},
                                   {"vmrss_before_bytes", rss0},
                                   {"vmrss_after_bytes", rss1},
                                   {"anon_huge_pages_added_bytes", thp1 - thp0},
                                   {"ratio", ratio},
                                   {"dram", table->DramDescription()}};
  rep.summary.push_back({"resident_rss", "+" + GiB(rss1 - rss0) + " RSS", GiB(data) + " data",
                         ratio, "<= 1.02", ratio <= 1.02});
  return Status::OK();
}

// An anonymous, 2 MiB-aligned, MADV_HUGEPAGE mapping; unmapped on destruction.
class HugeBuffer {
 public:
  ~HugeBuffer() {
    if (map_ != nullptr) ::munmap(map_, map_bytes_);
  }
  Status Allocate(size_t bytes) {
    constexpr size_t kHuge = size_t{2} << 20;
    map_bytes_ = bytes + kHuge;
    void* p = ::mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      map_ = nullptr;
      return Status::FromErrno("mmap ceiling buffer of " + std::to_string(bytes) + " bytes", errno);
    }
    map_ = p;
    const uintptr_t aligned = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
    data_ = reinterpret_cast<uint8_t*>(aligned);
    if (::madvise(data_, bytes, MADV_HUGEPAGE) != 0) {
      Say("  (madvise MADV_HUGEPAGE failed: %s)\n", std::strerror(errno));
    }
    return Status::OK();
  }
  uint8_t* data() const { return data_; }

 private:
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  uint8_t* data_ = nullptr;
};

// Fills `buf` (laid out like the data file) with the table's rows through Lookup, in id order.
Status FillFromTable(Table* table, uint8_t* buf) {
  const TableLayout& l = table->layout();
  constexpr uint64_t kChunk = 1 << 16;
  std::vector<uint64_t> ids(kChunk);
  const bool dense = l.rows_per_page != 0 && uint64_t{l.rows_per_page} * l.row_bytes == kPageSize;
  if (!dense) {  // rows with padding: plain fill is enough for a memcpy ceiling
    std::memset(buf, 0x5a, l.data_bytes());
    return Status::OK();
  }
  for (uint64_t first = 0; first < l.rows; first += kChunk) {
    const uint64_t n = std::min(kChunk, l.rows - first);
    for (uint64_t i = 0; i < n; ++i) ids[i] = first + i;
    ENGRAM_RETURN_IF_ERROR(table->Lookup(ids.data(), n, buf + l.OffsetOf(first), l.row_bytes));
  }
  return Status::OK();
}

// Runs each of `runners` `rounds` times, alternating (a b c a b c ...), so that every side sees
// the same background load on this shared machine, and pools each side's rounds.
Result<std::vector<DriverResult>> AlternateRounds(
    const std::vector<std::function<Result<DriverResult>()>>& runners, uint32_t rounds) {
  std::vector<std::vector<DriverResult>> per(runners.size());
  for (uint32_t r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < runners.size(); ++k) {
      ENGRAM_ASSIGN_OR_RETURN(DriverResult one, runners[k]());
      per[k].push_back(std::move(one));
    }
  }
  std::vector<DriverResult> merged;
  for (const auto& runs : per) {
    ENGRAM_ASSIGN_OR_RETURN(DriverResult m, MergeResults(runs));
    merged.push_back(std::move(m));
  }
  return merged;
}

Status RunResidentGather(Table* table, const Flags& f, Report& rep) {
  const TableLayout l = table->layout();
  ENGRAM_ASSIGN_OR_RETURN(TraceSpec spec, ParseTraceSpec(f.trace));
  TraceOptions to;
  to.length = f.trace_length;
  to.seed = f.seed;
  ENGRAM_ASSIGN_OR_RETURN(std::vector<uint64_t> trace, MakeTrace(spec, l.rows, to));
  DriverOptions d;
  d.threads = f.gather_threads;
  d.batch = f.gather_batch;
  d.duration_seconds = f.gather_seconds / f.rounds;
  d.out_stride = l.row_bytes;
  const int64_t thp_table = AnonHugePagesBytes();

  // Ceiling: the same batches gathered with one memcpy per row from a private THP buffer
  // holding the same bytes in the same layout.
  HugeBuffer ceiling;
  const double t0 = NowSeconds();
  ENGRAM_RETURN_IF_ERROR(ceiling.Allocate(l.data_bytes()));
  std::memset(ceiling.data(), 0, l.data_bytes());  // first touch: page faults, THP allocation
  const double t1 = NowSeconds();
  ENGRAM_RETURN_IF_ERROR(FillFromTable(table, ceiling.data()));
  const double fault_s = t1 - t0;
  const double fill_s = NowSeconds() - t1;
  const int64_t thp_all = AnonHugePagesBytes();
  const uint8_t* base = ceiling.data();
  const size_t row = l.row_bytes;
  LookupFn memcpy_gather = [base, row, l](const uint64_t* ids, size_t n, void* out, size_t stride) {
    auto* dst = static_cast<uint8_t*>(out);
    for (size_t i = 0; i < n; ++i) std::memcpy(dst + i * stride, base + l.OffsetOf(ids[i]), row);
    return Status::OK();
  };
  // Informational second peer: the same loop with software prefetch 8 rows ahead.
  LookupFn prefetch_gather = [base, row, l](const uint64_t* ids, size_t n, void* out,
                                            size_t stride) {
    auto* dst = static_cast<uint8_t*>(out);
    constexpr size_t kAhead = 8;
    for (size_t i = 0; i < std::min(n, kAhead); ++i) __builtin_prefetch(base + l.OffsetOf(ids[i]));
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n) __builtin_prefetch(base + l.OffsetOf(ids[i + kAhead]));
      std::memcpy(dst + i * stride, base + l.OffsetOf(ids[i]), row);
    }
    return Status::OK();
  };
  ENGRAM_ASSIGN_OR_RETURN(
      std::vector<DriverResult> res,
      AlternateRounds({[&] { return RunTableLookups(table, trace, d); },
                       [&] { return RunLookups(memcpy_gather, {}, l.row_bytes, trace, d); },
                       [&] { return RunLookups(prefetch_gather, {}, l.row_bytes, trace, d); }},
                      f.rounds));
  const DriverResult& ours = res[0];
  const DriverResult& peer = res[1];
  const DriverResult& peer_pf = res[2];
  Say("resident_gather  : ours    %s\n", FormatSummary(ours).c_str());
  Say("resident_gather  : ceiling %s\n", FormatSummary(peer).c_str());
  Say("resident_gather  : ceiling+prefetch %s\n", FormatSummary(peer_pf).c_str());

  const double ratio = ours.rows_per_sec / peer.rows_per_sec;
  const double ratio_pf = ours.rows_per_sec / peer_pf.rows_per_sec;
  Say("resident_gather  : ratio %.3f vs memcpy ceiling (%.3f vs prefetching ceiling), %u "
      "alternating rounds; AnonHugePages %s with the table, %s with table + ceiling (of %s); "
      "ceiling faulted in %.1f s, copied from the table in %.1f s; %s\n",
      ratio, ratio_pf, f.rounds, GiB(thp_table).c_str(), GiB(thp_all).c_str(),
      GiB(2.0 * l.data_bytes()).c_str(), fault_s, fill_s, table->DramDescription().c_str());
  rep.workloads["resident_gather"] = {{"trace", f.trace},
                                      {"rounds", f.rounds},
                                      {"ours", ToJson(ours)},
                                      {"ceiling_memcpy", ToJson(peer)},
                                      {"ceiling_memcpy_prefetch", ToJson(peer_pf)},
                                      {"ratio", ratio},
                                      {"ratio_vs_prefetch", ratio_pf},
                                      {"anon_huge_pages_table_bytes", thp_table},
                                      {"anon_huge_pages_total_bytes", thp_all},
                                      {"ceiling_fault_seconds", fault_s},
                                      {"ceiling_fill_seconds", fill_s},
                                      {"dram", table->DramDescription()}};
  rep.summary.push_back({"resident_gather", Fmt("%.2f M rows/s", ours.rows_per_sec / 1e6),
                         Fmt("%.2f M rows/s", peer.rows_per_sec / 1e6), ratio, ">= 0.80",
                         ratio >= 0.8});
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// NVMe workloads

struct RawReadResult {
  double seconds = 0;
  uint64_t reads = 0;
  std::vector<double> latencies_us;  // every read's latency
  TierStats hist;                    // the same reads in the table's latency buckets

  double iops() const { return seconds > 0 ? reads / seconds : 0; }
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One thread of the raw peer: keeps `qd` 4 KiB O_DIRECT reads of the pages of trace ids in
// flight on its own ring (registered buffer and file), until `deadline_ns`.
Status RawReadThread(const std::string& path, const TableLayout& l,
                     const std::vector<uint64_t>& trace, size_t start, uint32_t qd,
                     int64_t deadline_ns, TierCounters* hist, std::vector<double>* lat,
                     uint64_t* reads) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("raw peer: open " + path, errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } fd_closer{fd};
  // The buffer outlives the ring (declared first), so an error return with reads in flight
  // never lets the kernel write into freed memory.
  const size_t buf_bytes = size_t{qd} * kPageSize;
  std::unique_ptr<void, decltype(&std::free)> buf(std::aligned_alloc(kPageSize, buf_bytes),
                                                  &std::free);
  if (!buf) return Status::ResourceExhausted("raw peer: buffer");
  std::memset(buf.get(), 0, buf_bytes);
  io_uring ring;
  if (int r = io_uring_queue_init(qd, &ring, 0); r < 0) {
    return Status::FromErrno("raw peer: io_uring_queue_init", -r);
  }
  std::unique_ptr<io_uring, void (*)(io_uring*)> ring_guard(&ring, io_uring_queue_exit);
  iovec iov{buf.get(), buf_bytes};
  if (int r = io_uring_register_buffers(&ring, &iov, 1); r < 0) {
    return Status::FromErrno("raw peer: io_uring_register_buffers", -r);
  }
  if (int r = io_uring_register_files(&ring, &fd, 1); r < 0) {
    return Status::FromErrno("raw peer: io_uring_register_files", -r);
  }
  std::vector<int64_t> submitted(qd);
  size_t pos = start % trace.size();
  auto prep = [&](uint32_t slot, int64_t now) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    const uint64_t page = l.PageOf(trace[pos]);
    if (++pos == trace.size()) pos = 0;
    io_uring_prep_read_fixed(sqe, 0, static_cast<uint8_t*>(buf.get()) + size_t{slot} * kPageSize,
                             kPageSize, page * kPageSize, 0);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, slot);
    submitted[slot] = now;
  };
  int64_t now = NowNs();
  for (uint32_t s = 0; s < qd; ++s) prep(s, now);
  uint32_t in_flight = qd;
  std::vector<io_uring_cqe*> cqes(qd);
  Status error;
  while (in_flight > 0) {
    const int r = io_uring_submit_and_wait(&ring, 1);
    if (r < 0 && r != -EINTR) return Status::FromErrno("raw peer: io_uring_submit_and_wait", -r);
    const unsigned got = io_uring_peek_batch_cqe(&ring, cqes.data(), qd);
    now = NowNs();
    const bool stop = now >= deadline_ns || !error.ok();
    for (unsigned i = 0; i < got; ++i) {
      const auto slot = static_cast<uint32_t>(io_uring_cqe_get_data64(cqes[i]));
      if (cqes[i]->res != static_cast<int>(kPageSize) && error.ok()) {
        error = cqes[i]->res < 0 ? Status::FromErrno("raw peer: read", -cqes[i]->res)
                                 : Status::IOError("raw peer: short read");
      }
      const int64_t ns = now - submitted[slot];
      hist->RecordReadLatencyNs(ns);
      lat->push_back(ns / 1e3);
      ++*reads;
      if (stop) {
        --in_flight;
      } else {
        prep(slot, now);
      }
    }
    io_uring_cq_advance(&ring, got);
  }
  return error;
}

Result<RawReadResult> RunRawReads(const std::string& data_path, const TableLayout& l,
                                  const std::vector<uint64_t>& trace, uint32_t threads, uint32_t qd,
                                  double seconds, uint64_t trace_offset) {
  TierCounters hist("raw");
  std::vector<std::vector<double>> lat(threads);
  std::vector<uint64_t> reads(threads, 0);
  std::vector<Status> errors(threads);
  std::vector<std::thread> pool;
  const int64_t start = NowNs();
  const int64_t deadline = start + static_cast<int64_t>(seconds * 1e9);
  for (uint32_t t = 0; t < threads; ++t) {
    lat[t].reserve(static_cast<size_t>(seconds * 150000));
    const size_t begin = trace_offset + trace.size() / threads * t;
    pool.emplace_back([&, t, begin] {
      errors[t] =
          RawReadThread(data_path, l, trace, begin, qd, deadline, &hist, &lat[t], &reads[t]);
    });
  }
  for (std::thread& th : pool) th.join();
  const int64_t end = NowNs();
  for (const Status& s : errors) ENGRAM_RETURN_IF_ERROR(s);
  RawReadResult r;
  r.seconds = (end - start) / 1e9;
  for (uint32_t t = 0; t < threads; ++t) {
    r.reads += reads[t];
    r.latencies_us.insert(r.latencies_us.end(), lat[t].begin(), lat[t].end());
  }
  r.hist = hist.Snapshot();
  return r;
}

void MergeRaw(RawReadResult& sum, RawReadResult one) {
  sum.seconds += one.seconds;
  sum.reads += one.reads;
  sum.latencies_us.insert(sum.latencies_us.end(), one.latencies_us.begin(), one.latencies_us.end());
  sum.hist.tier = one.hist.tier;
  sum.hist.reads += one.hist.reads;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    sum.hist.latency_us_buckets[b] += one.hist.latency_us_buckets[b];
  }
}

const TierStats* FindTier(const std::vector<TierStats>& tiers, const std::string& name) {
  for (const TierStats& t : tiers) {
    if (t.tier == name) return &t;
  }
  return nullptr;
}

Status RunNvmeRandom(const std::string& path, const Flags& f, Report& rep) {
  uint32_t max_threads = 1;
  for (uint32_t t : f.nvme_threads) max_threads = std::max(max_threads, t);
  TableOptions o;
  o.dram_mode = DramMode::kNone;
  o.nvme.backend = IoBackend::kIoUring;
  o.nvme.queue_depth = f.queue_depth;
  o.nvme.max_rings = std::max<uint32_t>(8, max_threads);
  ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<Table> table, Table::Open(path, o));
  const TableLayout l = table->layout();
  ENGRAM_ASSIGN_OR_RETURN(TraceSpec spec, ParseTraceSpec(f.trace));
  TraceOptions to;
  to.length = f.trace_length;
  to.seed = f.seed + 1;
  ENGRAM_ASSIGN_OR_RETURN(std::vector<uint64_t> trace, MakeTrace(spec, l.rows, to));
  const std::string data_path = JoinPath(path, kDataFileName);
  Say("nvme_random      : %s, backend %s, queue depth %u, batch %u, trace %s\n", path.c_str(),
      table->NvmeDescription().c_str(), f.queue_depth, f.nvme_batch, f.trace.c_str());

  json runs = json::array();
  for (uint32_t threads : f.nvme_threads) {
    DriverOptions d;
    d.threads = threads;
    d.batch = f.nvme_batch;
    d.duration_seconds = f.nvme_seconds / f.rounds;
    d.out_stride = l.row_bytes;
    // Alternating rounds: ours, raw, ours, raw... (see AlternateRounds).
    std::vector<DriverResult> our_rounds;
    RawReadResult raw;
    // Every run starts in its own slice of each thread's part of the trace, so no run rereads
    // pages another run just read (in case the virtual disk's host caches them).
    const uint64_t slice = trace.size() / threads / (2 * f.rounds);
    for (uint32_t r = 0; r < f.rounds; ++r) {
      d.trace_offset = 2 * r * slice;
      ENGRAM_ASSIGN_OR_RETURN(DriverResult one, RunTableLookups(table.get(), trace, d));
      our_rounds.push_back(std::move(one));
      ENGRAM_ASSIGN_OR_RETURN(RawReadResult raw_one,
                              RunRawReads(data_path, l, trace, threads, f.queue_depth,
                                          f.nvme_seconds / f.rounds, (2 * r + 1) * slice));
      MergeRaw(raw, std::move(raw_one));
    }
    ENGRAM_ASSIGN_OR_RETURN(DriverResult ours, MergeResults(our_rounds));
    const TierStats* nvme = FindTier(ours.tier_deltas, "nvme");
    const uint64_t our_reads = nvme ? nvme->reads : 0;
    const double our_iops = our_reads / ours.seconds;
    const double our_p50 = nvme ? nvme->LatencyPercentileUs(50) : 0;
    const double our_p99 = nvme ? nvme->LatencyPercentileUs(99) : 0;
    Say("nvme_random %ut   : ours %.0f IOPS (read p50<=%.0f us p99<=%.0f us)  %s\n", threads,
        our_iops, our_p50, our_p99, FormatSummary(ours).c_str());

    std::sort(raw.latencies_us.begin(), raw.latencies_us.end());
    const double raw_p50 = PercentileOfSorted(raw.latencies_us, 50);
    const double raw_p99 = PercentileOfSorted(raw.latencies_us, 99);
    const double ratio = our_iops / raw.iops();
    Say("nvme_random %ut   : raw io_uring %.0f IOPS (read p50 %.0f us p99 %.0f us exact; "
        "p50<=%.0f p99<=%.0f us in the table's buckets; %" PRIu64 " reads in %.2f s)\n",
        threads, raw.iops(), raw_p50, raw_p99, raw.hist.LatencyPercentileUs(50),
        raw.hist.LatencyPercentileUs(99), raw.reads, raw.seconds);
    Say("nvme_random %ut   : ratio %.3f (%u alternating rounds)\n", threads, ratio, f.rounds);
    runs.push_back({{"threads", threads},
                    {"ours", ToJson(ours)},
                    {"ours_iops", our_iops},
                    {"ours_read_p50_us", our_p50},
                    {"ours_read_p99_us", our_p99},
                    {"raw_iops", raw.iops()},
                    {"raw_reads", raw.reads},
                    {"raw_seconds", raw.seconds},
                    {"raw_read_p50_us", raw_p50},
                    {"raw_read_p99_us", raw_p99},
                    {"raw_read_bucket_p50_us", raw.hist.LatencyPercentileUs(50)},
                    {"raw_read_bucket_p99_us", raw.hist.LatencyPercentileUs(99)},
                    {"ratio", ratio}});
    rep.summary.push_back({"nvme_random " + std::to_string(threads) + "t",
                           Fmt("%.0f IOPS", our_iops), Fmt("%.0f IOPS", raw.iops()), ratio,
                           ">= 0.85", ratio >= 0.85});
  }
  rep.workloads["nvme_random"] = {
      {"table", path},          {"data_file", data_path}, {"queue_depth", f.queue_depth},
      {"batch", f.nvme_batch},  {"trace", f.trace},       {"backend", table->NvmeDescription()},
      {"runs", std::move(runs)}};
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------

void PrintSummary(const std::vector<SummaryRow>& rows) {
  Say("\n%-18s | %-18s | %-18s | %6s | %-7s | %s\n", "workload", "ours", "peer", "ratio", "target",
      "result");
  Say("%s\n", std::string(87, '-').c_str());
  for (const SummaryRow& r : rows) {
    Say("%-18s | %-18s | %-18s | %6.3f | %-7s | %s\n", r.workload.c_str(), r.ours.c_str(),
        r.peer.c_str(), r.ratio, r.target.c_str(), r.pass ? "pass" : "FAIL");
  }
}

bool Wants(const Flags& f, const char* w) {
  return std::find(f.workloads.begin(), f.workloads.end(), w) != f.workloads.end();
}

Status Run(const Flags& f, Report& rep) {
  Env* env = Env::Default();
  if (!env->FileExists(f.dir)) ENGRAM_RETURN_IF_ERROR(env->CreateDir(f.dir));
  const bool resident = Wants(f, "resident_rss") || Wants(f, "resident_gather");
  const bool nvme = Wants(f, "nvme_random");
  const std::string resident_path = BenchTablePath(f.dir, f.resident_rows);
  const std::string nvme_path = BenchTablePath(f.dir, f.nvme_rows);
  if (resident) {
    ENGRAM_RETURN_IF_ERROR(EnsureBenchTable(resident_path, f.resident_rows, "store_bench"));
  }
  if (nvme) ENGRAM_RETURN_IF_ERROR(EnsureBenchTable(nvme_path, f.nvme_rows, "store_bench"));
  if (resident) {
    std::unique_ptr<Table> table;
    if (Wants(f, "resident_rss")) {
      ENGRAM_RETURN_IF_ERROR(RunResidentRss(table, resident_path, rep));
    }
    if (Wants(f, "resident_gather")) {
      if (!table) {
        double open_s = 0;
        ENGRAM_ASSIGN_OR_RETURN(table, OpenResident(resident_path, &open_s));
      }
      ENGRAM_RETURN_IF_ERROR(RunResidentGather(table.get(), f, rep));
    }
  }  // the resident table is closed here, before the NVMe table opens
  if (nvme) ENGRAM_RETURN_IF_ERROR(RunNvmeRandom(nvme_path, f, rep));
  return Status::OK();
}

json SummaryJson(const std::vector<SummaryRow>& rows) {
  json out = json::array();
  for (const SummaryRow& r : rows) {
    out.push_back({{"workload", r.workload},
                   {"ours", r.ours},
                   {"peer", r.peer},
                   {"ratio", r.ratio},
                   {"target", r.target},
                   {"pass", r.pass}});
  }
  return out;
}

int Main(int argc, char** argv) {
  Flags f;
  bool help = false;
  if (Status s = ParseFlags(argc, argv, f, help); !s.ok()) {
    std::fprintf(stderr, "store_bench: %s\n", s.message().c_str());
    return 2;
  }
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (f.json) g_out = stderr;
  const json machine = StoreMachineJson();
  Say("store_bench: %s, kernel %s, %s, %u cpus, THP %s\n",
      machine["date"].get<std::string>().c_str(), machine["kernel"].get<std::string>().c_str(),
      machine["cpu"].get<std::string>().c_str(), machine["cpus"].get<unsigned>(),
      machine["thp_enabled"].get<std::string>().c_str());
  Report rep;
  Status s = Run(f, rep);
  PrintSummary(rep.summary);
  json doc = {{"machine", machine},
              {"workloads", rep.workloads},
              {"summary", SummaryJson(rep.summary)},
              {"ok", s.ok()}};
  if (!s.ok()) doc["error"] = s.ToString();
  if (f.json) std::printf("%s\n", doc.dump(2).c_str());
  return FinishRun("store_bench", doc, f.json_out, s);
}

}  // namespace
}  // namespace engram::bench

int main(int argc, char** argv) { return engram::bench::Main(argc, argv); }
