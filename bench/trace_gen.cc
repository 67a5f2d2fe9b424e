// trace_gen: writes the row-id traces of the cache benchmark (bench/run_cache_bench.sh) as 1-D
// int64 .npy files, seeded and deterministic (bench/workload.h has the generators).
//
//   trace_gen --kind zipf    --alpha A --rows R --accesses N [--seed S] --out F.npy
//   trace_gen --kind drift   --alpha A --rows R --accesses N --period P [--shift F] [--seed S]
//             --out F.npy
//   trace_gen --kind uniform --rows R --accesses N [--seed S] --out F.npy
//   trace_gen --summarize F.npy --rows R [--out-json F.json]
//
// zipf     MakeTrace(zipf:A): Zipf ranks scrambled over the table by IdPermutation.
// drift    MakeDriftTrace: the same ranks, but the rank -> row map changes every P accesses
//          (--shift: the fraction of ranks that move at each change, default 1 = all).
// uniform  MakeTrace(uniform).
// Besides F.npy, the generating forms write F.json (F without ".npy", plus ".json"): the
// parameters, rows, accesses, distinct rows, the share of accesses taken by the hottest 1 %,
// 5 % and 10 % of the rows (what a cache of that size pinned with hindsight would hit), and the
// generation time. --summarize writes that summary for an existing trace (to stdout, and to
// --out-json when given). The JSON is also printed on stdout. Exit status: 0 ok, 1 error,
// 2 bad arguments.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/workload.h"
#include "storage/array_file.h"
#include "storage/env.h"
#include "tools/tablectl/args.h"

