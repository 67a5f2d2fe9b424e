// tablectl replay and profile: cache policies on a row-id trace (cache/replay.h) and the hot
// rows of a trace (cache/trace_profile.h).
//
//   tablectl replay --trace TRACE.npy --cache-rows N [--policy P[,P...]|all] [--shards S]
//                   [--hot HOT.npy] [--range BEGIN:END] [--json]
//   tablectl profile --trace TRACE.npy --top K --out HOT.npy [--range BEGIN:END] [--json]
//
// TRACE.npy: integer ids (int64, uint64, int32, uint32), any shape, read flattened in C order.
// --range keeps accesses [BEGIN, END) of it. replay prints one line (or one JSON object) per
// policy as each finishes; profile writes the K most frequent ids, most frequent first, as a
// 1-D int64 .npy (ties: smaller id first).
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/replay.h"
#include "cache/trace_profile.h"
#include "storage/array_file.h"
#include "storage/env.h"
#include "tools/tablectl/cmd_common.h"
#include "tools/tablectl/commands.h"
#include "tools/tablectl/output.h"

namespace engram::tablectl {
namespace {

constexpr char kOpt[] = "opt";

// Accesses [begin, end) of the trace; end == nullopt: to the end.
struct AccessRange {
  uint64_t begin = 0;
  std::optional<uint64_t> end;
};

Result<AccessRange> ParseAccessRange(const ParsedArgs& args) {
  AccessRange range;
  std::optional<std::string> text = args.Value("range");
  if (!text) return range;
  const size_t colon = text->find(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("--range: '" + *text +
                                   "' is not a range (expected BEGIN:END, BEGIN: or :END)");
  }
  const std::string begin = text->substr(0, colon), end = text->substr(colon + 1);
  if (!begin.empty()) {
    ENGRAM_ASSIGN_OR_RETURN(range.begin, ParseUint64(begin, "--range begin"));
  }
  if (!end.empty()) {
    ENGRAM_ASSIGN_OR_RETURN(range.end, ParseUint64(end, "--range end"));
  }
  if (range.end && *range.end < range.begin) {
    return Status::InvalidArgument("--range: end " + std::to_string(*range.end) +
                                   " is before begin " + std::to_string(range.begin));
  }
  return range;
}

// The trace file's ids, and the part of them --range selects.
struct Trace {
  std::vector<uint64_t> ids;
  std::span<const uint64_t> selected;
};

Result<Trace> LoadTrace(const std::string& path, const AccessRange& range) {
  Trace t;
  ENGRAM_ASSIGN_OR_RETURN(t.ids, ReadIdsNpy(Env::Default(), path));
  const uint64_t size = t.ids.size();
  const uint64_t end = range.end.value_or(size);
  if (range.begin > size || end > size) {
    return Status::InvalidArgument("--range " + std::to_string(range.begin) + ":" +
                                   (range.end ? std::to_string(*range.end) : std::string()) +
                                   " is outside " + path + ", which has " + std::to_string(size) +
                                   " accesses");
  }
  t.selected = std::span<const uint64_t>(t.ids).subspan(range.begin, end - range.begin);
  return t;
}

// ---------------------------------------------------------------------------------------------
// replay

struct ReplayArgs {
  std::string trace;
  std::string hot;  // "" when not given
  AccessRange range;
  uint64_t cache_rows = 0;
  uint32_t shards = 1;
  std::vector<std::string> policies;
};

std::string KnownPolicies() {
  std::string known;
  for (const std::string& p : cache::PolicyNames()) known += p + ", ";
  return known + kOpt + ", all";
}

// "P[,P...]" or "all" (also inside a list), each checked, duplicates dropped.
Result<std::vector<std::string>> ParsePolicies(const std::string& text) {
  std::vector<std::string> policies;
  auto add = [&](const std::string& name) {
    for (const std::string& p : policies) {
      if (p == name) return;
    }
    policies.push_back(name);
  };
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string name =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (name == "all") {
      for (const std::string& p : cache::PolicyNames()) add(p);
      add(kOpt);
    } else if (name == kOpt || cache::NewPolicyFactory(name) != nullptr) {
      add(name);
    } else {
      return Status::InvalidArgument("--policy: unknown policy '" + name +
                                     "' (known: " + KnownPolicies() + ")");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return policies;
}

Result<ReplayArgs> ParseReplayArgs(const ParsedArgs& args) {
  ENGRAM_RETURN_IF_ERROR(CheckPositionalCount(args, 0, 0, "no positional arguments"));
  ReplayArgs o;
  ENGRAM_ASSIGN_OR_RETURN(o.trace, RequiredValue(args, "trace", "TRACE.npy"));
  ENGRAM_ASSIGN_OR_RETURN(std::string rows, RequiredValue(args, "cache-rows", "N"));
  ENGRAM_ASSIGN_OR_RETURN(o.cache_rows, ParseUint64(rows, "--cache-rows"));
  if (o.cache_rows == 0) return Status::InvalidArgument("--cache-rows must be at least 1");
  if (std::optional<std::string> shards = args.Value("shards")) {
    ENGRAM_ASSIGN_OR_RETURN(o.shards, ParseUint32(*shards, "--shards"));
    if (o.shards == 0) return Status::InvalidArgument("--shards must be at least 1");
  }
  ENGRAM_ASSIGN_OR_RETURN(o.policies, ParsePolicies(args.Value("policy").value_or("default")));
  o.hot = args.Value("hot").value_or("");
  ENGRAM_ASSIGN_OR_RETURN(o.range, ParseAccessRange(args));
  return o;
}

void PrintReplayResult(const cache::ReplayResult& r, const ReplayArgs& o, bool json) {
  if (json) {  // one object per line, printed as soon as the policy is done
    const Json doc = {{"command", "replay"},
                      {"policy", r.policy},
                      {"cache_rows", r.cache_rows},
                      {"accesses", r.accesses},
                      {"hits", r.hits},
                      {"hit_ratio", r.hit_ratio},
                      {"hot_rows_pinned", r.hot_rows_pinned},
                      {"seconds", r.seconds},
                      {"metadata_bytes_per_row", r.metadata_bytes_per_row},
                      {"trace", o.trace}};
    std::cout << doc.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    std::cout.flush();
    return;
  }
  std::printf(
      "%-12s hit ratio %.4f (%llu of %llu), %llu rows (%llu hot pinned), "
      "%.1f B/row metadata, %.2f s\n",
      r.policy.c_str(), r.hit_ratio, static_cast<unsigned long long>(r.hits),
      static_cast<unsigned long long>(r.accesses), static_cast<unsigned long long>(r.cache_rows),
      static_cast<unsigned long long>(r.hot_rows_pinned), r.metadata_bytes_per_row, r.seconds);
  std::fflush(stdout);
}

Status ExecuteReplay(const ReplayArgs& o, const CommonOptions& common) {
  ENGRAM_ASSIGN_OR_RETURN(Trace trace, LoadTrace(o.trace, o.range));
  cache::ReplayOptions options;
  options.cache_rows = o.cache_rows;
  options.shards = o.shards;
  if (!o.hot.empty()) {
    ENGRAM_ASSIGN_OR_RETURN(options.hot_rows, ReadIdsNpy(Env::Default(), o.hot));
  }
  for (const std::string& policy : o.policies) {
    options.policy = policy;
    ENGRAM_ASSIGN_OR_RETURN(cache::ReplayResult r, cache::Replay(trace.selected, options));
    PrintReplayResult(r, o, common.json);
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// profile

struct ProfileArgs {
  std::string trace;
  std::string out;
  uint64_t top = 0;
  AccessRange range;
};

Result<ProfileArgs> ParseProfileArgs(const ParsedArgs& args) {
  ENGRAM_RETURN_IF_ERROR(CheckPositionalCount(args, 0, 0, "no positional arguments"));
  ProfileArgs o;
  ENGRAM_ASSIGN_OR_RETURN(o.trace, RequiredValue(args, "trace", "TRACE.npy"));
  ENGRAM_ASSIGN_OR_RETURN(std::string top, RequiredValue(args, "top", "K"));
  ENGRAM_ASSIGN_OR_RETURN(o.top, ParseUint64(top, "--top"));
  if (o.top == 0) return Status::InvalidArgument("--top must be at least 1");
  ENGRAM_ASSIGN_OR_RETURN(o.out, RequiredValue(args, "out", "HOT.npy"));
  ENGRAM_ASSIGN_OR_RETURN(o.range, ParseAccessRange(args));
  return o;
}

Status ExecuteProfile(const ProfileArgs& o, const CommonOptions& common) {
  ENGRAM_ASSIGN_OR_RETURN(Trace trace, LoadTrace(o.trace, o.range));
  const cache::TraceProfile profile = cache::ProfileTrace(trace.selected, o.top);
  std::vector<int64_t> ids;
  ids.reserve(profile.top.size());
  for (const cache::RowCount& r : profile.top) {
    if (r.id > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Status::InvalidArgument(o.trace + ": id " + std::to_string(r.id) +
                                     " does not fit the int64 output");
    }
    ids.push_back(static_cast<int64_t>(r.id));
  }
  ENGRAM_RETURN_IF_ERROR(WriteNpy(Env::Default(), o.out, ElementType::kI64,
                                  {static_cast<uint64_t>(ids.size())}, ids.data()));
  const double share = profile.accesses == 0 ? 0
                                             : static_cast<double>(profile.top_accesses) /
                                                   static_cast<double>(profile.accesses);
  if (common.json) {
    PrintJson({{"command", "profile"},
               {"accesses", profile.accesses},
               {"distinct", profile.distinct},
               {"rows", ids.size()},
               {"top_share", share},
               {"out", o.out},
               {"trace", o.trace}});
  } else {
    std::printf(
        "%llu accesses, %llu distinct ids; the top %zu rows take %.2f%% of accesses -> %s\n",
        static_cast<unsigned long long>(profile.accesses),
        static_cast<unsigned long long>(profile.distinct), ids.size(), 100 * share, o.out.c_str());
  }
  return Status::OK();
}

}  // namespace

int RunReplay(const ParsedArgs& args) {
  Result<ReplayArgs> o = ParseReplayArgs(args);
  if (!o.ok()) return ReportArgumentError("replay", o.status());
  Status s = ExecuteReplay(*o, GetCommonOptions(args));
  return s.ok() ? kExitOk : ReportFailure(s);
}

int RunProfile(const ParsedArgs& args) {
  Result<ProfileArgs> o = ParseProfileArgs(args);
  if (!o.ok()) return ReportArgumentError("profile", o.status());
  Status s = ExecuteProfile(*o, GetCommonOptions(args));
  return s.ok() ? kExitOk : ReportFailure(s);
}

}  // namespace engram::tablectl
