// Internal to api/: the handle structs of api/engram_store.h shared by c_api.cc (tables) and
// c_api_prefetch.cc (prefetch tickets). Not installed, not public.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "gpu_bridge/device.h"
#include "gpu_bridge/prefetcher.h"
#include "storage/status.h"
#include "storage/table.h"

struct es_options_t {
  engram::TableOptions options;
  std::string cache_policy = "default";  // resolved by es_table_open
  // Prefetch: the device by name (gpu::OpenDevice), HBM bytes and the budget fields of
  // `prefetch` (its device is set by es_table_open).
  std::string device = "none";
  engram::gpu::PrefetchOptions prefetch;
};

// Members in destruction order: the prefetcher (and the stream it may gather on) before the
// device, both before the table.
struct es_table_t {
  std::unique_ptr<engram::Table> table;
  std::string device_name = "none";
  std::unique_ptr<engram::gpu::Device> device;
  engram::gpu::PrefetchOptions prefetch_options;                  // constant after es_table_open
  std::mutex prefetcher_mu;                                       // serialises the lazy creation
  std::unique_ptr<engram::gpu::Prefetcher> prefetcher;            // GUARDED_BY(prefetcher_mu)
  std::atomic<engram::gpu::Prefetcher*> prefetcher_ptr{nullptr};  // set once, then read freely
};

namespace engram::c_api {

// True when es_table_open must leave hot rows to the prefetcher (an HBM tier takes them
// first; the rest go to the DRAM cache through Table::PinRows).
bool HotRowsGoToHbm(const es_options_t& options);
// After Table::Open: opens the device of `options` and, when there is one, the prefetcher
// (hot rows to HBM first, then the DRAM cache). Without a device the prefetcher is created
// on first use.
Status SetUpPrefetch(es_table_t* table, const es_options_t& options);

}  // namespace engram::c_api
