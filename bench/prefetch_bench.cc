// prefetch_bench: how much of the NVMe fetch gpu::Prefetcher hides behind compute (issue 5).
//
//   prefetch_bench [--workloads overlap,decode] [--dir /var/tmp/engram-bench] [--json FILE]
//                  [--device none|emulated|cuda[:N]] [other flags: --help]
//
// Workloads (one table "f32x64-<rows>" of 256-byte rows under --dir, built with RandomRow
// seed 1 when absent, as store_bench builds its tables):
//   overlap  A loop whose steps "compute" for a fixed window W (a busy-spinning thread) while
//            the next step's rows are prefetched; at the step's end it waits for, gathers and
//            releases the current step's ticket. First the fetch time F (Prefetch + Wait alone,
//            median over steps) of one step's ids is measured on the NVMe table
//            (DramMode::kNone: every row read from NVMe with O_DIRECT); then for each
//            r in --ratios the loop runs with W = r x F on that table and on the same table
//            opened resident (DramMode::kResident), the baseline, in alternated rounds.
//            Reported per r: step time (median and mean) of both, and the overhead
//            (nvme / resident - 1) x 100 %. Target: <= 1 % for r >= 1.2.
//   decode   Decode-like load: --decode_tokens tokens per step (8,16,32,64), --rows_per_token
//            rows per token per layer, --layers layers. Each layer's rows are one ticket,
//            issued one layer's compute (--layer_compute_ms of busy spin) before the layer
//            needs them; the Wait() that follows is timed. Reported per tokens-per-step: Wait
//            p50 / p99 on the NVMe-only table and with a DRAM cache of --dram_cache_pct of the
//            rows (DramMode::kCache, warmed first with Table::Lookup over an earlier part of
//            the trace), with ids from --trace (Zipf 0.99 by default, or a .npy trace whose ids
//            are folded into the table's rows as id % rows when larger).
// With --device, every gather writes device memory of that device (the emulated device runs
// its streams as host threads); the compute is the host spin either way.
//
// Output: a table on stdout and, with --json FILE, a JSON document (machine, flags, results).
// Exit status 0 when every measurement ran (a missed target is reported, not an error), 1 on
// an error, 2 on bad flags.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_flags.h"
#include "bench/bench_table.h"
#include "bench/bench_util.h"
#include "bench/workload.h"
#include "gpu_bridge/device.h"
#include "gpu_bridge/prefetcher.h"
#include "storage/array_file.h"
#include "storage/table.h"
#include "storage/table_builder.h"

