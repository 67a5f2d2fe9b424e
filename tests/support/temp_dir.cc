#include "tests/support/temp_dir.h"

#include <cstdlib>
#include <stdexcept>

#include "storage/env.h"

namespace engram::testing {

TempDir::TempDir() {
  const char* base = std::getenv("ENGRAM_TEST_TMPDIR");
  std::string tmpl = std::string(base ? base : "/var/tmp") + "/engram-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() { Env::Default()->RemoveDirRecursive(path_).PermitUnchecked(); }

}  // namespace engram::testing
