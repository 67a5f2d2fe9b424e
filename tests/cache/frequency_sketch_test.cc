#include "cache/frequency_sketch.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "cache/row_hash.h"

namespace engram::cache {
namespace {

TEST(FrequencySketchTest, SizesFromExpectedItems) {
  EXPECT_EQ(FrequencySketch(1).memory_bytes(), 64u);
  EXPECT_EQ(FrequencySketch(16).memory_bytes(), 64u);
  EXPECT_EQ(FrequencySketch(17).memory_bytes(), 128u);
  EXPECT_EQ(FrequencySketch(1000, 8).memory_bytes(), 8000u);
  EXPECT_EQ(FrequencySketch(1000).sample_size(), 10000u);
}

TEST(FrequencySketchTest, CountsUpToFifteenAndSaturates) {
  FrequencySketch sketch(1024);
  const uint64_t h = HashRowId(42);
  EXPECT_EQ(sketch.Frequency(h), 0u);
  for (uint32_t k = 1; k <= 15; ++k) {
    sketch.Increment(h);
    EXPECT_EQ(sketch.Frequency(h), k);  // alone in the sketch: no collision can inflate it
  }
  for (int i = 0; i < 100; ++i) sketch.Increment(h);
  EXPECT_EQ(sketch.Frequency(h), 15u);
  EXPECT_EQ(sketch.agings(), 0u);
}

TEST(FrequencySketchTest, NeverUnderestimatesWithoutAging) {
  const uint64_t keys = 2000;
  FrequencySketch sketch(keys);  // sample size 20000 > the increments below
  for (uint64_t id = 0; id < keys; ++id) {
    for (uint64_t k = 0; k < id % 16; ++k) sketch.Increment(HashRowId(id));
  }
  ASSERT_EQ(sketch.agings(), 0u);
  for (uint64_t id = 0; id < keys; ++id) {
    EXPECT_GE(sketch.Frequency(HashRowId(id)), id % 16) << id;
  }
}

TEST(FrequencySketchTest, DistinctKeysMostlyDoNotCollide) {
  const uint64_t keys = 1000;
  FrequencySketch sketch(keys);
  for (uint64_t id = 0; id < keys; ++id) sketch.Increment(HashRowId(id));
  uint64_t exact = 0;
  for (uint64_t id = 0; id < keys; ++id) exact += sketch.Frequency(HashRowId(id)) == 1;
  EXPECT_GE(exact, keys * 9 / 10);
  // Keys never incremented mostly read 0.
  uint64_t zero = 0;
  for (uint64_t id = keys; id < 2 * keys; ++id) zero += sketch.Frequency(HashRowId(id)) == 0;
  EXPECT_GE(zero, keys * 9 / 10);
}

TEST(FrequencySketchTest, AgeHalvesEveryCounter) {
  FrequencySketch sketch(256);
  std::vector<uint32_t> before;
  for (uint64_t id = 0; id < 256; ++id) {
    for (uint64_t k = 0; k < id % 16; ++k) sketch.Increment(HashRowId(id));
  }
  for (uint64_t id = 0; id < 512; ++id) before.push_back(sketch.Frequency(HashRowId(id)));
  sketch.Age();
  EXPECT_EQ(sketch.agings(), 1u);
  for (uint64_t id = 0; id < 512; ++id) {
    // min(c / 2) == min(c) / 2: the estimate halves exactly.
    EXPECT_EQ(sketch.Frequency(HashRowId(id)), before[id] / 2) << id;
  }
}

TEST(FrequencySketchTest, AgesAfterSampleSizeRaisingIncrements) {
  FrequencySketch sketch(64);  // sample size 640
  const uint64_t hot = HashRowId(~0ull);
  for (int i = 0; i < 1000; ++i) sketch.Increment(hot);
  // Saturated counters cost no samples: at most 4 x 15 increments raised a counter.
  EXPECT_EQ(sketch.agings(), 0u);
  EXPECT_EQ(sketch.Frequency(hot), 15u);

  // Each increment adds at most one sample, so no aging before sample_size() of them...
  uint64_t id = 0;
  for (; id + 60 < sketch.sample_size() - 1; ++id) {
    sketch.Increment(HashRowId(id));
    ASSERT_EQ(sketch.agings(), 0u) << id;
  }
  // ...and fresh keys nearly always raise a counter, so it comes soon after.
  for (; sketch.agings() == 0 && id < 2 * sketch.sample_size(); ++id) {
    sketch.Increment(HashRowId(id));
  }
  EXPECT_EQ(sketch.agings(), 1u);
  EXPECT_EQ(sketch.Frequency(hot), 7u);  // 15 / 2, and saturated counters cannot have grown
}

TEST(FrequencySketchTest, KeepsAgingUnderSustainedLoad) {
  FrequencySketch sketch(16);  // sample size 160
  for (uint64_t id = 0; id < 100000; ++id) sketch.Increment(HashRowId(id));
  // Every ~80 raising increments after the first 160 the sample count crosses again.
  EXPECT_GE(sketch.agings(), 100u);
}

TEST(FrequencySketchTest, ConcurrentIncrementsAreNotLost) {
  FrequencySketch sketch(10000);  // sample size 100000: no aging below
  constexpr int kThreads = 4;
  constexpr uint64_t kKeys = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&sketch, t] {
      for (int round = 0; round < 4; ++round) {
        for (uint64_t id = 0; id < kKeys; ++id) {
          sketch.Increment(HashRowId(id * kThreads + t));  // each thread's own keys: 4 times
          sketch.Increment(HashRowId(1000000 + id));       // shared keys: 16 times in all
          (void)sketch.Frequency(HashRowId(id));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(sketch.agings(), 0u);
  for (uint64_t id = 0; id < kKeys * kThreads; ++id) {
    EXPECT_GE(sketch.Frequency(HashRowId(id)), 4u) << id;
  }
  for (uint64_t id = 0; id < kKeys; ++id) {
    EXPECT_EQ(sketch.Frequency(HashRowId(1000000 + id)), 15u) << id;
  }
}

TEST(FrequencySketchTest, ConcurrentAgingKeepsCountersInRange) {
  FrequencySketch sketch(32);  // sample size 320: ages often
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&sketch, t] {
      for (uint64_t i = 0; i < 20000; ++i) {
        sketch.Increment(HashRowId(i % 500 + t));
        if (i % 5000 == 0) sketch.Age();
        EXPECT_LE(sketch.Frequency(HashRowId(i % 97)), 15u);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(sketch.agings(), 10u);
}

}  // namespace
}  // namespace engram::cache
