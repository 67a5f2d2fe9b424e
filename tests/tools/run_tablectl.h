// Runs the real tablectl binary (TABLECTL_PATH, set by tests/tools/CMakeLists.txt) as a
// subprocess for the tablectl_tests, plus the small text helpers those tests share.
//
// Thread safety: call from the test thread (fork + waitpid).
#pragma once

#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace engram::testing {

struct RunResult {
  int exit_code = -1;  // -1 when tablectl died with a signal
  std::string out;
  std::string err;
};

// Runs tablectl with `args`, `dir` as working directory, stdout and stderr captured in files
// "stdout" and "stderr" under `dir`. Fails the test if tablectl dies with a signal.
RunResult RunTablectl(const TempDir& dir, const std::vector<std::string>& args);

// RunTablectl() for a command that must succeed (exit 0) with nothing on stderr.
RunResult RunTablectlOk(const TempDir& dir, const std::vector<std::string>& args);

// The whole file at `path` ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// `s` split at '\n' (no trailing empty line).
std::vector<std::string> SplitLines(const std::string& s);

}  // namespace engram::testing