namespace engram::bench {
namespace {

using json = nlohmann::json;
using gpu::TicketId;

constexpr uint32_t kRowBytes = kBenchRowBytes;  // 64 x f32

// ---------------------------------------------------------------------------------------------
// Flags

struct Flags {
  std::vector<std::string> workloads = {"overlap", "decode"};
  std::string dir = "/var/tmp/engram-bench";
  std::string json_path;
  uint64_t rows = uint64_t{1} << 22;  // 1 GiB of 256-byte rows
  std::string device = "none";
  uint64_t seed = 42;
  uint32_t fetch_threads = 2;
  uint32_t inflight_mib = 64;
  uint32_t queue_depth = 32;
  // Shape of the work: rows per token per layer, layers per step.
  uint32_t rows_per_token = 24;
  uint32_t layers = 2;
  // overlap
  uint32_t tokens = 64;
  uint32_t steps = 200;       // timed steps per (r, table)
  uint32_t fetch_steps = 0;   // steps measuring F; 0 = --steps
  uint32_t warmup_steps = 3;  // untimed steps before each run
  uint32_t rounds = 2;        // each point's steps split into this many alternated rounds
  std::vector<double> ratios = {0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0};
  std::string overlap_trace = "uniform";
  // decode
  std::vector<uint32_t> decode_tokens = {8, 16, 32, 64};
  uint32_t decode_steps = 100;  // timed steps (x layers waits) per tokens value and table
  double layer_compute_ms = 1.0;
  std::string trace = "zipf:0.99";
  double dram_cache_pct = 10;
  double cache_warmup_seconds = 15;
};

constexpr char kUsage[] =
    "usage: prefetch_bench [--workloads overlap,decode] [--dir DIR] [--json FILE]\n"
    "  [--rows N] [--device none|emulated|cuda[:N]] [--seed S] [--fetch_threads N]\n"
    "  [--inflight_mib M] [--queue_depth QD] [--rows_per_token R] [--layers L]\n"
    "  overlap: [--tokens T] [--steps N] [--fetch_steps N] [--warmup_steps N] [--rounds N]\n"
    "           [--ratios 0.5,0.8,1,1.2,1.5,2,3] [--overlap_trace uniform|zipf:A|PATH.npy]\n"
    "  decode:  [--decode_tokens 8,16,32,64] [--decode_steps N] [--layer_compute_ms MS]\n"
    "           [--trace zipf:0.99|uniform|PATH.npy] [--dram_cache_pct P]\n"
    "           [--cache_warmup_seconds S]\n";

Status SetFlag(Flags& f, const std::string& name, const std::string& v) {
  if (name == "workloads") {
    ENGRAM_ASSIGN_OR_RETURN(f.workloads, ParseWorkloadList(name, v, {"overlap", "decode"}));
  } else if (name == "dir") {
    f.dir = v;
  } else if (name == "json") {
    f.json_path = v;
  } else if (name == "rows") {
    ENGRAM_ASSIGN_OR_RETURN(f.rows, ParseU64(name, v));
    if (f.rows == 0) return Status::InvalidArgument("--rows: must be >= 1");
  } else if (name == "device") {
    f.device = v;
  } else if (name == "seed") {
    ENGRAM_ASSIGN_OR_RETURN(f.seed, ParseU64(name, v));
  } else if (name == "fetch_threads") {
    ENGRAM_ASSIGN_OR_RETURN(f.fetch_threads, ParsePositiveU32(name, v));
  } else if (name == "inflight_mib") {
    ENGRAM_ASSIGN_OR_RETURN(f.inflight_mib, ParsePositiveU32(name, v));
  } else if (name == "queue_depth") {
    ENGRAM_ASSIGN_OR_RETURN(f.queue_depth, ParsePositiveU32(name, v));
    if (f.queue_depth > 4096) return Status::InvalidArgument("--queue_depth: at most 4096");
  } else if (name == "rows_per_token") {
    ENGRAM_ASSIGN_OR_RETURN(f.rows_per_token, ParsePositiveU32(name, v));
  } else if (name == "layers") {
    ENGRAM_ASSIGN_OR_RETURN(f.layers, ParsePositiveU32(name, v));
  } else if (name == "tokens") {
    ENGRAM_ASSIGN_OR_RETURN(f.tokens, ParsePositiveU32(name, v));
  } else if (name == "steps") {
    ENGRAM_ASSIGN_OR_RETURN(f.steps, ParsePositiveU32(name, v));
  } else if (name == "fetch_steps") {
    ENGRAM_ASSIGN_OR_RETURN(f.fetch_steps, ParsePositiveU32(name, v));
  } else if (name == "warmup_steps") {
    ENGRAM_ASSIGN_OR_RETURN(uint64_t w, ParseU64(name, v));
    if (w > 1000) return Status::InvalidArgument("--warmup_steps: at most 1000");
    f.warmup_steps = static_cast<uint32_t>(w);
  } else if (name == "rounds") {
    ENGRAM_ASSIGN_OR_RETURN(f.rounds, ParsePositiveU32(name, v));
    if (f.rounds > 100) return Status::InvalidArgument("--rounds: at most 100");
  } else if (name == "ratios") {
    ENGRAM_ASSIGN_OR_RETURN(f.ratios, ParseList<double>(name, v, [&](const std::string& r) {
                              return ParseDouble(name, r, /*allow_zero=*/true);
                            }));
  } else if (name == "overlap_trace" || name == "trace") {
    ENGRAM_RETURN_IF_ERROR(ParseTraceSpec(v).status().WithContext("--" + name));
    (name == "trace" ? f.trace : f.overlap_trace) = v;
  } else if (name == "decode_tokens") {
    ENGRAM_ASSIGN_OR_RETURN(f.decode_tokens,
                            ParseList<uint32_t>(name, v, [&](const std::string& t) {
                              return ParsePositiveU32(name, t);
                            }));
  } else if (name == "decode_steps") {
    ENGRAM_ASSIGN_OR_RETURN(f.decode_steps, ParsePositiveU32(name, v));
  } else if (name == "layer_compute_ms") {
    ENGRAM_ASSIGN_OR_RETURN(f.layer_compute_ms, ParseDouble(name, v, /*allow_zero=*/true));
  } else if (name == "dram_cache_pct") {
    ENGRAM_ASSIGN_OR_RETURN(f.dram_cache_pct, ParseDouble(name, v, /*allow_zero=*/false));
    if (f.dram_cache_pct > 100) return Status::InvalidArgument("--dram_cache_pct: at most 100");
  } else if (name == "cache_warmup_seconds") {
    ENGRAM_ASSIGN_OR_RETURN(f.cache_warmup_seconds, ParseDouble(name, v, /*allow_zero=*/true));
  } else {
    return Status::InvalidArgument("unknown flag --" + name);
  }
  return Status::OK();
}

// Flags as bench_flags.h reads them: --name=value or --name value, names as written.
Status ParseFlags(int argc, char** argv, Flags& f, bool& help) {
  return ParseFlagLoop(
      argc, argv, FlagLoopOptions{},
      [&f](const std::string& name, const std::string& v) { return SetFlag(f, name, v); }, &help);
}

json FlagsJson(const Flags& f) {
  return {{"workloads", f.workloads},
          {"rows", f.rows},
          {"device", f.device},
          {"seed", f.seed},
          {"fetch_threads", f.fetch_threads},
          {"inflight_mib", f.inflight_mib},
          {"queue_depth", f.queue_depth},
          {"rows_per_token", f.rows_per_token},
          {"layers", f.layers},
          {"tokens", f.tokens},
          {"steps", f.steps},
          {"fetch_steps", f.fetch_steps ? f.fetch_steps : f.steps},
          {"warmup_steps", f.warmup_steps},
          {"rounds", f.rounds},
          {"ratios", f.ratios},
          {"overlap_trace", f.overlap_trace},
          {"decode_tokens", f.decode_tokens},
          {"decode_steps", f.decode_steps},
          {"layer_compute_ms", f.layer_compute_ms},
          {"trace", f.trace},
          {"dram_cache_pct", f.dram_cache_pct},
          {"cache_warmup_seconds", f.cache_warmup_seconds}};
}

// ---------------------------------------------------------------------------------------------
// Clock, spin, statistics

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Busy-spins the calling thread for `ns` nanoseconds: the "compute" of a step.
void Spin(int64_t ns) {
  const int64_t until = NowNs() + ns;
  while (NowNs() < until) {
  }
}

struct Summary {
  size_t n = 0;
  double p50 = 0, p99 = 0, mean = 0, max = 0;
};

// Median, p99, mean and max of `v` (any order).
Summary Summarize(std::vector<double> v) {
  Summary s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.p50 = PercentileOfSorted(v, 50);
  s.p99 = PercentileOfSorted(v, 99);
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

json SummaryJson(const Summary& s) {
  return {{"n", s.n}, {"p50", s.p50}, {"p99", s.p99}, {"mean", s.mean}, {"max", s.max}};
}

// ---------------------------------------------------------------------------------------------
// Tables, traces, devices

std::string TablePath(const Flags& f) { return BenchTablePath(f.dir, f.rows); }

Result<std::unique_ptr<Table>> OpenTable(const std::string& path, DramMode mode,
                                         uint64_t cache_bytes, const Flags& f) {
  TableOptions o;
  o.dram_mode = mode;
  o.dram_cache_bytes = cache_bytes;
  o.resident.shared = false;
  o.resident.huge_pages = true;
  o.nvme.backend = IoBackend::kIoUring;
  o.nvme.queue_depth = f.queue_depth;
  o.nvme.max_rings = std::max<uint32_t>(8, f.fetch_threads + 2);
  const double t0 = NowSeconds();
  ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<Table> table, Table::Open(path, o));
  Say("  opened %s in %.1f s: dram %s, nvme %s\n", path.c_str(), NowSeconds() - t0,
      table->DramDescription().c_str(), table->NvmeDescription().c_str());
  return table;
}

// Ids in [0, rows): generated (uniform, zipf:A) or read from a .npy whose ids are folded into
// the table as id % rows (the count of folded ids goes to *folded).
Result<std::vector<uint64_t>> LoadIds(const std::string& text, uint64_t rows, uint64_t length,
                                      uint64_t seed, uint64_t* folded) {
  ENGRAM_ASSIGN_OR_RETURN(TraceSpec spec, ParseTraceSpec(text));
  *folded = 0;
  if (spec.kind != TraceKind::kFile) {
    TraceOptions o;
    o.length = std::max<uint64_t>(length, 1);
    o.seed = seed;
    return MakeTrace(spec, rows, o);
  }
  ENGRAM_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, ReadIdsNpy(Env::Default(), spec.path));
  if (ids.empty()) return Status::InvalidArgument("trace " + spec.path + " has no ids");
  for (uint64_t& id : ids) {
    if (id >= rows) {
      id %= rows;
      ++*folded;
    }
  }
  return ids;
}

// Hands out `n` consecutive ids of a trace at a time, wrapping around at its end.
class IdCursor {
 public:
  IdCursor(const std::vector<uint64_t>& ids, size_t start) : ids_(ids), pos_(start % ids.size()) {}
  const uint64_t* Next(size_t n) {
    buf_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      buf_[i] = ids_[pos_];
      if (++pos_ == ids_.size()) pos_ = 0;
    }
    return buf_.data();
  }
  size_t position() const { return pos_; }

