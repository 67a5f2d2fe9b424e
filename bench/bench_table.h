// The tables store_bench and prefetch_bench read: "f32x64-<rows>" under a directory, rows of
// 64 x f32 (256 bytes) filled by RandomRow with seed 1. Both programs build them the same way,
// so a table one of them built is reused by the other.
//
// Thread safety: call from one thread (EnsureBenchTable writes progress lines and the table).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

#include "bench/bench_util.h"
#include "storage/env.h"
#include "storage/status.h"
#include "storage/table_builder.h"
#include "storage/table_format.h"

namespace engram::bench {

inline constexpr uint32_t kBenchTableDim = 64;
inline constexpr DType kBenchTableDType = DType::kF32;
inline constexpr uint64_t kBenchTableSeed = 1;
inline constexpr uint32_t kBenchRowBytes = kBenchTableDim * 4;  // 256

// The table of `rows` rows under `dir`: DIR/f32x64-ROWS.
inline std::string BenchTablePath(const std::string& dir, uint64_t rows) {
  return JoinPath(dir, "f32x64-" + std::to_string(rows));
}

// Drops the page cache of a file (the builder writes through it), so tens of GiB of cached
// table data neither crowd the memory resident workloads measure nor serve "NVMe" reads.
// Best effort: errors are ignored.
inline void DropPageCache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// Reuses the table at `path` when its MANIFEST says (rows, 64, f32) and its data file has the
// right size; otherwise (re)builds it with random rows, showing progress on stderr (a line
// redrawn on a terminal, a line per 10 % otherwise), and drops its data from the page cache.
// `tool` goes into the table's CreationInfo. Errors name the table.
inline Status EnsureBenchTable(const std::string& path, uint64_t rows, const std::string& tool) {
  Env* env = Env::Default();
  bool exists = false;
  if (Result<Manifest> m = ReadManifest(env, path); m.ok()) {
    exists = true;
    const TableLayout& l = m->layout;
    Result<uint64_t> size = env->FileSize(JoinPath(path, kDataFileName));
    if (l.rows == rows && l.dim == kBenchTableDim && l.dtype == kBenchTableDType && size.ok() &&
        *size == l.data_bytes()) {
      Say("table %s: reusing (%" PRIu64 " rows x %u B, %s)\n", path.c_str(), rows, l.row_bytes,
          GiB(l.data_bytes()).c_str());
      return Status::OK();
    }
    Say("table %s: wrong shape or size, rebuilding\n", path.c_str());
  } else {
    exists = env->FileExists(path);
  }
  CreationInfo info;
  info.fill = "random";
  info.seed = kBenchTableSeed;
  info.created_unix_seconds = static_cast<uint64_t>(std::time(nullptr));
  info.tool_version = tool;
  const double t0 = NowSeconds();
  // A line redrawn twice a second on a terminal; a line per 10 % in logs.
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  double last = 0;
  int last_decile = -1;
  auto progress = [&](uint64_t done, uint64_t total) {
    const double now = NowSeconds();
    const int decile = static_cast<int>(10 * done / total);
    if (tty ? (now - last < 0.5 && done != total) : decile == last_decile) return;
    last = now;
    last_decile = decile;
    std::fprintf(stderr, "%screating %s: %3.0f%% (%s, %.0f MB/s)%s", tty ? "\r" : "", path.c_str(),
                 100.0 * done / total, GiB(double(done) * kBenchRowBytes).c_str(),
                 done * double(kBenchRowBytes) / 1e6 / std::max(now - t0, 1e-9),
                 tty ? "   " : "\n");
    std::fflush(stderr);
  };
  Status s = BuildTable(
      env, path, rows, kBenchTableDim, kBenchTableDType, info, /*replace=*/exists,
      [](uint64_t id, uint8_t* out) {
        RandomRow(kBenchTableDType, kBenchTableDim, kBenchTableSeed, id, out);
      },
      progress);
  if (tty) std::fprintf(stderr, "\n");
  if (!s.ok()) return s.WithContext("creating table " + path);
  Say("table %s: created in %.1f s\n", path.c_str(), NowSeconds() - t0);
  DropPageCache(JoinPath(path, kDataFileName));
  return Status::OK();
}

}  // namespace engram::bench
