// NewPolicyFactory / PolicyNames: the policies by name; PolicyFactory's default
// NewCachePolicies (cache_policy.h).
#include <utility>

#include "cache/cache_policy.h"

namespace engram::cache {
namespace {

using FactoryFn = std::shared_ptr<const PolicyFactory> (*)();

// "default" first; the order `tablectl replay --policy all` reports them in.
const std::pair<const char*, FactoryFn> kPolicies[] = {
    {"default", &NewDefaultPolicyFactory},
    {"lru", &NewLruPolicyFactory},
    {"clock", &NewClockPolicyFactory},
    {"sieve", &NewSievePolicyFactory},
    {"s3fifo", &NewS3FifoPolicyFactory},
    {"wtinylfu", &NewWTinyLfuPolicyFactory},
    {"sampled-lfu", &NewSampledLfuPolicyFactory},
};

}  // namespace

std::vector<std::unique_ptr<ShardPolicy>> PolicyFactory::NewCachePolicies(
    const std::vector<uint32_t>& shard_slots) const {
  std::vector<std::unique_ptr<ShardPolicy>> policies;
  policies.reserve(shard_slots.size());
  for (const uint32_t slots : shard_slots) policies.push_back(NewShardPolicy(slots));
  return policies;
}

std::shared_ptr<const PolicyFactory> NewPolicyFactory(std::string_view name) {
  for (const auto& [policy_name, make] : kPolicies) {
    if (name == policy_name) return make();
  }
  return nullptr;
}

std::vector<std::string> PolicyNames() {
  std::vector<std::string> names;
  for (const auto& entry : kPolicies) names.emplace_back(entry.first);
  return names;
}

}  // namespace engram::cache