 private:
  const std::vector<uint64_t>& ids_;
  size_t pos_;
  std::vector<uint64_t> buf_;
};

// Where gathers write: a host buffer, or device memory of the prefetcher's device.
class GatherSink {
 public:
  GatherSink() = default;
  GatherSink(const GatherSink&) = delete;
  GatherSink& operator=(const GatherSink&) = delete;
  ~GatherSink() {
    if (device_ != nullptr) device_->Free(device_out_);
  }
  Status Allocate(gpu::Device* device, size_t rows) {
    const size_t bytes = std::max<size_t>(rows, 1) * kRowBytes;
    target_.out_stride = kRowBytes;
    target_.type = gpu::OutType::kRaw;
    if (device == nullptr) {
      host_.assign(bytes, 0);
      target_.out = host_.data();
      return Status::OK();
    }
    ENGRAM_ASSIGN_OR_RETURN(device_out_, device->Malloc(bytes));
    device_ = device;
    target_.out = device_out_;
    target_.on_device = true;
    return Status::OK();
  }
  const gpu::GatherTarget& target() const { return target_; }

 private:
  gpu::Device* device_ = nullptr;
  void* device_out_ = nullptr;
  std::vector<uint8_t> host_;
  gpu::GatherTarget target_;
};

// A ticket cancelled on scope exit unless released (error paths leave nothing live).
class TicketGuard {
 public:
  explicit TicketGuard(gpu::Prefetcher* pf) : pf_(pf) {}
  TicketGuard(const TicketGuard&) = delete;
  TicketGuard& operator=(const TicketGuard&) = delete;
  ~TicketGuard() {
    if (id_ != 0) (void)pf_->Cancel(id_);
  }
  TicketId id() const { return id_; }
  void Set(TicketId id) { id_ = id; }
  // Gathers into `target` and releases.
  Status Finish(const gpu::GatherTarget& target) {
    ENGRAM_RETURN_IF_ERROR(pf_->Gather(id_, target));
    const TicketId id = id_;
    id_ = 0;
    return pf_->Release(id);
  }
  void Swap(TicketGuard& other) { std::swap(id_, other.id_); }

