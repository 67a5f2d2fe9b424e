// Trace replay: the online policies through a real RowCache, and Belady's OPT with bypass.
//
// OPT in two passes over the trace:
//   backward  each access gets a dense id (one FlatIdMap probe per access) and the position of
//             the same id's next access (kNever when there is none);
//   forward   residents are a max-heap of (next use, dense id) with lazy invalidation: a
//             resident's heap entry is current when its next use equals state[id]; stale
//             entries are skipped when they reach the top, and the heap is compacted when it
//             grows past 4 x the capacity. A miss with the cache full evicts the top if it is
//             used later than the new row, else bypasses the new row. A row hit for the last
//             time leaves at once (Belady would evict it first anyway), and a row never used
//             again is never admitted.
// Positions and dense ids are 32-bit when the trace allows it (half the memory of 64-bit).
#include "cache/replay.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>

#include "cache/cache_policy.h"
#include "cache/flat_id_map.h"
#include "cache/row_cache.h"
#include "cache/row_index.h"

namespace engram::cache {
namespace {

constexpr char kOpt[] = "opt";

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Finish(ReplayResult* r) {
  r->hit_ratio = r->accesses == 0 ? 0 : static_cast<double>(r->hits) / r->accesses;
}

std::string UnknownPolicyMessage(const std::string& name) {
  std::string message = "unknown cache policy '" + name + "' (known:";
  for (const std::string& p : PolicyNames()) message += " " + p;
  return message + " " + kOpt + ")";
}

Result<ReplayResult> ReplayPolicy(std::span<const uint64_t> trace, const ReplayOptions& options) {
  std::shared_ptr<const PolicyFactory> factory = NewPolicyFactory(options.policy);
  if (factory == nullptr) return Status::InvalidArgument(UnknownPolicyMessage(options.policy));
  RowCacheOptions cache_options;
  cache_options.capacity_rows = options.cache_rows;
  cache_options.row_bytes = 0;
  cache_options.shards = std::max<uint32_t>(options.shards, 1);
  cache_options.policy = factory;
  RowCache cache(cache_options);

  ReplayResult r;
  r.policy = options.policy;
  r.cache_rows = options.cache_rows;
  for (uint64_t id : options.hot_rows) {
    r.hot_rows_pinned += cache.Insert(id, nullptr, /*pin_forever=*/true) ? 1 : 0;
  }
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t id : trace) {
    if (cache.Touch(id)) {
      ++r.hits;
    } else {
      cache.Insert(id, nullptr);
    }
  }
  r.seconds = SecondsSince(start);
  r.accesses = trace.size();
  r.metadata_bytes_per_row = cache.stats().metadata_bytes_per_row;
  Finish(&r);
  return r;
}

// Belady's OPT; Index is the integer type of positions and dense ids.
template <typename Index>
class OptSimulator {
 public:
  // Marks in state_[dense id] besides a resident's next-use position.
  static constexpr Index kNever = std::numeric_limits<Index>::max();  // no next use
  static constexpr Index kAbsent = kNever - 1;                        // not resident
  static constexpr Index kHot = kNever - 2;                           // pinned hot row
  // Positions must stay below the marks.
  static constexpr uint64_t kMaxAccesses = uint64_t{kHot};

  // Returns the hits; *hot_pinned gets the hot rows pinned.
  uint64_t Run(std::span<const uint64_t> trace, const std::vector<uint64_t>& hot_rows,
               uint64_t cache_rows, uint64_t* hot_pinned) {
    Index distinct = BackwardPass(trace);
    state_.assign(distinct, kAbsent);
    *hot_pinned = PinHotRows(hot_rows, cache_rows);
    capacity_ = cache_rows - *hot_pinned;
    return ForwardPass(trace.size());
  }

 private:
  struct Entry {
    Index next;
    Index id;
    bool operator<(const Entry& o) const { return next < o.next; }  // max-heap on next use
  };

  Index BackwardPass(std::span<const uint64_t> trace) {
    dense_.resize(trace.size());
    next_.resize(trace.size());
    std::vector<Index> last;  // by dense id: the position of its nearest later access
    for (size_t i = trace.size(); i-- > 0;) {
      Index& slot = ids_.FindOrInsert(trace[i]);  // dense id + 1
      if (slot == 0) {
        slot = static_cast<Index>(last.size() + 1);
        last.push_back(kNever);
      }
      const Index d = slot - 1;
      dense_[i] = d;
      next_[i] = last[d];
      last[d] = static_cast<Index>(i);
    }
    return static_cast<Index>(last.size());
  }

