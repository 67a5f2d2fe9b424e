// Tests for storage/array_file: .npy files made by numpy (tests/data, from make_arrays.py),
// our writers against numpy's bytes, safetensors, and malformed or truncated input.
#include "storage/array_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace engram {
namespace {

Env* env() { return Env::Default(); }

std::string DataPath(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path() / ".." / "data" / name).string();
}

std::string ReadAll(const std::string& path) {
  auto r = env()->ReadFileToString(path);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::string();
}

void WriteAll(const std::string& path, std::string_view data) {
  auto f = env()->NewWritableFile(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->Append(data.data(), data.size()).ok());
  ASSERT_TRUE((*f)->Close().ok());
}

std::vector<float> Floats(const std::string& path) {
  auto info = ReadArrayInfo(env(), path);
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return {};
  auto v = ReadF32Array(env(), *info);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : std::vector<float>();
}

std::vector<float> ExpectedF32_3x4() {
  std::vector<float> v;
  for (int i = 0; i < 12; ++i) v.push_back(i * 0.5f - 1.0f);
  return v;
}

// A .npy "\x93NUMPY" v1.0 file with the given header text and `data_bytes` zero bytes.
std::string NpyWithHeader(const std::string& header, size_t data_bytes) {
  std::string s("\x93NUMPY\x01\x00", 8);
  s.push_back(static_cast<char>(header.size() & 0xff));
  s.push_back(static_cast<char>(header.size() >> 8));
  return s + header + std::string(data_bytes, '\0');
}

// ---- numpy-written files -----------------------------------------------------------------------

