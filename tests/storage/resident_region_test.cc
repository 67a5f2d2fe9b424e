// Tests of ResidentRegion: private loading (every byte, checksums, errors, one copy in memory)
// and the shared-segment protocol between real processes (fork), including crash leftovers.
#include "storage/resident_region.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "storage/table_builder.h"
#include "storage/table_format.h"
#include "tests/support/fault_injection_env.h"
#include "tests/support/file_damage.h"
#include "tests/support/temp_dir.h"

namespace engram {
namespace {

using testing::FaultInjectionEnv;
using testing::ReadFault;
using testing::TempDir;

constexpr uint64_t kSeed = 7;

// A table built on disk with RandomRow(dtype, dim, kSeed, id) as row `id`.
struct TestTable {
  std::string dir;
  Manifest manifest;
  std::vector<uint64_t> checksums;

  const TableLayout& layout() const { return manifest.layout; }
  const std::string& uuid() const { return manifest.table_uuid; }
  std::string data_path() const { return JoinPath(dir, kDataFileName); }
};

Result<TestTable> MakeTable(const TempDir& tmp, uint64_t rows, uint32_t dim, DType dtype) {
  Env* env = Env::Default();
  TestTable t;
  t.dir = tmp.Sub("table");
  ENGRAM_RETURN_IF_ERROR(
      BuildTable(env, t.dir, rows, dim, dtype, CreationInfo{}, false,
                 [&](uint64_t id, uint8_t* out) { RandomRow(dtype, dim, kSeed, id, out); }));
  ENGRAM_ASSIGN_OR_RETURN(t.manifest, ReadManifest(env, t.dir));
  ENGRAM_ASSIGN_OR_RETURN(t.checksums, ReadPageChecksums(env, t.dir, t.manifest));
  return t;
}

std::unique_ptr<RandomAccessFile> OpenData(const TestTable& t, Env* env = Env::Default()) {
  auto file = env->OpenRandomAccess(t.data_path(), /*direct_io=*/true);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  return file.ok() ? std::move(file).value() : nullptr;
}

Result<std::unique_ptr<ResidentRegion>> OpenRegion(const TestTable& t, RandomAccessFile* file,
                                                   const ResidentOptions& options) {
  return ResidentRegion::Open(file, t.layout(), t.checksums, t.dir, t.uuid(), options);
}

// First row whose bytes in `data` differ from what the table was built with; -1 if none.
int64_t FirstMismatchingRow(const uint8_t* data, const TableLayout& l) {
  std::vector<uint8_t> want(l.row_bytes);
  for (uint64_t id = 0; id < l.rows; ++id) {
    RandomRow(l.dtype, l.dim, kSeed, id, want.data());
    if (std::memcmp(data + l.OffsetOf(id), want.data(), l.row_bytes) != 0) {
      return static_cast<int64_t>(id);
    }
  }
  return -1;
}

bool HasSubstr(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// "AnonHugePages" (KiB) of the mapping that contains `addr`.
uint64_t AnonHugePagesKb(const void* addr) {
  std::ifstream in("/proc/self/smaps");
  const auto a = reinterpret_cast<uintptr_t>(addr);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {
      inside = a >= lo && a < hi;
      continue;
    }
    unsigned long kb = 0;
    if (inside && std::sscanf(line.c_str(), "AnonHugePages: %lu kB", &kb) == 1) return kb;
  }
  return 0;
}

// A "VmRSS"/"VmHWM" line of /proc/self/status, in bytes.
uint64_t ProcStatusBytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    unsigned long kb = 0;
    if (line.rfind(field + ":", 0) == 0 &&
        std::sscanf(line.c_str() + field.size() + 1, "%lu", &kb) == 1) {
      return uint64_t{kb} << 10;
    }
  }
  return 0;
}

bool TransparentHugePagesEnabled() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  std::getline(in, s);
  return !s.empty() && !HasSubstr(s, "[never]");
}

