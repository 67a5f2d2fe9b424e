#include "storage/table.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "storage/array_file.h"
#include "storage/row_ids.h"

namespace engram {
namespace {

// Per-thread scratch of the tiered path, reused across batches to keep lookups allocation-free.
struct LookupScratch {
  std::vector<std::pair<uint64_t, uint32_t>> sorted;  // (id, position), sorted by id
  std::vector<uint32_t> group_begin;                  // unique id u: sorted[group_begin[u]..[u+1])
  std::vector<uint64_t> unique_ids;
  // Used by ServeUnique only (the callers above use the fields before this).
  std::vector<cache::PinnedRow> pinned;
  std::vector<uint8_t> hit;
  std::vector<uint64_t> miss_ids;
  std::vector<uint32_t> miss_index;  // position in ServeUnique's ids of miss_ids[k]
};

// Copies row ids[i] (at base + offset_of(ids[i])) to out + i * out_stride, prefetching a few
// rows ahead so several DRAM misses are in flight at once. Layout values are passed by value
// so the compiler keeps them in registers across the memcpy calls.
template <typename OffsetOf>
void GatherRows(const uint8_t* base, const uint64_t* ids, size_t n, uint8_t* out, size_t out_stride,
                size_t row, OffsetOf offset_of) {
  constexpr size_t kAhead = 8;
  for (size_t i = 0; i < std::min(n, kAhead); ++i) __builtin_prefetch(base + offset_of(ids[i]));
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) __builtin_prefetch(base + offset_of(ids[i + kAhead]));
    std::memcpy(out + i * out_stride, base + offset_of(ids[i]), row);
  }
}

LookupScratch& Scratch() {
  thread_local LookupScratch scratch;
  return scratch;
}

Status CheckDataFileSize(Env* env, const std::string& table, const TableLayout& layout) {
  ENGRAM_ASSIGN_OR_RETURN(uint64_t size, env->FileSize(JoinPath(table, kDataFileName)));
  if (size < layout.data_bytes()) {
    return Status::Corruption("table " + table + ": data file truncated: " + std::to_string(size) +
                              " bytes, expected " + std::to_string(layout.data_bytes()));
  }
  if (size > layout.data_bytes()) {
    return Status::Corruption("table " + table + ": data file has " + std::to_string(size) +
                              " bytes, more than the " + std::to_string(layout.data_bytes()) +
                              " its MANIFEST describes");
  }
  return Status::OK();
}

}  // namespace

Table::Table(std::string path, TableOptions options, Manifest manifest)
    : path_(std::move(path)), options_(std::move(options)), manifest_(std::move(manifest)) {}

Table::~Table() = default;

Result<std::unique_ptr<Table>> Table::Open(const std::string& path, const TableOptions& options) {
  Env* env = options.env;
  ENGRAM_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(env, path));
  ENGRAM_ASSIGN_OR_RETURN(std::vector<uint64_t> checksums, ReadPageChecksums(env, path, manifest));
  ENGRAM_RETURN_IF_ERROR(CheckDataFileSize(env, path, manifest.layout));
  ENGRAM_ASSIGN_OR_RETURN(auto data, env->OpenRandomAccess(JoinPath(path, kDataFileName),
                                                           /*direct_io=*/true));
  std::unique_ptr<Table> table(new Table(path, options, manifest));
  const TableLayout& layout = table->layout();
  if (options.dram_mode == DramMode::kResident) {
    ENGRAM_ASSIGN_OR_RETURN(table->resident_,
                            ResidentRegion::Open(data.get(), layout, checksums, path,
                                                 manifest.table_uuid, options.resident));
    if (!options.hot_rows_path.empty()) {
      ENGRAM_RETURN_IF_ERROR(table->PinHotRows(options.hot_rows_path));
    }
    return table;
  }
  if (options.dram_mode == DramMode::kCache) {
    if (options.dram_cache_bytes < layout.row_bytes) {
      return Status::InvalidArgument(
          "table " + path + ": dram_cache_bytes " + std::to_string(options.dram_cache_bytes) +
          " cannot hold one row of " + std::to_string(layout.row_bytes) + " bytes");
    }
    if (options.cache_policy && !options.cache_policy->concurrent_hits()) {
      return Status::InvalidArgument("table " + path + ": cache policy " +
                                     options.cache_policy->name() +
                                     " moves list nodes on hits; it is for trace replay only");
    }
    cache::RowCacheOptions cache_options;
    cache_options.capacity_rows = options.dram_cache_bytes / layout.row_bytes;
    cache_options.row_bytes = layout.row_bytes;
    cache_options.shards = options.dram_cache_shards;
    cache_options.policy = options.cache_policy;
    cache_options.max_pinned_share = kMaxHotShare;
    table->cache_ = std::make_unique<cache::RowCache>(cache_options);
  }
  ENGRAM_ASSIGN_OR_RETURN(table->nvme_,
                          NvmeReader::Open(std::move(data), layout, std::move(checksums), path,
                                           options.nvme, &table->nvme_counters_));
  if (!options.hot_rows_path.empty()) {
    ENGRAM_RETURN_IF_ERROR(table->PinHotRows(options.hot_rows_path));
  }
  return table;
}

