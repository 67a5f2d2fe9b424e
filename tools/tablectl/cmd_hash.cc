// tablectl ngram-hash: raw token ids -> an Engram layer's n-gram hashes (BRIEF section 4).
//
//   tablectl ngram-hash --config CFG.json --layer L --ids IDS.npy --out HASHES.npy
//                       [--offsets] [--dead-mask DEAD.npy] [--json]
//
// IDS.npy: [B, T] int64 (int32, uint32 and uint64 are widened) raw token ids, each row its own
// sequence. HASHES.npy: [B, T, (max_ngram_size-1) * n_head_per_ngram] int64, columns in (n, j)
// order, without offsets unless --offsets (then row ids of the layer's stacked table).
// DEAD.npy: [B, T] uint8/int8 (np.bool_ arrays: save them .astype(np.uint8)), non-zero = dead.
#include <cstdio>
#include <cstring>
#include <vector>

#include "model/engram_config.h"
#include "model/ngram_hash.h"
#include "storage/array_file.h"
#include "tools/tablectl/cmd_common.h"
#include "tools/tablectl/commands.h"
#include "tools/tablectl/output.h"

namespace engram::tablectl {
namespace {

struct HashOptions {
  std::string config;
  int64_t layer = 0;
  std::string ids;
  std::string out;
  std::string dead_mask;  // "" when not given
  bool offsets = false;
};

Result<HashOptions> ParseHashOptions(const ParsedArgs& args) {
  ENGRAM_RETURN_IF_ERROR(CheckPositionalCount(args, 0, 0, "no positional arguments"));
  HashOptions o;
  ENGRAM_ASSIGN_OR_RETURN(o.config, RequiredValue(args, "config", "CFG.json"));
  ENGRAM_ASSIGN_OR_RETURN(std::string layer, RequiredValue(args, "layer", "L"));
  ENGRAM_ASSIGN_OR_RETURN(uint64_t layer_id, ParseUint64(layer, "--layer"));
  if (layer_id > static_cast<uint64_t>(INT64_MAX)) {
    return Status::InvalidArgument("--layer " + layer + " is out of range");
  }
  o.layer = static_cast<int64_t>(layer_id);
  ENGRAM_ASSIGN_OR_RETURN(o.ids, RequiredValue(args, "ids", "IDS.npy"));
  ENGRAM_ASSIGN_OR_RETURN(o.out, RequiredValue(args, "out", "HASHES.npy"));
  o.dead_mask = args.Value("dead-mask").value_or("");
  o.offsets = args.Has("offsets");
  return o;
}

// A whole 2-D .npy of integers read as int64 ([rows, cols] into *shape).
Result<std::vector<int64_t>> ReadInt64Matrix(Env* env, const std::string& path,
                                             std::vector<uint64_t>* shape) {
  ENGRAM_ASSIGN_OR_RETURN(ArrayInfo info, ReadNpyInfo(env, path));
  if (info.shape.size() != 2) {
    return Status::InvalidArgument(path + ": expected a 2-D [B, T] array, got " +
                                   std::to_string(info.shape.size()) + " dimensions");
  }
  const ElementType t = info.type;
  if (t != ElementType::kI64 && t != ElementType::kI32 && t != ElementType::kU32 &&
      t != ElementType::kU64) {
    return Status::InvalidArgument(path +
                                   ": token ids must be int64, int32, uint32 or uint64, not " +
                                   std::string(ElementTypeName(t)));
  }
  const size_t n = info.shape[0] * info.shape[1];
  std::vector<uint8_t> bytes(info.data_bytes);
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->OpenRandomAccess(path, /*direct_io=*/false));
  if (!bytes.empty())
    ENGRAM_RETURN_IF_ERROR(file->Read(info.data_offset, bytes.size(), bytes.data()));
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = bytes.data() + i * ElementSize(t);
    if (t == ElementType::kI64) {
      std::memcpy(&out[i], p, 8);
    } else if (t == ElementType::kU64) {
      uint64_t v;
      std::memcpy(&v, p, 8);
      if (v > static_cast<uint64_t>(INT64_MAX)) {
        return Status::InvalidArgument(path + ": id " + std::to_string(v) + " at position " +
                                       std::to_string(i) + " does not fit int64");
      }
      out[i] = static_cast<int64_t>(v);
    } else if (t == ElementType::kI32) {
      int32_t v;
      std::memcpy(&v, p, 4);
      out[i] = v;
    } else {
      uint32_t v;
      std::memcpy(&v, p, 4);
      out[i] = v;
    }
  }
  *shape = info.shape;
  return out;
}

