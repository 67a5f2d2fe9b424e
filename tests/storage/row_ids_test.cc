// DedupeIds / UniqueInOrder (storage/row_ids.h).
#include "storage/row_ids.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace engram {
namespace {

TEST(RowIdsTest, DedupeSortsAndMapsEveryPosition) {
  const std::vector<uint64_t> ids = {9, 3, 9, 7, 3, 3, 0};
  std::vector<uint64_t> unique;
  std::vector<uint32_t> unique_of;
  DedupeIds(ids.data(), ids.size(), &unique, &unique_of);
  EXPECT_EQ(unique, (std::vector<uint64_t>{0, 3, 7, 9}));
  ASSERT_EQ(unique_of.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(unique[unique_of[i]], ids[i]) << i;
}

TEST(RowIdsTest, UniqueInOrderKeepsFirstPositions) {
  const std::vector<uint64_t> ids = {9, 3, 9, 7, 3, 3, 0};
  EXPECT_EQ(UniqueInOrder(ids.data(), ids.size()), (std::vector<uint64_t>{9, 3, 7, 0}));
  EXPECT_TRUE(UniqueInOrder(nullptr, 0).empty());
}

}  // namespace
}  // namespace engram
