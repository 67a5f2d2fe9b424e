#include "tests/support/file_damage.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace engram::testing {

void FlipByte(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  uint8_t b = 0;
  EXPECT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
  b ^= 0x5a;
  EXPECT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
  EXPECT_EQ(::fsync(fd), 0);
  ::close(fd);
}

}  // namespace engram::testing
