// Implementation of the hasher part of the C API (api/engram_hash.h): each handle wraps the
// C++ object, every entry point that can fail catches all exceptions and turns Status into the
// errptr convention of api/engram_store.h (messages are malloc'ed: es_free frees them).
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "api/c_api_errors.h"
#include "api/engram_hash.h"
#include "model/engram_config.h"
#include "model/ngram_hash.h"
#include "storage/env.h"

struct es_hasher_t {
  engram::model::NgramHasher hasher;
};

struct es_hash_state_t {
  engram::model::NgramHistory history;
  engram::model::NgramHistory fresh;  // what es_hash_state_reset restores
};

namespace {

using engram::c_api::Check;
using engram::c_api::Guard;
using engram::c_api::SetError;

es_hasher_t* MakeHasher(const engram::Result<engram::model::EngramConfig>& config, int64_t layer_id,
                        char** errptr) {
  if (!Check(config.status(), errptr)) return nullptr;
  auto hasher = engram::model::NgramHasher::Create(engram::Env::Default(), *config, layer_id);
  if (!Check(hasher.status(), errptr)) return nullptr;
  return new es_hasher_t{std::move(hasher).value()};
}

void CopyOut(const std::vector<int64_t>& v, int64_t* out) {
  if (out != nullptr && !v.empty()) std::memcpy(out, v.data(), v.size() * sizeof(int64_t));
}

}  // namespace

extern "C" {

es_hasher_t* es_hasher_create_from_file(const char* config_path, int64_t layer_id, char** errptr) {
  es_hasher_t* handle = nullptr;
  Guard(errptr, [&] {
    if (config_path == nullptr) return SetError(errptr, "Invalid argument: config_path is NULL");
    handle = MakeHasher(engram::model::LoadEngramConfig(engram::Env::Default(), config_path),
                        layer_id, errptr);
  });
  return handle;
}

es_hasher_t* es_hasher_create_from_json(const char* json, size_t json_len, const char* base_dir,
                                        int64_t layer_id, char** errptr) {
  es_hasher_t* handle = nullptr;
  Guard(errptr, [&] {
    if (json == nullptr) return SetError(errptr, "Invalid argument: json is NULL");
    handle = MakeHasher(engram::model::ParseEngramConfig(std::string_view(json, json_len),
                                                         base_dir ? base_dir : ""),
                        layer_id, errptr);
  });
  return handle;
}

void es_hasher_destroy(es_hasher_t* hasher) { delete hasher; }

int64_t es_hasher_layer_id(const es_hasher_t* h) { return h->hasher.layer_id(); }
uint32_t es_hasher_max_ngram_size(const es_hasher_t* h) {
  return static_cast<uint32_t>(h->hasher.max_ngram_size());
}
uint32_t es_hasher_heads_per_ngram(const es_hasher_t* h) {
  return static_cast<uint32_t>(h->hasher.heads_per_ngram());
}
uint32_t es_hasher_num_columns(const es_hasher_t* h) {
  return static_cast<uint32_t>(h->hasher.num_columns());
}
void es_hasher_table_sizes(const es_hasher_t* h, int64_t* out) {
  CopyOut(h->hasher.table_sizes(), out);
}
void es_hasher_offsets(const es_hasher_t* h, int64_t* out) { CopyOut(h->hasher.offsets(), out); }
uint64_t es_hasher_total_rows(const es_hasher_t* h) {
  return static_cast<uint64_t>(h->hasher.total_rows());
}
void es_hasher_multipliers(const es_hasher_t* h, int64_t* out) {
  CopyOut(h->hasher.multipliers(), out);
}
int64_t es_hasher_compressed_pad_id(const es_hasher_t* h) { return h->hasher.compressed_pad_id(); }

void es_hasher_hash(const es_hasher_t* hasher, const int64_t* ids, size_t batch, size_t seq_len,
                    const uint8_t* dead_mask, int with_offsets, int64_t* out, char** errptr) {
  Guard(errptr, [&] {
    if (hasher == nullptr) return SetError(errptr, "Invalid argument: hasher is NULL");
    if (batch * seq_len == 0) return;
    if (ids == nullptr || out == nullptr) {
      return SetError(errptr, "Invalid argument: ids or out is NULL");
    }
    Check(hasher->hasher.HashBatch(ids, batch, seq_len, dead_mask, with_offsets != 0, out), errptr);
  });
}

es_hash_state_t* es_hash_state_create(const es_hasher_t* hasher, char** errptr) {
  es_hash_state_t* state = nullptr;
  Guard(errptr, [&] {
    if (hasher == nullptr) return SetError(errptr, "Invalid argument: hasher is NULL");
    engram::model::NgramHistory fresh(hasher->hasher);
    state = new es_hash_state_t{fresh, fresh};
  });
  return state;
}

void es_hash_state_destroy(es_hash_state_t* state) { delete state; }

void es_hash_state_reset(es_hash_state_t* state) {
  if (state != nullptr) state->history = state->fresh;
}

void es_hash_state_commit(es_hash_state_t* state, const es_hasher_t* hasher, const int64_t* ids,
                          const uint8_t* dead_mask, size_t n, char** errptr) {
  Guard(errptr, [&] {
    if (state == nullptr || hasher == nullptr) {
      return SetError(errptr, "Invalid argument: state or hasher is NULL");
    }
    if (n == 0) return;
    if (ids == nullptr) return SetError(errptr, "Invalid argument: ids is NULL");
    Check(hasher->hasher.Commit(&state->history, ids, dead_mask, n), errptr);
  });
}

void es_hasher_hash_varlen(const es_hasher_t* hasher, const int64_t* ids, const int64_t* cu_seqlens,
                           size_t num_requests, es_hash_state_t* const* states,
                           const uint8_t* dead_mask, int with_offsets, int commit, int64_t* out,
                           char** errptr) {
  Guard(errptr, [&] {
    if (hasher == nullptr || cu_seqlens == nullptr) {
      return SetError(errptr, "Invalid argument: hasher or cu_seqlens is NULL");
    }
    if (cu_seqlens[num_requests] > 0 && (ids == nullptr || out == nullptr)) {
      return SetError(errptr, "Invalid argument: ids or out is NULL");
    }
    std::vector<engram::model::NgramHistory*> histories;
    if (states != nullptr) {
      histories.resize(num_requests);
      for (size_t r = 0; r < num_requests; ++r) {
        histories[r] = states[r] != nullptr ? &states[r]->history : nullptr;
      }
    }
    Check(hasher->hasher.HashVarlen(ids, cu_seqlens, num_requests,
                                    states != nullptr ? histories.data() : nullptr, dead_mask,
                                    with_offsets != 0, commit != 0, out),
          errptr);
  });
}

}  // extern "C"
