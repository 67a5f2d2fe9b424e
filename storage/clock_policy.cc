// CLOCK (second chance): the simple default replacement policy of the DRAM row cache.
#include <vector>

#include "storage/cache_policy.h"

namespace engram {
namespace {

class ClockPolicy final : public CachePolicy {
 public:
  explicit ClockPolicy(uint32_t slots) : referenced_(slots, 0) {}

  void OnHit(uint32_t slot, uint64_t) override { referenced_[slot] = 1; }
  bool Admit(uint64_t, uint64_t) override { return true; }
  void OnInsert(uint32_t slot, uint64_t) override { referenced_[slot] = 0; }

  uint32_t Victim() override {
    while (referenced_[hand_]) {
      referenced_[hand_] = 0;
      Advance();
    }
    const uint32_t victim = hand_;
    Advance();
    return victim;
  }

  size_t metadata_bytes_per_slot() const override { return sizeof(uint8_t); }

 private:
  void Advance() { hand_ = hand_ + 1 == referenced_.size() ? 0 : hand_ + 1; }

  std::vector<uint8_t> referenced_;
  uint32_t hand_ = 0;
};

class ClockPolicyFactory final : public CachePolicyFactory {
 public:
  std::unique_ptr<CachePolicy> NewShardPolicy(uint32_t slots) const override {
    return std::make_unique<ClockPolicy>(slots);
  }
  std::string name() const override { return "clock"; }
};

}  // namespace

std::shared_ptr<CachePolicyFactory> NewClockPolicyFactory() {
  return std::make_shared<ClockPolicyFactory>();
}

}  // namespace engram