// Pages of `path` currently in the page cache.
uint64_t CachedPages(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return UINT64_MAX;
  struct stat st;
  ::fstat(fd, &st);
  const size_t len = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return UINT64_MAX;
  std::vector<unsigned char> vec((len + 4095) / 4096);
  uint64_t n = UINT64_MAX;
  if (::mincore(p, len, vec.data()) == 0) {
    n = static_cast<uint64_t>(
        std::count_if(vec.begin(), vec.end(), [](unsigned char c) { return (c & 1) != 0; }));
  }
  ::munmap(p, len);
  return n;
}

void DropFromPageCache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// ---------------------------------------------------------------------------------------------
// Private regions.

TEST(ResidentRegionTest, PrivateRegionHoldsEveryRow) {
  TempDir tmp;
  // 12.8 MB: several load chunks, so both loading threads take part.
  auto t = MakeTable(tmp, 50000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  auto region = OpenRegion(*t, file.get(), ResidentOptions{});
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  const ResidentRegion& r = *region.value();
  EXPECT_EQ(r.size(), t->layout().data_bytes());
  EXPECT_FALSE(r.shared());
  EXPECT_TRUE(r.loaded_by_this_process());
  EXPECT_EQ(r.segment_path(), "");
  EXPECT_EQ(FirstMismatchingRow(r.data(), t->layout()), -1);
  if (TransparentHugePagesEnabled()) {
    EXPECT_EQ(r.description(), "private anonymous memory (transparent huge pages)");
    EXPECT_GT(AnonHugePagesKb(r.data()), 0u) << "region not backed by huge pages";
  }
}

TEST(ResidentRegionTest, PrivateRegionWithoutHugePages) {
  TempDir tmp;
  // 264-byte rows: 15 per page with a padded tail in every page.
  auto t = MakeTable(tmp, 3000, 256, DType::kFp8E4M3Ue8m0);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  ResidentOptions options;
  options.huge_pages = false;
  auto region = OpenRegion(*t, file.get(), options);
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  EXPECT_EQ(region.value()->description(), "private anonymous memory (4 KiB pages)");
  EXPECT_EQ(AnonHugePagesKb(region.value()->data()), 0u);
  EXPECT_EQ(FirstMismatchingRow(region.value()->data(), t->layout()), -1);
}

TEST(ResidentRegionTest, RowsLargerThanAPage) {
  TempDir tmp;
  auto t = MakeTable(tmp, 700, 1500, DType::kF32);  // 6000-byte rows, two pages each
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->layout().pages_per_row, 2u);
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  auto region = OpenRegion(*t, file.get(), ResidentOptions{});
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  EXPECT_EQ(region.value()->size(), 700u * 2 * kPageSize);
  EXPECT_EQ(FirstMismatchingRow(region.value()->data(), t->layout()), -1);
}

TEST(ResidentRegionTest, CorruptByteNamesPageRowAndOffset) {
  TempDir tmp;
  auto t = MakeTable(tmp, 50000, 64, DType::kF32);  // 16 rows per page
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  // Row 45000 lies in page 2812 (second load chunk), whose first row is 44992.
  testing::FlipByte(t->data_path(), t->layout().OffsetOf(45000) + 5);
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  auto region = OpenRegion(*t, file.get(), ResidentOptions{});
  ASSERT_FALSE(region.ok());
  const Status& s = region.status();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_TRUE(HasSubstr(s.message(), "table " + t->dir)) << s.ToString();
  EXPECT_TRUE(HasSubstr(s.message(), "data page 2812")) << s.ToString();
  EXPECT_TRUE(
      HasSubstr(s.message(), "row 44992 at offset " + std::to_string(t->layout().OffsetOf(44992))))
      << s.ToString();
}

