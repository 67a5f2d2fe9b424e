// Implementation of the prefetch part of the C API (api/engram_store.h, "Prefetch"): the
// device and budget options, tickets over gpu::Prefetcher, and its stats as JSON. Every entry
// point catches all exceptions and turns Status into the errptr convention.
//
// A table opened with a device gets its prefetcher (and HBM tier, and hot rows in HBM first)
// in es_table_open; without one, the first es_table_prefetch creates a host-only prefetcher.
//
// Gathers and gather plans on a caller's CUDA stream take that stream itself
// (Device::WrapStream: a view that neither owns nor waits for it): the work lands between the
// caller's earlier and later work, a launch enqueued while the caller captures the stream lands
// in the caller's graph, and nothing else of the store's is drawn into the capture. Release
// waits for a gather enqueued on a caller's stream.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "api/c_api_errors.h"
#include "api/c_api_internal.h"
#include "api/engram_store.h"

namespace engram::c_api {

bool HotRowsGoToHbm(const es_options_t& options) {
  return options.device != "none" && options.prefetch.hbm_cache_bytes > 0 &&
         !options.options.hot_rows_path.empty();
}

Status SetUpPrefetch(es_table_t* t, const es_options_t& o) {
  t->device_name = o.device;
  t->prefetch_options = o.prefetch;
  t->prefetch_options.device = nullptr;
  t->prefetch_options.hot_rows_path.clear();
  auto device = gpu::OpenDevice(o.device);
  if (!device.ok()) return device.status().WithContext("device");
  t->device = std::move(device).value();
  if (!t->device) {
    if (o.prefetch.hbm_cache_bytes > 0) {
      return Status::InvalidArgument("an HBM tier (hbm_cache_bytes " +
                                     std::to_string(o.prefetch.hbm_cache_bytes) +
                                     ") needs a device: see es_options_set_device");
    }
    return Status::OK();  // a host-only prefetcher is made on first use
  }
  t->prefetch_options.device = t->device.get();
  gpu::PrefetchOptions options = t->prefetch_options;
  if (HotRowsGoToHbm(o)) options.hot_rows_path = o.options.hot_rows_path;
  ENGRAM_ASSIGN_OR_RETURN(auto prefetcher, gpu::Prefetcher::Create(t->table.get(), options));
  const std::vector<uint64_t>& left = prefetcher->hot_rows_left();
  if (!left.empty()) ENGRAM_RETURN_IF_ERROR(t->table->PinRows(left.data(), left.size()));
  t->prefetcher = std::move(prefetcher);
  t->prefetcher_ptr.store(t->prefetcher.get(), std::memory_order_release);
  return Status::OK();
}

}  // namespace engram::c_api

namespace {

using engram::Result;
using engram::Status;
using engram::c_api::Check;
using engram::c_api::CopyString;
using engram::c_api::Guard;
using engram::c_api::SetError;
using engram::gpu::Prefetcher;

// The table's prefetcher, created host-only on first use when es_table_open made none.
Result<Prefetcher*> GetPrefetcher(es_table_t* t) {
  if (Prefetcher* p = t->prefetcher_ptr.load(std::memory_order_acquire)) return p;
  std::lock_guard<std::mutex> lock(t->prefetcher_mu);
  if (!t->prefetcher) {
    ENGRAM_ASSIGN_OR_RETURN(t->prefetcher, Prefetcher::Create(t->table.get(), t->prefetch_options));
    t->prefetcher_ptr.store(t->prefetcher.get(), std::memory_order_release);
  }
  return t->prefetcher.get();
}

// Runs body(prefetcher) under Guard once `table` is non-null and has its prefetcher; reports
// what stands in the way through errptr otherwise.
template <typename F>
void WithPrefetcher(es_table_t* table, char** errptr, F&& body) {
  Guard(errptr, [&] {
    if (table == nullptr) return SetError(errptr, "Invalid argument: table is NULL");
    auto p = GetPrefetcher(table);
    if (!Check(p.status(), errptr)) return;
    body(**p);
  });
}

bool ValidOutType(const es_out_type_t& type) {
  const int code = engram::c_api::EnumCode(type);
  return code >= ES_OUT_RAW && code <= ES_OUT_BF16;
}

// The prefetcher of a table with a CUDA device, which es_table_open made (plans need one).
Result<Prefetcher*> PlanPrefetcher(es_table_t* t) {
  if (!t->device) {
    return Status::InvalidArgument(
        "gather plans need a CUDA device; the table was opened without a device "
        "(es_options_set_device)");
  }
  return t->prefetcher_ptr.load(std::memory_order_acquire);
}

// cuda_stream as a gpu::Stream: null stays null (the prefetcher's own stream); otherwise a
// view of the caller's stream, which needs a CUDA device.
Result<std::unique_ptr<engram::gpu::Stream>> CallerStream(es_table_t* t, void* cuda_stream) {
  if (cuda_stream == nullptr) return std::unique_ptr<engram::gpu::Stream>();
  if (!t->device || t->device->emulated()) {
    return Status::InvalidArgument("a CUDA stream needs a CUDA device (the table's device is " +
                                   t->device_name + "); pass NULL");
  }
  return t->device->WrapStream(cuda_stream);
}

}  // namespace

