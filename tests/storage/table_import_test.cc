// Tests for storage/table_import: .npy / .safetensors -> table -> .npy round trips for every
// dtype, quantisation error bounds, raw-row imports, atomic replacement and bad input.
#include "storage/table_import.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "storage/table.h"
#include "storage/table_builder.h"
#include "storage/table_format.h"
#include "tests/support/fault_injection_env.h"
#include "tests/support/temp_dir.h"

namespace engram {
namespace {

Env* env() { return Env::Default(); }

constexpr DType kAllDTypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kInt8,
                                DType::kFp8E4M3Ue8m0};

// Deterministic floats with magnitudes varying per row (1e-3 .. 1e2) and some exact zeros.
std::vector<float> SourceFloats(uint64_t rows, uint32_t dim, uint64_t seed) {
  std::vector<float> v(rows * dim);
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (uint64_t r = 0; r < rows; ++r) {
    const float mag = std::ldexp(1.0f, static_cast<int>(r % 17) - 10);
    for (uint32_t i = 0; i < dim; ++i) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      const float u = static_cast<float>(s >> 40) / 16777216.0f * 2.0f - 1.0f;
      v[r * dim + i] = (i % 13 == 5) ? 0.0f : u * mag;
    }
  }
  return v;
}

// All rows of a table, packed, read straight from its data file via the layout.
std::vector<uint8_t> TableRows(const std::string& table, TableLayout* layout_out = nullptr) {
  auto m = ReadManifest(env(), table);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return {};
  const TableLayout& l = m->layout;
  if (layout_out) *layout_out = l;
  auto data = env()->ReadFileToString(JoinPath(table, kDataFileName));
  EXPECT_TRUE(data.ok());
  std::vector<uint8_t> rows(l.rows * l.row_bytes);
  for (uint64_t id = 0; id < l.rows; ++id) {
    std::memcpy(rows.data() + id * l.row_bytes, data->data() + l.OffsetOf(id), l.row_bytes);
  }
  return rows;
}

std::string FileBytes(const std::string& path) {
  auto r = env()->ReadFileToString(path);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::string();
}

// Same data and checksum files: the tables hold the same bytes.
void ExpectSameTable(const std::string& a, const std::string& b) {
  EXPECT_EQ(FileBytes(JoinPath(a, kDataFileName)), FileBytes(JoinPath(b, kDataFileName)));
  EXPECT_EQ(FileBytes(JoinPath(a, kChecksumFileName)), FileBytes(JoinPath(b, kChecksumFileName)));
  auto ma = ReadManifest(env(), a), mb = ReadManifest(env(), b);
  ASSERT_TRUE(ma.ok() && mb.ok());
  EXPECT_EQ(ma->layout.rows, mb->layout.rows);
  EXPECT_EQ(ma->layout.dim, mb->layout.dim);
  EXPECT_EQ(ma->layout.dtype, mb->layout.dtype);
}

Status Import(const std::string& table, const std::string& src, std::optional<DType> dtype) {
  auto info = ReadArrayInfo(env(), src);
  if (!info.ok()) return info.status();
  return ImportTable(env(), table, *info, dtype);
}

// Checks each dequantised value against its source within the dtype's quantisation error.
void ExpectWithinTolerance(DType dtype, uint32_t dim, const std::vector<uint8_t>& rows,
                           const std::vector<float>& src) {
  const uint32_t row_bytes = *RowBytes(dtype, dim);
  const uint64_t n = src.size() / dim;
  ASSERT_EQ(rows.size(), n * row_bytes);
  std::vector<float> out(dim);
  int failures = 0;
  for (uint64_t r = 0; r < n && failures < 5; ++r) {
    const uint8_t* row = rows.data() + r * row_bytes;
    DequantizeRow(dtype, dim, row, out.data());
    float int8_scale = 0;
    if (dtype == DType::kInt8) std::memcpy(&int8_scale, row + dim, 4);
    for (uint32_t i = 0; i < dim; ++i) {
      const float want = src[r * dim + i], got = out[i];
      float tol = 0;
      switch (dtype) {
        case DType::kF32:
          tol = 0;
          break;
        case DType::kF16:
          tol = std::fabs(want) * 0x1p-11f + 0x1p-25f;
          break;
        case DType::kBF16:
          tol = std::fabs(want) * 0x1p-8f;
          break;
        case DType::kInt8:
          tol = int8_scale * 0.5f * 1.0001f;
          break;
        case DType::kFp8E4M3Ue8m0: {
          const float s = Ue8m0ToFloat(row[dim + i / kFp8BlockValues]);
          tol = std::fabs(want) * 0x1p-4f + s * 0x1p-10f;
          break;
        }
      }
      if (!(std::fabs(got - want) <= tol)) {
        ADD_FAILURE() << DTypeName(dtype) << " row " << r << " col " << i << ": got " << got
                      << " want " << want << " tol " << tol;
        ++failures;
      }
    }
  }
}