 private:
  gpu::Prefetcher* pf_;
  TicketId id_ = 0;
};

Result<std::unique_ptr<gpu::Prefetcher>> MakePrefetcher(Table* table, gpu::Device* device,
                                                        const Flags& f) {
  gpu::PrefetchOptions o;
  o.device = device;
  o.max_inflight_bytes = uint64_t{f.inflight_mib} << 20;
  o.fetch_threads = f.fetch_threads;
  return gpu::Prefetcher::Create(table, o);
}

json PrefetchStatsJson(const gpu::PrefetchStats& s) {
  return {{"tickets_issued", s.tickets_issued},
          {"tickets_failed", s.tickets_failed},
          {"tickets_cancelled", s.tickets_cancelled},
          {"rows_requested", s.rows_requested},
          {"rows_unique", s.rows_unique},
          {"rows_fetched", s.rows_fetched},
          {"hbm_hits", s.hbm_hits},
          {"bytes_to_device", s.bytes_to_device},
          {"inflight_bytes_peak", s.inflight_bytes_peak},
          {"blocked_prefetches", s.blocked_prefetches}};
}

// ---------------------------------------------------------------------------------------------
// Overlap

struct StepSamples {
  std::vector<double> step_us;   // issue of the next ticket .. release of the current one
  std::vector<double> issue_us;  // Prefetch() of the next ticket
  std::vector<double> spin_us;   // the compute window as it ran (longer when preempted)
  std::vector<double> wait_us;   // Wait() of the current ticket
  std::vector<double> tail_us;   // Gather + Release of the current ticket
};

// `steps` timed steps (after `warmup` untimed ones) of: Prefetch(next step's ids), spin
// `window_ns`, Wait + Gather + Release of the current step's ticket.
Status RunOverlapLoop(gpu::Prefetcher* pf, const gpu::GatherTarget& target, IdCursor& ids,
                      size_t per_step, int64_t window_ns, uint32_t warmup, uint32_t steps,
                      StepSamples* out) {
  TicketGuard cur(pf), next(pf);
  ENGRAM_ASSIGN_OR_RETURN(TicketId first, pf->Prefetch(ids.Next(per_step), per_step));
  cur.Set(first);
  ENGRAM_RETURN_IF_ERROR(pf->Wait(cur.id()));
  for (uint32_t k = 0; k < warmup + steps; ++k) {
    const bool last = k + 1 == warmup + steps;
    const int64_t t0 = NowNs();
    if (!last) {
      ENGRAM_ASSIGN_OR_RETURN(TicketId t, pf->Prefetch(ids.Next(per_step), per_step));
      next.Set(t);
    }
    const int64_t s0 = NowNs();
    Spin(window_ns);
    const int64_t w0 = NowNs();
    ENGRAM_RETURN_IF_ERROR(pf->Wait(cur.id()));
    const int64_t w1 = NowNs();
    ENGRAM_RETURN_IF_ERROR(cur.Finish(target));
    const int64_t t1 = NowNs();
    if (k >= warmup) {
      out->step_us.push_back((t1 - t0) / 1e3);
      out->issue_us.push_back((s0 - t0) / 1e3);
      out->spin_us.push_back((w0 - s0) / 1e3);
      out->wait_us.push_back((w1 - w0) / 1e3);
      out->tail_us.push_back((t1 - w1) / 1e3);
    }
    cur.Swap(next);
  }
  return Status::OK();
}

