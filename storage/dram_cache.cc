#include "storage/dram_cache.h"

#include <algorithm>
#include <cstring>

namespace engram {
namespace {

// Spreads consecutive ids over shards (ids of one page are often requested together).
uint64_t MixId(uint64_t id) {
  id ^= id >> 33;
  id *= 0xff51afd7ed558ccdull;
  id ^= id >> 33;
  return id;
}

}  // namespace

DramRowCache::DramRowCache(uint64_t capacity_bytes, uint32_t row_bytes, uint32_t shards,
                           const CachePolicyFactory& policy)
    : row_bytes_(row_bytes) {
  capacity_rows_ = std::max<uint64_t>(1, capacity_bytes / row_bytes);
  shards = static_cast<uint32_t>(std::clamp<uint64_t>(shards, 1, capacity_rows_));
  const uint64_t per_shard = capacity_rows_ / shards;
  const uint64_t extra = capacity_rows_ % shards;
  for (uint32_t s = 0; s < shards; ++s) {
    auto shard = std::make_unique<Shard>();
    shard->slots = static_cast<uint32_t>(per_shard + (s < extra ? 1 : 0));
    shard->slot_ids.reserve(shard->slots);
    // Uninitialised on purpose: pages are touched only as rows are cached.
    shard->rows.reset(new uint8_t[size_t{shard->slots} * row_bytes]);
    shard->policy = policy.NewShardPolicy(shard->slots);
    shard->index.reserve(shard->slots);
    shards_.push_back(std::move(shard));
  }
}

DramRowCache::Shard& DramRowCache::ShardFor(uint64_t id) {
  return *shards_[MixId(id) % shards_.size()];
}

bool DramRowCache::Get(uint64_t id, void* dst) {
  Shard& shard = ShardFor(id);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.index.find(id);
  if (it == shard.index.end()) return false;
  std::memcpy(dst, shard.rows.get() + size_t{it->second} * row_bytes_, row_bytes_);
  shard.policy->OnHit(it->second, id);
  return true;
}

void DramRowCache::Put(uint64_t id, const void* row) {
  Shard& shard = ShardFor(id);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.index.count(id)) return;
  uint32_t slot;
  if (shard.slot_ids.size() < shard.slots) {
    slot = static_cast<uint32_t>(shard.slot_ids.size());
    shard.slot_ids.push_back(id);
  } else {
    slot = shard.policy->Victim();
    const uint64_t victim_id = shard.slot_ids[slot];
    if (!shard.policy->Admit(id, victim_id)) return;
    shard.index.erase(victim_id);
    shard.slot_ids[slot] = id;
  }
  std::memcpy(shard.rows.get() + size_t{slot} * row_bytes_, row, row_bytes_);
  shard.index.emplace(id, slot);
  shard.policy->OnInsert(slot, id);
}

uint64_t DramRowCache::size_rows() const {
  uint64_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    n += shard->slot_ids.size();
  }
  return n;
}

uint64_t DramRowCache::metadata_bytes() const {
  // Index: a bucket pointer per bucket, a node (next pointer, key, value, padding) per entry.
  constexpr uint64_t kNodeBytes = sizeof(void*) + sizeof(uint64_t) + sizeof(uint64_t);
  uint64_t bytes = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    bytes += shard->index.bucket_count() * sizeof(void*) + shard->index.size() * kNodeBytes;
    bytes += shard->slot_ids.capacity() * sizeof(uint64_t);
    bytes += uint64_t{shard->slots} * shard->policy->metadata_bytes_per_slot();
  }
  return bytes;
}

}  // namespace engram
