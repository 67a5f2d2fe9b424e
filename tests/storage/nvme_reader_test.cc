// Tests of NvmeReader on real tables on the real disk: both backends (io_uring and the pread
// pool), several dtypes and row sizes, page sharing, concurrency, checksum corruption, injected
// EIO / short reads through both the io_uring completion seam and Read(), and the io_uring ->
// pread fallback in a child process whose seccomp filter forbids io_uring_setup.
#include "storage/nvme_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <numeric>
#include <ostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/table_builder.h"
#include "storage/table_format.h"
#include "tests/support/fault_injection_env.h"
#include "tests/support/file_damage.h"
#include "tests/support/temp_dir.h"

namespace engram {

// Readable parameter names in gtest output (found by ADL in engram).
void PrintTo(IoBackend b, std::ostream* os) {
  *os << (b == IoBackend::kIoUring ? "kIoUring" : b == IoBackend::kPread ? "kPread" : "kAuto");
}

namespace {

using testing::FaultInjectionEnv;
using testing::ReadFault;
using testing::TempDir;

constexpr uint64_t kSeed = 42;

// A table built with RandomRow(kSeed) in a fresh temp dir.
struct TestTable {
  TempDir dir;
  std::string path;
  TableLayout layout;
  std::vector<uint64_t> checksums;

  std::string data_path() const { return JoinPath(path, kDataFileName); }
  std::vector<uint8_t> Expected(uint64_t id) const {
    std::vector<uint8_t> row(layout.row_bytes);
    RandomRow(layout.dtype, layout.dim, kSeed, id, row.data());
    return row;
  }
};

std::unique_ptr<TestTable> MakeTable(uint64_t rows, uint32_t dim, DType dtype) {
  auto t = std::make_unique<TestTable>();
  t->path = t->dir.Sub("t");
  Status s = BuildTable(Env::Default(), t->path, rows, dim, dtype, CreationInfo{}, false,
                        [&](uint64_t id, uint8_t* out) { RandomRow(dtype, dim, kSeed, id, out); });
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto manifest = ReadManifest(Env::Default(), t->path);
  EXPECT_TRUE(manifest.ok()) << manifest.status().ToString();
  t->layout = manifest->layout;
  auto sums = ReadPageChecksums(Env::Default(), t->path, *manifest);
  EXPECT_TRUE(sums.ok()) << sums.status().ToString();
  t->checksums = *sums;
  return t;
}

Result<std::unique_ptr<NvmeReader>> OpenReader(const TestTable& t, const NvmeReaderOptions& o,
                                               TierCounters* counters, Env* env = Env::Default(),
                                               bool direct_io = true) {
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->OpenRandomAccess(t.data_path(), direct_io));
  return NvmeReader::Open(std::move(file), t.layout, t.checksums, t.path, o, counters);
}

// Rows delivered by one ReadRows call, and how often each index was delivered.
struct Collected {
  std::vector<std::vector<uint8_t>> rows;
  std::vector<int> calls;
};

Status ReadAll(NvmeReader& reader, const TestTable& t, const std::vector<uint64_t>& ids,
               Collected* out) {
  out->rows.assign(ids.size(), {});
  out->calls.assign(ids.size(), 0);
  return reader.ReadRows(ids.data(), ids.size(), [&](size_t index, const uint8_t* row) {
    out->rows[index].assign(row, row + t.layout.row_bytes);
    ++out->calls[index];
  });
}

// Checks every id was delivered once with its RandomRow bytes; returns the number of failures.
int CountMismatches(const TestTable& t, const std::vector<uint64_t>& ids, const Collected& c) {
  int bad = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (c.calls[i] != 1 || c.rows[i] != t.Expected(ids[i])) ++bad;
  }
  return bad;
}

uint64_t DistinctExtents(const TestTable& t, const std::vector<uint64_t>& ids) {
  std::set<uint64_t> pages;
  for (uint64_t id : ids) pages.insert(t.layout.PageOf(id));
  return pages.size();
}

