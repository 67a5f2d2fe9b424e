#include "cache/policy_tuner.h"

#include <algorithm>
#include <cassert>

#include "cache/row_cache.h"

namespace engram::cache {

PolicyTuner::PolicyTuner(uint64_t capacity_rows,
                         std::vector<std::shared_ptr<const PolicyFactory>> candidates,
                         const PolicyTunerOptions& options)
    : sample_mask_((uint64_t{1} << options.sample_shift) - 1),
      options_(options),
      scores_(candidates.size(), 0.0),
      window_hits_(candidates.size(), 0) {
  assert(!candidates.empty());
  for (auto& factory : candidates) {
    RowCacheOptions o;
    o.capacity_rows = std::max<uint64_t>(capacity_rows >> options.sample_shift, 1);
    o.row_bytes = 0;
    o.shards = 1;
    o.policy = std::move(factory);
    shadows_.push_back(std::make_unique<RowCache>(o));
  }
}

PolicyTuner::~PolicyTuner() = default;

void PolicyTuner::Record(uint64_t hash) {
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  // The shadows key rows by 63 bits of the real row's hash (RowCache ids are below 2^63):
  // distinct rows, distinct keys up to hash collisions, which a sample tolerates.
  const uint64_t key = hash >> 1;
  for (size_t c = 0; c < shadows_.size(); ++c) {
    if (shadows_[c]->Touch(key)) {
      ++window_hits_[c];
    } else {
      shadows_[c]->Insert(key, nullptr);
    }
  }
  if (++window_fill_ >= options_.window_samples) Decide();
}

void PolicyTuner::Decide() {
  for (size_t c = 0; c < scores_.size(); ++c) {
    scores_[c] = scores_[c] / 2 + static_cast<double>(window_hits_[c]);
    window_hits_[c] = 0;
  }
  window_fill_ = 0;
  const uint32_t current = choice_.load(std::memory_order_relaxed);
  const auto best =
      static_cast<uint32_t>(std::max_element(scores_.begin(), scores_.end()) - scores_.begin());
  // Decayed scores sum to at most 2 windows of hits.
  const double margin = options_.switch_margin * 2 * options_.window_samples;
  if (best != current && scores_[best] > scores_[current] + margin) {
    choice_.store(best, std::memory_order_relaxed);
    switches_.fetch_add(1, std::memory_order_relaxed);
  }
}

uint64_t PolicyTuner::memory_bytes() const {
  uint64_t bytes = sizeof(*this);
  for (const auto& shadow : shadows_) bytes += shadow->stats().metadata_bytes;
  return bytes;
}

}  // namespace engram::cache
