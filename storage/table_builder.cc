#include "storage/table_builder.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>

namespace engram {
namespace {

constexpr size_t kBufferPages = 1024;  // 4 MiB per write

std::string NewUuid() {
  std::random_device rd;
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  return buf;
}

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

Result<std::unique_ptr<TableBuilder>> TableBuilder::Create(Env* env, const std::string& path,
                                                           uint64_t rows, uint32_t dim, DType dtype,
                                                           CreationInfo creation, bool replace) {
  ENGRAM_ASSIGN_OR_RETURN(TableLayout layout, TableLayout::Make(rows, dim, dtype));
  if (env->FileExists(path) && !replace) {
    return Status::AlreadyExists("table " + path + " already exists");
  }
  if (env->FileExists(path) && !env->FileExists(JoinPath(path, kManifestName))) {
    return Status::InvalidArgument(path + " exists and is not a table; refusing to replace it");
  }
  Manifest manifest;
  manifest.layout = layout;
  manifest.table_uuid = NewUuid();
  if (creation.created_unix_seconds == 0) {
    creation.created_unix_seconds =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
  }
  manifest.creation = std::move(creation);
  std::string building = path + ".building-" + std::to_string(::getpid());
  ENGRAM_RETURN_IF_ERROR(env->RemoveDirRecursive(building));  // a leftover of ours
  ENGRAM_RETURN_IF_ERROR(env->CreateDir(building));
  std::unique_ptr<TableBuilder> b(
      new TableBuilder(env, path, std::move(building), std::move(manifest), replace));
  ENGRAM_ASSIGN_OR_RETURN(b->data_,
                          env->NewWritableFile(JoinPath(b->building_dir_, kDataFileName)));
  b->checksums_.reserve(layout.num_pages());
  return b;
}

TableBuilder::TableBuilder(Env* env, std::string path, std::string building_dir, Manifest manifest,
                           bool replace)
    : env_(env),
      path_(std::move(path)),
      building_dir_(std::move(building_dir)),
      replace_(replace),
      manifest_(std::move(manifest)),
      buffer_(kBufferPages * kPageSize + kPageSize * manifest_.layout.pages_per_row) {}

TableBuilder::~TableBuilder() {
  data_.reset();
  if (!finished_) env_->RemoveDirRecursive(building_dir_).PermitUnchecked();
}

Status TableBuilder::FlushPage() {
  if (buffer_used_ == 0) return Status::OK();
  Status s = data_->Append(buffer_.data(), buffer_used_);
  buffer_used_ = 0;
  return s.WithContext("writing table " + path_);
}

Status TableBuilder::AddRows(const void* rows, uint64_t n) {
  const TableLayout& l = manifest_.layout;
  if (rows_added_ + n > l.rows) {
    return Status::InvalidArgument("table " + path_ + ": more rows added than the " +
                                   std::to_string(l.rows) + " declared");
  }
  const auto* src = static_cast<const uint8_t*>(rows);
  for (uint64_t i = 0; i < n; ++i, src += l.row_bytes) {
    uint8_t* page = buffer_.data() + buffer_used_;
    if (l.rows_per_page) {
      if (rows_in_page_ == 0) std::memset(page, 0, kPageSize);
      std::memcpy(page + rows_in_page_ * l.row_bytes, src, l.row_bytes);
      const bool last = rows_added_ + i + 1 == l.rows;
      if (++rows_in_page_ < l.rows_per_page && !last) continue;
      rows_in_page_ = 0;
      checksums_.push_back(Checksum(page, kPageSize));
      buffer_used_ += kPageSize;
    } else {
      const size_t span = size_t{l.pages_per_row} * kPageSize;
      std::memset(page, 0, span);
      std::memcpy(page, src, l.row_bytes);
      for (uint32_t p = 0; p < l.pages_per_row; ++p) {
        checksums_.push_back(Checksum(page + p * kPageSize, kPageSize));
      }
      buffer_used_ += span;
    }
    if (buffer_used_ >= kBufferPages * kPageSize) ENGRAM_RETURN_IF_ERROR(FlushPage());
  }
  rows_added_ += n;
  return Status::OK();
}

Status TableBuilder::Finish() {
  const TableLayout& l = manifest_.layout;
  if (rows_added_ != l.rows) {
    return Status::InvalidArgument("table " + path_ + ": " + std::to_string(rows_added_) +
                                   " rows added, " + std::to_string(l.rows) + " declared");
  }
  ENGRAM_RETURN_IF_ERROR(FlushPage());
  ENGRAM_RETURN_IF_ERROR(data_->Sync().WithContext("table " + path_));
  ENGRAM_RETURN_IF_ERROR(data_->Close().WithContext("table " + path_));
  const size_t sum_bytes = checksums_.size() * sizeof(uint64_t);
  manifest_.checksums_file_xxh3 = Checksum(checksums_.data(), sum_bytes);
  {
    ENGRAM_ASSIGN_OR_RETURN(auto f,
                            env_->NewWritableFile(JoinPath(building_dir_, kChecksumFileName)));
    ENGRAM_RETURN_IF_ERROR(f->Append(checksums_.data(), sum_bytes).WithContext("table " + path_));
    ENGRAM_RETURN_IF_ERROR(f->Sync().WithContext("table " + path_));
    ENGRAM_RETURN_IF_ERROR(f->Close().WithContext("table " + path_));
  }
  ENGRAM_RETURN_IF_ERROR(
      WriteManifest(env_, building_dir_, manifest_).WithContext("table " + path_));
  if (env_->FileExists(path_)) {
    if (!replace_) return Status::AlreadyExists("table " + path_ + " already exists");
    ENGRAM_RETURN_IF_ERROR(env_->ExchangePaths(building_dir_, path_));
    finished_ = true;  // path_ now holds the new table; building_dir_ holds the old one
    ENGRAM_RETURN_IF_ERROR(env_->SyncDir(DirName(path_)));
    return env_->RemoveDirRecursive(building_dir_);
  }
  ENGRAM_RETURN_IF_ERROR(env_->RenameFile(building_dir_, path_));
  finished_ = true;
  return env_->SyncDir(DirName(path_));
}

Status BuildTable(Env* env, const std::string& path, uint64_t rows, uint32_t dim, DType dtype,
                  CreationInfo creation, bool replace,
                  const std::function<void(uint64_t id, uint8_t* out)>& make_row,
                  const std::function<void(uint64_t done, uint64_t total)>& progress) {
  ENGRAM_ASSIGN_OR_RETURN(auto builder, TableBuilder::Create(env, path, rows, dim, dtype,
                                                             std::move(creation), replace));
  const uint32_t row_bytes = builder->layout().row_bytes;
  constexpr uint64_t kChunkRows = 4096;
  std::vector<uint8_t> chunk(kChunkRows * row_bytes);
  for (uint64_t first = 0; first < rows; first += kChunkRows) {
    const uint64_t n = std::min(kChunkRows, rows - first);
    for (uint64_t i = 0; i < n; ++i) make_row(first + i, chunk.data() + i * row_bytes);
    ENGRAM_RETURN_IF_ERROR(builder->AddRows(chunk.data(), n));
    if (progress && ((first / kChunkRows) % 64 == 0 || first + n == rows))
      progress(first + n, rows);
  }
  return builder->Finish();
}

void RandomRow(DType dtype, uint32_t dim, uint64_t seed, uint64_t id, uint8_t* out) {
  uint64_t state = seed * 0x9e3779b97f4a7c15ull ^ (id + 1) * 0xd1b54a32d192ed03ull;
  auto next_float = [&state] {
    // 24 random bits -> [-1, 1)
    return static_cast<float>(SplitMix64(state) >> 40) * (2.0f / 16777216.0f) - 1.0f;
  };
  if (dtype == DType::kF32) {
    for (uint32_t i = 0; i < dim; ++i) {
      float v = next_float();
      std::memcpy(out + 4 * i, &v, 4);
    }
    return;
  }
  thread_local std::vector<float> values;
  values.resize(dim);
  for (float& v : values) v = next_float();
  QuantizeRow(dtype, dim, values.data(), out);
}

}  // namespace engram
