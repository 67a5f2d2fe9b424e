// Implementation of the C API (api/engram_store.h): each handle wraps the C++ object, every
// entry point catches all exceptions and turns Status into the errptr convention.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "api/c_api_errors.h"
#include "api/c_api_internal.h"
#include "api/engram_store.h"
#include "cache/cache_policy.h"
#include "storage/dtype.h"
#include "storage/table.h"
#include "storage/table_builder.h"

namespace {

using engram::c_api::Check;
using engram::c_api::CopyString;
using engram::c_api::Guard;
using engram::c_api::SetError;

bool ValidDType(const es_dtype_t& dtype) {
  const int code = engram::c_api::EnumCode(dtype);
  return code >= 0 && code < engram::kNumDTypes;
}

}  // namespace

extern "C" {

int es_version_major(void) { return ES_VERSION_MAJOR; }
int es_version_minor(void) { return ES_VERSION_MINOR; }
int es_version_patch(void) { return ES_VERSION_PATCH; }
const char* es_version_string(void) { return "0.2.0"; }
uint32_t es_table_format_version(void) { return engram::kFormatVersion; }

uint32_t es_dtype_row_bytes(es_dtype_t dtype, uint32_t dim) {
  if (!ValidDType(dtype)) return 0;
  auto bytes = engram::RowBytes(static_cast<engram::DType>(dtype), dim);
  return bytes.ok() ? *bytes : 0;
}

const char* es_dtype_name(es_dtype_t dtype) {
  if (!ValidDType(dtype)) return nullptr;
  return engram::DTypeName(static_cast<engram::DType>(dtype)).data();  // static, NUL-terminated
}

es_options_t* es_options_create(void) { return new (std::nothrow) es_options_t(); }
void es_options_destroy(es_options_t* options) { delete options; }

void es_options_set_dram_mode(es_options_t* o, es_dram_mode_t mode) {
  switch (engram::c_api::EnumCode(mode)) {
    case ES_DRAM_NONE:
      o->options.dram_mode = engram::DramMode::kNone;
      break;
    case ES_DRAM_RESIDENT:
      o->options.dram_mode = engram::DramMode::kResident;
      break;
    case ES_DRAM_CACHE:
      o->options.dram_mode = engram::DramMode::kCache;
      break;
  }
}
void es_options_set_dram_cache_bytes(es_options_t* o, uint64_t bytes) {
  o->options.dram_cache_bytes = bytes;
}
void es_options_set_shared_resident(es_options_t* o, int shared, const char* shared_dir) {
  o->options.resident.shared = shared != 0;
  if (shared_dir != nullptr) o->options.resident.shared_dir = shared_dir;
}
void es_options_set_huge_pages(es_options_t* o, int enabled) {
  o->options.resident.huge_pages = enabled != 0;
}
void es_options_set_io_backend(es_options_t* o, es_io_backend_t backend) {
  switch (engram::c_api::EnumCode(backend)) {
    case ES_IO_AUTO:
      o->options.nvme.backend = engram::IoBackend::kAuto;
      break;
    case ES_IO_URING:
      o->options.nvme.backend = engram::IoBackend::kIoUring;
      break;
    case ES_IO_PREAD:
      o->options.nvme.backend = engram::IoBackend::kPread;
      break;
  }
}
void es_options_set_queue_depth(es_options_t* o, uint32_t depth) {
  o->options.nvme.queue_depth = depth == 0 ? 1 : depth;
}

void es_options_set_cache_policy(es_options_t* o, const char* name) {
  Guard(nullptr, [&] { o->cache_policy = name ? name : "default"; });
}

void es_options_set_hot_rows(es_options_t* o, const char* npy_path) {
  Guard(nullptr, [&] { o->options.hot_rows_path = npy_path ? npy_path : ""; });
}

void es_table_create(const char* path, uint64_t rows, uint32_t dim, es_dtype_t dtype,
                     int fill_random, uint64_t seed, char** errptr) {
  Guard(errptr, [&] {
    if (path == nullptr) return SetError(errptr, "Invalid argument: path is NULL");
    if (!ValidDType(dtype)) return SetError(errptr, "Invalid argument: unknown dtype code");
    const auto dt = static_cast<engram::DType>(dtype);
    engram::CreationInfo info;
    info.fill = fill_random ? "random" : "zeros";
    info.seed = seed;
    info.tool_version = es_version_string();
    auto row = engram::RowBytes(dt, dim);
    if (!Check(row.status(), errptr)) return;
    const uint32_t row_bytes = *row;
    Check(engram::BuildTable(engram::Env::Default(), path, rows, dim, dt, info, /*replace=*/false,
                             [&](uint64_t id, uint8_t* out) {
                               if (fill_random) {
                                 engram::RandomRow(dt, dim, seed, id, out);
                               } else {
                                 std::memset(out, 0, row_bytes);
                               }
                             }),
          errptr);
  });
}

es_table_t* es_table_open(const char* path, const es_options_t* options, char** errptr) {
  es_table_t* handle = nullptr;
  Guard(errptr, [&] {
    if (path == nullptr) return SetError(errptr, "Invalid argument: path is NULL");
    engram::TableOptions opts = options ? options->options : engram::TableOptions();
    const std::string policy = options ? options->cache_policy : "default";
    opts.cache_policy = engram::cache::NewPolicyFactory(policy);
    if (opts.cache_policy == nullptr) {
      return SetError(errptr, "Invalid argument: unknown cache policy '" + policy + "'");
    }
    if (options && engram::c_api::HotRowsGoToHbm(*options)) opts.hot_rows_path.clear();
    auto table = engram::Table::Open(path, opts);
    if (!Check(table.status(), errptr)) return;
    auto opened = std::make_unique<es_table_t>();
    opened->table = std::move(table).value();
    if (!Check(engram::c_api::SetUpPrefetch(opened.get(), options ? *options : es_options_t()),
               errptr)) {
      return;
    }
    handle = opened.release();
  });
  return handle;
}

void es_table_close(es_table_t* table) { delete table; }

uint64_t es_table_rows(const es_table_t* t) { return t->table->rows(); }
uint32_t es_table_dim(const es_table_t* t) { return t->table->dim(); }
es_dtype_t es_table_dtype(const es_table_t* t) {
  return static_cast<es_dtype_t>(t->table->dtype());
}
uint32_t es_table_row_bytes(const es_table_t* t) { return t->table->row_bytes(); }

void es_table_lookup(es_table_t* table, const uint64_t* ids, size_t n, void* out, size_t out_stride,
                     char** errptr) {
  Guard(errptr, [&] {
    if (table == nullptr) return SetError(errptr, "Invalid argument: table is NULL");
    Check(table->table->Lookup(ids, n, out, out_stride), errptr);
  });
}

size_t es_table_tier_count(const es_table_t* table) { return table->table->Stats().size(); }

void es_table_tier_stats(const es_table_t* table, size_t tier, es_tier_stats_t* out,
                         char** errptr) {
  Guard(errptr, [&] {
    if (table == nullptr || out == nullptr) {
      return SetError(errptr, "Invalid argument: table or out is NULL");
    }
    auto stats = table->table->Stats();
    if (tier >= stats.size()) {
      return SetError(errptr, "Invalid argument: tier " + std::to_string(tier) +
                                  " out of range (the table has " + std::to_string(stats.size()) +
                                  " tiers)");
    }
    const engram::TierStats& s = stats[tier];
    std::memset(out, 0, sizeof(*out));
    std::strncpy(out->tier, s.tier.c_str(), sizeof(out->tier) - 1);
    out->lookups = s.lookups;
    out->hits = s.hits;
    out->misses = s.misses;
    out->bytes_read = s.bytes_read;
    out->reads = s.reads;
    out->read_p50_us = s.LatencyPercentileUs(50);
    out->read_p99_us = s.LatencyPercentileUs(99);
  });
}

char* es_table_info_json(const es_table_t* table, char** errptr) {
  char* json = nullptr;
  Guard(errptr, [&] {
    if (table == nullptr) return SetError(errptr, "Invalid argument: table is NULL");
    json = CopyString(table->table->InfoJson());
  });
  return json;
}

void es_dequantize(es_dtype_t dtype, uint32_t dim, const void* rows, size_t n, size_t row_stride,
                   float* out, size_t out_stride, char** errptr) {
  Guard(errptr, [&] {
    if (!ValidDType(dtype)) return SetError(errptr, "Invalid argument: unknown dtype code");
    const auto dt = static_cast<engram::DType>(dtype);
    auto row_bytes = engram::RowBytes(dt, dim);
    if (!Check(row_bytes.status(), errptr)) return;
    if (n == 0) return;
    if (rows == nullptr || out == nullptr) {
      return SetError(errptr, "Invalid argument: rows or out is NULL");
    }
    if (row_stride < *row_bytes || out_stride < dim * sizeof(float)) {
      return SetError(errptr, "Invalid argument: stride smaller than a row (row " +
                                  std::to_string(*row_bytes) + " bytes, output row " +
                                  std::to_string(dim * sizeof(float)) + " bytes)");
    }
    const auto* src = static_cast<const uint8_t*>(rows);
    auto* dst = reinterpret_cast<uint8_t*>(out);
    for (size_t i = 0; i < n; ++i) {
      engram::DequantizeRow(dt, dim, src + i * row_stride,
                            reinterpret_cast<float*>(dst + i * out_stride));
    }
  });
}

void es_free(void* ptr) { std::free(ptr); }

}  // extern "C"