TEST(NumpyFiles, F32MatrixVersion1) {
  auto info = ReadArrayInfo(env(), DataPath("f32_3x4.npy"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->type, ElementType::kF32);
  EXPECT_EQ(info->shape, (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(info->data_offset, 128u);
  EXPECT_EQ(info->data_bytes, 48u);
  EXPECT_TRUE(info->tensor.empty());
  EXPECT_EQ(Floats(DataPath("f32_3x4.npy")), ExpectedF32_3x4());
}

TEST(NumpyFiles, Versions2And3UseFourByteHeaderLength) {
  for (const char* name : {"f32_3x4_v2.npy", "f32_3x4_v3.npy"}) {
    SCOPED_TRACE(name);
    auto info = ReadNpyInfo(env(), DataPath(name));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->shape, (std::vector<uint64_t>{3, 4}));
    EXPECT_EQ(info->data_offset % 64, 0u);
    EXPECT_EQ(Floats(DataPath(name)), ExpectedF32_3x4());
  }
}

TEST(NumpyFiles, F16AndF64ConvertToF32) {
  auto info = ReadNpyInfo(env(), DataPath("f16_2x8.npy"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->type, ElementType::kF16);
  EXPECT_EQ(info->shape, (std::vector<uint64_t>{2, 8}));
  std::vector<float> f16 = Floats(DataPath("f16_2x8.npy"));
  ASSERT_EQ(f16.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(f16[i], i / 4.0f - 2.0f) << i;

  EXPECT_EQ(Floats(DataPath("f64_2x3.npy")),
            (std::vector<float>{1.5f, -2.25f, 3.0f, 0.0f, 0.125f, -7.0f}));
}

TEST(NumpyFiles, ScalarAndByteShapes) {
  auto scalar = ReadNpyInfo(env(), DataPath("f32_scalar.npy"));
  ASSERT_TRUE(scalar.ok()) << scalar.status().ToString();
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->data_bytes, 4u);
  EXPECT_EQ(Floats(DataPath("f32_scalar.npy")), std::vector<float>{3.25f});

  auto u8 = ReadNpyInfo(env(), DataPath("u8_2x5.npy"));
  ASSERT_TRUE(u8.ok());
  EXPECT_EQ(u8->type, ElementType::kU8);
  EXPECT_EQ(u8->shape, (std::vector<uint64_t>{2, 5}));
  EXPECT_EQ(Floats(DataPath("u8_2x5.npy")), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(NumpyFiles, IdsWidenToUint64) {
  auto i64 = ReadIdsNpy(env(), DataPath("i64_ids.npy"));
  ASSERT_TRUE(i64.ok()) << i64.status().ToString();
  EXPECT_EQ(*i64, (std::vector<uint64_t>{0, 5, 7, uint64_t{1} << 40, (uint64_t{1} << 62) + 3}));
  auto u64 = ReadIdsNpy(env(), DataPath("u64_ids.npy"));
  ASSERT_TRUE(u64.ok());
  EXPECT_EQ(*u64, (std::vector<uint64_t>{3, UINT64_MAX}));
  auto i32 = ReadIdsNpy(env(), DataPath("i32_ids.npy"));
  ASSERT_TRUE(i32.ok());
  EXPECT_EQ(*i32, (std::vector<uint64_t>{9, 8, 7}));
}

TEST(NumpyFiles, NegativeIdIsRejectedNamingItsPosition) {
  auto ids = ReadIdsNpy(env(), DataPath("i64_negative_ids.npy"));
  ASSERT_FALSE(ids.ok());
  EXPECT_TRUE(ids.status().IsInvalidArgument()) << ids.status().ToString();
  EXPECT_NE(ids.status().message().find("-3"), std::string::npos) << ids.status().ToString();
  EXPECT_NE(ids.status().message().find("position 2"), std::string::npos)
      << ids.status().ToString();
}

TEST(NumpyFiles, FloatArrayIsNotIds) {
  auto ids = ReadIdsNpy(env(), DataPath("f32_3x4.npy"));
  ASSERT_FALSE(ids.ok());
  EXPECT_TRUE(ids.status().IsInvalidArgument());
}

TEST(NumpyFiles, FortranOrderAndBigEndianAreNotSupported) {
  auto fortran = ReadNpyInfo(env(), DataPath("f32_fortran_2x3.npy"));
  ASSERT_FALSE(fortran.ok());
  EXPECT_TRUE(fortran.status().IsNotSupported()) << fortran.status().ToString();
  EXPECT_NE(fortran.status().message().find("Fortran"), std::string::npos);

  auto big = ReadNpyInfo(env(), DataPath("f32_bigendian_4.npy"));
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(big.status().IsNotSupported()) << big.status().ToString();
  EXPECT_NE(big.status().message().find("big-endian"), std::string::npos);
}

// ---- NpyWriter ---------------------------------------------------------------------------------

// Our writer must produce exactly numpy's bytes for the same array.
TEST(NpyWriter, BytesEqualNumpys) {
  testing::TempDir dir;
  std::vector<float> f32 = ExpectedF32_3x4();
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("a.npy"), ElementType::kF32, {3, 4}, f32.data()).ok());
  EXPECT_EQ(ReadAll(dir.Sub("a.npy")), ReadAll(DataPath("f32_3x4.npy")));

  std::vector<int64_t> ids = {0, 5, 7, int64_t{1} << 40, (int64_t{1} << 62) + 3};
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("b.npy"), ElementType::kI64, {5}, ids.data()).ok());
  EXPECT_EQ(ReadAll(dir.Sub("b.npy")), ReadAll(DataPath("i64_ids.npy")));

  std::vector<uint8_t> bytes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("c.npy"), ElementType::kU8, {2, 5}, bytes.data()).ok());
  EXPECT_EQ(ReadAll(dir.Sub("c.npy")), ReadAll(DataPath("u8_2x5.npy")));

  float scalar = 3.25f;
  ASSERT_TRUE(WriteNpy(env(), dir.Sub("d.npy"), ElementType::kF32, {}, &scalar).ok());
  EXPECT_EQ(ReadAll(dir.Sub("d.npy")), ReadAll(DataPath("f32_scalar.npy")));
}

TEST(NpyWriter, HeaderIsPaddedTo64BytesAndEndsInNewline) {
  testing::TempDir dir;
  const std::vector<std::vector<uint64_t>> shapes = {
      {}, {0}, {7}, {123456789, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}};
  for (const auto& shape : shapes) {
    auto w = NpyWriter::Create(env(), dir.Sub("h.npy"), ElementType::kF16, shape);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    w->reset();  // header only; reading checks the header, not the data
    std::string s = ReadAll(dir.Sub("h.npy"));
    ASSERT_EQ(s.size() % 64, 0u);
    EXPECT_EQ(s.back(), '\n');
    EXPECT_EQ(static_cast<size_t>(uint8_t(s[8]) | uint8_t(s[9]) << 8) + 10, s.size());
  }
}

TEST(NpyWriter, StreamsAndChecksTheByteCount) {
  testing::TempDir dir;
  auto w = NpyWriter::Create(env(), dir.Sub("s.npy"), ElementType::kI32, {2, 3});
  ASSERT_TRUE(w.ok());
  int32_t row[3] = {1, -2, 3};
  ASSERT_TRUE((*w)->Append(row, sizeof(row)).ok());
  Status early = (*w)->Finish();
  EXPECT_TRUE(early.IsInvalidArgument()) << early.ToString();
  ASSERT_TRUE((*w)->Append(row, sizeof(row)).ok());
  Status over = (*w)->Append(row, 1);
  EXPECT_TRUE(over.IsInvalidArgument()) << over.ToString();
  ASSERT_TRUE((*w)->Finish().ok());
  EXPECT_EQ(Floats(dir.Sub("s.npy")), (std::vector<float>{1, -2, 3, 1, -2, 3}));
}

