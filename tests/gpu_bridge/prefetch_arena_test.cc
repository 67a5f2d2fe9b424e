// StagingArena: alignment, first fit, coalescing, exhaustion, bad frees, and a random
// allocate/free run checked against a byte map for overlaps.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "gpu_bridge/staging_arena.h"

namespace engram::gpu {
namespace {

TEST(StagingArenaTest, AlignsRoundsAndReusesFirstFit) {
  StagingArena arena(nullptr, 4096 + 100);  // capacity rounds down to 4096
  EXPECT_EQ(arena.capacity(), 4096u);
  auto a = arena.Allocate(1);
  auto b = arena.Allocate(300);
  auto c = arena.Allocate(0);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(*a, 0u);
  EXPECT_EQ(*b, 256u);
  EXPECT_EQ(*c, 768u);  // 300 rounds to 512
  EXPECT_EQ(arena.used(), 256u + 512u + 256u);
  ASSERT_TRUE(arena.Free(*b).ok());
  auto d = arena.Allocate(256);  // first fit: b's old place
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, 256u);
  EXPECT_EQ(arena.allocations(), 3u);
}

TEST(StagingArenaTest, FreedNeighboursCoalesce) {
  StagingArena arena(nullptr, 1024);
  auto a = arena.Allocate(256), b = arena.Allocate(256), c = arena.Allocate(256),
       d = arena.Allocate(256);
  ASSERT_TRUE(a && b && c && d);
  EXPECT_FALSE(arena.Allocate(1));  // full
  EXPECT_EQ(arena.largest_free(), 0u);
  ASSERT_TRUE(arena.Free(*a).ok());
  ASSERT_TRUE(arena.Free(*c).ok());
  EXPECT_EQ(arena.largest_free(), 256u);
  EXPECT_FALSE(arena.Allocate(512));  // 512 free in all, but not in one piece
  ASSERT_TRUE(arena.Free(*b).ok());   // joins a and c
  EXPECT_EQ(arena.largest_free(), 768u);
  ASSERT_TRUE(arena.Free(*d).ok());
  EXPECT_EQ(arena.largest_free(), 1024u);
  EXPECT_EQ(arena.used(), 0u);
  auto all = arena.Allocate(1024);
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, 0u);
}

TEST(StagingArenaTest, BadFreesAreNotFoundAndTooLargeFails) {
  StagingArena arena(nullptr, 1024);
  EXPECT_FALSE(arena.Allocate(1025));
  EXPECT_FALSE(arena.Allocate(~size_t{0}));
  auto a = arena.Allocate(10);
  ASSERT_TRUE(a);
  Status st = arena.Free(*a + 256);
  EXPECT_TRUE(st.IsNotFound());
  EXPECT_NE(st.message().find("offset 256"), std::string::npos) << st.ToString();
  ASSERT_TRUE(arena.Free(*a).ok());
  EXPECT_TRUE(arena.Free(*a).IsNotFound());  // twice
  EXPECT_EQ(arena.used(), 0u);
}

TEST(StagingArenaTest, RandomRunNeverOverlapsAndEndsWhole) {
  constexpr size_t kCapacity = 256 * 1024;
  StagingArena arena(nullptr, kCapacity);
  std::vector<int> owner(kCapacity / 256, -1);    // per 256-byte unit
  std::map<size_t, std::pair<size_t, int>> live;  // offset -> (units, tag)
  std::mt19937 rng(7);
  for (int step = 0; step < 20000; ++step) {
    if (live.empty() || rng() % 2 == 0) {
      const size_t bytes = rng() % 5000;
      auto offset = arena.Allocate(bytes);
      if (!offset) {
        EXPECT_LT(arena.largest_free(), StagingArena::RoundUp(bytes));
        continue;
      }
      ASSERT_EQ(*offset % 256, 0u);
      const size_t units = StagingArena::RoundUp(bytes) / 256;
      ASSERT_LE(*offset / 256 + units, owner.size());
      for (size_t u = 0; u < units; ++u) {
        ASSERT_EQ(owner[*offset / 256 + u], -1) << "overlap at step " << step;
        owner[*offset / 256 + u] = step;
      }
      live[*offset] = {units, step};
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      for (size_t u = 0; u < it->second.first; ++u) owner[it->first / 256 + u] = -1;
      ASSERT_TRUE(arena.Free(it->first).ok());
      live.erase(it);
    }
  }
  for (auto& [offset, v] : live) ASSERT_TRUE(arena.Free(offset).ok());
  EXPECT_EQ(arena.used(), 0u);
  EXPECT_EQ(arena.largest_free(), kCapacity);
}

}  // namespace
}  // namespace engram::gpu