extern "C" {

void es_options_set_device(es_options_t* o, const char* name) {
  Guard(nullptr, [&] { o->device = name ? name : "none"; });
}

void es_options_set_hbm_cache_bytes(es_options_t* o, uint64_t bytes) {
  o->prefetch.hbm_cache_bytes = bytes;
}

void es_options_set_prefetch_budget(es_options_t* o, uint64_t max_inflight_bytes,
                                    uint32_t max_tickets, int block_when_full) {
  o->prefetch.max_inflight_bytes = max_inflight_bytes;
  o->prefetch.max_tickets = max_tickets;
  o->prefetch.block_when_full = block_when_full != 0;
}

uint64_t es_table_prefetch(es_table_t* table, const uint64_t* ids, size_t n, char** errptr) {
  uint64_t ticket = 0;
  WithPrefetcher(table, errptr, [&](Prefetcher& p) {
    auto t = p.Prefetch(ids, n);
    if (Check(t.status(), errptr)) ticket = *t;
  });
  return ticket;
}

int es_ticket_wait(es_table_t* table, uint64_t ticket, char** errptr) {
  int rc = -1;
  WithPrefetcher(table, errptr, [&](Prefetcher& p) {
    if (Check(p.Wait(ticket), errptr)) rc = 0;
  });
  return rc;
}

int es_ticket_poll(es_table_t* table, uint64_t ticket, char** errptr) {
  int rc = -1;
  WithPrefetcher(table, errptr, [&](Prefetcher& p) {
    auto ready = p.Poll(ticket);
    if (Check(ready.status(), errptr)) rc = *ready ? 1 : 0;
  });
  return rc;
}

void es_ticket_gather(es_table_t* table, uint64_t ticket, void* out, size_t out_stride,
                      es_out_type_t type, int out_on_device, void* cuda_stream, char** errptr) {
  Guard(errptr, [&] {
    if (table == nullptr) return SetError(errptr, "Invalid argument: table is NULL");
    if (!ValidOutType(type)) {
      return SetError(errptr, "Invalid argument: unknown output type code " +
                                  std::to_string(engram::c_api::EnumCode(type)));
    }
    if (out_on_device && !table->device) {
      return SetError(errptr,
                      "Invalid argument: gather to device memory, but the table was opened "
                      "without a device (es_options_set_device)");
    }
    auto stream = CallerStream(table, cuda_stream);
    if (!Check(stream.status(), errptr)) return;
    if (cuda_stream != nullptr && !out_on_device) {
      return SetError(errptr,
                      "Invalid argument: a CUDA stream is only for gathers to device "
                      "memory (out_on_device 1)");
    }
    auto p = GetPrefetcher(table);
    if (!Check(p.status(), errptr)) return;
    engram::gpu::GatherTarget target;
    target.out = out;
    target.out_stride = out_stride;
    target.type = static_cast<engram::gpu::OutType>(type);
    // The emulated device's "device memory" is what a C caller has: host memory.
    target.on_device = out_on_device != 0 && !table->device->emulated();
    target.stream = stream->get();  // null: the prefetcher's own stream, synchronized
    Check((*p)->Gather(ticket, target), errptr);
  });
}

void es_ticket_release(es_table_t* table, uint64_t ticket, char** errptr) {
  WithPrefetcher(table, errptr, [&](Prefetcher& p) { Check(p.Release(ticket), errptr); });
}

void es_ticket_cancel(es_table_t* table, uint64_t ticket, char** errptr) {
  WithPrefetcher(table, errptr, [&](Prefetcher& p) { Check(p.Cancel(ticket), errptr); });
}

uint64_t es_gather_plan_create(es_table_t* table, size_t max_rows, void* out, size_t out_stride,
                               es_out_type_t type, char** errptr) {
  uint64_t plan = 0;
  Guard(errptr, [&] {
    if (table == nullptr) return SetError(errptr, "Invalid argument: table is NULL");
    if (!ValidOutType(type)) {
      return SetError(errptr, "Invalid argument: unknown output type code " +
                                  std::to_string(engram::c_api::EnumCode(type)));
    }
    auto p = PlanPrefetcher(table);
    if (!Check(p.status(), errptr)) return;
    if (table->device->emulated()) {
      Check(Status::NotSupported("gather plans need a CUDA device; the emulated device's "
                                 "kernels cannot write a caller's host memory"),
            errptr);
      return;
    }
    engram::gpu::GatherTarget target;
    target.out = out;
    target.out_stride = out_stride;
    target.type = static_cast<engram::gpu::OutType>(type);
    target.on_device = true;
    auto id = (*p)->NewGatherPlan(max_rows, target);
    if (Check(id.status(), errptr)) plan = *id;
  });
  return plan;
}

void es_gather_plan_bind(es_table_t* table, uint64_t plan, uint64_t ticket, void* cuda_stream,
                         char** errptr) {
  Guard(errptr, [&] {
    if (table == nullptr) return SetError(errptr, "Invalid argument: table is NULL");
    auto p = PlanPrefetcher(table);
    if (!Check(p.status(), errptr)) return;
    auto stream = CallerStream(table, cuda_stream);
    if (!Check(stream.status(), errptr)) return;
    Check((*p)->BindGatherPlan(plan, ticket, stream->get()), errptr);
  });
}

void es_gather_plan_launch(es_table_t* table, uint64_t plan, void* cuda_stream, char** errptr) {
  Guard(errptr, [&] {
    if (table == nullptr) return SetError(errptr, "Invalid argument: table is NULL");
    auto p = PlanPrefetcher(table);
    if (!Check(p.status(), errptr)) return;
    auto stream = CallerStream(table, cuda_stream);
    if (!Check(stream.status(), errptr)) return;
    Check((*p)->LaunchGatherPlan(plan, stream->get()), errptr);
  });
}

void es_gather_plan_destroy(es_table_t* table, uint64_t plan, char** errptr) {
  Guard(errptr, [&] {
    if (plan == 0) return;
    if (table == nullptr) return SetError(errptr, "Invalid argument: table is NULL");
    auto p = PlanPrefetcher(table);
    if (!Check(p.status(), errptr)) return;
    Check((*p)->FreeGatherPlan(plan), errptr);
  });
}

char* es_table_prefetch_stats_json(const es_table_t* table, char** errptr) {
  char* json = nullptr;
  Guard(errptr, [&] {
    if (table == nullptr) return SetError(errptr, "Invalid argument: table is NULL");
    const Prefetcher* p = table->prefetcher_ptr.load(std::memory_order_acquire);
    const engram::gpu::PrefetchStats s = p ? p->stats() : engram::gpu::PrefetchStats{};
    nlohmann::json j = {
        {"device", table->device ? table->device->description() : std::string("none")},
        {"active", p != nullptr},
        {"tickets_issued", s.tickets_issued},
        {"tickets_live", s.tickets_live},
        {"tickets_failed", s.tickets_failed},
        {"tickets_cancelled", s.tickets_cancelled},
        {"rows_requested", s.rows_requested},
        {"rows_unique", s.rows_unique},
        {"hbm_hits", s.hbm_hits},
        {"hbm_inserts", s.hbm_inserts},
        {"rows_fetched", s.rows_fetched},
        {"bytes_to_device", s.bytes_to_device},
        {"inflight_bytes", s.inflight_bytes},
        {"inflight_bytes_peak", s.inflight_bytes_peak},
        {"blocked_prefetches", s.blocked_prefetches},
        {"rejected_prefetches", s.rejected_prefetches},
        {"hot_rows_pinned", s.hot_rows_pinned},
        {"hot_rows_left", p ? p->hot_rows_left().size() : 0},
        {"hbm",
         {{"capacity_rows", s.hbm.capacity_rows},
          {"rows", s.hbm.size_rows},
          {"pinned_rows", s.hbm.pinned_rows},
          {"inserts", s.hbm.inserts},
          {"rejections", s.hbm.rejections},
          {"evictions", s.hbm.evictions},
          {"metadata_bytes", s.hbm.metadata_bytes}}}};
    json = CopyString(j.dump(2));
  });
  return json;
}

}  // extern "C"