// import f32 .npy -> table A (checked against the floats) -> export -> import -> table B == A;
// the same floats from a two-tensor .safetensors (by name) and a one-tensor one (no name) give A.
TEST(ImportExport, RoundTripEveryDType) {
  testing::TempDir dir;
  const uint64_t rows = 300;
  const uint32_t dim = 64;
  const std::vector<float> src = SourceFloats(rows, dim, 1);
  const std::vector<float> other = SourceFloats(3, 5, 2);
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("src.npy"), ElementType::kF32, {rows, dim}, src.data()).ok());
  ASSERT_TRUE(WriteSafetensors(env(), dir.Sub("two.safetensors"),
                               {{"other", ElementType::kF32, {3, 5}, other.data()},
                                {"emb", ElementType::kF32, {rows, dim}, src.data()}})
                  .ok());
  ASSERT_TRUE(WriteSafetensors(env(), dir.Sub("one.safetensors"),
                               {{"emb", ElementType::kF32, {rows, dim}, src.data()}})
                  .ok());
  for (DType dtype : kAllDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    const std::string a = dir.Sub("a"), b = dir.Sub("b"), out = dir.Sub("out.npy");
    ASSERT_TRUE(Import(a, dir.Sub("src.npy"), dtype).ok());
    TableLayout la;
    std::vector<uint8_t> rows_a = TableRows(a, &la);
    EXPECT_EQ(la.rows, rows);
    EXPECT_EQ(la.dim, dim);
    EXPECT_EQ(la.dtype, dtype);
    ExpectWithinTolerance(dtype, dim, rows_a, src);

    ASSERT_TRUE(ExportTable(env(), a, out, {}).ok());
    auto info = ReadNpyInfo(env(), out);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    const bool raw = dtype != DType::kF32 && dtype != DType::kF16;
    EXPECT_EQ(info->type, raw                    ? ElementType::kU8
                          : dtype == DType::kF32 ? ElementType::kF32
                                                 : ElementType::kF16);
    EXPECT_EQ(info->shape, (std::vector<uint64_t>{rows, raw ? la.row_bytes : dim}));
    EXPECT_FALSE(env()->FileExists(out + ".tmp"));
    // f32 and f16 exports carry their dtype; raw rows need it named.
    ASSERT_TRUE(Import(b, out, raw ? std::optional<DType>(dtype) : std::nullopt).ok());
    ExpectSameTable(a, b);

    ASSERT_TRUE(Import(b, dir.Sub("two.safetensors:emb"), dtype).ok());
    ExpectSameTable(a, b);
    ASSERT_TRUE(Import(b, dir.Sub("one.safetensors"), dtype).ok());
    ExpectSameTable(a, b);
    auto m = ReadManifest(env(), b);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->creation.source, "import " + dir.Sub("one.safetensors") + ":emb");
  }
}

