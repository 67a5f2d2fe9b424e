// Tests of tablectl: the real binary (TABLECTL_PATH) run as a subprocess on real tables in a
// TempDir, checking stdout, stderr and the exit status; plus unit tests of the CLI pieces.
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/array_file.h"
#include "storage/dtype.h"
#include "storage/table_builder.h"
#include "storage/table_format.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/run_tablectl.h"
#include "tools/tablectl/args.h"
#include "tools/tablectl/progress.h"

namespace engram {
namespace {

using nlohmann::json;
using testing::ReadFile;
using testing::RunResult;
using testing::SplitLines;

void WriteByte(const std::string& path, uint64_t offset, uint8_t value) {
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::pwrite(fd, &value, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

size_t CountLines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// The floats a table created with --fill random --seed `seed` holds in row `id`.
std::vector<float> ExpectedRow(DType dtype, uint32_t dim, uint64_t seed, uint64_t id) {
  std::vector<uint8_t> bytes(*RowBytes(dtype, dim));
  RandomRow(dtype, dim, seed, id, bytes.data());
  std::vector<float> values(dim);
  DequantizeRow(dtype, dim, bytes.data(), values.data());
  return values;
}

std::string Hex(const std::vector<uint8_t>& bytes) {
  std::string s;
  char buf[3];
  for (uint8_t b : bytes) {
    std::snprintf(buf, sizeof(buf), "%02x", b);
    s += buf;
  }
  return s;
}

// Parses "ID: v0 v1 ..." into floats (the text get prints with %.9g reads back exactly).
std::vector<float> ParseValues(const std::string& line, uint64_t expected_id) {
  std::istringstream in(line);
  std::string id;
  in >> id;
  EXPECT_EQ(id, std::to_string(expected_id) + ":");
  std::vector<float> values;
  for (std::string word; in >> word;) values.push_back(std::strtof(word.c_str(), nullptr));
  return values;
}

class TablectlTest : public ::testing::Test {
 protected:
  // tablectl with `args` in dir_ (tests/tools/run_tablectl.h); RunOk: it must succeed quietly.
  RunResult Run(const std::vector<std::string>& args) { return testing::RunTablectl(dir_, args); }
  RunResult RunOk(const std::vector<std::string>& args) {
    return testing::RunTablectlOk(dir_, args);
  }

  json RunJson(const std::vector<std::string>& args) {
    RunResult r = RunOk(args);
    json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out;
    return j;
  }

  std::string Path(const std::string& name) const { return dir_.Sub(name); }

  testing::TempDir dir_;
};

// A failed command: the given exit code, nothing on stdout, one "tablectl: error:" line.
void ExpectError(const RunResult& r, int exit_code, const std::string& needle) {
  EXPECT_EQ(r.exit_code, exit_code) << "stderr: " << r.err;
  EXPECT_EQ(CountLines(r.err), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("tablectl: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "'" << needle << "' not in: " << r.err;
}

struct DTypeCase {
  const char* name;
  DType dtype;
  uint32_t dim;
};

const DTypeCase kDTypeCases[] = {{"f32", DType::kF32, 48},
                                 {"f16", DType::kF16, 40},
                                 {"bf16", DType::kBF16, 24},
                                 {"int8", DType::kInt8, 36},
                                 {"fp8_e4m3_ue8m0", DType::kFp8E4M3Ue8m0, 256},
                                 {"f32", DType::kF32, 1500}};  // 6000-byte rows: 2 pages each

TEST_F(TablectlTest, CreateInfoGetVerifyEveryDtype) {
  constexpr uint64_t kRows = 300, kSeed = 11;
  for (const DTypeCase& c : kDTypeCases) {
    SCOPED_TRACE(std::string(c.name) + " dim " + std::to_string(c.dim));
    const std::string table = Path(std::string("t_") + c.name + std::to_string(c.dim));
    RunOk({"create", table, "--rows", std::to_string(kRows), "--dim", std::to_string(c.dim),
           "--dtype", c.name, "--fill", "random", "--seed", std::to_string(kSeed)});

    const TableLayout layout = *TableLayout::Make(kRows, c.dim, c.dtype);
    json info = RunJson({"info", table, "--json"});
    EXPECT_EQ(info["table"], table);
    EXPECT_EQ(info["rows"], kRows);
    EXPECT_EQ(info["dim"], c.dim);
    EXPECT_EQ(info["dtype"], c.name);
    EXPECT_EQ(info["row_bytes"], layout.row_bytes);
    EXPECT_EQ(info["rows_per_page"], layout.rows_per_page);
    EXPECT_EQ(info["pages_per_row"], layout.pages_per_row);
    EXPECT_EQ(info["pages"], layout.num_pages());
    EXPECT_EQ(info["data_bytes"], layout.data_bytes());
    EXPECT_EQ(info["format_version"], kFormatVersion);
    EXPECT_EQ(info["checksum"]["algorithm"], "xxh3_64");
    EXPECT_EQ(info["table_uuid"].get<std::string>().size(), 32u);
    EXPECT_EQ(info["creation"]["source"], "create");
    EXPECT_EQ(info["creation"]["fill"], "random");
    EXPECT_EQ(info["creation"]["seed"], kSeed);
    const std::string backend = info["io_backend"].get<std::string>();
    EXPECT_TRUE(backend.rfind("io_uring", 0) == 0 || backend.rfind("pread", 0) == 0) << backend;

    const std::vector<uint64_t> ids = {0, 17, kRows - 1, 17};
    RunResult text = RunOk({"get", table, "0", "17", std::to_string(kRows - 1), "17"});
    std::vector<std::string> lines = SplitLines(text.out);
    ASSERT_EQ(lines.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(ParseValues(lines[i], ids[i]), ExpectedRow(c.dtype, c.dim, kSeed, ids[i]));
    }
    json got = RunJson({"get", table, "17", "--json"});
    EXPECT_EQ(got["table"], table);
    ASSERT_EQ(got["rows"].size(), 1u);
    EXPECT_EQ(got["rows"][0]["id"], 17);
    EXPECT_EQ(got["rows"][0]["values"].get<std::vector<float>>(),
              ExpectedRow(c.dtype, c.dim, kSeed, 17));

    std::vector<uint8_t> raw(layout.row_bytes);
    RandomRow(c.dtype, c.dim, kSeed, 5, raw.data());
    EXPECT_EQ(RunOk({"get", table, "5", "--raw"}).out, "5: " + Hex(raw) + "\n");

    EXPECT_EQ(RunOk({"verify", table}).out,
              "OK: " + std::to_string(layout.num_pages()) + " pages verified\n");
  }
}

TEST_F(TablectlTest, CreateZerosIsTheDefaultFill) {
  const std::string table = Path("zeros");
  RunOk({"create", table, "--rows", "10", "--dim", "32", "--dtype", "fp8_e4m3_ue8m0"});
  json got = RunJson({"get", table, "0", "9", "--json"});
  ASSERT_EQ(got["rows"].size(), 2u);
  for (const json& row : got["rows"]) {
    EXPECT_EQ(row["values"].get<std::vector<float>>(), std::vector<float>(32, 0.0f));
  }
  EXPECT_EQ(RunJson({"info", table, "--json"})["creation"]["fill"], "zeros");
}

TEST_F(TablectlTest, CreateRefusesAnExistingTable) {
  const std::string table = Path("t");
  RunOk({"create", table, "--rows", "10", "--dim", "8", "--dtype", "f32", "--fill", "random"});
  const std::string uuid = RunJson({"info", table, "--json"})["table_uuid"];
  ExpectError(Run({"create", table, "--rows", "10", "--dim", "8", "--dtype", "f32"}), 1,
              "already exists");
  EXPECT_EQ(RunJson({"info", table, "--json"})["table_uuid"], uuid);  // untouched
}

TEST_F(TablectlTest, ExportImportExportIsByteIdenticalForEveryDtype) {
  for (const DTypeCase& c : kDTypeCases) {
    SCOPED_TRACE(std::string(c.name) + " dim " + std::to_string(c.dim));
    const std::string a = Path("a"), b = Path("b");
    RunOk({"create", a, "--rows", "77", "--dim", std::to_string(c.dim), "--dtype", c.name, "--fill",
           "random", "--seed", "3"});
    RunOk({"export", a, Path("a.npy")});
    RunOk({"import", b, Path("a.npy"), "--dtype", c.name});
    RunOk({"export", b, Path("b.npy")});
    const std::string a_bytes = ReadFile(Path("a.npy"));
    EXPECT_GT(a_bytes.size(), 77u * c.dim / 2);
    EXPECT_EQ(a_bytes, ReadFile(Path("b.npy")));
    EXPECT_EQ(RunOk({"get", a, "76", "--raw"}).out, RunOk({"get", b, "76", "--raw"}).out);
    ASSERT_EQ(Env::Default()->RemoveDirRecursive(a).ok(), true);
    ASSERT_EQ(Env::Default()->RemoveDirRecursive(b).ok(), true);
  }
}

TEST_F(TablectlTest, ExportRowRangeAndF32) {
  const std::string table = Path("t");
  RunOk({"create", table, "--rows", "50", "--dim", "64", "--dtype", "int8", "--fill", "random",
         "--seed", "9"});
  json summary = RunJson({"export", table, Path("part.npy"), "--rows", "10:14", "--f32", "--json"});
  EXPECT_EQ(summary["begin"], 10);
  EXPECT_EQ(summary["end"], 14);
  Result<ArrayInfo> info = ReadNpyInfo(Env::Default(), Path("part.npy"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->type, ElementType::kF32);
  EXPECT_EQ(info->shape, (std::vector<uint64_t>{4, 64}));
  Result<std::vector<float>> values = ReadF32Array(Env::Default(), *info);
  ASSERT_TRUE(values.ok());
  for (uint64_t r = 0; r < 4; ++r) {
    std::vector<float> row(values->begin() + r * 64, values->begin() + (r + 1) * 64);
    EXPECT_EQ(row, ExpectedRow(DType::kInt8, 64, 9, 10 + r)) << "row " << 10 + r;
  }
  // Open-ended ranges, like Python slices.
  RunOk({"export", table, Path("tail.npy"), "--rows", "45:"});
  EXPECT_EQ(ReadNpyInfo(Env::Default(), Path("tail.npy"))->shape,
            (std::vector<uint64_t>{5, 68}));  // raw int8 rows: 64 values + 4-byte scale
  RunOk({"export", table, Path("head.npy"), "--rows", ":3"});
  EXPECT_EQ(ReadNpyInfo(Env::Default(), Path("head.npy"))->shape, (std::vector<uint64_t>{3, 68}));
  ExpectError(Run({"export", table, Path("x.npy"), "--rows", "40:51"}), 1, "51");
}

TEST_F(TablectlTest, ImportNpyWrittenWithWriteNpy) {
  constexpr uint64_t kRows = 50, kCols = 16;
  std::vector<float> data(kRows * kCols);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i) * 0.37f - 100.0f;
  ASSERT_TRUE(
      WriteNpy(Env::Default(), Path("src.npy"), ElementType::kF32, {kRows, kCols}, data.data())
          .ok());
  const std::string table = Path("t");
  json summary = RunJson({"import", table, Path("src.npy"), "--json"});
  EXPECT_EQ(summary["rows"], kRows);
  EXPECT_EQ(summary["dim"], kCols);
  EXPECT_EQ(summary["dtype"], "f32");
  json info = RunJson({"info", table, "--json"});
  EXPECT_EQ(info["creation"]["source"].get<std::string>().rfind("import ", 0), 0u);
  std::vector<float> row42(data.begin() + 42 * kCols, data.begin() + 43 * kCols);
  EXPECT_EQ(ParseValues(RunOk({"get", table, "42"}).out, 42), row42);

  // Import replaces: same path, now f16.
  const std::string old_uuid = info["table_uuid"];
  RunOk({"import", table, Path("src.npy"), "--dtype", "f16"});
  info = RunJson({"info", table, "--json"});
  EXPECT_EQ(info["dtype"], "f16");
  EXPECT_NE(info["table_uuid"], old_uuid);
  std::vector<float> as_half(kCols);
  for (size_t i = 0; i < kCols; ++i) as_half[i] = HalfToFloat(FloatToHalf(row42[i]));
  EXPECT_EQ(ParseValues(RunOk({"get", table, "42"}).out, 42), as_half);
}

TEST_F(TablectlTest, ImportSafetensorsTensor) {
  std::vector<float> a(10 * 8, 1.5f);
  std::vector<uint16_t> b(20 * 8);
  for (size_t i = 0; i < b.size(); ++i) b[i] = FloatToBFloat16(static_cast<float>(i) / 8.0f);
  const std::string file = Path("w.safetensors");
  ASSERT_TRUE(WriteSafetensors(Env::Default(), file,
                               {{"a", ElementType::kF32, {10, 8}, a.data()},
                                {"b", ElementType::kBF16, {20, 8}, b.data()}})
                  .ok());
  const std::string table = Path("t");
  RunOk({"import", table, file + ":b"});
  json info = RunJson({"info", table, "--json"});
  EXPECT_EQ(info["rows"], 20);
  EXPECT_EQ(info["dim"], 8);
  EXPECT_EQ(info["dtype"], "bf16");
  std::vector<float> expected(8);
  for (size_t i = 0; i < 8; ++i) expected[i] = BFloat16ToFloat(b[19 * 8 + i]);
  EXPECT_EQ(ParseValues(RunOk({"get", table, "19"}).out, 19), expected);
  // Several tensors and none named: an error listing them, the table untouched.
  RunResult r = Run({"import", table, file});
  ExpectError(r, 1, "b");
  EXPECT_EQ(RunJson({"info", table, "--json"})["table_uuid"], info["table_uuid"]);
}

TEST_F(TablectlTest, CorruptDataByteIsReportedByVerifyAndGet) {
  // f32 dim 64: 256-byte rows, 16 per page; row 35 lives in page 2.
  const std::string table = Path("t");
  RunOk({"create", table, "--rows", "100", "--dim", "64", "--dtype", "f32", "--fill", "random"});
  WriteByte(JoinPath(table, kDataFileName), 2 * kPageSize + 3 * 256 + 5, 0xA5);

  RunResult verify = Run({"verify", table});
  ExpectError(verify, 1, "1 of 7 pages");
  EXPECT_NE(verify.out.find("data page 2"), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("row 32"), std::string::npos) << verify.out;

  RunResult json_verify = Run({"verify", table, "--json"});
  EXPECT_EQ(json_verify.exit_code, 1);
  json doc = json::parse(json_verify.out);
  EXPECT_EQ(doc["ok"], false);
  EXPECT_EQ(doc["problems"].size(), 1u);

  RunResult get = Run({"get", table, "35"});
  ExpectError(get, 1, "checksum mismatch");
  EXPECT_NE(get.err.find("row 35"), std::string::npos) << get.err;
  EXPECT_EQ(get.out, "");
  RunOk({"get", table, "0", "99"});  // other pages still read
}

TEST_F(TablectlTest, InfoOfATableWithATruncatedChecksumsFileShowsTheManifestAndFails) {
  const std::string table = Path("t");
  RunOk({"create", table, "--rows", "100", "--dim", "64", "--dtype", "f32"});
  ASSERT_EQ(::truncate(JoinPath(table, kChecksumFileName).c_str(), 8), 0);
  RunResult info = Run({"info", table, "--json"});
  ExpectError(info, 1, "checksums file");
  json doc = json::parse(info.out);
  EXPECT_EQ(doc["rows"], 100);
  EXPECT_EQ(doc["io_backend"].get<std::string>().rfind("unavailable", 0), 0u);
  ExpectError(Run({"verify", table}), 1, "checksums file");
  ExpectError(Run({"get", table, "1"}), 1, "checksums file");
}

TEST_F(TablectlTest, OutOfRangeIdNamesTheId) {
  const std::string table = Path("t");
  RunOk({"create", table, "--rows", "100", "--dim", "8", "--dtype", "f16"});
  RunResult r = Run({"get", table, "3", "100"});
  ExpectError(r, 1, "id 100");
  EXPECT_EQ(r.out, "");
}

TEST_F(TablectlTest, BadCommandLinesGiveOneErrorLine) {
  const std::string table = Path("t");
  RunOk({"create", table, "--rows", "10", "--dim", "8", "--dtype", "f32"});
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string needle;
  };
  const std::string missing = Path("missing");
  const std::vector<Case> cases = {
      {{}, 2, "no command"},
      {{"bogus"}, 2, "unknown command 'bogus'"},
      {{"serve", table}, 2, "not implemented"},
      {{"bench", table}, 2, "missing --trace"},
      {{"bench", table, "--trace", "zipf:-1"}, 2, "zipf:-1"},
      {{"bench", table, "--trace", "uniform", "--dram-cache", "12XB"}, 2, "12XB"},
      {{"bench", table, "--trace", "uniform", "--duration", "0"}, 2, "--duration"},
      {{"bench", table, "--trace", "uniform", "--shared"}, 2, "--resident"},
      {{"bench", table, "--trace", "uniform", "--hbm-cache", "1G"}, 2, "HBM tier needs --prefetch"},
      {{"create", Path("n"), "--rows", "abc", "--dim", "8", "--dtype", "f32"}, 2, "--rows"},
      {{"create", Path("n"), "--rows", "-5", "--dim", "8", "--dtype", "f32"}, 2, "--rows"},
      {{"create", Path("n"), "--rows", "10", "--dtype", "f32"}, 2, "missing --dim"},
      {{"create", Path("n"), "--rows", "10", "--dim", "8", "--dtype", "f64"}, 2, "f64"},
      {{"create", Path("n"), "--rows", "10", "--dim", "8", "--dtype", "f32", "--seed", "1"},
       2,
       "--seed"},
      {{"create", Path("n"), "--rows", "10", "--dim", "40", "--dtype", "fp8_e4m3_ue8m0"}, 2, "40"},
      {{"create", Path("n"), "--rows", "10", "--dim", "8", "--dtype", "f32", "--bogus"},
       2,
       "--bogus"},
      {{"create", Path("n"), "--rows"}, 2, "--rows"},
      {{"get", table, "x1"}, 2, "x1"},
      {{"get", table}, 2, "TABLE ID"},
      {{"info"}, 2, "TABLE"},
      {{"info", table, "extra"}, 2, "extra"},
      {{"export", table, Path("o.npy"), "--rows", "5"}, 2, "range"},
      {{"export", table, Path("o.npy"), "--rows", "5:2"}, 2, "before"},
      {{"info", missing}, 1, "does not exist"},
      {{"get", missing, "0"}, 1, "does not exist"},
      {{"verify", missing}, 1, "does not exist"},
      {{"export", missing, Path("o.npy")}, 1, "does not exist"},
      {{"import", Path("n"), Path("nope.npy")}, 1, "nope.npy"},
  };
  for (const Case& c : cases) {
    std::string joined;
    for (const std::string& a : c.args) joined += a + " ";
    SCOPED_TRACE(joined);
    RunResult r = Run(c.args);
    ExpectError(r, c.exit_code, c.needle);
    EXPECT_EQ(r.out, "");
  }
  EXPECT_FALSE(Env::Default()->FileExists(Path("n")));
}

// bench: the per-tier counters add up and tell where the rows came from.
TEST_F(TablectlTest, BenchReportsThroughputAndPerTierCounts) {
  const std::string table = Path("t");
  RunOk({"create", table, "--rows", "20000", "--dim", "64", "--dtype", "f32", "--fill", "random"});
  json cached = RunJson({"bench", table, "--trace", "zipf:1.2", "--dram-cache", "1MiB", "--threads",
                         "2", "--batch", "256", "--duration", "0.3", "--json"});
  EXPECT_GT(cached["rows_per_sec"].get<double>(), 0.0);
  EXPECT_GT(cached["rows"].get<uint64_t>(), 0u);
  ASSERT_EQ(cached["tiers"].size(), 2u);
  const json& dram = cached["tiers"][0];
  const json& nvme = cached["tiers"][1];
  EXPECT_EQ(dram["tier"], "dram");
  EXPECT_EQ(dram["lookups"].get<uint64_t>(),
            dram["hits"].get<uint64_t>() + dram["misses"].get<uint64_t>());
  EXPECT_GT(dram["hits"].get<uint64_t>(), 0u);  // Zipf 1.2 repeats its hot rows
  EXPECT_EQ(nvme["lookups"].get<uint64_t>(), dram["misses"].get<uint64_t>());
  EXPECT_GE(nvme["bytes_read"].get<uint64_t>(), nvme["reads"].get<uint64_t>() * 4096);

  json resident =
      RunJson({"bench", table, "--trace", "uniform", "--resident", "--duration", "0.2", "--json"});
  ASSERT_EQ(resident["tiers"].size(), 1u);
  EXPECT_EQ(resident["tiers"][0]["hits"], resident["tiers"][0]["lookups"]);
  EXPECT_EQ(resident["tiers"][0]["lookups"].get<uint64_t>(), resident["rows"].get<uint64_t>());

  RunResult text =
      RunOk({"bench", table, "--trace", "uniform", "--dram-cache", "0", "--duration", "0.2"});
  EXPECT_NE(text.out.find("rows/s"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("nvme  lookups"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("dram  lookups"), std::string::npos) << text.out;
}

std::string ModelData(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / "model" / "data" / name)
      .string();
}

// ngram-hash reproduces the numpy golden hashes of a checked-in config (tests/model/data).
TEST_F(TablectlTest, NgramHashMatchesTheNumpyGolden) {
  const std::string out = Path("h.npy");
  json j = RunJson({"ngram-hash", "--config", ModelData("hash/odd.json"), "--layer", "3", "--ids",
                    ModelData("hash/odd_ids.npy"), "--out", out, "--json"});
  EXPECT_EQ(j["layer"], 3);
  auto got = ReadIdsNpy(Env::Default(), out);
  auto want = ReadIdsNpy(Env::Default(), ModelData("hash/odd_L3.npy"));
  ASSERT_TRUE(got.ok() && want.ok()) << got.status().ToString() << want.status().ToString();
  EXPECT_EQ(*got, *want);
  ExpectError(Run({"ngram-hash", "--config", ModelData("hash/odd.json"), "--layer", "4", "--ids",
                   ModelData("hash/odd_ids.npy"), "--out", out}),
              1, "4");
  ExpectError(Run({"ngram-hash", "--config", ModelData("hash/odd.json"), "--layer", "3"}), 2,
              "--ids");
}

// vocab-compress builds the map the Python reference builds from the same tokenizer.json.
TEST_F(TablectlTest, VocabCompressMatchesTheReferenceMap) {
  const std::string out = Path("m.npy");
  json j =
      RunJson({"vocab-compress", ModelData("vocab_small_tokenizer.json"), "--out", out, "--json"});
  EXPECT_EQ(j["raw_vocab_size"], 374);
  EXPECT_EQ(j["compressed_vocab_size"], 291);
  auto got = ReadIdsNpy(Env::Default(), out);
  auto want = ReadIdsNpy(Env::Default(), ModelData("vocab_small_map.npy"));
  ASSERT_TRUE(got.ok() && want.ok());
  EXPECT_EQ(*got, *want);
  ExpectError(Run({"vocab-compress", ModelData("vocab_small_tokenizer.json")}), 2, "--out");
  ExpectError(Run({"vocab-compress", Path("missing.json"), "--out", out}), 1, "missing.json");
}

std::string LayerGoldenDir(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / "model" / "data" /
          ("layer_" + name))
      .string();
}

TEST_F(TablectlTest, EngramForwardMatchesPyTorch) {
  // case, layer (make_layer_golden.py's CASES)
  for (const auto& [name, layer] : std::vector<std::pair<std::string, int>>{
           {"hc4", 5}, {"hc1", 2}, {"ngram4", 0}, {"wide", 1}}) {
    SCOPED_TRACE(name);
    const std::string d = LayerGoldenDir(name);
    const std::string table = Path("t_" + name);
    RunOk({"import", table, d + "/weights.safetensors:multi_head_embedding.embedding.weight",
           "--no-progress"});
    json j =
        RunJson({"engram-forward", "--config", d + "/config.json", "--layer", std::to_string(layer),
                 "--table", table, "--weights", d + "/weights.safetensors", "--ids", d + "/ids.npy",
                 "--hidden", d + "/hidden.npy", "--out", Path("y_" + name + ".npy"), "--json"});
    auto got_info = ReadArrayInfo(Env::Default(), Path("y_" + name + ".npy"));
    auto want_info = ReadArrayInfo(Env::Default(), d + "/y.npy");
    ASSERT_TRUE(got_info.ok() && want_info.ok());
    EXPECT_EQ(got_info->shape, want_info->shape);
    EXPECT_EQ(j["shape"].get<std::vector<uint64_t>>(), want_info->shape);
    auto got = ReadF32Array(Env::Default(), *got_info);
    auto want = ReadF32Array(Env::Default(), *want_info);
    ASSERT_TRUE(got.ok() && want.ok());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < want->size(); ++i) {
      diff = std::max(diff,
                      std::isnan((*got)[i]) ? INFINITY : std::abs(double{(*got)[i]} - (*want)[i]));
      scale = std::max(scale, std::abs(double{(*want)[i]}));
    }
    EXPECT_LE(diff / scale, 1e-5);
  }
}

TEST_F(TablectlTest, EngramForwardRejectsAnotherLayersTable) {
  const std::string d = LayerGoldenDir("hc4");
  RunOk({"import", Path("t"), d + "/weights.safetensors:multi_head_embedding.embedding.weight",
         "--no-progress"});
  // The table holds layer 5's rows; layer 1 has other primes, so another row count.
  RunResult r = Run({"engram-forward", "--config", d + "/config.json", "--layer", "1", "--table",
                     Path("t"), "--weights", d + "/weights.safetensors", "--ids", d + "/ids.npy",
                     "--hidden", d + "/hidden.npy", "--out", Path("y.npy")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("needs"), std::string::npos) << r.err;
  r = Run({"engram-forward", "--config", d + "/config.json", "--layer", "5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing --table"), std::string::npos) << r.err;
}

TEST_F(TablectlTest, HelpAndVersion) {
  RunResult help = RunOk({"--help"});
  for (const char* cmd : {"create", "import", "export", "info", "verify", "get"}) {
    EXPECT_NE(help.out.find(std::string("  ") + cmd + " "), std::string::npos) << cmd;
  }
  EXPECT_EQ(RunOk({"help"}).out, help.out);
  EXPECT_NE(RunOk({"help", "create"}).out.find("--fill zeros|random"), std::string::npos);
  EXPECT_NE(RunOk({"get", "--help"}).out.find("--raw"), std::string::npos);
  EXPECT_EQ(RunOk({"--version"}).out.rfind("tablectl ", 0), 0u);
}

TEST_F(TablectlTest, ProgressOnlyWithFlagWhenNotATerminal) {
  RunResult quiet = RunOk({"create", Path("a"), "--rows", "5000", "--dim", "16", "--dtype", "f32"});
  EXPECT_EQ(quiet.err, "");
  RunResult loud = Run({"verify", Path("a"), "--progress"});
  EXPECT_EQ(loud.exit_code, 0);
  EXPECT_NE(loud.err.find("verify: 100% "), std::string::npos) << loud.err;
  for (const std::string& line : SplitLines(loud.err)) {
    EXPECT_EQ(line.find('\r'), std::string::npos);
    EXPECT_EQ(line.rfind("verify: ", 0), 0u) << line;
  }
}

// ---- unit tests of the CLI pieces ----

using tablectl::FlagSpec;
using tablectl::ParseArgs;
using tablectl::ParseByteSize;
using tablectl::ParseRowRange;
using tablectl::ParseSeconds;
using tablectl::ParseUint64;

TEST(TablectlArgsTest, FlagsAndPositionals) {
  const std::vector<FlagSpec> flags = {{"rows", "N", ""}, {"json", "", ""}};
  auto a = ParseArgs({"t", "--rows", "5", "-7", "--json", "--", "--x"}, flags);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->positional(), (std::vector<std::string>{"t", "-7", "--x"}));
  EXPECT_EQ(a->Value("rows"), "5");
  EXPECT_TRUE(a->Has("json"));
  EXPECT_EQ(ParseArgs({"--rows=9"}, flags)->Value("rows"), "9");
  EXPECT_FALSE(ParseArgs({"--rows"}, flags).ok());
  EXPECT_FALSE(ParseArgs({"--rows", "1", "--rows", "2"}, flags).ok());
  EXPECT_FALSE(ParseArgs({"--json=1"}, flags).ok());
  EXPECT_FALSE(ParseArgs({"--other"}, flags).ok());
  EXPECT_FALSE(ParseArgs({"-j"}, flags).ok());
}

TEST(TablectlArgsTest, Numbers) {
  EXPECT_EQ(*ParseUint64("18446744073709551615", "n"), UINT64_MAX);
  for (const char* bad : {"", "18446744073709551616", "-1", "+1", "1e3", "0x10", " 1", "1 "}) {
    Result<uint64_t> r = ParseUint64(bad, "--rows");
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("--rows"), std::string::npos);
    }
  }
  EXPECT_FALSE(tablectl::ParseUint32("4294967296", "--dim").ok());
  EXPECT_EQ(*tablectl::ParseUint32("4294967295", "--dim"), UINT32_MAX);
}

TEST(TablectlArgsTest, RowRanges) {
  auto r = ParseRowRange("3:8");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->begin, 3u);
  EXPECT_EQ(r->end, 8u);
  EXPECT_FALSE(ParseRowRange("3:")->end.has_value());
  EXPECT_EQ(ParseRowRange(":8")->begin, 0u);
  EXPECT_FALSE(ParseRowRange(":")->end.has_value());
  EXPECT_TRUE(ParseRowRange("4:4").ok());
  for (const char* bad : {"5", "5:2", "a:3", "3:b", "1:2:3", ""}) {
    EXPECT_FALSE(ParseRowRange(bad).ok()) << bad;
  }
}

TEST(TablectlProgressTest, BarLineAndBytes) {
  EXPECT_EQ(tablectl::FormatBytes(512), "512 B");
  EXPECT_EQ(tablectl::FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(tablectl::FormatBytes(1.2 * (1 << 30)), "1.2 GiB");
  EXPECT_EQ(tablectl::Progress::BarLine(52, 100, 1 << 20),
            "[" + std::string(15, '#') + std::string(15, ' ') + "] 52% 52.0 MiB/100.0 MiB");
  EXPECT_EQ(tablectl::Progress::BarLine(0, 0, 4096).substr(0, 38),
            "[" + std::string(30, '#') + "] 100% ");
}

TEST(TablectlProgressTest, PlainLinesEveryTenPercent) {
  char* buf = nullptr;
  size_t size = 0;
  FILE* out = ::open_memstream(&buf, &size);
  ASSERT_NE(out, nullptr);
  {
    tablectl::Progress p("verify", tablectl::ProgressMode::kLines, 1.0, out);
    for (uint64_t i = 0; i <= 1000; i += 7) p.Update(i, 1000);
    p.Update(1000, 1000);
  }
  std::fclose(out);
  const std::string text(buf, size);
  std::free(buf);
  std::vector<std::string> lines = SplitLines(text);
  ASSERT_EQ(lines.size(), 10u) << text;
  EXPECT_EQ(lines.front(), "verify: 10% 105 B/1000 B");
  EXPECT_EQ(lines.back(), "verify: 100% 1000 B/1000 B");
}

TEST(TablectlArgsTest, ByteSizesAndSeconds) {
  EXPECT_EQ(*ParseByteSize("0", "s"), 0u);
  EXPECT_EQ(*ParseByteSize("4096", "s"), 4096u);
  EXPECT_EQ(*ParseByteSize("128MiB", "s"), 128u << 20);
  EXPECT_EQ(*ParseByteSize("8G", "s"), 8ull << 30);
  EXPECT_FALSE(ParseByteSize("8X", "s").ok());
  EXPECT_FALSE(ParseByteSize("MiB", "s").ok());
  EXPECT_FALSE(ParseByteSize("99999999999T", "s").ok());
  EXPECT_DOUBLE_EQ(*ParseSeconds("0.5", "d"), 0.5);
  EXPECT_FALSE(ParseSeconds("-1", "d").ok());
  EXPECT_FALSE(ParseSeconds("1s", "d").ok());
}

}  // namespace
}  // namespace engram
