#include "tools/tablectl/output.h"

#include <cstdio>
#include <ctime>
#include <iostream>

namespace engram::tablectl {

int ReportError(std::string_view message, int exit_code) {
  std::string line(message);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::fflush(stdout);
  std::fprintf(stderr, "tablectl: error: %s\n", line.c_str());
  std::fflush(stderr);
  return exit_code;
}

int ReportFailure(const Status& status) { return ReportError(status.message(), kExitFailure); }

int ReportUsage(std::string_view command, std::string_view message) {
  std::string text;
  if (!command.empty()) text = std::string(command) + ": ";
  text += message;
  text += " (see 'tablectl help";
  if (!command.empty()) text += " " + std::string(command);
  text += "')";
  return ReportError(text, kExitUsage);
}

void PrintJson(const Json& doc) {
  std::cout << doc.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  std::cout.flush();
}

std::string FormatFloat(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v));
  return buf;
}

std::string HexBytes(const uint8_t* data, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

std::string FormatUtc(uint64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_seconds);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace engram::tablectl
