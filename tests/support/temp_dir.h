// TempDir: a fresh directory on the real disk (under $TMPDIR or /var/tmp, not tmpfs, so
// O_DIRECT and io_uring see a real block device), removed with everything in it on destruction.
#pragma once

#include <string>

namespace engram::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace engram::testing
