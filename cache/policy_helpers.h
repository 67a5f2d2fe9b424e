// Pieces shared by the policies in cache/*_policy.cc (internal to cache/):
//
//   FreeSlots            a shard's empty slots: the never-used ones (handed out in slot order)
//                        and those given back by OnFree (most recent first).
//   SimplePolicyFactory  a PolicyFactory that constructs Policy(slots, args...).
//   SplitMix64           the seeded PRNG of the sampling policies (deterministic replays).
//
// Thread safety: none; FreeSlots and SplitMix64 are used under the shard lock, factories are
// immutable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cache/cache_policy.h"
#include "cache/slot_queue.h"

namespace engram::cache {

class FreeSlots {
 public:
  explicit FreeSlots(uint32_t slots) : slots_(slots) {}

  // An empty slot (never used ones first), or kNoSlot when every slot holds a row or an insert.
  uint32_t Take() {
    if (never_used_ < slots_) return never_used_++;
    if (given_back_.empty()) return kNoSlot;
    const uint32_t slot = given_back_.back();
    given_back_.pop_back();
    return slot;
  }

  // `slot` (from Take() or an eviction) is empty again.
  void GiveBack(uint32_t slot) { given_back_.push_back(slot); }

  // Heap bytes (4 B per slot given back and not yet taken again; rare).
  uint64_t memory_bytes() const { return given_back_.capacity() * sizeof(uint32_t); }

 private:
  const uint32_t slots_;
  uint32_t never_used_ = 0;
  std::vector<uint32_t> given_back_;
};

template <typename Policy, typename... Args>
class SimplePolicyFactory final : public PolicyFactory {
 public:
  SimplePolicyFactory(std::string name, bool concurrent_hits, Args... args)
      : name_(std::move(name)), concurrent_hits_(concurrent_hits), args_(std::move(args)...) {}

  std::unique_ptr<ShardPolicy> NewShardPolicy(uint32_t slots) const override {
    return std::apply(
        [slots](const Args&... args) -> std::unique_ptr<ShardPolicy> {
          return std::make_unique<Policy>(slots, args...);
        },
        args_);
  }
  std::string name() const override { return name_; }
  bool concurrent_hits() const override { return concurrent_hits_; }

 private:
  const std::string name_;
  const bool concurrent_hits_;
  const std::tuple<Args...> args_;
};

// A shared SimplePolicyFactory<Policy, Args...>.
template <typename Policy, typename... Args>
std::shared_ptr<const PolicyFactory> MakePolicyFactory(std::string name, bool concurrent_hits,
                                                       Args... args) {
  return std::make_shared<SimplePolicyFactory<Policy, Args...>>(std::move(name), concurrent_hits,
                                                                std::move(args)...);
}

// splitmix64: a seeded PRNG, so runs that sample are deterministic.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

}  // namespace engram::cache