  // The first cache_rows distinct hot ids take capacity; those in the trace always hit.
  uint64_t PinHotRows(const std::vector<uint64_t>& hot_rows, uint64_t cache_rows) {
    FlatIdMap<uint8_t> seen;
    uint64_t pinned = 0;
    for (uint64_t id : hot_rows) {
      if (pinned == cache_rows) break;
      uint8_t& s = seen.FindOrInsert(id);
      if (s != 0) continue;
      s = 1;
      ++pinned;
      if (const Index slot = ids_.Find(id); slot != 0) state_[slot - 1] = kHot;
    }
    return pinned;
  }

  uint64_t ForwardPass(size_t n) {
    uint64_t hits = 0;
    uint64_t size = 0;  // residents
    for (size_t i = 0; i < n; ++i) {
      const Index d = dense_[i];
      const Index next = next_[i];
      Index& state = state_[d];
      if (state == kHot) {
        ++hits;
      } else if (state != kAbsent) {
        ++hits;
        if (next == kNever) {  // last use: leave now
          state = kAbsent;
          --size;
        } else {
          state = next;
          Push({next, d});
        }
      } else if (next != kNever && capacity_ > 0) {
        if (size < capacity_) {
          ++size;
        } else {
          const Entry furthest = Top();
          if (furthest.next < next) continue;  // bypass: the new row is used later
          state_[furthest.id] = kAbsent;
          std::pop_heap(heap_.begin(), heap_.end());
          heap_.pop_back();
        }
        state = next;
        Push({next, d});
      }
    }
    return hits;
  }

  // The current entry with the furthest next use. REQUIRES: a resident exists.
  Entry Top() {
    while (state_[heap_.front().id] != heap_.front().next) {
      std::pop_heap(heap_.begin(), heap_.end());
      heap_.pop_back();
    }
    return heap_.front();
  }

  void Push(Entry e) {
    if (heap_.size() >= 4 * capacity_ + 64) Compact();
    heap_.push_back(e);
    std::push_heap(heap_.begin(), heap_.end());
  }

  void Compact() {
    std::erase_if(heap_, [this](const Entry& e) { return state_[e.id] != e.next; });
    std::make_heap(heap_.begin(), heap_.end());
  }

  FlatIdMap<Index> ids_;      // id -> dense id + 1
  std::vector<Index> dense_;  // by position
  std::vector<Index> next_;   // by position: the next access to the same id, or kNever
  std::vector<Index> state_;  // by dense id: next use when resident, or a mark
  std::vector<Entry> heap_;
  uint64_t capacity_ = 0;  // rows besides the hot ones
};

ReplayResult ReplayOpt(std::span<const uint64_t> trace, const ReplayOptions& options) {
  ReplayResult r;
  r.policy = kOpt;
  r.cache_rows = options.cache_rows;
  r.accesses = trace.size();
  const auto start = std::chrono::steady_clock::now();
  if (trace.size() < OptSimulator<uint32_t>::kMaxAccesses) {
    r.hits = OptSimulator<uint32_t>().Run(trace, options.hot_rows, options.cache_rows,
                                          &r.hot_rows_pinned);
  } else {
    r.hits = OptSimulator<uint64_t>().Run(trace, options.hot_rows, options.cache_rows,
                                          &r.hot_rows_pinned);
  }
  r.seconds = SecondsSince(start);
  Finish(&r);
  return r;
}

}  // namespace

Result<ReplayResult> Replay(std::span<const uint64_t> trace, const ReplayOptions& options) {
  if (options.cache_rows == 0) {
    return Status::InvalidArgument("replay: the cache must hold at least one row");
  }
  for (size_t i = 0; i < trace.size(); ++i) {
    if (trace[i] >= RowIndex::kPending) {
      return Status::InvalidArgument("replay: trace id " + std::to_string(trace[i]) +
                                     " at position " + std::to_string(i) +
                                     " is not a row id (row ids are below 2^63)");
    }
  }
  if (options.policy == kOpt) return ReplayOpt(trace, options);
  return ReplayPolicy(trace, options);
}

}  // namespace engram::cache
