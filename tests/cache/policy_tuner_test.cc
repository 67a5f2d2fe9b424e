// PolicyTuner (cache/policy_tuner.h): it follows the candidate whose shadow hits most, only past
// its margin. The default policy's use of it is tested in default_policy_test.cc.
#include "cache/policy_tuner.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "cache/row_cache.h"
#include "cache/row_hash.h"

namespace engram::cache {
namespace {

// A candidate that admits nothing: its shadow never hits.
class RejectAll final : public ShardPolicy {
 public:
  explicit RejectAll(uint32_t) {}
  void OnHit(uint32_t, uint64_t) override {}
  Placement OnMiss(uint64_t, const SlotView&) override { return {}; }
  void OnInsert(uint32_t, uint64_t) override {}
  void OnFree(uint32_t) override {}
  uint64_t memory_bytes() const override { return 0; }
};

class RejectAllFactory final : public PolicyFactory {
 public:
  std::unique_ptr<ShardPolicy> NewShardPolicy(uint32_t slots) const override {
    return std::make_unique<RejectAll>(slots);
  }
  std::string name() const override { return "reject-all"; }
  bool concurrent_hits() const override { return true; }
};

PolicyTunerOptions EveryAccess() {
  PolicyTunerOptions o;
  o.sample_shift = 0;  // every access sampled, shadows as big as the cache
  o.window_samples = 100;
  return o;
}

// Sampled accesses to ids [0, distinct), round robin, `n` of them.
void FeedLoop(PolicyTuner& tuner, uint64_t distinct, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t hash = HashRowId(i % distinct);
    if (tuner.Sampled(hash)) tuner.Record(hash);
  }
}

TEST(PolicyTunerTest, SwitchesToTheCandidateThatHits) {
  PolicyTuner tuner(1000, {std::make_shared<RejectAllFactory>(), NewPolicyFactory("clock")},
                    EveryAccess());
  EXPECT_EQ(tuner.choice(), 0u);
  FeedLoop(tuner, 500, 99);  // less than a window: no decision yet
  EXPECT_EQ(tuner.choice(), 0u);
  FeedLoop(tuner, 500, 2000);  // 500 rows fit: clock hits from the second lap on
  EXPECT_EQ(tuner.choice(), 1u);
  EXPECT_EQ(tuner.switches(), 1u);
}

TEST(PolicyTunerTest, KeepsTheLeaderAndTiesDoNotSwitch) {
  PolicyTuner leader(1000, {NewPolicyFactory("clock"), std::make_shared<RejectAllFactory>()},
                     EveryAccess());
  FeedLoop(leader, 500, 5000);
  EXPECT_EQ(leader.choice(), 0u);
  EXPECT_EQ(leader.switches(), 0u);
  // Two identical candidates hit exactly alike: never more than the margin apart.
  PolicyTuner tie(1000, {NewPolicyFactory("clock"), NewPolicyFactory("clock")}, EveryAccess());
  FeedLoop(tie, 700, 5000);
  EXPECT_EQ(tie.switches(), 0u);
}

TEST(PolicyTunerTest, SamplesAboutOneAccessIn2PowShift) {
  PolicyTunerOptions o;
  o.sample_shift = 7;
  PolicyTuner tuner(1 << 20, {NewPolicyFactory("clock")}, o);
  uint64_t sampled = 0;
  for (uint64_t id = 0; id < 1'280'000; ++id) sampled += tuner.Sampled(HashRowId(id)) ? 1 : 0;
  EXPECT_GT(sampled, 9'000u);  // 10,000 expected
  EXPECT_LT(sampled, 11'000u);
  EXPECT_GT(tuner.memory_bytes(), 0u);
}

}  // namespace
}  // namespace engram::cache