TEST(ImportExport, AsF32ExportIsTheDequantisedRows) {
  testing::TempDir dir;
  const uint32_t dim = 32;
  const std::vector<float> src = SourceFloats(50, dim, 3);
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("src.npy"), ElementType::kF32, {50, dim}, src.data()).ok());
  for (DType dtype : kAllDTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    ASSERT_TRUE(Import(dir.Sub("t"), dir.Sub("src.npy"), dtype).ok());
    ExportOptions opts;
    opts.as_f32 = true;
    opts.begin = 7;
    opts.end = 20;
    ASSERT_TRUE(ExportTable(env(), dir.Sub("t"), dir.Sub("f.npy"), opts).ok());
    auto info = ReadNpyInfo(env(), dir.Sub("f.npy"));
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->type, ElementType::kF32);
    EXPECT_EQ(info->shape, (std::vector<uint64_t>{13, dim}));
    std::vector<float> got = *ReadF32Array(env(), *info);
    const std::vector<uint8_t> rows = TableRows(dir.Sub("t"));
    const uint32_t rb = *RowBytes(dtype, dim);
    std::vector<float> want(13 * dim);
    for (int r = 0; r < 13; ++r) {
      DequantizeRow(dtype, dim, rows.data() + (7 + r) * rb, want.data() + r * dim);
    }
    EXPECT_EQ(got, want);
  }
}

TEST(ImportExport, ExportRangeAndBadRange) {
  testing::TempDir dir;
  const std::vector<float> src = SourceFloats(40, 8, 4);
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("src.npy"), ElementType::kF32, {40, 8}, src.data()).ok());
  ASSERT_TRUE(Import(dir.Sub("t"), dir.Sub("src.npy"), DType::kF32).ok());
  ExportOptions opts;
  opts.begin = 30;
  ASSERT_TRUE(ExportTable(env(), dir.Sub("t"), dir.Sub("r.npy"), opts).ok());
  auto info = ReadNpyInfo(env(), dir.Sub("r.npy"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(*ReadF32Array(env(), *info), std::vector<float>(src.begin() + 240, src.end()));

  opts.begin = 40;  // empty range: a valid (0, 8) array
  ASSERT_TRUE(ExportTable(env(), dir.Sub("t"), dir.Sub("e.npy"), opts).ok());
  EXPECT_EQ(ReadNpyInfo(env(), dir.Sub("e.npy"))->shape, (std::vector<uint64_t>{0, 8}));

  for (auto [begin, end] : {std::pair<uint64_t, uint64_t>{5, 41}, {10, 9}, {41, 41}}) {
    opts.begin = begin;
    opts.end = end;
    Status s = ExportTable(env(), dir.Sub("t"), dir.Sub("bad.npy"), opts);
    EXPECT_TRUE(s.IsInvalidArgument()) << begin << ":" << end << " " << s.ToString();
    EXPECT_FALSE(env()->FileExists(dir.Sub("bad.npy")));
  }
  Status missing = ExportTable(env(), dir.Sub("nope"), dir.Sub("m.npy"), {});
  EXPECT_FALSE(missing.ok());
  EXPECT_FALSE(env()->FileExists(dir.Sub("m.npy")));
  EXPECT_FALSE(env()->FileExists(dir.Sub("m.npy.tmp")));
}

// f16 and bf16 sources keep their exact bits (NaN payloads and subnormals included); f64 needs a
// dtype and is rounded to f32.
TEST(ImportExport, HalfSourcesAreCopiedBitForBit) {
  testing::TempDir dir;
  std::vector<uint16_t> bits(4 * 16);
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = static_cast<uint16_t>(i * 977 + 1);
  bits[3] = 0x7e01;  // a NaN with payload
  bits[4] = 0x0001;  // smallest subnormal
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("h.npy"), ElementType::kF16, {4, 16}, bits.data()).ok());
  ASSERT_TRUE(WriteSafetensors(env(), dir.Sub("b.safetensors"),
                               {{"w", ElementType::kBF16, {4, 16}, bits.data()}})
                  .ok());
  ASSERT_TRUE(Import(dir.Sub("h"), dir.Sub("h.npy"), std::nullopt).ok());
  ASSERT_TRUE(Import(dir.Sub("b"), dir.Sub("b.safetensors"), std::nullopt).ok());
  for (const char* t : {"h", "b"}) {
    TableLayout l;
    std::vector<uint8_t> rows = TableRows(dir.Sub(t), &l);
    EXPECT_EQ(l.dtype, t[0] == 'h' ? DType::kF16 : DType::kBF16);
    ASSERT_EQ(rows.size(), bits.size() * 2);
    EXPECT_EQ(std::memcmp(rows.data(), bits.data(), rows.size()), 0) << t;
  }
  // bf16 -> f32 widens exactly.
  ASSERT_TRUE(Import(dir.Sub("bf"), dir.Sub("b.safetensors:w"), DType::kF32).ok());
  std::vector<uint8_t> wide = TableRows(dir.Sub("bf"));
  for (size_t i = 0; i < bits.size(); ++i) {
    float f;
    std::memcpy(&f, wide.data() + 4 * i, 4);
    const float want = BFloat16ToFloat(bits[i]);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(f));
    } else {
      EXPECT_EQ(f, want) << i;
    }
  }

  std::vector<double> d = {1.0, 1e-40, -3.5, 1.0 / 3.0};
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("d.npy"), ElementType::kF64, {2, 2}, d.data()).ok());
  Status no_dtype = Import(dir.Sub("d"), dir.Sub("d.npy"), std::nullopt);
  EXPECT_TRUE(no_dtype.IsInvalidArgument()) << no_dtype.ToString();
  ASSERT_TRUE(Import(dir.Sub("d"), dir.Sub("d.npy"), DType::kF32).ok());
  std::vector<uint8_t> df = TableRows(dir.Sub("d"));
  for (size_t i = 0; i < d.size(); ++i) {
    float f;
    std::memcpy(&f, df.data() + 4 * i, 4);
    EXPECT_EQ(f, static_cast<float>(d[i]));
  }
}