TEST(NpyWriter, TypesWithoutNumpyDescrAreRefused) {
  testing::TempDir dir;
  for (ElementType t : {ElementType::kBF16, ElementType::kF8E4M3}) {
    auto w = NpyWriter::Create(env(), dir.Sub("x.npy"), t, {2});
    ASSERT_FALSE(w.ok());
    EXPECT_TRUE(w.status().IsNotSupported());
  }
}

// ---- safetensors -------------------------------------------------------------------------------

TEST(Safetensors, SelectsTensorsByName) {
  testing::TempDir dir;
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b = {0x3f80, 0xc000, 0x4040, 0x0000};  // bf16 1, -2, 3, 0
  const std::string path = dir.Sub("w.safetensors");
  ASSERT_TRUE(WriteSafetensors(env(), path,
                               {{"layer.a", ElementType::kF32, {2, 3}, a.data()},
                                {"b", ElementType::kBF16, {4}, b.data()}})
                  .ok());

  std::string raw = ReadAll(path);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(raw.size(), 8 + n + 24 + 8);
  auto header = nlohmann::json::parse(raw.substr(8, n), nullptr, false);
  ASSERT_FALSE(header.is_discarded());
  EXPECT_EQ(header["b"]["dtype"], "BF16");
  EXPECT_EQ(header["layer.a"]["data_offsets"], nlohmann::json::array({0, 24}));

  auto ia = ReadArrayInfo(env(), path + ":layer.a");
  ASSERT_TRUE(ia.ok()) << ia.status().ToString();
  EXPECT_EQ(ia->tensor, "layer.a");
  EXPECT_EQ(ia->path, path);
  EXPECT_EQ(ia->shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(ia->data_offset, 8 + n);
  EXPECT_EQ(*ReadF32Array(env(), *ia), a);

  auto ib = ReadSafetensorsInfo(env(), path, "b");
  ASSERT_TRUE(ib.ok());
  EXPECT_EQ(ib->type, ElementType::kBF16);
  EXPECT_EQ(*ReadF32Array(env(), *ib), (std::vector<float>{1, -2, 3, 0}));
}

TEST(Safetensors, NameIsNeededOnlyWhenThereAreSeveral) {
  testing::TempDir dir;
  std::vector<float> a = {1, 2};
  ASSERT_TRUE(WriteSafetensors(env(), dir.Sub("one.safetensors"),
                               {{"only", ElementType::kF32, {1, 2}, a.data()}})
                  .ok());
  auto one = ReadArrayInfo(env(), dir.Sub("one.safetensors"));
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->tensor, "only");

  ASSERT_TRUE(WriteSafetensors(env(), dir.Sub("two.safetensors"),
                               {{"first", ElementType::kF32, {2}, a.data()},
                                {"second", ElementType::kF32, {1}, a.data()}})
                  .ok());
  for (const std::string& spec : {dir.Sub("two.safetensors"), dir.Sub("two.safetensors:third")}) {
    auto r = ReadArrayInfo(env(), spec);
    ASSERT_FALSE(r.ok()) << spec;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
    EXPECT_NE(r.status().message().find("first, second"), std::string::npos)
        << r.status().ToString();
  }
}

TEST(Safetensors, MetadataIsIgnored) {
  testing::TempDir dir;
  std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})";
  std::string file(8, '\0');
  uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  file += header + std::string("\x00\x3c\x00\xc0", 4);  // f16 1.0, -2.0
  WriteAll(dir.Sub("m.safetensors"), file);
  auto info = ReadArrayInfo(env(), dir.Sub("m.safetensors"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->tensor, "w");
  EXPECT_EQ(*ReadF32Array(env(), *info), (std::vector<float>{1, -2}));
  auto meta = ReadArrayInfo(env(), dir.Sub("m.safetensors:__metadata__"));
  EXPECT_TRUE(meta.status().IsInvalidArgument());
}

// ---- bad input ---------------------------------------------------------------------------------