std::vector<uint64_t> RandomIds(uint64_t rows, size_t n, uint64_t seed) {
  std::vector<uint64_t> all(rows);
  std::iota(all.begin(), all.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(std::min<size_t>(n, rows));
  return all;
}

const char* BackendName(IoBackend b) {
  switch (b) {
    case IoBackend::kIoUring:
      return "IoUring";
    case IoBackend::kPread:
      return "Pread";
    case IoBackend::kAuto:
      return "Auto";
  }
  return "?";
}

// Opens the reader, skipping io_uring tests on a kernel where io_uring cannot be set up.
#define OPEN_OR_SKIP(var, table, options, counters, ...)              \
  auto var##_r = OpenReader(table, options, counters, ##__VA_ARGS__); \
  if (!var##_r.ok() && var##_r.status().IsNotSupported()) {           \
    GTEST_SKIP() << var##_r.status().ToString();                      \
  }                                                                   \
  ASSERT_TRUE(var##_r.ok()) << var##_r.status().ToString();           \
  std::unique_ptr<NvmeReader> var = std::move(var##_r).value()

// ---------------------------------------------------------------------------------------------
// Correctness over backends x layouts.

struct LayoutCase {
  DType dtype;
  uint32_t dim;
  uint64_t rows;
};

class NvmeReaderLayoutTest : public ::testing::TestWithParam<std::tuple<IoBackend, LayoutCase>> {
 protected:
  void SetUp() override {
    const LayoutCase& c = std::get<1>(GetParam());
    table_ = MakeTable(c.rows, c.dim, c.dtype);
    options_.backend = std::get<0>(GetParam());
    options_.queue_depth = 4;  // small, so batches exceed it
    options_.pread_threads = 3;
  }
  std::unique_ptr<TestTable> table_;
  NvmeReaderOptions options_;
};

TEST_P(NvmeReaderLayoutTest, RowsMatchRandomRowAndSharedPagesAreReadOnce) {
  TierCounters counters("nvme");
  OPEN_OR_SKIP(reader, *table_, options_, &counters);
  EXPECT_EQ(reader->uses_io_uring(), options_.backend == IoBackend::kIoUring);
  const TableLayout& l = table_->layout;
  const uint64_t rpp = std::max<uint32_t>(l.rows_per_page, 1);

  std::vector<std::vector<uint64_t>> batches;
  batches.push_back(RandomIds(l.rows, 97, 1));  // random, > queue depth
  std::vector<uint64_t> dense;                  // every row of pages 2..4, shuffled
  for (uint64_t id = 2 * rpp; id < std::min(l.rows, 5 * rpp); ++id) dense.push_back(id);
  std::shuffle(dense.begin(), dense.end(), std::mt19937_64(2));
  batches.push_back(dense);
  std::vector<uint64_t> every_other;  // descending, many rows per page
  for (uint64_t id = l.rows; id-- > 0;) {
    if (id % 2 == 0) every_other.push_back(id);
  }
  batches.push_back(every_other);
  batches.push_back({l.rows - 1});  // last row of the last (possibly partial) page

  uint64_t expected_reads = 0;
  for (const auto& ids : batches) {
    Collected c;
    Status s = ReadAll(*reader, *table_, ids, &c);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(CountMismatches(*table_, ids, c), 0) << "batch of " << ids.size();
    expected_reads += DistinctExtents(*table_, ids);
    const TierStats stats = counters.Snapshot();
    EXPECT_EQ(stats.reads, expected_reads);
    EXPECT_EQ(stats.bytes_read, expected_reads * l.pages_per_read() * kPageSize);
  }
  // n == 0: OK, no sink call, no read.
  int calls = 0;
  Status s = reader->ReadRows(nullptr, 0, [&](size_t, const uint8_t*) { ++calls; });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(counters.Snapshot().reads, expected_reads);
}

TEST_P(NvmeReaderLayoutTest, ConcurrentCallersAgree) {
  options_.max_rings = 2;  // 4 callers share 2 rings: some must wait for a free one
  OPEN_OR_SKIP(reader, *table_, options_, nullptr);
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 8; ++round) {
        auto ids = RandomIds(table_->layout.rows, 40 + 13 * t, 100 * t + round);
        Collected c;
        Status s = ReadAll(*reader, *table_, ids, &c);
        if (!s.ok() || CountMismatches(*table_, ids, c) != 0) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

INSTANTIATE_TEST_SUITE_P(
    BackendsAndLayouts, NvmeReaderLayoutTest,
    ::testing::Combine(::testing::Values(IoBackend::kIoUring, IoBackend::kPread),
                       ::testing::Values(LayoutCase{DType::kF32, 64, 2000},            // 256 B
                                         LayoutCase{DType::kFp8E4M3Ue8m0, 256, 2000},  // 264 B
                                         LayoutCase{DType::kInt8, 100, 2000},          // 104 B
                                         LayoutCase{DType::kBF16, 2048, 200},          // 4096 B
                                         LayoutCase{DType::kF32, 1500, 200})),         // 6000 B
    [](const auto& info) {
      const LayoutCase& c = std::get<1>(info.param);
      return std::string(BackendName(std::get<0>(info.param))) + "_" +
             std::string(DTypeName(c.dtype)) + "_dim" + std::to_string(c.dim);
    });

// ---------------------------------------------------------------------------------------------
// Errors, over both backends.

class NvmeReaderErrorTest : public ::testing::TestWithParam<IoBackend> {
 protected:
  NvmeReaderOptions Options() const {
    NvmeReaderOptions o;
    o.backend = GetParam();
    o.queue_depth = 4;
    o.max_rings = 1;  // a ring leaked or left busy by an error would hang the next call
    o.pread_threads = 2;
    return o;
  }
};

TEST_P(NvmeReaderErrorTest, CorruptedByteIsCorruptionNamingRowAndOffset) {
  auto t = MakeTable(2000, 64, DType::kF32);  // 16 rows per page
  OPEN_OR_SKIP(reader, *t, Options(), nullptr);
  const uint64_t bad_row = 1234;  // page 77; first row there is 1232
  testing::FlipByte(t->data_path(), t->layout.OffsetOf(bad_row) + 5);

  // Rows 1233..1235 share the corrupted page; the error names the first requested one.
  std::vector<uint64_t> ids = RandomIds(1200, 60, 7);
  ids.push_back(1235);
  ids.push_back(1233);
  ids.push_back(bad_row);
  Collected c;
  Status s = ReadAll(*reader, *t, ids, &c);
  ASSERT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("row 1233 at offset " + std::to_string(t->layout.OffsetOf(1233))),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("page 77"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(t->path), std::string::npos) << s.message();
  // No row of the bad page reached the sink.
  for (size_t i = ids.size() - 3; i < ids.size(); ++i) EXPECT_EQ(c.calls[i], 0);

  // The reader (and its single ring) still serves rows of intact pages.
  ids.resize(60);
  s = ReadAll(*reader, *t, ids, &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(CountMismatches(*t, ids, c), 0);
}

TEST_P(NvmeReaderErrorTest, CorruptedSecondPageOfLargeRowIsDetected) {
  auto t = MakeTable(50, 1500, DType::kF32);  // 6000 B rows over 2 pages
  OPEN_OR_SKIP(reader, *t, Options(), nullptr);
  const uint64_t bad_row = 21;
  testing::FlipByte(t->data_path(), t->layout.OffsetOf(bad_row) + kPageSize + 100);
  std::vector<uint64_t> ids = {3, bad_row, 40};
  Collected c;
  Status s = ReadAll(*reader, *t, ids, &c);
  ASSERT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("page " + std::to_string(t->layout.PageOf(bad_row) + 1)),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("row 21 at offset " + std::to_string(t->layout.OffsetOf(21))),
            std::string::npos)
      << s.message();
}

struct FaultCase {
  ReadFault fault;
  const char* expected_text;
};

class NvmeReaderFaultTest : public ::testing::TestWithParam<std::tuple<IoBackend, FaultCase>> {};

TEST_P(NvmeReaderFaultTest, InjectedFaultIsIOErrorAndReaderRecovers) {
  const auto [backend, fault] = GetParam();
  auto t = MakeTable(2000, 64, DType::kF32);
  FaultInjectionEnv env;
  NvmeReaderOptions o;
  o.backend = backend;
  o.queue_depth = 4;
  o.max_rings = 1;
  o.pread_threads = 2;
  OPEN_OR_SKIP(reader, *t, o, nullptr, &env);

  const uint64_t bad_page = 40;  // rows 640..655
  const uint64_t bad_offset = bad_page * kPageSize;
  env.SetReadFault(t->data_path(), bad_offset, bad_offset + kPageSize, fault.fault);
  std::vector<uint64_t> ids = RandomIds(2000, 100, 9);
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [&](uint64_t id) { return t->layout.PageOf(id) == bad_page; }),
            ids.end());
  std::vector<uint64_t> with_bad = ids;
  with_bad.insert(with_bad.begin() + 50, 650);

  Collected c;
  Status s = ReadAll(*reader, *t, with_bad, &c);
  ASSERT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.message().find("offset " + std::to_string(bad_offset)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("row 650"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(fault.expected_text), std::string::npos) << s.message();
  EXPECT_GT(env.faults_injected(), 0u);

  // Other rows still read while the fault is armed; everything reads once it is cleared.
  s = ReadAll(*reader, *t, ids, &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(CountMismatches(*t, ids, c), 0);
  env.ClearReadFault();
  s = ReadAll(*reader, *t, with_bad, &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(CountMismatches(*t, with_bad, c), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, NvmeReaderErrorTest,
                         ::testing::Values(IoBackend::kIoUring, IoBackend::kPread),
                         [](const auto& info) { return std::string(BackendName(info.param)); });

INSTANTIATE_TEST_SUITE_P(
    BackendsAndFaults, NvmeReaderFaultTest,
    ::testing::Combine(::testing::Values(IoBackend::kIoUring, IoBackend::kPread),
                       ::testing::Values(FaultCase{ReadFault::kEIO, "Input/output error"},
                                         FaultCase{ReadFault::kShortRead, "short read"})),
    [](const auto& info) {
      return std::string(BackendName(std::get<0>(info.param))) +
             (std::get<1>(info.param).fault == ReadFault::kEIO ? "_EIO" : "_ShortRead");
    });

// ---------------------------------------------------------------------------------------------
// Open, descriptions, buffered files.

TEST(NvmeReaderTest, BackendDescriptions) {
  auto t = MakeTable(100, 64, DType::kF32);
  NvmeReaderOptions o;
  o.backend = IoBackend::kPread;
  auto pread = OpenReader(*t, o, nullptr);
  ASSERT_TRUE(pread.ok()) << pread.status().ToString();
  EXPECT_EQ((*pread)->backend_description(), "pread (selected)");
  EXPECT_FALSE((*pread)->uses_io_uring());

  o.backend = IoBackend::kAuto;
  auto automatic = OpenReader(*t, o, nullptr);
  ASSERT_TRUE(automatic.ok()) << automatic.status().ToString();
  if ((*automatic)->uses_io_uring()) {
    EXPECT_EQ((*automatic)->backend_description(), "io_uring (queue depth 32)");
  } else {
    EXPECT_EQ((*automatic)->backend_description().rfind("pread (io_uring unavailable: ", 0), 0u);
  }
}

TEST(NvmeReaderTest, OpenRejectsBadInputs) {
  auto t = MakeTable(100, 64, DType::kF32);  // 7 pages
  auto file = Env::Default()->OpenRandomAccess(t->data_path(), true);
  ASSERT_TRUE(file.ok());
  std::vector<uint64_t> short_sums(t->checksums.begin(), t->checksums.end() - 1);
  auto r = NvmeReader::Open(std::move(file).value(), t->layout, short_sums, t->path, {}, nullptr);
  ASSERT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("6 page checksums for 7 data pages"), std::string::npos);

  NvmeReaderOptions bad_qd;
  bad_qd.queue_depth = 0;
  r = OpenReader(*t, bad_qd, nullptr);
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();

  ASSERT_EQ(::truncate(t->data_path().c_str(), 3 * kPageSize), 0);
  r = OpenReader(*t, {}, nullptr);
  ASSERT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().message();
}

TEST(NvmeReaderTest, BufferedFileWorksThroughIoUring) {
  auto t = MakeTable(1000, 128, DType::kF16);
  NvmeReaderOptions o;
  o.backend = IoBackend::kIoUring;
  OPEN_OR_SKIP(reader, *t, o, nullptr, Env::Default(), /*direct_io=*/false);
  auto ids = RandomIds(1000, 300, 5);
  Collected c;
  Status s = ReadAll(*reader, *t, ids, &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(CountMismatches(*t, ids, c), 0);
}

// ---------------------------------------------------------------------------------------------
// Fallback when io_uring is forbidden: a child process installs a seccomp filter making
// io_uring_setup fail with EPERM (as container runtimes do), then opens readers.

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
constexpr uint32_t kAuditArch = 0;
#endif

bool ForbidIoUringSetup() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// Body of the child: returns "" on success, else what went wrong. stderr goes to `log_path`.
std::string FallbackChild(const TestTable& t, const std::string& log_path) {
  if (!ForbidIoUringSetup()) return std::string("seccomp: ") + std::strerror(errno);
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (log < 0 || ::dup2(log, 2) < 0) return "cannot redirect stderr";
  NvmeReaderOptions o;
  o.backend = IoBackend::kIoUring;
  auto strict = OpenReader(t, o, nullptr);
  if (!strict.status().IsNotSupported()) return "kIoUring gave " + strict.status().ToString();
  if (strict.status().message().find("Operation not permitted") == std::string::npos) {
    return "kIoUring message lacks the errno text: " + strict.status().message();
  }
  o.backend = IoBackend::kAuto;
  for (int i = 0; i < 2; ++i) {  // the second fallback must not log again
    auto r = OpenReader(t, o, nullptr);
    if (!r.ok()) return "kAuto failed: " + r.status().ToString();
    if ((*r)->backend_description() != "pread (io_uring unavailable: Operation not permitted)") {
      return "description: " + (*r)->backend_description();
    }
    auto ids = RandomIds(t.layout.rows, 50, i);
    Collected c;
    Status s = ReadAll(**r, t, ids, &c);
    if (!s.ok() || CountMismatches(t, ids, c) != 0) return "fallback read: " + s.ToString();
  }
  std::fflush(stderr);
  std::ifstream in(log_path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string want =
      "engram-store: io_uring unavailable (Operation not permitted); using pread thread pool\n";
  if (text.str() != want) return "stderr was [" + text.str() + "]";
  return "";
}

TEST(NvmeReaderTest, AutoFallsBackToPreadWhenIoUringIsForbidden) {
  if (kAuditArch == 0) GTEST_SKIP() << "no seccomp arch constant for this CPU";
  auto t = MakeTable(500, 64, DType::kF32);
  const std::string log_path = t->dir.Sub("child.stderr");
  const std::string result_path = t->dir.Sub("child.result");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    const std::string error = FallbackChild(*t, log_path);
    std::ofstream(result_path) << error;
    ::_exit(error.empty() ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  std::ifstream in(result_path);
  std::stringstream result;
  result << in.rdbuf();
  ASSERT_TRUE(WIFEXITED(wstatus)) << "child died, status " << wstatus;
  EXPECT_EQ(WEXITSTATUS(wstatus), 0) << result.str();
}

}  // namespace
}  // namespace engram