Result<std::vector<uint8_t>> ReadDeadMask(Env* env, const std::string& path,
                                          const std::vector<uint64_t>& shape) {
  ENGRAM_ASSIGN_OR_RETURN(ArrayInfo info, ReadNpyInfo(env, path));
  if (info.shape != shape) {
    return Status::InvalidArgument(path + ": the dead mask's shape differs from the ids'");
  }
  if (info.type != ElementType::kU8 && info.type != ElementType::kI8) {
    return Status::InvalidArgument(path + ": the dead mask must be uint8 or int8, not " +
                                   std::string(ElementTypeName(info.type)));
  }
  std::vector<uint8_t> mask(info.data_bytes);
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->OpenRandomAccess(path, /*direct_io=*/false));
  if (!mask.empty()) ENGRAM_RETURN_IF_ERROR(file->Read(info.data_offset, mask.size(), mask.data()));
  return mask;
}

Status ExecuteHash(const HashOptions& o, const CommonOptions& common) {
  Env* env = Env::Default();
  ENGRAM_ASSIGN_OR_RETURN(model::EngramConfig config, model::LoadEngramConfig(env, o.config));
  ENGRAM_ASSIGN_OR_RETURN(model::NgramHasher hasher,
                          model::NgramHasher::Create(env, config, o.layer));
  std::vector<uint64_t> shape;
  ENGRAM_ASSIGN_OR_RETURN(std::vector<int64_t> ids, ReadInt64Matrix(env, o.ids, &shape));
  std::vector<uint8_t> dead;
  if (!o.dead_mask.empty()) {
    ENGRAM_ASSIGN_OR_RETURN(dead, ReadDeadMask(env, o.dead_mask, shape));
  }
  const size_t batch = shape[0], seq_len = shape[1];
  const size_t cols = static_cast<size_t>(hasher.num_columns());
  std::vector<int64_t> hashes(batch * seq_len * cols);
  {
    // One row at a time, so long inputs show progress (units: input rows of seq_len ids).
    Progress progress("ngram-hash", common.progress, 8.0 * static_cast<double>(seq_len));
    const int64_t cu_seqlens[2] = {0, static_cast<int64_t>(seq_len)};
    for (size_t b = 0; b < batch; ++b) {
      Status s = hasher.HashVarlen(ids.data() + b * seq_len, cu_seqlens, 1, /*histories=*/nullptr,
                                   dead.empty() ? nullptr : dead.data() + b * seq_len, o.offsets,
                                   /*commit=*/false, hashes.data() + b * seq_len * cols);
      if (!s.ok()) return s.WithContext(o.ids + ": row " + std::to_string(b));
      progress.Update(b + 1, batch);
    }
  }
  ENGRAM_RETURN_IF_ERROR(
      WriteNpy(env, o.out, ElementType::kI64, {batch, seq_len, cols}, hashes.data()));
  if (common.json) {
    PrintJson({{"command", "ngram-hash"},
               {"config", o.config},
               {"layer", o.layer},
               {"ids", o.ids},
               {"out", o.out},
               {"batch", batch},
               {"seq_len", seq_len},
               {"columns", cols},
               {"max_ngram_size", hasher.max_ngram_size()},
               {"heads_per_ngram", hasher.heads_per_ngram()},
               {"offsets", o.offsets},
               {"table_sizes", hasher.table_sizes()},
               {"row_offsets", hasher.offsets()},
               {"total_rows", hasher.total_rows()},
               {"multipliers", hasher.multipliers()},
               {"compressed_pad_id", hasher.compressed_pad_id()}});
  } else {
    std::printf(
        "hashed %zu x %zu ids for layer %lld: %zu columns (orders 2..%d x %d heads), "
        "%lld table rows, %s -> %s\n",
        batch, seq_len, static_cast<long long>(o.layer), cols, hasher.max_ngram_size(),
        hasher.heads_per_ngram(), static_cast<long long>(hasher.total_rows()),
        o.offsets ? "row ids (with offsets)" : "hashes (no offsets)", o.out.c_str());
  }
  return Status::OK();
}

}  // namespace

int RunNgramHash(const ParsedArgs& args) {
  Result<HashOptions> o = ParseHashOptions(args);
  if (!o.ok()) return ReportArgumentError("ngram-hash", o.status());
  Status s = ExecuteHash(*o, GetCommonOptions(args));
  return s.ok() ? kExitOk : ReportFailure(s);
}

}  // namespace engram::tablectl
