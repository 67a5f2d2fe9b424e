// Table format: where each row lives in the data file, and the manifest that describes a table.
//
// A table is a directory (docs/file-format.md):
//   MANIFEST    JSON, written atomically (MANIFEST.tmp, fsync, rename, fsync dir)
//   data        fixed-stride rows in 4 KiB pages; a row of <= 4 KiB never straddles a page,
//               larger rows start on a page boundary and take whole pages
//   checksums   one little-endian XXH3-64 per 4 KiB page of `data`
// Thread safety: values and pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "storage/dtype.h"
#include "storage/env.h"
#include "storage/status.h"

namespace engram {

// FROZEN: stored on disk. Bump kFormatVersion for any layout change.
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kPageSize = 4096;
inline constexpr char kManifestName[] = "MANIFEST";
inline constexpr char kDataFileName[] = "data";
inline constexpr char kChecksumFileName[] = "checksums";
inline constexpr char kChecksumAlgorithm[] = "xxh3_64";

// Geometry of the data file; derived from (rows, dim, dtype).
struct TableLayout {
  uint64_t rows = 0;
  uint32_t dim = 0;
  DType dtype = DType::kF32;
  uint32_t row_bytes = 0;      // bytes of one row
  uint32_t rows_per_page = 0;  // rows packed in one page; 0 when a row needs several pages
  uint32_t pages_per_row = 1;  // pages a row occupies when rows_per_page == 0, else 1

  // Validates and computes the geometry; InvalidArgument names the bad value.
  static Result<TableLayout> Make(uint64_t rows, uint32_t dim, DType dtype);

  uint64_t num_pages() const {
    return rows_per_page ? (rows + rows_per_page - 1) / rows_per_page : rows * pages_per_row;
  }
  uint64_t data_bytes() const { return num_pages() * kPageSize; }
  // First page holding row `id`.
  uint64_t PageOf(uint64_t id) const {
    return rows_per_page ? id / rows_per_page : id * pages_per_row;
  }
  // Byte offset of row `id` in the data file.
  uint64_t OffsetOf(uint64_t id) const {
    return rows_per_page ? PageOf(id) * kPageSize + (id % rows_per_page) * uint64_t{row_bytes}
                         : PageOf(id) * kPageSize;
  }
  // Pages one read must cover to get a whole row.
  uint32_t pages_per_read() const { return rows_per_page ? 1 : pages_per_row; }
};

// How the table came to be (informational; shown by `tablectl info`).
struct CreationInfo {
  std::string source = "create";  // "create" or "import <path>"
  std::string fill;               // "zeros" / "random" for create
  uint64_t seed = 0;
  uint64_t created_unix_seconds = 0;
  std::string tool_version;
};

struct Manifest {
  uint32_t format_version = kFormatVersion;
  TableLayout layout;
  std::string checksum_algorithm = kChecksumAlgorithm;
  uint32_t checksum_block_bytes = kPageSize;
  uint64_t checksums_file_xxh3 = 0;  // XXH3-64 of the whole checksums file
  std::string table_uuid;            // 32 hex chars; new for every build of a table
  CreationInfo creation;
};

// The manifest's fields as a JSON object (without "manifest_xxh3"); also the core of
// `tablectl info --json` and Table::InfoJson().
nlohmann::json ManifestToJson(const Manifest& manifest);
// JSON text of the manifest, ending in a "manifest_xxh3" field over the rest.
std::string SerializeManifest(const Manifest& manifest);
// Parses and validates; errors name `table` and the bad field (wrong version, bad checksum,
// truncated text, inconsistent geometry).
Result<Manifest> ParseManifest(std::string_view text, const std::string& table);
// Reads TABLE/MANIFEST; a missing MANIFEST next to a MANIFEST.tmp is reported as the leftover
// of an interrupted write.
Result<Manifest> ReadManifest(Env* env, const std::string& table_dir);
Status WriteManifest(Env* env, const std::string& table_dir, const Manifest& manifest);

// XXH3-64 of one page (the per-page checksum) or any buffer.
uint64_t Checksum(const void* data, size_t n);

// Reads and checks TABLE/checksums against the manifest: one entry per page, file hash equal.
Result<std::vector<uint64_t>> ReadPageChecksums(Env* env, const std::string& table_dir,
                                                const Manifest& manifest);

// The error for a page whose bytes do not match their checksum, naming table, row and offset.
Status PageChecksumMismatch(const std::string& table, const TableLayout& layout, uint64_t page,
                            uint64_t row);

}  // namespace engram
