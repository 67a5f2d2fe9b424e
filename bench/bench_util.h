// Small helpers shared by the benchmark programs (store_bench, cache_bench, prefetch_bench):
// human output, flag lists, a monotonic clock, the machine description every JSON report
// starts with, and the end of a run (JSON file, exit status).
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

#include "storage/status.h"

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

// "1.23 GiB".
inline std::string GiB(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  return buf;
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

// The end of a benchmark's Main: writes `doc` to `json_path` unless it is empty ("PROGRAM: cannot
// write PATH" on stderr when that fails, which does not change the status), then returns 0 when
// `s` is OK, else prints "PROGRAM: STATUS" on stderr and returns 1.
inline int FinishRun(const char* program, const nlohmann::json& doc, const std::string& json_path,
                     const Status& s) {
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << doc.dump(2) << "\n";
    if (!out) std::fprintf(stderr, "%s: cannot write %s\n", program, json_path.c_str());
  }
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace engram::bench