TEST(BadInput, TruncatedNpyIsCorruption) {
  testing::TempDir dir;
  std::string good = ReadAll(DataPath("f32_3x4.npy"));
  WriteAll(dir.Sub("t.npy"), good.substr(0, good.size() - 5));
  auto r = ReadNpyInfo(env(), dir.Sub("t.npy"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_EQ(r.status().message().find(dir.Sub("t.npy") + ": truncated:"), 0u)
      << r.status().ToString();
}

TEST(BadInput, EveryTruncationFailsCleanly) {
  testing::TempDir dir;
  std::vector<float> a = {1, 2, 3, 4};
  ASSERT_TRUE(
      WriteSafetensors(env(), dir.Sub("w.safetensors"), {{"x", ElementType::kF32, {4}, a.data()}})
          .ok());
  for (const std::string& src : {DataPath("f32_3x4_v2.npy"), dir.Sub("w.safetensors")}) {
    std::string good = ReadAll(src);
    const bool npy = src.ends_with(".npy");
    const std::string cut = dir.Sub(npy ? "cut.npy" : "cut.safetensors");
    for (size_t len = 0; len < good.size(); ++len) {
      WriteAll(cut, good.substr(0, len));
      auto r = ReadArrayInfo(env(), cut);
      ASSERT_FALSE(r.ok()) << src << " cut to " << len;
      EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
    }
  }
}

TEST(BadInput, GarbageNpyHeadersAreCorruption) {
  testing::TempDir dir;
  const std::vector<std::string> headers = {
      "",
      "garbage",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4",
      "{'descr': '<f4', 'fortran_order': False}",
      "{'fortran_order': False, 'shape': (2,)}",
      "{'descr': '<f4', 'shape': (2,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': ('a',)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing",
      "{'descr: '<f4'}",
      std::string(5000, '(') + std::string(5000, ')'),
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': " + std::string(100, '[') + "}",
  };
  for (const std::string& h : headers) {
    WriteAll(dir.Sub("g.npy"), NpyWithHeader(h, 64));
    auto r = ReadNpyInfo(env(), dir.Sub("g.npy"));
    ASSERT_FALSE(r.ok()) << h;
    EXPECT_TRUE(r.status().IsCorruption()) << h << " -> " << r.status().ToString();
    EXPECT_NE(r.status().message().find(dir.Sub("g.npy")), std::string::npos);
  }
  WriteAll(dir.Sub("g.npy"), "not an npy file at all");
  EXPECT_TRUE(ReadNpyInfo(env(), dir.Sub("g.npy")).status().IsCorruption());

  // Accepted variants: double quotes, no trailing comma, Python 2 longs, list shape.
  WriteAll(
      dir.Sub("ok.npy"),
      NpyWithHeader("{\"shape\": [2L, 3], \"fortran_order\": False, \"descr\": \"<i2\"}\n", 12));
  auto ok = ReadNpyInfo(env(), dir.Sub("ok.npy"));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->type, ElementType::kI16);
  EXPECT_EQ(ok->shape, (std::vector<uint64_t>{2, 3}));
}

TEST(BadInput, UnsupportedNpyDtypesAndVersions) {
  testing::TempDir dir;
  for (const char* descr : {"<c8", "|b1", "<U4", "|O"}) {
    WriteAll(dir.Sub("u.npy"), NpyWithHeader(std::string("{'descr': '") + descr +
                                                 "', 'fortran_order': False, 'shape': (1,)}",
                                             64));
    EXPECT_TRUE(ReadNpyInfo(env(), dir.Sub("u.npy")).status().IsNotSupported()) << descr;
  }
  WriteAll(dir.Sub("s.npy"),
           NpyWithHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", 8));
  EXPECT_TRUE(ReadNpyInfo(env(), dir.Sub("s.npy")).status().IsNotSupported());
  std::string v9 = ReadAll(DataPath("f32_3x4.npy"));
  v9[6] = 9;
  WriteAll(dir.Sub("v9.npy"), v9);
  EXPECT_TRUE(ReadNpyInfo(env(), dir.Sub("v9.npy")).status().IsNotSupported());
}

TEST(BadInput, HeaderLengthLargerThanFile) {
  testing::TempDir dir;
  std::string npy = ReadAll(DataPath("f32_3x4.npy"));
  npy[8] = '\xff';
  npy[9] = '\xff';
  WriteAll(dir.Sub("h.npy"), npy);
  auto r = ReadNpyInfo(env(), dir.Sub("h.npy"));
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("header length 65535"), std::string::npos);

  std::string st(8, '\0');
  uint64_t huge = uint64_t{1} << 62;
  std::memcpy(st.data(), &huge, 8);
  WriteAll(dir.Sub("h.safetensors"), st + "{}");
  auto s = ReadArrayInfo(env(), dir.Sub("h.safetensors"));
  EXPECT_TRUE(s.status().IsCorruption()) << s.status().ToString();
  EXPECT_NE(s.status().message().find("header length"), std::string::npos);
}

// Writes a safetensors file with `header` JSON and `data` bytes.
void WriteSt(const std::string& path, const std::string& header, size_t data) {
  std::string file(8, '\0');
  uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  WriteAll(path, file + header + std::string(data, '\0'));
}

TEST(BadInput, MalformedSafetensorsHeaders) {
  testing::TempDir dir;
  const std::string p = dir.Sub("b.safetensors");
  struct Case {
    std::string header;
    Status::Code code;
  };
  const std::vector<Case> cases = {
      {"not json", Status::Code::kCorruption},
      {"[1, 2]", Status::Code::kCorruption},
      {R"({"x": 5})", Status::Code::kCorruption},
      {R"({"x": {"dtype": "F32", "shape": [2]}})", Status::Code::kCorruption},
      {R"({"x": {"dtype": 7, "shape": [2], "data_offsets": [0, 8]}})", Status::Code::kCorruption},
      {R"({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})",
       Status::Code::kCorruption},
      {R"({"x": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})",
       Status::Code::kCorruption},
      {R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}})",
       Status::Code::kCorruption},
      {R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})",
       Status::Code::kCorruption},
      {R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", Status::Code::kCorruption},
      {R"({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
       Status::Code::kCorruption},  // only 8 data bytes: truncated
      {R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [18446744073709551615, 7]}})",
       Status::Code::kCorruption},
      {R"({"x": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}})",
       Status::Code::kNotSupported},
      {R"({"__metadata__": {}})", Status::Code::kInvalidArgument},
      {"{\"\xff\": 1}", Status::Code::kCorruption},
  };
  for (const Case& c : cases) {
    WriteSt(p, c.header, 8);
    auto r = ReadArrayInfo(env(), p);
    ASSERT_FALSE(r.ok()) << c.header;
    EXPECT_EQ(r.status().code(), c.code) << c.header << " -> " << r.status().ToString();
    EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().ToString();
  }
  WriteSt(p, R"({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8);
  EXPECT_NE(ReadArrayInfo(env(), p).status().message().find("truncated"), std::string::npos);
}

