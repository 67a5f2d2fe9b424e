// Test helper: damages a file on disk behind the store's back (bit rot, a torn sector).
#pragma once

#include <cstdint>
#include <string>

namespace engram::testing {

// XORs the byte at `offset` of `path` with 0x5a and fsyncs; fails the test on any error.
void FlipByte(const std::string& path, uint64_t offset);

}  // namespace engram::testing
