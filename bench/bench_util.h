// Small helpers shared by the benchmark programs (store_bench, cache_bench): human output,
// flag lists, a monotonic clock, and the machine description every JSON report starts with.
//
// Thread safety: every function is safe to call from any thread; set g_out before starting
// threads.
#pragma once

#include <sys/utsname.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace engram::bench {

// Where Say() writes: stdout, or stderr when --json owns stdout.
inline FILE* g_out = stdout;

// printf to g_out, flushed (progress lines show up while a run goes on).
inline void Say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void Say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(g_out, fmt, ap);
  va_end(ap);
  std::fflush(g_out);
}

// The non-empty items of a comma-separated list ("a,,b" -> {"a", "b"}).
inline std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Seconds on the steady clock (differences only).
inline double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The first line of the file at `path` ("" when it cannot be read).
inline std::string ReadFirstLine(const char* path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// The machine a report was measured on: date, kernel, CPU model, CPU count. Benchmarks add
// their own fields.
inline nlohmann::json MachineJson() {
  utsname u{};
  ::uname(&u);
  std::string cpu;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S%z", std::localtime(&now));
  return {{"date", date},
          {"kernel", std::string(u.release)},
          {"cpu", cpu},
          {"cpus", std::thread::hardware_concurrency()}};
}

}  // namespace engram::bench
