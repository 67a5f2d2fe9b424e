#include "model/token_map.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>

#include "storage/array_file.h"

namespace engram::model {
namespace {

static_assert(std::endian::native == std::endian::little,
              ".npy data is little-endian; this reader copies it as is");

std::string ShapeText(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Index of the first negative value, or -1.
int64_t FirstNegative(const std::vector<int64_t>& table) {
  auto it = std::find_if(table.begin(), table.end(), [](int64_t v) { return v < 0; });
  return it == table.end() ? -1 : it - table.begin();
}

int64_t MaxPlusOne(const std::vector<int64_t>& table) {
  if (table.empty()) return 0;
  return *std::max_element(table.begin(), table.end()) + 1;
}

// Reads the whole data section of `info` (an int64 or int32 1-D array) widened to int64.
Result<std::vector<int64_t>> ReadValues(Env* env, const ArrayInfo& info) {
  const size_t elem = ElementSize(info.type);
  const uint64_t n = info.shape[0];
  ENGRAM_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file,
                          env->OpenRandomAccess(info.path, /*direct_io=*/false));
  std::vector<int64_t> table(n);
  if (info.type == ElementType::kI64) {
    if (n > 0) ENGRAM_RETURN_IF_ERROR(file->Read(info.data_offset, n * elem, table.data()));
    return table;
  }
  std::vector<int32_t> narrow(n);
  if (n > 0) ENGRAM_RETURN_IF_ERROR(file->Read(info.data_offset, n * elem, narrow.data()));
  std::copy(narrow.begin(), narrow.end(), table.begin());
  return table;
}

}  // namespace

Result<TokenMap> TokenMap::LoadNpy(Env* env, const std::string& path) {
  ENGRAM_ASSIGN_OR_RETURN(ArrayInfo info, ReadNpyInfo(env, path));
  if ((info.type != ElementType::kI64 && info.type != ElementType::kI32) ||
      info.shape.size() != 1) {
    return Status::InvalidArgument(path + ": a token map must be a 1-D int64 or int32 array, got " +
                                   std::string(ElementTypeName(info.type)) + " " +
                                   ShapeText(info.shape));
  }
  if (info.shape[0] == 0) return Status::Corruption(path + ": the token map is empty");
  ENGRAM_ASSIGN_OR_RETURN(std::vector<int64_t> table, ReadValues(env, info));
  const int64_t bad = FirstNegative(table);
  if (bad >= 0) {
    return Status::Corruption(path + ": token map value at position " + std::to_string(bad) +
                              " is negative (" + std::to_string(table[bad]) + ")");
  }
  const int64_t compressed = MaxPlusOne(table);
  return TokenMap(std::move(table), compressed);
}

TokenMap TokenMap::Identity(int64_t vocab_size) {
  std::vector<int64_t> table(static_cast<size_t>(std::max<int64_t>(vocab_size, 0)));
  for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int64_t>(i);
  const int64_t compressed = static_cast<int64_t>(table.size());
  return TokenMap(std::move(table), compressed);
}

Result<TokenMap> TokenMap::FromTable(std::vector<int64_t> table) {
  const int64_t bad = FirstNegative(table);
  if (bad >= 0) {
    return Status::InvalidArgument("token map value at position " + std::to_string(bad) +
                                   " is negative (" + std::to_string(table[bad]) + ")");
  }
  const int64_t compressed = MaxPlusOne(table);
  return TokenMap(std::move(table), compressed);
}

Status TokenMap::SaveNpy(Env* env, const std::string& path) const {
  return WriteNpy(env, path, ElementType::kI64, {static_cast<uint64_t>(table_.size())},
                  table_.data());
}

Result<int64_t> TokenMap::Compress(int64_t raw_id) const {
  if (raw_id < 0 || raw_id >= raw_vocab_size()) {
    return Status::InvalidArgument("raw token id " + std::to_string(raw_id) +
                                   " is outside the token map's vocabulary [0, " +
                                   std::to_string(raw_vocab_size()) + ")");
  }
  return table_[static_cast<size_t>(raw_id)];
}

}  // namespace engram::model
