// TokenMap: loading the compression .npy (numpy-written golden and files written here), the
// identity map, range checks, and every malformed-input error.
#include "model/token_map.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/array_file.h"
#include "tests/support/temp_dir.h"

namespace engram::model {
namespace {

std::string DataPath(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path() / "data" / name).string();
}

TEST(TokenMapTest, LoadsNumpyWrittenGolden) {
  // Written by make_vocab_golden.py with np.save (int64, 374 raw ids -> 291 compressed ids).
  Result<TokenMap> map = TokenMap::LoadNpy(Env::Default(), DataPath("vocab_small_map.npy"));
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->raw_vocab_size(), 374);
  EXPECT_EQ(map->compressed_vocab_size(), 291);
  // "Hello" (256), " Hello" (257) ... share the first new id after the byte tokens.
  EXPECT_EQ(*map->Compress(256), *map->Compress(257));
  EXPECT_EQ(*map->Compress(0), 0);
  EXPECT_EQ(map->table().size(), 374u);
}

TEST(TokenMapTest, LoadsInt32AndRoundTripsInt64) {
  testing::TempDir dir;
  const std::vector<int32_t> narrow = {0, 1, 0, 7, 2};
  ASSERT_TRUE(
      WriteNpy(Env::Default(), dir.Sub("m32.npy"), ElementType::kI32, {5}, narrow.data()).ok());
  Result<TokenMap> map = TokenMap::LoadNpy(Env::Default(), dir.Sub("m32.npy"));
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->table(), (std::vector<int64_t>{0, 1, 0, 7, 2}));
  EXPECT_EQ(map->compressed_vocab_size(), 8);  // max + 1, holes allowed

  ASSERT_TRUE(map->SaveNpy(Env::Default(), dir.Sub("m64.npy")).ok());
  Result<ArrayInfo> info = ReadNpyInfo(Env::Default(), dir.Sub("m64.npy"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->type, ElementType::kI64);
  EXPECT_EQ(info->shape, std::vector<uint64_t>{5});
  Result<TokenMap> again = TokenMap::LoadNpy(Env::Default(), dir.Sub("m64.npy"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->table(), map->table());
}

TEST(TokenMapTest, IdentityMapsEachIdToItself) {
  TokenMap map = TokenMap::Identity(129280);
  EXPECT_EQ(map.raw_vocab_size(), 129280);
  EXPECT_EQ(map.compressed_vocab_size(), 129280);
  EXPECT_EQ(*map.Compress(0), 0);
  EXPECT_EQ(*map.Compress(129279), 129279);
  EXPECT_EQ(map.CompressUnchecked(4242), 4242);
  EXPECT_EQ(TokenMap::Identity(0).raw_vocab_size(), 0);
  EXPECT_EQ(TokenMap::Identity(-5).compressed_vocab_size(), 0);
}

TEST(TokenMapTest, CompressRejectsIdsOutsideTheVocabulary) {
  TokenMap map = TokenMap::Identity(10);
  for (int64_t bad : {int64_t{-1}, int64_t{10}, INT64_MAX, INT64_MIN}) {
    Result<int64_t> r = map.Compress(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_NE(r.status().message().find(std::to_string(bad)), std::string::npos)
        << r.status().ToString();
  }
  EXPECT_FALSE(TokenMap().Compress(0).ok());
}

TEST(TokenMapTest, FromTableRejectsNegativeValues) {
  Result<TokenMap> map = TokenMap::FromTable({0, 3, -1, 2});
  ASSERT_FALSE(map.ok());
  EXPECT_TRUE(map.status().IsInvalidArgument());
  EXPECT_NE(map.status().message().find("position 2"), std::string::npos)
      << map.status().ToString();
  Result<TokenMap> good = TokenMap::FromTable({0, 5, 2});
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->compressed_vocab_size(), 6);
}

TEST(TokenMapTest, NegativeValueInFileIsCorruptionNamingPosition) {
  testing::TempDir dir;
  const std::vector<int64_t> values = {0, 1, 2, 3, -7, 4};
  ASSERT_TRUE(
      WriteNpy(Env::Default(), dir.Sub("neg.npy"), ElementType::kI64, {6}, values.data()).ok());
  Result<TokenMap> map = TokenMap::LoadNpy(Env::Default(), dir.Sub("neg.npy"));
  ASSERT_FALSE(map.ok());
  EXPECT_TRUE(map.status().IsCorruption()) << map.status().ToString();
  EXPECT_NE(map.status().message().find("position 4"), std::string::npos)
      << map.status().ToString();
}

TEST(TokenMapTest, RejectsWrongDtypeRankAndEmptyArrays) {
  testing::TempDir dir;
  Env* env = Env::Default();
  const std::vector<float> f = {0, 1, 2};
  ASSERT_TRUE(WriteNpy(env, dir.Sub("f.npy"), ElementType::kF32, {3}, f.data()).ok());
  const std::vector<int64_t> m = {0, 1, 2, 3};
  ASSERT_TRUE(WriteNpy(env, dir.Sub("2d.npy"), ElementType::kI64, {2, 2}, m.data()).ok());
  ASSERT_TRUE(WriteNpy(env, dir.Sub("empty.npy"), ElementType::kI64, {0}, m.data()).ok());

  Result<TokenMap> r = TokenMap::LoadNpy(env, dir.Sub("f.npy"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("f32"), std::string::npos) << r.status().ToString();

  r = TokenMap::LoadNpy(env, dir.Sub("2d.npy"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("[2, 2]"), std::string::npos) << r.status().ToString();

  r = TokenMap::LoadNpy(env, dir.Sub("empty.npy"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption());
  EXPECT_NE(r.status().message().find("empty"), std::string::npos) << r.status().ToString();

  EXPECT_FALSE(TokenMap::LoadNpy(env, dir.Sub("missing.npy")).ok());
}

TEST(TokenMapTest, TruncatedFileIsCorruption) {
  testing::TempDir dir;
  const std::vector<int64_t> values(100, 3);
  const std::string path = dir.Sub("t.npy");
  ASSERT_TRUE(WriteNpy(Env::Default(), path, ElementType::kI64, {100}, values.data()).ok());
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 9);
  Result<TokenMap> r = TokenMap::LoadNpy(Env::Default(), path);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
}

}  // namespace
}  // namespace engram::model
