// LockedLru: the textbook concurrent LRU cache that cache_bench measures RowCache against: one
// std::mutex guarding a std::unordered_map<uint64_t, std::list<Node>::iterator> and a
// std::list<Node> in recency order (front = most recent). A hit locks, finds the id, splices its
// node to the front, copies the row (Get only) and unlocks; an insert into a full cache evicts the
// back of the list. Rows live in the list nodes, as in most LRU caches of this shape.
//
// ShardedLockedLru: `shards` independent LockedLrus, the one for an id chosen by a hash of it
// (each with capacity ceil(capacity / shards)); an informational second peer.
//
// Benchmark scaffolding, not used by the library. kRowBytes == 0 keeps ids only (Touch, no Get).
//
// Thread safety: every method may be called concurrently; each LockedLru's mutex serialises all
// of its calls, hits included (that is what the benchmark measures).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace engram::bench {

template <size_t kRowBytes>
class LockedLru {
 public:
  // REQUIRES: capacity >= 1.
  explicit LockedLru(uint64_t capacity) : capacity_(capacity) { index_.reserve(capacity); }
  LockedLru(const LockedLru&) = delete;
  LockedLru& operator=(const LockedLru&) = delete;

  // If `id` is cached: makes it the most recent and returns true.
  bool Touch(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(id);
    if (it == index_.end()) return false;
    lru_.splice(lru_.begin(), lru_, it->second);
    return true;
  }

  // Touch() that also copies the row's kRowBytes bytes into `dst`.
  bool Get(uint64_t id, void* dst) {
    static_assert(kRowBytes > 0, "Get needs rows");
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(id);
    if (it == index_.end()) return false;
    lru_.splice(lru_.begin(), lru_, it->second);
    std::memcpy(dst, it->second->row.data(), kRowBytes);
    return true;
  }

  // Caches `id` with the kRowBytes bytes at `row` (ignored when kRowBytes == 0) as the most
  // recent row, evicting the least recent one when full. False (and no change) when present.
  bool Insert(uint64_t id, const void* row) {
    std::lock_guard<std::mutex> lock(mu_);
    if (index_.count(id) != 0) return false;
    if (index_.size() >= capacity_) {
      index_.erase(lru_.back().id);
      lru_.pop_back();
    }
    lru_.emplace_front();
    lru_.front().id = id;
    if constexpr (kRowBytes > 0) std::memcpy(lru_.front().row.data(), row, kRowBytes);
    index_.emplace(id, lru_.begin());
    return true;
  }

  uint64_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return index_.size();
  }

  // The cached ids, most recent first (for tests).
  std::vector<uint64_t> IdsMostRecentFirst() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> ids;
    ids.reserve(lru_.size());
    for (const Node& n : lru_) ids.push_back(n.id);
    return ids;
  }

 private:
  struct Node {
    uint64_t id = 0;
    std::array<uint8_t, kRowBytes> row;
  };

  const uint64_t capacity_;
  mutable std::mutex mu_;
  std::list<Node> lru_;                                                     // GUARDED_BY(mu_)
  std::unordered_map<uint64_t, typename std::list<Node>::iterator> index_;  // GUARDED_BY(mu_)
};

template <size_t kRowBytes>
class ShardedLockedLru {
 public:
  // REQUIRES: capacity >= 1, shards >= 1.
  ShardedLockedLru(uint64_t capacity, uint32_t shards) {
    const uint64_t per_shard = (capacity + shards - 1) / shards;
    for (uint32_t i = 0; i < shards; ++i) {
      shards_.push_back(std::make_unique<Shard>(per_shard));
    }
  }

  bool Touch(uint64_t id) { return ShardOf(id).Touch(id); }
  bool Get(uint64_t id, void* dst) { return ShardOf(id).Get(id, dst); }
  bool Insert(uint64_t id, const void* row) { return ShardOf(id).Insert(id, row); }
  uint64_t size() const {
    uint64_t n = 0;
    for (const auto& s : shards_) n += s->size();
    return n;
  }
  uint32_t shard_count() const { return static_cast<uint32_t>(shards_.size()); }
  // The shard `id` belongs to, in [0, shard_count()).
  uint32_t ShardIndex(uint64_t id) const {
    // splitmix64's finalizer: a full mix, so the ids of one shard have no pattern that
    // std::hash (the identity) would turn into long bucket chains.
    uint64_t h = id + 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
    return static_cast<uint32_t>((h >> 32) * shards_.size() >> 32);
  }

 private:
  // Each shard on its own cache lines, so one shard's lock word never shares a line with
  // another's.
  struct alignas(64) Shard : LockedLru<kRowBytes> {
    explicit Shard(uint64_t capacity) : LockedLru<kRowBytes>(capacity) {}
  };

  LockedLru<kRowBytes>& ShardOf(uint64_t id) { return *shards_[ShardIndex(id)]; }

  std::vector<std::unique_ptr<Shard>> shards_;  // constant after construction
};

}  // namespace engram::bench