// Fetch time F: Prefetch + Wait of one step's ids, nothing overlapped, `steps` times.
Result<std::vector<double>> MeasureFetch(gpu::Prefetcher* pf, IdCursor& ids, size_t per_step,
                                         uint32_t steps) {
  std::vector<double> us;
  for (uint32_t k = 0; k < steps; ++k) {
    TicketGuard t(pf);
    const uint64_t* batch = ids.Next(per_step);
    const int64_t t0 = NowNs();
    ENGRAM_ASSIGN_OR_RETURN(TicketId id, pf->Prefetch(batch, per_step));
    t.Set(id);
    ENGRAM_RETURN_IF_ERROR(pf->Wait(id));
    us.push_back((NowNs() - t0) / 1e3);
    t.Set(0);
    ENGRAM_RETURN_IF_ERROR(pf->Release(id));
  }
  return us;
}

struct Side {
  const char* name;
  std::unique_ptr<Table> table;
  std::unique_ptr<gpu::Prefetcher> pf;
  GatherSink sink;
};

Status RunOverlap(const Flags& f, gpu::Device* device, json& out) {
  const std::string path = TablePath(f);
  const size_t per_step = size_t{f.tokens} * f.rows_per_token * f.layers;
  const uint32_t fetch_steps = f.fetch_steps ? f.fetch_steps : f.steps;
  const uint32_t per_round = (f.steps + f.rounds - 1) / f.rounds;
  // Every run reads ids no other run read (in case the virtual disk's host caches pages).
  const uint64_t runs = 1 + 2 * f.ratios.size() * f.rounds;
  const uint64_t need = (fetch_steps + runs * (per_round + f.warmup_steps + 1)) * per_step;
  uint64_t folded = 0;
  ENGRAM_ASSIGN_OR_RETURN(std::vector<uint64_t> ids,
                          LoadIds(f.overlap_trace, f.rows, need, f.seed, &folded));
  Say("overlap: %zu rows per step (%u tokens x %u rows x %u layers), trace %s%s, device %s\n",
      per_step, f.tokens, f.rows_per_token, f.layers, f.overlap_trace.c_str(),
      folded ? (" (" + std::to_string(folded) + " ids folded)").c_str() : "",
      device ? device->description().c_str() : "none (host gathers)");

  Side nvme{"nvme", nullptr, nullptr, {}};
  Side resident{"resident", nullptr, nullptr, {}};
  ENGRAM_ASSIGN_OR_RETURN(nvme.table, OpenTable(path, DramMode::kNone, 0, f));
  ENGRAM_ASSIGN_OR_RETURN(resident.table, OpenTable(path, DramMode::kResident, 0, f));
  for (Side* s : {&nvme, &resident}) {
    ENGRAM_ASSIGN_OR_RETURN(s->pf, MakePrefetcher(s->table.get(), device, f));
    ENGRAM_RETURN_IF_ERROR(s->sink.Allocate(device, per_step));
  }

  IdCursor cursor(ids, 0);
  ENGRAM_ASSIGN_OR_RETURN(std::vector<double> fetch_us,
                          MeasureFetch(nvme.pf.get(), cursor, per_step, fetch_steps));
  const Summary fetch = Summarize(fetch_us);
  IdCursor res_cursor(ids, 0);
  ENGRAM_ASSIGN_OR_RETURN(
      std::vector<double> res_fetch_us,
      MeasureFetch(resident.pf.get(), res_cursor, per_step, std::min(fetch_steps, 20u)));
  const Summary res_fetch = Summarize(res_fetch_us);
  Say("overlap: F = %.2f ms (median of %zu NVMe fetches; p99 %.2f ms, mean %.2f ms = %.0f rows/s);"
      " resident fetch %.3f ms\n",
      fetch.p50 / 1e3, fetch.n, fetch.p99 / 1e3, fetch.mean / 1e3, per_step / (fetch.mean / 1e6),
      res_fetch.p50 / 1e3);

  Say("\n%5s %9s | %-21s | %-21s | %-15s | %-19s\n", "r", "W ms", "nvme step ms p50/mean",
      "resident step p50/mean", "overhead % p50/mean", "nvme wait ms p50/p99");
  Say("%s\n", std::string(103, '-').c_str());
  json points = json::array();
  double worst = -1e9, worst_r = 0;
  for (double r : f.ratios) {
    const int64_t window_ns = static_cast<int64_t>(r * fetch.p50 * 1e3);
    StepSamples s_nvme, s_res;
    for (uint32_t round = 0; round < f.rounds; ++round) {
      // Alternate which side goes first, so neither always follows the other.
      Side* order[2] = {&nvme, &resident};
      if (round % 2 == 1) std::swap(order[0], order[1]);
      for (Side* side : order) {
        StepSamples* into = side == &nvme ? &s_nvme : &s_res;
        ENGRAM_RETURN_IF_ERROR(RunOverlapLoop(side->pf.get(), side->sink.target(), cursor, per_step,
                                              window_ns, f.warmup_steps, per_round, into)
                                   .WithContext(std::string("overlap r=") + std::to_string(r) +
                                                " on the " + side->name + " table"));
      }
    }
    const Summary n_step = Summarize(s_nvme.step_us), r_step = Summarize(s_res.step_us);
    const Summary n_wait = Summarize(s_nvme.wait_us), r_wait = Summarize(s_res.wait_us);
    const double over_p50 = (n_step.p50 / r_step.p50 - 1) * 100;
    const double over_mean = (n_step.mean / r_step.mean - 1) * 100;
    if (r >= 1.2 && over_p50 > worst) {
      worst = over_p50;
      worst_r = r;
    }
    Say("%5.2f %9.2f | %9.2f / %9.2f | %9.2f / %9.2f | %6.2f / %6.2f | %8.3f / %8.3f\n", r,
        window_ns / 1e6, n_step.p50 / 1e3, n_step.mean / 1e3, r_step.p50 / 1e3, r_step.mean / 1e3,
        over_p50, over_mean, n_wait.p50 / 1e3, n_wait.p99 / 1e3);
    points.push_back({{"r", r},
                      {"window_us", window_ns / 1e3},
                      {"nvme_step_us", SummaryJson(n_step)},
                      {"resident_step_us", SummaryJson(r_step)},
                      {"nvme_wait_us", SummaryJson(n_wait)},
                      {"resident_wait_us", SummaryJson(r_wait)},
                      {"nvme_issue_us", SummaryJson(Summarize(s_nvme.issue_us))},
                      {"resident_issue_us", SummaryJson(Summarize(s_res.issue_us))},
                      {"nvme_spin_us", SummaryJson(Summarize(s_nvme.spin_us))},
                      {"resident_spin_us", SummaryJson(Summarize(s_res.spin_us))},
                      {"nvme_gather_release_us", SummaryJson(Summarize(s_nvme.tail_us))},
                      {"resident_gather_release_us", SummaryJson(Summarize(s_res.tail_us))},
                      {"overhead_pct_p50", over_p50},
                      {"overhead_pct_mean", over_mean}});
  }
  const bool pass = worst <= 1.0;
  if (worst > -1e9) {
    Say("overlap: target overhead <= 1 %% at r >= 1.2 (medians): %s (worst %.2f %% at r = %.2f)\n",
        pass ? "pass" : "FAIL", worst, worst_r);
  }
  out = {{"table", path},
         {"rows_per_step", per_step},
         {"trace", f.overlap_trace},
         {"ids_folded", folded},
         {"device", device ? device->description() : "none"},
         {"fetch_us", SummaryJson(fetch)},
         {"resident_fetch_us", SummaryJson(res_fetch)},
         {"points", std::move(points)},
         {"target", "overhead_pct_p50 <= 1 for r >= 1.2"},
         {"worst_overhead_pct_at_r_ge_1_2", worst > -1e9 ? json(worst) : json(nullptr)},
         {"pass", worst > -1e9 ? json(pass) : json(nullptr)},
         {"nvme_prefetch", PrefetchStatsJson(nvme.pf->stats())},
         {"resident_prefetch", PrefetchStatsJson(resident.pf->stats())},
         {"nvme_tiers", json::array()}};
  for (const TierStats& t : nvme.table->Stats()) {
    out["nvme_tiers"].push_back({{"tier", t.tier},
                                 {"reads", t.reads},
                                 {"bytes_read", t.bytes_read},
                                 {"read_p50_us", t.LatencyPercentileUs(50)},
                                 {"read_p99_us", t.LatencyPercentileUs(99)}});
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Decode

// One layer after another: Wait (timed) + Gather + Release of this layer's ticket, Prefetch of
// the next layer's rows, spin one layer's compute. `units` timed layers after `warmup`.
Status RunDecodeLoop(gpu::Prefetcher* pf, const gpu::GatherTarget& target, IdCursor& ids,
                     size_t per_layer, int64_t compute_ns, uint32_t warmup, uint32_t units,
                     std::vector<double>* wait_us, std::vector<double>* unit_us) {
  TicketGuard cur(pf), next(pf);
  ENGRAM_ASSIGN_OR_RETURN(TicketId first, pf->Prefetch(ids.Next(per_layer), per_layer));
  cur.Set(first);
  Spin(compute_ns);  // the previous layer's compute
  for (uint32_t u = 0; u < warmup + units; ++u) {
    const int64_t t0 = NowNs();
    ENGRAM_RETURN_IF_ERROR(pf->Wait(cur.id()));
    const int64_t t1 = NowNs();
    ENGRAM_RETURN_IF_ERROR(cur.Finish(target));
    if (u + 1 < warmup + units) {
      ENGRAM_ASSIGN_OR_RETURN(TicketId t, pf->Prefetch(ids.Next(per_layer), per_layer));
      next.Set(t);
    }
    Spin(compute_ns);
    if (u >= warmup) {
      wait_us->push_back((t1 - t0) / 1e3);
      unit_us->push_back((NowNs() - t0) / 1e3);
    }
    cur.Swap(next);
  }
  return Status::OK();
}

const TierStats* FindTier(const std::vector<TierStats>& tiers, const char* name) {
  for (const TierStats& t : tiers) {
    if (t.tier == name) return &t;
  }
  return nullptr;
}

struct DecodePoint {
  Summary wait, layer;
  double dram_hit_pct = -1;  // -1: no DRAM cache
};

json DecodePointJson(const DecodePoint& p) {
  return {{"wait_us", SummaryJson(p.wait)},
          {"layer_us", SummaryJson(p.layer)},
          {"dram_hit_pct", p.dram_hit_pct >= 0 ? json(p.dram_hit_pct) : json(nullptr)}};
}

// Runs every --decode_tokens value on one table, ids from position `start` of the trace.
Status RunDecodeConfig(const Flags& f, gpu::Device* device, Table* table, const char* config,
                       const std::vector<uint64_t>& ids, size_t start,
                       std::vector<DecodePoint>* points, json* prefetch_stats) {
  ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<gpu::Prefetcher> pf, MakePrefetcher(table, device, f));
  const int64_t compute_ns = static_cast<int64_t>(f.layer_compute_ms * 1e6);
  const uint32_t warmup = f.warmup_steps * f.layers;
  const uint32_t units = f.decode_steps * f.layers;
  IdCursor cursor(ids, start);
  for (const uint32_t tokens : f.decode_tokens) {
    const size_t per_layer = size_t{tokens} * f.rows_per_token;
    GatherSink sink;
    ENGRAM_RETURN_IF_ERROR(sink.Allocate(device, per_layer));
    std::vector<double> wait_us, layer_us;
    const std::vector<TierStats> before = table->Stats();
    ENGRAM_RETURN_IF_ERROR(RunDecodeLoop(pf.get(), sink.target(), cursor, per_layer, compute_ns,
                                         warmup, units, &wait_us, &layer_us)
                               .WithContext(std::string("decode ") + config + ", " +
                                            std::to_string(tokens) + " tokens"));
    const std::vector<TierStats> delta = StatsDelta(before, table->Stats());
    DecodePoint p;
    p.wait = Summarize(wait_us);
    p.layer = Summarize(layer_us);
    if (const TierStats* dram = FindTier(delta, "dram"); dram && dram->lookups) {
      p.dram_hit_pct = 100.0 * static_cast<double>(dram->hits) / dram->lookups;
    }
    Say("  decode %-10s %3u tokens: wait p50 %.3f ms p99 %.3f ms, layer p50 %.3f ms", config,
        tokens, p.wait.p50 / 1e3, p.wait.p99 / 1e3, p.layer.p50 / 1e3);
    if (p.dram_hit_pct >= 0) Say(", DRAM hits %.1f %%", p.dram_hit_pct);
    Say("\n");
    points->push_back(p);
  }
  *prefetch_stats = PrefetchStatsJson(pf->stats());
  return Status::OK();
}

// Table::Lookup over the trace from `start` until the DRAM cache has seen `seconds` of misses
// filling it; returns the position after the ids used.
Result<size_t> WarmCache(Table* table, const std::vector<uint64_t>& ids, size_t start,
                         double seconds) {
  constexpr size_t kBatch = 4096;
  std::vector<uint8_t> out(kBatch * kRowBytes);
  IdCursor cursor(ids, start);
  const double t0 = NowSeconds();
  uint64_t looked = 0;
  const std::vector<TierStats> before = table->Stats();
  while (NowSeconds() - t0 < seconds && looked < ids.size()) {
    ENGRAM_RETURN_IF_ERROR(table->Lookup(cursor.Next(kBatch), kBatch, out.data(), kRowBytes));
    looked += kBatch;
  }
  const std::vector<TierStats> delta = StatsDelta(before, table->Stats());
  const TierStats* dram = FindTier(delta, "dram");
  const cache::RowCacheStats c = table->dram_cache_stats();
  Say("  DRAM cache warm-up: %" PRIu64 " lookups in %.1f s, %.1f %% hits; %" PRIu64 " / %" PRIu64
      " rows cached\n",
      looked, NowSeconds() - t0,
      dram && dram->lookups ? 100.0 * static_cast<double>(dram->hits) / dram->lookups : 0.0,
      c.size_rows, c.capacity_rows);
  return cursor.position();
}

Status RunDecode(const Flags& f, gpu::Device* device, json& out) {
  const std::string path = TablePath(f);
  uint64_t need = 0;
  for (uint32_t t : f.decode_tokens) {
    need += uint64_t{t} * f.rows_per_token * f.layers * (f.decode_steps + f.warmup_steps + 1);
  }
  uint64_t folded = 0;
  // Generated traces: room for the measured ids after a warm-up of up to 16M lookups.
  ENGRAM_ASSIGN_OR_RETURN(
      std::vector<uint64_t> ids,
      LoadIds(f.trace, f.rows, need + (uint64_t{1} << 24), f.seed + 1, &folded));
  const uint64_t cache_bytes =
      std::max<uint64_t>(
          1, static_cast<uint64_t>(f.dram_cache_pct / 100.0 * static_cast<double>(f.rows))) *
      kRowBytes;
  Say("\ndecode: %u rows per token per layer, %u layers, %.3f ms compute per layer, trace %s (%zu "
      "ids%s), DRAM cache %.1f %% of rows (%.1f MiB)\n",
      f.rows_per_token, f.layers, f.layer_compute_ms, f.trace.c_str(), ids.size(),
      folded ? (", " + std::to_string(folded) + " folded into the table").c_str() : "",
      f.dram_cache_pct, cache_bytes / 1048576.0);
  std::vector<DecodePoint> nvme, cached;
  json nvme_stats, cached_stats;
  {
    ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<Table> table, OpenTable(path, DramMode::kNone, 0, f));
    ENGRAM_RETURN_IF_ERROR(
        RunDecodeConfig(f, device, table.get(), "nvme", ids, 0, &nvme, &nvme_stats));
  }
  size_t start = 0;
  {
    ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<Table> table,
                            OpenTable(path, DramMode::kCache, cache_bytes, f));
    ENGRAM_ASSIGN_OR_RETURN(start, WarmCache(table.get(), ids, 0, f.cache_warmup_seconds));
    ENGRAM_RETURN_IF_ERROR(
        RunDecodeConfig(f, device, table.get(), "dram_cache", ids, start, &cached, &cached_stats));
  }
  Say("\n%6s %10s | %-23s | %-23s | %s\n", "tokens", "rows/layer", "nvme wait ms p50 / p99",
      "cache wait ms p50 / p99", "cache hits");
  Say("%s\n", std::string(84, '-').c_str());
  json points = json::array();
  for (size_t i = 0; i < f.decode_tokens.size(); ++i) {
    const uint32_t tokens = f.decode_tokens[i];
    Say("%6u %10u | %10.3f / %10.3f | %10.3f / %10.3f | %5.1f %%\n", tokens,
        tokens * f.rows_per_token, nvme[i].wait.p50 / 1e3, nvme[i].wait.p99 / 1e3,
        cached[i].wait.p50 / 1e3, cached[i].wait.p99 / 1e3, cached[i].dram_hit_pct);
    points.push_back({{"tokens", tokens},
                      {"rows_per_layer", tokens * f.rows_per_token},
                      {"nvme", DecodePointJson(nvme[i])},
                      {"dram_cache", DecodePointJson(cached[i])}});
  }
  out = {{"table", path},
         {"trace", f.trace},
         {"trace_ids", ids.size()},
         {"ids_folded", folded},
         {"dram_cache_bytes", cache_bytes},
         {"cache_trace_start", start},
         {"layer_compute_ms", f.layer_compute_ms},
         {"device", device ? device->description() : "none"},
         {"points", std::move(points)},
         {"nvme_prefetch", std::move(nvme_stats)},
         {"dram_cache_prefetch", std::move(cached_stats)}};
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------