// More rows than one import chunk (65536), and rows wider than a page.
TEST(ImportExport, ManyChunksAndMultiPageRows) {
  testing::TempDir dir;
  const uint64_t rows = 70001;
  const std::vector<float> src = SourceFloats(rows, 4, 5);
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("s.npy"), ElementType::kF32, {rows, 4}, src.data()).ok());
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  auto info = ReadArrayInfo(env(), dir.Sub("s.npy"));
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE(ImportTable(env(), dir.Sub("t"), *info, DType::kInt8, [&](uint64_t d, uint64_t t) {
                calls.emplace_back(d, t);
              }).ok());
  ASSERT_GE(calls.size(), 2u);
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_GT(calls[i].first, calls[i - 1].first);
  EXPECT_EQ(calls.back(), std::make_pair(rows, rows));
  ExpectWithinTolerance(DType::kInt8, 4, TableRows(dir.Sub("t")), src);

  const std::vector<float> wide = SourceFloats(5, 1100, 6);  // 4400-byte f32 rows
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("w.npy"), ElementType::kF32, {5, 1100}, wide.data()).ok());
  ASSERT_TRUE(Import(dir.Sub("w"), dir.Sub("w.npy"), std::nullopt).ok());
  ASSERT_TRUE(ExportTable(env(), dir.Sub("w"), dir.Sub("w2.npy"), {}).ok());
  EXPECT_EQ(FileBytes(dir.Sub("w2.npy")), FileBytes(dir.Sub("w.npy")));
}

