#include "storage/tier_stats.h"

#include <bit>

namespace engram {

void TierCounters::RecordReadLatencyNs(uint64_t ns) {
  const uint64_t us = ns / 1000;
  int bucket = us == 0 ? 0 : std::bit_width(us);
  if (bucket >= kLatencyBuckets) bucket = kLatencyBuckets - 1;
  latency_[bucket].fetch_add(1, std::memory_order_relaxed);
}

TierStats TierCounters::Snapshot() const {
  TierStats s;
  s.tier = tier_;
  s.lookups = lookups_.load(std::memory_order_relaxed);
  s.hits = hits_.load(std::memory_order_relaxed);
  s.misses = misses_.load(std::memory_order_relaxed);
  s.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  for (int b = 0; b < kLatencyBuckets; ++b) {
    s.latency_us_buckets[b] = latency_[b].load(std::memory_order_relaxed);
    s.reads += s.latency_us_buckets[b];
  }
  return s;
}

double TierStats::LatencyPercentileUs(double p) const {
  if (reads == 0) return 0.0;
  const double target = p / 100.0 * static_cast<double>(reads);
  uint64_t seen = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    seen += latency_us_buckets[b];
    if (static_cast<double>(seen) >= target) return static_cast<double>(uint64_t{1} << b);
  }
  return static_cast<double>(uint64_t{1} << (kLatencyBuckets - 1));
}

nlohmann::json TierStatsToJson(const TierStats& t) {
  return {{"tier", t.tier},
          {"lookups", t.lookups},
          {"hits", t.hits},
          {"misses", t.misses},
          {"bytes_read", t.bytes_read},
          {"reads", t.reads},
          {"read_p50_us", t.LatencyPercentileUs(50)},
          {"read_p99_us", t.LatencyPercentileUs(99)}};
}

}  // namespace engram