bool Wants(const Flags& f, const char* w) {
  return std::find(f.workloads.begin(), f.workloads.end(), w) != f.workloads.end();
}

Status Run(const Flags& f, json& doc) {
  Env* env = Env::Default();
  if (!env->FileExists(f.dir)) ENGRAM_RETURN_IF_ERROR(env->CreateDir(f.dir));
  ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<gpu::Device> device, gpu::OpenDevice(f.device));
  ENGRAM_RETURN_IF_ERROR(EnsureBenchTable(TablePath(f), f.rows, "prefetch_bench"));
  if (device) doc["device"] = device->description();
  if (Wants(f, "overlap")) {
    json out;
    ENGRAM_RETURN_IF_ERROR(RunOverlap(f, device.get(), out));
    doc["overlap"] = std::move(out);
  }
  if (Wants(f, "decode")) {
    json out;
    ENGRAM_RETURN_IF_ERROR(RunDecode(f, device.get(), out));
    doc["decode"] = std::move(out);
  }
  return Status::OK();
}

int Main(int argc, char** argv) {
  Flags f;
  bool help = false;
  if (Status s = ParseFlags(argc, argv, f, help); !s.ok()) {
    std::fprintf(stderr, "prefetch_bench: %s\n%s", s.message().c_str(), kUsage);
    return 2;
  }
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const json machine = MachineJson();
  Say("prefetch_bench: %s, kernel %s, %s, %u cpus\n", machine["date"].get<std::string>().c_str(),
      machine["kernel"].get<std::string>().c_str(), machine["cpu"].get<std::string>().c_str(),
      machine["cpus"].get<unsigned>());
  json doc = {{"machine", machine}, {"flags", FlagsJson(f)}};
  const Status s = Run(f, doc);
  doc["ok"] = s.ok();
  if (!s.ok()) doc["error"] = s.ToString();
  return FinishRun("prefetch_bench", doc, f.json_path, s);
}

}  // namespace
}  // namespace engram::bench

int main(int argc, char** argv) { return engram::bench::Main(argc, argv); }