// Random byte corruption of real files: any outcome but a crash; an OK result must fit the file.
TEST(BadInput, CorruptedHeadersNeverCrash) {
  testing::TempDir dir;
  std::vector<float> a = {1, 2, 3, 4};
  ASSERT_TRUE(WriteSafetensors(env(), dir.Sub("w.safetensors"),
                               {{"x", ElementType::kF32, {2, 2}, a.data()},
                                {"y", ElementType::kF32, {4}, a.data()}})
                  .ok());
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (const std::string& src : {DataPath("f32_3x4.npy"), dir.Sub("w.safetensors")}) {
    const std::string good = ReadAll(src);
    const std::string spec = src.ends_with(".npy") ? dir.Sub("c.npy") : dir.Sub("c.safetensors:x");
    const std::string file = spec.substr(0, spec.find(':'));
    for (int iter = 0; iter < 300; ++iter) {
      std::string bad = good;
      for (int k = 0; k < 3; ++k) bad[next() % std::min<size_t>(bad.size(), 140)] = char(next());
      WriteAll(file, bad);
      auto r = ReadArrayInfo(env(), spec);
      if (r.ok()) {
        EXPECT_LE(r->data_offset + r->data_bytes, bad.size());
      }
    }
  }
}

TEST(BadInput, MissingFileAndUnknownExtension) {
  testing::TempDir dir;
  EXPECT_TRUE(ReadArrayInfo(env(), dir.Sub("none.npy")).status().IsNotFound());
  EXPECT_TRUE(ReadArrayInfo(env(), dir.Sub("none.safetensors:x")).status().IsNotFound());
  auto r = ReadArrayInfo(env(), dir.Sub("weights.bin"));
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
}

TEST(BadInput, WriterRefusesBadTensorNames) {
  testing::TempDir dir;
  float v = 1;
  EXPECT_TRUE(
      WriteSafetensors(env(), dir.Sub("d.safetensors"),
                       {{"a", ElementType::kF32, {1}, &v}, {"a", ElementType::kF32, {1}, &v}})
          .IsInvalidArgument());
  EXPECT_TRUE(WriteSafetensors(env(), dir.Sub("m.safetensors"),
                               {{"__metadata__", ElementType::kF32, {1}, &v}})
                  .IsInvalidArgument());
  EXPECT_TRUE(
      WriteSafetensors(env(), dir.Sub("u.safetensors"), {{"\xff\xfe", ElementType::kF32, {1}, &v}})
          .IsInvalidArgument());
}

}  // namespace
}  // namespace engram