Status Table::PinHotRows(const std::string& hot_rows_path) {
  auto ids = ReadIdsNpy(options_.env, hot_rows_path);
  if (!ids.ok()) return ids.status().WithContext("hot rows");
  const std::vector<uint64_t> hot = std::move(ids).value();
  if (Status st = CheckIds(hot.data(), hot.size()); !st.ok()) {
    return Status::InvalidArgument("hot rows file " + hot_rows_path + ": " + st.message());
  }
  return PinRows(hot.data(), hot.size());
}

Status Table::PinRows(const uint64_t* ids, size_t n) {
  if (n == 0) return Status::OK();
  if (ids == nullptr) return Status::InvalidArgument("table " + path_ + ": null ids");
  ENGRAM_RETURN_IF_ERROR(CheckIds(ids, n));
  if (!cache_) {
    // Resident mode already holds every row in DRAM; without a DRAM tier there is no room.
    (resident_ ? hot_rows_pinned_ : hot_rows_skipped_).fetch_add(n, std::memory_order_relaxed);
    return Status::OK();
  }
  const std::vector<uint64_t> unique = UniqueInOrder(ids, n);
  hot_rows_skipped_.fetch_add(n - unique.size(), std::memory_order_relaxed);  // duplicates
  constexpr size_t kBatch = 4096;
  for (size_t i = 0; i < unique.size(); i += kBatch) {
    const size_t count = std::min(kBatch, unique.size() - i);
    const uint64_t* batch = unique.data() + i;
    ENGRAM_RETURN_IF_ERROR(nvme_->ReadRows(batch, count, [&](size_t k, const uint8_t* src) {
      // False for rows already cached and for shards whose pinned share is used up.
      const bool pinned = cache_->Insert(batch[k], src, /*pin_forever=*/true);
      (pinned ? hot_rows_pinned_ : hot_rows_skipped_).fetch_add(1, std::memory_order_relaxed);
    }));
  }
  return Status::OK();
}

Status Table::CheckIds(const uint64_t* ids, size_t n) const {
  const uint64_t rows = layout().rows;
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] >= rows) {
      return Status::InvalidArgument(
          "table " + path_ + ": id " + std::to_string(ids[i]) + " at position " +
          std::to_string(i) + " is out of range (the table has " + std::to_string(rows) + " rows)");
    }
  }
  return Status::OK();
}

