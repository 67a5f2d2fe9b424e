// Command-line flags of the benchmark programs (store_bench, cache_bench, prefetch_bench): the
// argv loop and the typed value parsers, so every program accepts the same spellings and words
// its errors the same way.
//
// Contract:
// - A flag is "--NAME=VALUE" or "--NAME VALUE"; "--help" or "-h" asks for the usage (the rest of
//   argv is not read); a boolean flag (FlagLoopOptions::boolean_flags) is "--NAME" alone.
// - Every error is Status::InvalidArgument whose message names the flag: "--NAME: 'VALUE' is
//   not ...", "--NAME: empty list", "--NAME needs a value", "unexpected argument 'ARG'".
//   The programs print it with their usage and exit with status 2.
// - Lists are comma-separated; empty items are skipped (SplitComma: "1,,2" is {1, 2}).
//
// Thread safety: every function is safe to call from any thread; ParseFlagLoop is as safe as
// the callback it is given.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "storage/status.h"

namespace engram::bench {

// ---------------------------------------------------------------------------------------------
// The argv loop

struct FlagLoopOptions {
  // Flags that take no value, by name (without "--"), each with the bool set to true when the
  // flag is given. Only the exact argument "--NAME" counts: "--NAME=x" goes to the setter like
  // any other flag. Default: none.
  std::map<std::string, bool*> boolean_flags;
  // When true, '_' in a name is read as '-' ("--json_out" is "--json-out"), for programs whose
  // flags are spelled with '-'. Default: false (names reach the setter as written).
  bool underscore_is_dash = false;
};

// Sets one flag from its name (without "--") and value; an unknown name or a bad value is an
// error (conventionally "unknown flag --NAME").
using FlagSetter = std::function<Status(const std::string& name, const std::string& value)>;

// Reads argv[1..argc) in order, calling `set` for each valued flag and setting boolean flags.
// Stops at the first error (returned) or at "--help" / "-h" (*help = true, OK returned).
inline Status ParseFlagLoop(int argc, char** argv, const FlagLoopOptions& options,
                            const FlagSetter& set, bool* help) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return Status::OK();
    }
    if (arg.rfind("--", 0) != 0) {
      return Status::InvalidArgument("unexpected argument '" + arg + "'");
    }
    if (auto it = options.boolean_flags.find(arg.substr(2)); it != options.boolean_flags.end()) {
      *it->second = true;
      continue;
    }
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else {
      if (i + 1 >= argc) return Status::InvalidArgument("--" + name + " needs a value");
      value = argv[++i];
    }
    if (options.underscore_is_dash) std::replace(name.begin(), name.end(), '_', '-');
    ENGRAM_RETURN_IF_ERROR(set(name, value));
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Values. `name` is the flag's name without "--", used in the error message only.

namespace flags_internal {

// Whether `v` is a whole decimal number that fits 64 bits (no sign, no blanks), stored in *x.
inline bool ParseDecimalU64(const std::string& v, uint64_t* x) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long parsed = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || *end != '\0' || errno != 0) return false;
  *x = static_cast<uint64_t>(parsed);
  return true;
}

}  // namespace flags_internal

// An integer >= 0: "--NAME: 'V' is not a non-negative integer".
inline Result<uint64_t> ParseU64(const std::string& name, const std::string& v) {
  uint64_t x = 0;
  if (!flags_internal::ParseDecimalU64(v, &x)) {
    return Status::InvalidArgument("--" + name + ": '" + v + "' is not a non-negative integer");
  }
  return x;
}

// An integer >= 1: "--NAME: 'V' is not an integer > 0".
inline Result<uint64_t> ParsePositiveU64(const std::string& name, const std::string& v) {
  uint64_t x = 0;
  if (!flags_internal::ParseDecimalU64(v, &x) || x == 0) {
    return Status::InvalidArgument("--" + name + ": '" + v + "' is not an integer > 0");
  }
  return x;
}

// An integer in [1, 2^30]: ParseU64's error, or "--NAME: 'V' must be in [1, 2^30]".
inline Result<uint32_t> ParsePositiveU32(const std::string& name, const std::string& v) {
  ENGRAM_ASSIGN_OR_RETURN(uint64_t x, ParseU64(name, v));
  if (x == 0 || x > 1u << 30) {
    return Status::InvalidArgument("--" + name + ": '" + v + "' must be in [1, 2^30]");
  }
  return static_cast<uint32_t>(x);
}

// An integer in [1, max]: ParsePositiveU64's error, or "--NAME: 'V' is above MAX".
inline Result<uint32_t> ParsePositiveU32AtMost(const std::string& name, const std::string& v,
                                               uint32_t max) {
  ENGRAM_ASSIGN_OR_RETURN(uint64_t x, ParsePositiveU64(name, v));
  if (x > max) {
    return Status::InvalidArgument("--" + name + ": '" + v + "' is above " + std::to_string(max));
  }
  return static_cast<uint32_t>(x);
}

// A finite number >= 0 (allow_zero) or > 0: "--NAME: 'V' is not a number >= 0" (or "> 0").
inline Result<double> ParseDouble(const std::string& name, const std::string& v, bool allow_zero) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x) || x < 0 || (!allow_zero && x == 0)) {
    return Status::InvalidArgument("--" + name + ": '" + v + "' is not a number " +
                                   (allow_zero ? ">= 0" : "> 0"));
  }
  return x;
}

// A finite number > 0: "--NAME: 'V' is not a number > 0".
inline Result<double> ParsePositiveDouble(const std::string& name, const std::string& v) {
  return ParseDouble(name, v, /*allow_zero=*/false);
}

// The items of the list `v`, at least one: "--NAME: empty list".
inline Result<std::vector<std::string>> ParseNonEmptyList(const std::string& name,
                                                          const std::string& v) {
  std::vector<std::string> items = SplitComma(v);
  if (items.empty()) return Status::InvalidArgument("--" + name + ": empty list");
  return items;
}

// The items of the list `v`, at least one, each of `known`: ParseNonEmptyList's error, or
// "--NAME: unknown workload 'W' (known: A, B)".
inline Result<std::vector<std::string>> ParseWorkloadList(const std::string& name,
                                                          const std::string& v,
                                                          const std::vector<std::string>& known) {
  ENGRAM_ASSIGN_OR_RETURN(std::vector<std::string> items, ParseNonEmptyList(name, v));
  for (const std::string& w : items) {
    if (std::find(known.begin(), known.end(), w) == known.end()) {
      std::string all;
      for (const std::string& k : known) all += (all.empty() ? "" : ", ") + k;
      return Status::InvalidArgument("--" + name + ": unknown workload '" + w + "' (known: " + all +
                                     ")");
    }
  }
  return items;
}

// The items of the list `v`, at least one ("--NAME: empty list"), each converted by
// `parse_item(item)`, a Result<T> (its error is returned as it is).
template <typename T, typename ParseItem>
Result<std::vector<T>> ParseList(const std::string& name, const std::string& v,
                                 const ParseItem& parse_item) {
  std::vector<T> out;
  for (const std::string& item : SplitComma(v)) {
    ENGRAM_ASSIGN_OR_RETURN(T x, parse_item(item));
    out.push_back(x);
  }
  if (out.empty()) return Status::InvalidArgument("--" + name + ": empty list");
  return out;
}

}  // namespace engram::bench