TEST(ImportErrors, ShapesAndTypes) {
  testing::TempDir dir;
  std::vector<float> f(2 * 3 * 64, 0.5f);
  std::vector<uint8_t> u(3 * 100, 1);
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("1d.npy"), ElementType::kF32, {64}, f.data()).ok());
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("3d.npy"), ElementType::kF32, {2, 3, 64}, f.data()).ok());
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("u.npy"), ElementType::kU8, {3, 100}, u.data()).ok());
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("i32.npy"), ElementType::kI32, {3, 4}, u.data()).ok());
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("odd.npy"), ElementType::kF32, {2, 33}, f.data()).ok());
  struct Case {
    std::string src;
    std::optional<DType> dtype;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"1d.npy", DType::kF32, "2-D"},
      {"3d.npy", DType::kF32, "2-D"},
      {"u.npy", std::nullopt, "u8"},                // raw rows need a dtype
      {"u.npy", DType::kFp8E4M3Ue8m0, "raw rows"},  // 100 != 33 * k
      {"i32.npy", DType::kF32, "i32"},
      {"odd.npy", DType::kFp8E4M3Ue8m0, "multiple of 32"},
  };
  for (const Case& c : cases) {
    Status s = Import(dir.Sub("t"), dir.Sub(c.src), c.dtype);
    EXPECT_TRUE(s.IsInvalidArgument()) << c.src << " " << s.ToString();
    EXPECT_NE(s.message().find(c.needle), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find(dir.Sub(c.src)), std::string::npos) << s.ToString();
    EXPECT_FALSE(env()->FileExists(dir.Sub("t")));
  }
  // int8 raw rows: 100 bytes = 96 values + scale.
  ASSERT_TRUE(Import(dir.Sub("t"), dir.Sub("u.npy"), DType::kInt8).ok());
  TableLayout l;
  EXPECT_EQ(TableRows(dir.Sub("t"), &l), u);
  EXPECT_EQ(l.dim, 96u);
  // A u8 row of 3 bytes is no int8 row (dim + 4 bytes).
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("u3.npy"), ElementType::kU8, {2, 3}, u.data()).ok());
  EXPECT_TRUE(Import(dir.Sub("t3"), dir.Sub("u3.npy"), DType::kInt8).IsInvalidArgument());
}

TEST(ImportErrors, TruncatedSourceIsCorruption) {
  testing::TempDir dir;
  std::vector<float> f(16, 1.0f);
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("s.npy"), ElementType::kF32, {4, 4}, f.data()).ok());
  auto info = ReadArrayInfo(env(), dir.Sub("s.npy"));
  ASSERT_TRUE(info.ok());
  ArrayInfo lying = *info;
  lying.shape = {8, 4};
  lying.data_bytes = 128;
  Status s = ImportTable(env(), dir.Sub("t"), lying, DType::kF32);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("truncated"), std::string::npos);
  EXPECT_FALSE(env()->FileExists(dir.Sub("t")));
}

// A failed re-import (EIO on the source) leaves the existing table exactly as it was.
TEST(ImportErrors, FailedReplaceKeepsTheOldTable) {
  testing::TempDir dir;
  const std::vector<float> old_rows = SourceFloats(100, 16, 7);
  const std::vector<float> new_rows = SourceFloats(100, 16, 8);
  ASSERT_TRUE(
      WriteNpy(env(), dir.Sub("old.npy"), ElementType::kF32, {100, 16}, old_rows.data()).ok());
  ASSERT_TRUE(
      WriteNpy(env(), dir.Sub("new.npy"), ElementType::kF32, {100, 16}, new_rows.data()).ok());
  ASSERT_TRUE(Import(dir.Sub("t"), dir.Sub("old.npy"), DType::kBF16).ok());
  const std::string before = FileBytes(JoinPath(dir.Sub("t"), kDataFileName));

  testing::FaultInjectionEnv faulty;
  faulty.SetReadFault("new.npy", 1000, 1001, testing::ReadFault::kEIO);
  auto info = ReadArrayInfo(&faulty, dir.Sub("new.npy"));
  ASSERT_TRUE(info.ok());
  Status s = ImportTable(&faulty, dir.Sub("t"), *info, DType::kBF16);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_GE(faulty.faults_injected(), 1u);
  EXPECT_EQ(FileBytes(JoinPath(dir.Sub("t"), kDataFileName)), before);
  auto listing = env()->ListDir(dir.path());
  ASSERT_TRUE(listing.ok());
  for (const std::string& name : *listing) EXPECT_EQ(name.find(".building"), std::string::npos);

  // ENOSPC while writing the export: an error, and no partial .npy left behind.
  faulty.ClearReadFault();
  faulty.SetWriteBudget(2000);
  Status w = ExportTable(&faulty, dir.Sub("t"), dir.Sub("x.npy"), {});
  EXPECT_TRUE(w.IsIOError()) << w.ToString();
  EXPECT_FALSE(env()->FileExists(dir.Sub("x.npy")));
  EXPECT_FALSE(env()->FileExists(dir.Sub("x.npy.tmp")));
}

}  // namespace
}  // namespace engram
