// Command-line parsing for tablectl: flags, positional arguments, and strict number parsing.
//
// A command declares the flags it accepts (FlagSpec); ParseArgs splits argv into positional
// arguments and flag values. Accepted spellings: "--flag", "--flag VALUE", "--flag=VALUE";
// "--" ends the flags. A word starting with '-' followed by a digit ("-1") is positional, so
// a negative id reaches the number parser and gets a precise error. Every error is an
// InvalidArgument whose message names the flag or value; tablectl reports those as usage
// errors (exit status 2).
//
// Thread safety: values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"

namespace engram::tablectl {

struct FlagSpec {
  std::string name;        // without the leading "--"
  std::string value_name;  // "" for a boolean flag; else shown in help ("N", "SEED")
  std::string help;        // one line
};

class ParsedArgs {
 public:
  const std::vector<std::string>& positional() const { return positional_; }
  bool Has(std::string_view flag) const { return flags_.find(flag) != flags_.end(); }
  // The value of a flag that takes one; nullopt when the flag was not given.
  std::optional<std::string> Value(std::string_view flag) const;

 private:
  friend Result<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                      const std::vector<FlagSpec>& flags);
  std::vector<std::string> positional_;
  std::map<std::string, std::string, std::less<>> flags_;  // boolean flags map to ""
};

// Parses `args` (the words after the command name). Unknown flags, a flag given twice, a
// missing value, or a value given to a boolean flag are errors.
Result<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                             const std::vector<FlagSpec>& flags);

// Decimal non-negative integers only ("12", not "+12", "1e3", "0x10", " 12", "-1"); `what`
// names the value in the error ("--rows", "row id").
Result<uint64_t> ParseUint64(std::string_view text, std::string_view what);
// As ParseUint64, also rejecting values above UINT32_MAX.
Result<uint32_t> ParseUint32(std::string_view text, std::string_view what);

// A byte size: a non-negative integer with an optional unit, K/M/G/T (powers of 1024, also
// spelt KiB/MiB/GiB/TiB or k/m/g/t) or B; "0" is allowed. `what` names the value in errors.
Result<uint64_t> ParseByteSize(std::string_view text, std::string_view what);
// A positive decimal number of seconds ("5", "0.5").
Result<double> ParseSeconds(std::string_view text, std::string_view what);

// A half-open row range "A:B" with either side optional, like a Python slice ("A:", ":B",
// ":"). end == nullopt means "to the last row".
struct RowRange {
  uint64_t begin = 0;
  std::optional<uint64_t> end;
};
Result<RowRange> ParseRowRange(std::string_view text);

}  // namespace engram::tablectl
