// Per-tier counters and a read-latency histogram, updated lock-free by concurrent readers.
//
// Each tier (dram, nvme) owns one TierCounters. "lookups" counts rows asked of the tier,
// "hits" rows it served, "misses" rows it passed down, "bytes_read" bytes it moved from its
// medium (disk bytes for nvme, row bytes for dram). Latency is recorded per read operation
// (one io_uring read or one pread) in power-of-two microsecond buckets.
//
// Thread safety: all methods may be called concurrently; Snapshot() is not atomic across
// counters (each counter is exact, their sum may be a few operations apart).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace engram {

inline constexpr int kLatencyBuckets = 32;  // bucket b: [2^(b-1), 2^b) us; bucket 0: < 1 us

struct TierStats {
  std::string tier;
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t bytes_read = 0;
  uint64_t reads = 0;  // read operations recorded in the histogram
  std::array<uint64_t, kLatencyBuckets> latency_us_buckets{};

  // Upper bound (us) of the bucket holding the p-th percentile (0 < p <= 100); 0 if no reads.
  double LatencyPercentileUs(double p) const;
};

// {"tier", "lookups", "hits", "misses", "bytes_read", "reads", "read_p50_us", "read_p99_us"}
nlohmann::json TierStatsToJson(const TierStats& stats);

class TierCounters {
 public:
  explicit TierCounters(std::string tier) : tier_(std::move(tier)) {}

  void AddLookups(uint64_t n) { lookups_.fetch_add(n, std::memory_order_relaxed); }
  void AddHits(uint64_t n) { hits_.fetch_add(n, std::memory_order_relaxed); }
  void AddMisses(uint64_t n) { misses_.fetch_add(n, std::memory_order_relaxed); }
  void AddBytesRead(uint64_t n) { bytes_read_.fetch_add(n, std::memory_order_relaxed); }
  void RecordReadLatencyNs(uint64_t ns);

  TierStats Snapshot() const;

 private:
  const std::string tier_;
  std::atomic<uint64_t> lookups_{0}, hits_{0}, misses_{0}, bytes_read_{0};
  std::array<std::atomic<uint64_t>, kLatencyBuckets> latency_{};
};

}  // namespace engram