TEST(ResidentRegionTest, CorruptSecondPageOfLargeRowNamesThatRow) {
  TempDir tmp;
  auto t = MakeTable(tmp, 40, 1500, DType::kF32);  // two pages per row
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  testing::FlipByte(t->data_path(), t->layout().OffsetOf(7) + kPageSize + 10);  // page 15
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  auto region = OpenRegion(*t, file.get(), ResidentOptions{});
  ASSERT_FALSE(region.ok());
  EXPECT_TRUE(region.status().IsCorruption()) << region.status().ToString();
  EXPECT_TRUE(HasSubstr(region.status().message(), "data page 15 ")) << region.status().ToString();
  EXPECT_TRUE(
      HasSubstr(region.status().message(), "row 7 at offset " + std::to_string(7 * 2 * kPageSize)))
      << region.status().ToString();
}

TEST(ResidentRegionTest, TruncatedDataFileIsCorruption) {
  TempDir tmp;
  auto t = MakeTable(tmp, 1000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const uint64_t want = t->layout().data_bytes();
  ASSERT_EQ(::truncate(t->data_path().c_str(), static_cast<off_t>(want - kPageSize)), 0);
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  for (bool shared : {false, true}) {
    ResidentOptions options;
    options.shared = shared;
    options.shared_dir = tmp.path();  // never reached: the size check comes first
    auto region = OpenRegion(*t, file.get(), options);
    ASSERT_FALSE(region.ok());
    EXPECT_TRUE(region.status().IsCorruption()) << region.status().ToString();
    EXPECT_EQ(region.status().message(),
              "table " + t->dir + ": data file truncated: " + std::to_string(want - kPageSize) +
                  " bytes, expected " + std::to_string(want));
  }
}

TEST(ResidentRegionTest, ReadErrorsAreIOErrors) {
  TempDir tmp;
  auto t = MakeTable(tmp, 50000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  FaultInjectionEnv env;
  auto file = OpenData(*t, &env);
  ASSERT_NE(file, nullptr);
  const uint64_t bad = 2000 * uint64_t{kPageSize};
  env.SetReadFault("/data", bad, bad + 1, ReadFault::kEIO);
  auto region = OpenRegion(*t, file.get(), ResidentOptions{});
  ASSERT_FALSE(region.ok());
  EXPECT_TRUE(region.status().IsIOError()) << region.status().ToString();
  EXPECT_TRUE(HasSubstr(region.status().message(), "table " + t->dir))
      << region.status().ToString();
  EXPECT_TRUE(HasSubstr(region.status().message(), "Input/output error"))
      << region.status().ToString();
  EXPECT_GT(env.faults_injected(), 0u);

  env.SetReadFault("/data", bad, bad + 1, ReadFault::kShortRead);
  region = OpenRegion(*t, file.get(), ResidentOptions{});
  ASSERT_FALSE(region.ok());
  EXPECT_TRUE(region.status().IsIOError()) << region.status().ToString();
  EXPECT_TRUE(HasSubstr(region.status().message(), "short read")) << region.status().ToString();

  env.ClearReadFault();
  region = OpenRegion(*t, file.get(), ResidentOptions{});
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  EXPECT_EQ(FirstMismatchingRow(region.value()->data(), t->layout()), -1);
}

TEST(ResidentRegionTest, WrongNumberOfChecksumsIsInvalidArgument) {
  TempDir tmp;
  auto t = MakeTable(tmp, 1000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  t->checksums.pop_back();
  auto region = OpenRegion(*t, file.get(), ResidentOptions{});
  ASSERT_FALSE(region.ok());
  EXPECT_TRUE(region.status().IsInvalidArgument()) << region.status().ToString();
}

// Loading must not leave a second copy anywhere: not in a bounce buffer (peak RSS grows by the
// data size only) and not in the page cache (O_DIRECT).
TEST(ResidentRegionTest, LoadingKeepsOneCopyInMemory) {
  TempDir tmp;
  auto t = MakeTable(tmp, 32768, 256, DType::kF32);  // 32 MiB, a whole number of huge pages
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  DropFromPageCache(t->data_path());
  const bool check_cache = file->direct_io() && CachedPages(t->data_path()) == 0;

  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
  const uint64_t rss_before = ProcStatusBytes("VmRSS");
  auto region = OpenRegion(*t, file.get(), ResidentOptions{});
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  const uint64_t size = region.value()->size();
  const uint64_t peak = std::max(ProcStatusBytes("VmHWM"), ProcStatusBytes("VmRSS"));
  ASSERT_GT(rss_before, 0u);
  EXPECT_GE(peak - rss_before, size * 95 / 100) << "the data should be resident";
  EXPECT_LE(peak - rss_before, size + size / 50) << "peak RSS grew by more than 1.02x the data";
  if (check_cache) {
    EXPECT_LE(CachedPages(t->data_path()), t->layout().num_pages() / 100)
        << "loading filled the page cache";
  }
}

// ---------------------------------------------------------------------------------------------
// Shared segments, between real processes.

constexpr int kLoadedCode = 10;
constexpr int kAttachedCode = 11;

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { EXPECT_EQ(::pipe(fd), 0); }
  ~Pipe() {
    CloseRead();
    CloseWrite();
  }
  void CloseRead() {
    if (fd[0] >= 0) ::close(fd[0]);
    fd[0] = -1;
  }
  void CloseWrite() {
    if (fd[1] >= 0) ::close(fd[1]);
    fd[1] = -1;
  }
};

// A forked child running `body`; its exit code is body's result. Killed and reaped if the
// test ends early.
class Child {
 public:
  template <typename F>
  explicit Child(F body) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::alarm(30);  // never outlive a broken test
      int rc = 99;
      try {
        rc = body();
      } catch (...) {
      }
      ::_exit(rc);
    }
    EXPECT_GT(pid_, 0);
  }
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    Wait();
  }
  // Exit code, or 128 + signal.
  int Wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) return -1;
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

class SharedRegionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = "/dev/shm/engram-test-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter.fetch_add(1));
    ASSERT_TRUE(Env::Default()->CreateDir(dir_).ok());
    options_.shared = true;
    options_.shared_dir = dir_;
  }
  void TearDown() override { Env::Default()->RemoveDirRecursive(dir_).PermitUnchecked(); }

  std::vector<std::string> Entries() const {
    auto names = Env::Default()->ListDir(dir_);
    EXPECT_TRUE(names.ok()) << names.status().ToString();
    std::vector<std::string> v = names.ok() ? names.value() : std::vector<std::string>{};
    std::sort(v.begin(), v.end());
    return v;
  }
  // What the directory holds while table `t` is attached somewhere: segment and lock file.
  std::vector<std::string> InUse(const TestTable& t) const {
    return {"engram-" + t.uuid(), "engram-" + t.uuid() + ".lock"};
  }
  std::string SegmentPath(const TestTable& t) const { return dir_ + "/engram-" + t.uuid(); }

  // Body of a child process: opens the region and checks every row, writes a byte to `ready`,
  // waits for EOF on `release`, then closes the region. Returns kLoadedCode / kAttachedCode.
  int HoldRegion(const TestTable& t, RandomAccessFile* file, Pipe& ready, Pipe& release) {
    release.CloseWrite();
    ready.CloseRead();
    auto region = OpenRegion(t, file, options_);
    if (!region.ok()) return 2;
    if (FirstMismatchingRow(region.value()->data(), t.layout()) != -1) return 3;
    const int code = region.value()->loaded_by_this_process() ? kLoadedCode : kAttachedCode;
    char c = 'r';
    if (::write(ready.fd[1], &c, 1) != 1) return 4;
    while (::read(release.fd[0], &c, 1) > 0) {
    }
    region.value().reset();
    return code;
  }

  std::string dir_;
  ResidentOptions options_;
};

