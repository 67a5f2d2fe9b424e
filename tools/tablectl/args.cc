#include "tools/tablectl/args.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace engram::tablectl {
namespace {

const FlagSpec* FindFlag(const std::vector<FlagSpec>& flags, std::string_view name) {
  for (const FlagSpec& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool LooksLikeFlag(const std::string& word) {
  if (word.size() < 2 || word[0] != '-') return false;
  return !(word[1] >= '0' && word[1] <= '9');  // "-1" is a (bad) number, not a flag
}

}  // namespace

std::optional<std::string> ParsedArgs::Value(std::string_view flag) const {
  auto it = flags_.find(flag);
  if (it == flags_.end()) return std::nullopt;
  return it->second;
}

Result<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                             const std::vector<FlagSpec>& flags) {
  ParsedArgs parsed;
  bool flags_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (flags_ended || !LooksLikeFlag(word)) {
      parsed.positional_.push_back(word);
      continue;
    }
    if (word == "--") {
      flags_ended = true;
      continue;
    }
    if (word.rfind("--", 0) != 0) {
      return Status::InvalidArgument("unknown flag '" + word + "' (flags are spelled --name)");
    }
    const size_t eq = word.find('=');
    const std::string name = word.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const FlagSpec* spec = FindFlag(flags, name);
    if (spec == nullptr) return Status::InvalidArgument("unknown flag '--" + name + "'");
    if (parsed.flags_.count(name)) {
      return Status::InvalidArgument("flag '--" + name + "' given more than once");
    }
    std::string value;
    if (spec->value_name.empty()) {
      if (eq != std::string::npos) {
        return Status::InvalidArgument("flag '--" + name + "' takes no value");
      }
    } else if (eq != std::string::npos) {
      value = word.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Status::InvalidArgument("flag '--" + name + "' needs a value " + spec->value_name);
    }
    parsed.flags_.emplace(name, std::move(value));
  }
  return parsed;
}

Result<uint64_t> ParseUint64(std::string_view text, std::string_view what) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument(std::string(what) + ": '" + std::string(text) + "' " + why);
  };
  if (text.empty()) return bad("is not a number (expected a non-negative integer)");
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return bad("is not a number (expected a non-negative integer)");
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return bad("is too large");
    v = v * 10 + digit;
  }
  return v;
}

Result<uint32_t> ParseUint32(std::string_view text, std::string_view what) {
  ENGRAM_ASSIGN_OR_RETURN(uint64_t v, ParseUint64(text, what));
  if (v > std::numeric_limits<uint32_t>::max()) {
    return Status::InvalidArgument(std::string(what) + ": '" + std::string(text) +
                                   "' is too large (at most 4294967295)");
  }
  return static_cast<uint32_t>(v);
}

Result<uint64_t> ParseByteSize(std::string_view text, std::string_view what) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string_view unit = text.substr(digits);
  int shift = -1;
  static const std::pair<std::string_view, int> kUnits[] = {
      {"", 0},     {"B", 0},  {"K", 10}, {"k", 10},   {"KiB", 10}, {"M", 20}, {"m", 20},
      {"MiB", 20}, {"G", 30}, {"g", 30}, {"GiB", 30}, {"T", 40},   {"t", 40}, {"TiB", 40}};
  for (const auto& [name, bits] : kUnits) {
    if (unit == name) shift = bits;
  }
  if (digits == 0 || shift < 0) {
    return Status::InvalidArgument(std::string(what) + ": '" + std::string(text) +
                                   "' is not a size (examples: 0, 4096, 512MiB, 8G)");
  }
  ENGRAM_ASSIGN_OR_RETURN(uint64_t n, ParseUint64(text.substr(0, digits), what));
  if (shift > 0 && n > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return Status::InvalidArgument(std::string(what) + ": '" + std::string(text) +
                                   "' is too large");
  }
  return n << shift;
}

Result<double> ParseSeconds(std::string_view text, std::string_view what) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v) || v <= 0) {
    return Status::InvalidArgument(std::string(what) + ": '" + std::string(text) +
                                   "' is not a positive number of seconds");
  }
  return v;
}

Result<RowRange> ParseRowRange(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("--rows: '" + std::string(text) +
                                   "' is not a range (expected A:B, A: or :B)");
  }
  RowRange range;
  const std::string_view a = text.substr(0, colon), b = text.substr(colon + 1);
  if (!a.empty()) {
    ENGRAM_ASSIGN_OR_RETURN(range.begin, ParseUint64(a, "--rows start"));
  }
  if (!b.empty()) {
    ENGRAM_ASSIGN_OR_RETURN(range.end, ParseUint64(b, "--rows end"));
  }
  if (range.end && *range.end < range.begin) {
    return Status::InvalidArgument("--rows: end " + std::to_string(*range.end) +
                                   " is before start " + std::to_string(range.begin));
  }
  return range;
}

}  // namespace engram::tablectl
