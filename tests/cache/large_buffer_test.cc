// LargeBuffer (cache/large_buffer.h): zeroed, aligned, writable memory from the heap (small)
// or a huge-page-advised mapping (large), handed over by moves.
#include "cache/large_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <utility>

namespace engram::cache {
namespace {

void ExpectZeroedAndWritable(const LargeBuffer& b) {
  ASSERT_NE(b.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u);
  for (size_t i = 0; i < b.size(); i += 4093) ASSERT_EQ(b.data()[i], 0) << "byte " << i;
  EXPECT_EQ(b.data()[b.size() - 1], 0);
  std::memset(b.data(), 0xAB, b.size());
  EXPECT_EQ(b.data()[b.size() - 1], 0xAB);
}

TEST(LargeBufferTest, SmallBufferIsZeroedAlignedAndWritable) {
  LargeBuffer b(1000);
  EXPECT_EQ(b.size(), 1000u);
  ExpectZeroedAndWritable(b);
}

TEST(LargeBufferTest, LargeBufferIsHugePageAligned) {
  LargeBuffer b((size_t{5} << 20) + 123);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % (size_t{2} << 20), 0u);
  ExpectZeroedAndWritable(b);
}

TEST(LargeBufferTest, MovesHandOverTheMemory) {
  LargeBuffer a(size_t{3} << 20);
  a.data()[7] = 42;
  uint8_t* const p = a.data();
  LargeBuffer b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.data()[7], 42);
  LargeBuffer c(64);
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.size(), size_t{3} << 20);
  LargeBuffer empty(0);
  EXPECT_EQ(empty.data(), nullptr);
}

}  // namespace
}  // namespace engram::cache