Status Table::Lookup(const uint64_t* ids, size_t n, void* out, size_t out_stride) {
  if (n == 0) return Status::OK();
  if (out_stride < row_bytes()) {
    return Status::InvalidArgument("table " + path_ + ": output stride " +
                                   std::to_string(out_stride) + " is smaller than a row (" +
                                   std::to_string(row_bytes()) + " bytes)");
  }
  if (ids == nullptr || out == nullptr) {
    return Status::InvalidArgument("table " + path_ + ": null ids or output buffer");
  }
  ENGRAM_RETURN_IF_ERROR(CheckIds(ids, n));
  auto* dst = static_cast<uint8_t*>(out);
  if (resident_) return LookupResident(ids, n, dst, out_stride);
  return LookupTiered(ids, n, dst, out_stride);
}

Status Table::LookupResident(const uint64_t* ids, size_t n, uint8_t* out, size_t out_stride) {
  // Duplicates are not collapsed here: each output slot needs its own copy anyway, and a
  // copy from DRAM is the fetch.
  const TableLayout& l = layout();
  const size_t row = l.row_bytes;
  if (l.rows_per_page * row == kPageSize) {
    // Rows tile pages exactly (power-of-two rows up to 4 KiB): offset = id * row_bytes.
    GatherRows(resident_->data(), ids, n, out, out_stride, row,
               [row](uint64_t id) { return id * row; });
  } else {
    GatherRows(resident_->data(), ids, n, out, out_stride, row,
               [l](uint64_t id) { return l.OffsetOf(id); });
  }
  dram_counters_.AddLookups(n);
  dram_counters_.AddHits(n);
  dram_counters_.AddBytesRead(uint64_t{n} * row);
  return Status::OK();
}

const uint8_t* Table::ResidentRow(uint64_t id) const {
  return resident_->data() + layout().OffsetOf(id);
}

Status Table::LookupTiered(const uint64_t* ids, size_t n, uint8_t* out, size_t out_stride) {
  LookupScratch& s = Scratch();
  const size_t row = row_bytes();
  s.sorted.resize(n);
  for (size_t i = 0; i < n; ++i) s.sorted[i] = {ids[i], static_cast<uint32_t>(i)};
  std::sort(s.sorted.begin(), s.sorted.end());
  s.group_begin.clear();
  s.unique_ids.clear();
  for (size_t i = 0; i < n; ++i) {
    if (i == 0 || s.sorted[i].first != s.sorted[i - 1].first) {
      s.group_begin.push_back(i);
      s.unique_ids.push_back(s.sorted[i].first);
    }
  }
  const size_t unique = s.group_begin.size();
  s.group_begin.push_back(n);

  // Copies `src` to every output slot of unique id u.
  auto place = [&](size_t u, const uint8_t* src) {
    uint8_t* first = out + size_t{s.sorted[s.group_begin[u]].second} * out_stride;
    std::memcpy(first, src, row);
    for (uint32_t k = s.group_begin[u] + 1; k < s.group_begin[u + 1]; ++k) {
      std::memcpy(out + size_t{s.sorted[k].second} * out_stride, first, row);
    }
  };
  return ServeUnique(
      s.unique_ids.data(), unique,
      [&](size_t u, const cache::PinnedRow& pinned) {
        place(u, pinned.data);
        cache_->Release(pinned);
      },
      place);
}

template <typename OnHit, typename OnMiss>
Status Table::ServeUnique(const uint64_t* ids, size_t n, OnHit on_hit, OnMiss on_miss) {
  LookupScratch& s = Scratch();
  s.miss_ids.clear();
  s.miss_index.clear();
  if (cache_) {
    s.pinned.resize(n);
    s.hit.resize(n);
    cache_->PinBatch(ids, n, s.pinned.data(), s.hit.data());
  }
  for (size_t i = 0; i < n; ++i) {
    if (cache_ && s.hit[i]) {
      on_hit(i, s.pinned[i]);
      continue;
    }
    s.miss_ids.push_back(ids[i]);
    s.miss_index.push_back(static_cast<uint32_t>(i));
  }
  if (cache_) {
    const uint64_t hits = n - s.miss_ids.size();
    dram_counters_.AddLookups(n);
    dram_counters_.AddHits(hits);
    dram_counters_.AddMisses(s.miss_ids.size());
    dram_counters_.AddBytesRead(hits * row_bytes());
  }
  if (s.miss_ids.empty()) return Status::OK();

  nvme_counters_.AddLookups(s.miss_ids.size());
  Status st =
      nvme_->ReadRows(s.miss_ids.data(), s.miss_ids.size(), [&](size_t k, const uint8_t* src) {
        on_miss(s.miss_index[k], src);
        if (cache_) cache_->Insert(s.miss_ids[k], src);
      });
  if (st.ok()) nvme_counters_.AddHits(s.miss_ids.size());
  return st;
}

