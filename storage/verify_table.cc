// VerifyTable: reads a whole table and checks every page against its checksum.
#include <cstdlib>
#include <memory>

#include "storage/table.h"

namespace engram {
namespace {

constexpr uint64_t kChunkPages = 2048;  // 8 MiB per read

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// The first row stored in `page` (for messages).
uint64_t FirstRowOfPage(const TableLayout& l, uint64_t page) {
  return l.rows_per_page ? page * l.rows_per_page : page / l.pages_per_row;
}

}  // namespace

Status VerifyTable(Env* env, const std::string& path, std::vector<std::string>* errors,
                   size_t max_errors,
                   const std::function<void(uint64_t done, uint64_t total)>& progress) {
  ENGRAM_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(env, path));
  ENGRAM_ASSIGN_OR_RETURN(std::vector<uint64_t> sums, ReadPageChecksums(env, path, manifest));
  const TableLayout& l = manifest.layout;
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->OpenRandomAccess(JoinPath(path, kDataFileName), true));
  ENGRAM_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size != l.data_bytes()) {
    return Status::Corruption("table " + path + ": data file has " + std::to_string(size) +
                              " bytes, expected " + std::to_string(l.data_bytes()) +
                              (size < l.data_bytes() ? " (truncated)" : ""));
  }
  std::unique_ptr<uint8_t, AlignedFree> buf(
      static_cast<uint8_t*>(std::aligned_alloc(kPageSize, kChunkPages * kPageSize)));
  const uint64_t pages = l.num_pages();
  uint64_t bad = 0;
  for (uint64_t first = 0; first < pages; first += kChunkPages) {
    const uint64_t count = std::min(kChunkPages, pages - first);
    ENGRAM_RETURN_IF_ERROR(file->Read(first * kPageSize, count * kPageSize, buf.get()));
    for (uint64_t p = 0; p < count; ++p) {
      if (Checksum(buf.get() + p * kPageSize, kPageSize) == sums[first + p]) continue;
      ++bad;
      if (errors && errors->size() < max_errors) {
        errors->push_back(
            PageChecksumMismatch(path, l, first + p, FirstRowOfPage(l, first + p)).message());
      }
    }
    if (progress) progress(first + count, pages);
  }
  if (bad > 0) {
    return Status::Corruption("table " + path + ": " + std::to_string(bad) + " of " +
                              std::to_string(pages) + " pages failed their checksum");
  }
  return Status::OK();
}

}  // namespace engram