namespace engram::bench {
namespace {

using Json = nlohmann::json;
using tablectl::FlagSpec;
using tablectl::ParsedArgs;

const std::vector<FlagSpec>& Flags() {
  static const std::vector<FlagSpec> flags = {
      {"kind", "KIND", "zipf, drift or uniform"},
      {"alpha", "A", "Zipf exponent (> 0; default 0.99)"},
      {"rows", "R", "table rows: ids are in [0, R)"},
      {"accesses", "N", "trace length"},
      {"period", "P", "drift: accesses between hot-set changes"},
      {"shift", "F", "drift: fraction of ranks moved per change, in (0, 1] (default 1)"},
      {"seed", "S", "generator seed (default 42)"},
      {"out", "F.npy", "output trace"},
      {"summarize", "F.npy", "summarize an existing trace instead of generating one"},
      {"out-json", "F.json", "--summarize: also write the summary here"},
      {"help", "", "this text"},
  };
  return flags;
}

void PrintUsage(FILE* out) {
  std::fprintf(out,
               "usage: trace_gen --kind zipf|drift|uniform --rows R --accesses N [--alpha A]\n"
               "                 [--period P] [--shift F] [--seed S] --out F.npy\n"
               "       trace_gen --summarize F.npy --rows R [--out-json F.json]\n");
  for (const FlagSpec& f : Flags()) {
    std::fprintf(out, "  --%-10s %-7s %s\n", f.name.c_str(), f.value_name.c_str(), f.help.c_str());
  }
}

Result<double> ParseDouble(const ParsedArgs& args, const char* flag, double fallback) {
  const std::optional<std::string> v = args.Value(flag);
  if (!v) return fallback;
  char* end = nullptr;
  const double d = std::strtod(v->c_str(), &end);
  if (v->empty() || end != v->c_str() + v->size()) {
    return Status::InvalidArgument(std::string("--") + flag + " " + *v + " is not a number");
  }
  return d;
}

Result<uint64_t> RequiredUint(const ParsedArgs& args, const char* flag) {
  const std::optional<std::string> v = args.Value(flag);
  if (!v) return Status::InvalidArgument(std::string("--") + flag + " is required");
  return tablectl::ParseUint64(*v, std::string("--") + flag);
}

// "F.npy" -> "F.json".
std::string SidecarPath(const std::string& npy) {
  const std::string stem =
      npy.size() > 4 && npy.substr(npy.size() - 4) == ".npy" ? npy.substr(0, npy.size() - 4) : npy;
  return stem + ".json";
}

Status WriteText(const std::string& path, const std::string& text) {
  Env* env = Env::Default();
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(path));
  ENGRAM_RETURN_IF_ERROR(file->Append(text.data(), text.size()));
  return file->Close();
}

Result<Json> SummaryJson(const std::vector<uint64_t>& ids, uint64_t rows) {
  ENGRAM_ASSIGN_OR_RETURN(TraceSummary s,
                          SummarizeTrace(ids.data(), ids.size(), rows, {0.01, 0.05, 0.10}));
  return Json{{"rows", rows},
              {"accesses", s.accesses},
              {"distinct", s.distinct},
              {"top_1pct_share", s.top_share[0]},
              {"top_5pct_share", s.top_share[1]},
              {"top_10pct_share", s.top_share[2]}};
}

Status Summarize(const ParsedArgs& args) {
  const std::string path = *args.Value("summarize");
  ENGRAM_ASSIGN_OR_RETURN(uint64_t rows, RequiredUint(args, "rows"));
  ENGRAM_ASSIGN_OR_RETURN(std::vector<uint64_t> ids, ReadIdsNpy(Env::Default(), path));
  ENGRAM_ASSIGN_OR_RETURN(Json doc, SummaryJson(ids, rows));
  doc["trace"] = path;
  const std::string text = doc.dump() + "\n";
  if (const auto out = args.Value("out-json")) ENGRAM_RETURN_IF_ERROR(WriteText(*out, text));
  std::fputs(text.c_str(), stdout);
  return Status::OK();
}

Status Generate(const ParsedArgs& args) {
  const std::optional<std::string> kind = args.Value("kind");
  const std::optional<std::string> out = args.Value("out");
  if (!kind || !out) return Status::InvalidArgument("--kind and --out are required");
  ENGRAM_ASSIGN_OR_RETURN(uint64_t rows, RequiredUint(args, "rows"));
  ENGRAM_ASSIGN_OR_RETURN(uint64_t accesses, RequiredUint(args, "accesses"));
  ENGRAM_ASSIGN_OR_RETURN(double alpha, ParseDouble(args, "alpha", 0.99));
  ENGRAM_ASSIGN_OR_RETURN(double shift, ParseDouble(args, "shift", 1.0));
  uint64_t seed = 42;
  if (const auto v = args.Value("seed")) {
    ENGRAM_ASSIGN_OR_RETURN(seed, tablectl::ParseUint64(*v, "--seed"));
  }
  Json doc = {{"kind", *kind}, {"seed", seed}};
  const auto start = std::chrono::steady_clock::now();
  std::vector<uint64_t> ids;
  if (*kind == "zipf" || *kind == "uniform") {
    TraceSpec spec;
    if (*kind == "zipf") {
      spec.kind = TraceKind::kZipf;
      spec.zipf_alpha = alpha;
      doc["alpha"] = alpha;
    }
    TraceOptions options;
    options.length = accesses;
    options.seed = seed;
    ENGRAM_ASSIGN_OR_RETURN(ids, MakeTrace(spec, rows, options));
  } else if (*kind == "drift") {
    DriftOptions options;
    options.length = accesses;
    options.seed = seed;
    options.shift = shift;
    ENGRAM_ASSIGN_OR_RETURN(options.period, RequiredUint(args, "period"));
    ENGRAM_ASSIGN_OR_RETURN(ids, MakeDriftTrace(rows, alpha, options));
    doc["alpha"] = alpha;
    doc["period"] = options.period;
    doc["shift"] = shift;
  } else {
    return Status::InvalidArgument("--kind " + *kind + ": expected zipf, drift or uniform");
  }
  const double gen_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ENGRAM_RETURN_IF_ERROR(
      WriteNpy(Env::Default(), *out, ElementType::kI64, {ids.size()}, ids.data()));
  ENGRAM_ASSIGN_OR_RETURN(Json summary, SummaryJson(ids, rows));
  doc.update(summary);
  doc["trace"] = *out;
  doc["generate_seconds"] = gen_seconds;
  const std::string text = doc.dump() + "\n";
  ENGRAM_RETURN_IF_ERROR(WriteText(SidecarPath(*out), text));
  std::fputs(text.c_str(), stdout);
  return Status::OK();
}

int Main(int argc, char** argv) {
  Result<ParsedArgs> args = tablectl::ParseArgs({argv + 1, argv + argc}, Flags());
  if (!args.ok()) {
    std::fprintf(stderr, "trace_gen: %s\n", args.status().ToString().c_str());
    PrintUsage(stderr);
    return 2;
  }
  if (args->Has("help")) {
    PrintUsage(stdout);
    return 0;
  }
  if (!args->positional().empty()) {
    std::fprintf(stderr, "trace_gen: unexpected argument %s\n", args->positional()[0].c_str());
    return 2;
  }
  const Status s = args->Has("summarize") ? Summarize(*args) : Generate(*args);
  if (!s.ok()) {
    std::fprintf(stderr, "trace_gen: %s\n", s.ToString().c_str());
    return s.IsInvalidArgument() ? 2 : 1;
  }
  return 0;
}

}  // namespace
}  // namespace engram::bench

int main(int argc, char** argv) { return engram::bench::Main(argc, argv); }