Status Table::AcquireRows(const uint64_t* ids, size_t n, HeldRow* rows, uint8_t* copy_space,
                          size_t copy_stride) {
  if (n == 0) return Status::OK();
  const size_t row = row_bytes();
  if (resident_) {
    for (size_t i = 0; i < n; ++i) rows[i] = HeldRow{ResidentRow(ids[i]), {}, false};
    dram_counters_.AddLookups(n);
    dram_counters_.AddHits(n);
    dram_counters_.AddBytesRead(uint64_t{n} * row);
    return Status::OK();
  }
  for (size_t i = 0; i < n; ++i) rows[i] = HeldRow{};
  Status st = ServeUnique(
      ids, n,
      [&](size_t i, const cache::PinnedRow& pinned) {
        rows[i] = HeldRow{pinned.data, pinned, true};
      },
      [&](size_t i, const uint8_t* src) {
        uint8_t* dst = copy_space + i * copy_stride;
        std::memcpy(dst, src, row);
        rows[i].data = dst;
      });
  if (!st.ok()) ReleaseRows(rows, n);
  return st;
}

void Table::ReleaseRows(HeldRow* rows, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (rows[i].pinned) cache_->Release(rows[i].pin);
    rows[i] = HeldRow{};
  }
}

std::vector<TierStats> Table::Stats() const {
  std::vector<TierStats> stats;
  if (resident_ || cache_) stats.push_back(dram_counters_.Snapshot());
  if (nvme_) stats.push_back(nvme_counters_.Snapshot());
  return stats;
}

std::string Table::DramDescription() const {
  if (resident_) return "resident, " + resident_->description();
  if (cache_) {
    return "cache of " + std::to_string(cache_->capacity_rows()) + " rows (" +
           std::to_string(options_.dram_cache_bytes) + " bytes), policy " + cache_->policy().name();
  }
  return "none";
}

std::string Table::InfoJson() const {
  nlohmann::json j = ManifestToJson(manifest_);
  j["path"] = path_;
  j["tiers"] = {
      {"dram", DramDescription()}, {"nvme", NvmeDescription()}, {"dram_cache", DramCacheJson()}};
  nlohmann::json stats = nlohmann::json::array();
  for (const TierStats& t : Stats()) stats.push_back(TierStatsToJson(t));
  j["stats"] = std::move(stats);
  return j.dump(2);
}

std::string Table::NvmeDescription() const { return nvme_ ? nvme_->backend_description() : "none"; }

cache::RowCacheStats Table::dram_cache_stats() const {
  return cache_ ? cache_->stats() : cache::RowCacheStats{};
}

nlohmann::json Table::DramCacheJson() const {
  const cache::RowCacheStats c = dram_cache_stats();
  return {{"policy", cache_ ? cache_->policy().name() : std::string()},
          {"capacity_rows", c.capacity_rows},
          {"rows", c.size_rows},
          {"pinned_rows", c.pinned_rows},
          {"hot_rows_pinned", hot_rows_pinned()},
          {"hot_rows_skipped", hot_rows_skipped()},
          {"inserts", c.inserts},
          {"rejections", c.rejections},
          {"evictions", c.evictions},
          {"metadata_bytes", c.metadata_bytes},
          {"metadata_bytes_per_row", c.metadata_bytes_per_row}};
}

}  // namespace engram