TEST_F(SharedRegionTest, SecondProcessAttachesToTheOneCopy) {
  TempDir tmp;
  auto t = MakeTable(tmp, 20000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  Pipe ready, release;
  Child child([&] { return HoldRegion(*t, file.get(), ready, release); });
  ready.CloseWrite();
  char c;
  ASSERT_EQ(::read(ready.fd[0], &c, 1), 1) << "child could not open the region";
  EXPECT_EQ(Entries(), InUse(*t));

  auto region = OpenRegion(*t, file.get(), options_);
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  const ResidentRegion& r = *region.value();
  EXPECT_TRUE(r.shared());
  EXPECT_FALSE(r.loaded_by_this_process());
  EXPECT_EQ(r.segment_path(), SegmentPath(*t));
  EXPECT_EQ(r.description(), "shared segment " + SegmentPath(*t) + " (attached)");
  EXPECT_EQ(r.size(), t->layout().data_bytes());
  EXPECT_EQ(FirstMismatchingRow(r.data(), t->layout()), -1);
  EXPECT_EQ(Entries(), InUse(*t)) << "attaching must not make a second copy";

  // The loader closes first: the segment must stay for us.
  release.CloseWrite();
  EXPECT_EQ(child.Wait(), kLoadedCode);
  EXPECT_EQ(Entries(), InUse(*t));
  EXPECT_EQ(FirstMismatchingRow(r.data(), t->layout()), -1);

  region.value().reset();
  EXPECT_EQ(Entries(), std::vector<std::string>{}) << "last close must remove the segment";
}

TEST_F(SharedRegionTest, ConcurrentOpenersLoadOnce) {
  TempDir tmp;
  auto t = MakeTable(tmp, 50000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  Pipe ready, release;
  Child a([&] { return HoldRegion(*t, file.get(), ready, release); });
  Child b([&] { return HoldRegion(*t, file.get(), ready, release); });
  ready.CloseWrite();
  char c[2];
  ASSERT_EQ(::read(ready.fd[0], &c[0], 1), 1);
  ASSERT_EQ(::read(ready.fd[0], &c[1], 1), 1);
  EXPECT_EQ(Entries(), InUse(*t));
  release.CloseWrite();
  std::vector<int> codes = {a.Wait(), b.Wait()};
  std::sort(codes.begin(), codes.end());
  EXPECT_EQ(codes, (std::vector<int>{kLoadedCode, kAttachedCode}));
  EXPECT_EQ(Entries(), std::vector<std::string>{});
}

TEST_F(SharedRegionTest, TwoOpensInOneProcessShareTheSegment) {
  TempDir tmp;
  auto t = MakeTable(tmp, 1000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  auto first = OpenRegion(*t, file.get(), options_);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first.value()->loaded_by_this_process());
  EXPECT_EQ(first.value()->description(), "shared segment " + SegmentPath(*t) + " (loaded here)");
  auto second = OpenRegion(*t, file.get(), options_);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second.value()->loaded_by_this_process());
  // The attacher closes first (the other process test covers the loader closing first).
  second.value().reset();
  EXPECT_EQ(Entries(), InUse(*t)) << "the loader still uses the segment";
  EXPECT_EQ(FirstMismatchingRow(first.value()->data(), t->layout()), -1);
  first.value().reset();
  EXPECT_EQ(Entries(), std::vector<std::string>{});
}

TEST_F(SharedRegionTest, StaleLoadingFileIsReplaced) {
  TempDir tmp;
  auto t = MakeTable(tmp, 2000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  // What a loader that crashed half-way leaves: a partial ".loading" file and the lock file.
  std::ofstream(SegmentPath(*t) + ".loading") << "half a table";
  std::ofstream(SegmentPath(*t) + ".lock") << "";
  auto region = OpenRegion(*t, file.get(), options_);
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  EXPECT_TRUE(region.value()->loaded_by_this_process());
  EXPECT_EQ(Entries(), InUse(*t));
  EXPECT_EQ(FirstMismatchingRow(region.value()->data(), t->layout()), -1);
  region.value().reset();
  EXPECT_EQ(Entries(), std::vector<std::string>{});
}

TEST_F(SharedRegionTest, SegmentOfCrashedProcessIsReusedThenRemoved) {
  TempDir tmp;
  auto t = MakeTable(tmp, 2000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  Child crashed([&] {
    auto region = OpenRegion(*t, file.get(), options_);
    if (!region.ok()) return 2;
    const int code = region.value()->loaded_by_this_process() ? kLoadedCode : kAttachedCode;
    region.value().release();  // "crash": exit without closing
    return code;
  });
  ASSERT_EQ(crashed.Wait(), kLoadedCode);
  EXPECT_EQ(Entries(), InUse(*t));

  auto region = OpenRegion(*t, file.get(), options_);
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  EXPECT_FALSE(region.value()->loaded_by_this_process());
  EXPECT_EQ(FirstMismatchingRow(region.value()->data(), t->layout()), -1);
  region.value().reset();
  EXPECT_EQ(Entries(), std::vector<std::string>{});
}

TEST_F(SharedRegionTest, SegmentOfWrongSizeIsCorruption) {
  TempDir tmp;
  auto t = MakeTable(tmp, 2000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  std::ofstream(SegmentPath(*t)) << std::string(kPageSize, 'x');
  auto region = OpenRegion(*t, file.get(), options_);
  ASSERT_FALSE(region.ok());
  EXPECT_TRUE(region.status().IsCorruption()) << region.status().ToString();
  EXPECT_TRUE(HasSubstr(region.status().message(), SegmentPath(*t))) << region.status().ToString();
}

TEST_F(SharedRegionTest, ChecksumMismatchLeavesNothingBehind) {
  TempDir tmp;
  auto t = MakeTable(tmp, 2000, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  testing::FlipByte(t->data_path(), t->layout().OffsetOf(1999));
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  auto region = OpenRegion(*t, file.get(), options_);
  ASSERT_FALSE(region.ok());
  EXPECT_TRUE(region.status().IsCorruption()) << region.status().ToString();
  EXPECT_TRUE(HasSubstr(region.status().message(), "row 1984 ")) << region.status().ToString();
  EXPECT_EQ(Entries(), std::vector<std::string>{});
}

TEST_F(SharedRegionTest, TooLittleSpaceIsResourceExhausted) {
  struct statvfs fs;
  ASSERT_EQ(::statvfs(dir_.c_str(), &fs), 0);
  const uint64_t capacity = uint64_t{fs.f_blocks} * fs.f_frsize;
  if (capacity == 0 || capacity > (uint64_t{64} << 30)) {
    GTEST_SKIP() << "shared dir too large to overfill cheaply";
  }
  // A sparse data file (one 4 KiB row per page) larger than the whole tmpfs.
  auto layout = TableLayout::Make(capacity / kPageSize + 512, 1024, DType::kF32);
  ASSERT_TRUE(layout.ok());
  TempDir tmp;
  const std::string data = tmp.Sub("data");
  {
    int fd = ::open(data.c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(layout->data_bytes())), 0);
    ::close(fd);
  }
  auto file = Env::Default()->OpenRandomAccess(data, /*direct_io=*/true);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::vector<uint64_t> checksums(layout->num_pages());
  auto region = ResidentRegion::Open(file.value().get(), *layout, checksums, "big",
                                     "0123456789abcdef0123456789abcdef", options_);
  ASSERT_FALSE(region.ok());
  EXPECT_EQ(region.status().code(), Status::Code::kResourceExhausted) << region.status().ToString();
  EXPECT_EQ(region.status().message(), "not enough space in " + dir_ + " for table big: need " +
                                           std::to_string(layout->data_bytes()) + " bytes");
  EXPECT_EQ(Entries(), std::vector<std::string>{});
}

TEST_F(SharedRegionTest, UuidThatIsNoFileNameIsInvalidArgument) {
  TempDir tmp;
  auto t = MakeTable(tmp, 100, 64, DType::kF32);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto file = OpenData(*t);
  ASSERT_NE(file, nullptr);
  for (const char* uuid : {"", "../escape", "a/b"}) {
    auto region =
        ResidentRegion::Open(file.get(), t->layout(), t->checksums, t->dir, uuid, options_);
    ASSERT_FALSE(region.ok());
    EXPECT_TRUE(region.status().IsInvalidArgument()) << region.status().ToString();
  }
  EXPECT_EQ(Entries(), std::vector<std::string>{});
}

}  // namespace
}  // namespace engram
