// TableBuilder: writes a new table (data, checksums, MANIFEST) and publishes it atomically.
//
// Rows are appended in id order. Everything is written into a sibling directory
// "<path>.building-<pid>"; Finish() fsyncs it and then renames it to <path> (or, when <path>
// is an existing table, swaps the two with renameat2(RENAME_EXCHANGE) and deletes the old
// one). A crash or error at any point leaves <path> exactly as it was: nothing stored is lost.
// Destroying an unfinished builder removes its building directory.
//
// Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storage/env.h"
#include "storage/table_format.h"

namespace engram {

class TableBuilder {
 public:
  // REQUIRES: the parent directory of `path` exists. `replace` allows an existing table at
  // `path` to be replaced; otherwise an existing path is AlreadyExists.
  static Result<std::unique_ptr<TableBuilder>> Create(Env* env, const std::string& path,
                                                      uint64_t rows, uint32_t dim, DType dtype,
                                                      CreationInfo creation, bool replace);
  ~TableBuilder();

  const TableLayout& layout() const { return manifest_.layout; }
  uint64_t rows_added() const { return rows_added_; }

  // Appends `n` rows packed back to back (n * row_bytes bytes).
  Status AddRows(const void* rows, uint64_t n);
  // REQUIRES: all layout().rows rows added. Writes checksums and MANIFEST, then publishes.
  Status Finish();

 private:
  TableBuilder(Env* env, std::string path, std::string building_dir, Manifest manifest,
               bool replace);
  Status FlushPage();

  Env* const env_;
  const std::string path_;
  const std::string building_dir_;
  const bool replace_;
  Manifest manifest_;
  std::unique_ptr<WritableFile> data_;
  std::vector<uint8_t> buffer_;      // pages waiting to be written (several MiB)
  size_t buffer_used_ = 0;           // bytes of whole pages in buffer_
  uint32_t rows_in_page_ = 0;        // rows placed in the page being filled
  std::vector<uint64_t> checksums_;  // one per finished page
  uint64_t rows_added_ = 0;
  bool finished_ = false;
};

// Fills a table with rows produced by `make_row(id, out)`, writing `progress(done, total)`
// now and then (may be empty). Used by `create --fill` and the tests.
Status BuildTable(Env* env, const std::string& path, uint64_t rows, uint32_t dim, DType dtype,
                  CreationInfo creation, bool replace,
                  const std::function<void(uint64_t id, uint8_t* out)>& make_row,
                  const std::function<void(uint64_t done, uint64_t total)>& progress = {});

// Deterministic pseudo-random row `id` of a table filled with `seed`: values uniform in
// [-1, 1) encoded in `dtype`. Same (seed, id) -> same bytes, on every machine.
void RandomRow(DType dtype, uint32_t dim, uint64_t seed, uint64_t id, uint8_t* out);

}  // namespace engram
