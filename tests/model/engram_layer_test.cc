// Tests for model/engram_layer: the CPU forward against PyTorch golden outputs
// (tests/model/data/make_layer_golden.py), table dtypes through the C API, the kernels'
// causality and in-place contract, and the weight loader's errors.
//
// Tolerance: err = max_i |y_i - ref_i| / max_i |ref_i| (max-norm relative error) must be
// <= 1e-5; the script prints that f32 torch itself is ~2e-7 from a float64 run.
#include "model/engram_layer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "api/engram_store.h"
#include "model/cpu_math.h"
#include "model/fusion_kernel.h"
#include "model/gating_kernel.h"
#include "model/gemm.h"
#include "model/layer_weights.h"
#include "storage/array_file.h"
#include "storage/dtype.h"
#include "storage/table_import.h"
#include "tests/support/temp_dir.h"

namespace engram::model {
namespace {

constexpr double kTolerance = 1e-5;
const char kEmbeddingTensor[] = "multi_head_embedding.embedding.weight";

Env* env() { return Env::Default(); }

std::string DataDir(const std::string& golden_case) {
  return (std::filesystem::path(__FILE__).parent_path() / "data" / ("layer_" + golden_case))
      .string();
}

// The layer sizes of a golden case's config.json (the reference's field names).
EngramLayerShape ReadShape(const std::string& dir) {
  std::ifstream in(dir + "/config.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  EngramLayerShape s;
  s.hidden_size = j.at("hidden_size");
  s.hc_mult = j.at("hc_mult");
  s.max_ngram_size = j.at("max_ngram_size");
  s.n_embed_per_ngram = j.at("n_embed_per_ngram");
  s.n_head_per_ngram = j.at("n_head_per_ngram");
  s.kernel_size = j.at("kernel_size");
  return s;
}

std::vector<float> ReadFloats(const std::string& path, std::vector<uint64_t>* shape = nullptr) {
  auto info = ReadArrayInfo(env(), path);
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return {};
  if (shape != nullptr) *shape = info->shape;
  auto v = ReadF32Array(env(), *info);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : std::vector<float>();
}

double MaxNormRelError(const std::vector<float>& y, const std::vector<float>& ref) {
  EXPECT_EQ(y.size(), ref.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ref.size() && i < y.size(); ++i) {
    if (std::isnan(y[i])) return INFINITY;
    diff = std::max(diff, std::abs(static_cast<double>(y[i]) - ref[i]));
    scale = std::max(scale, std::abs(static_cast<double>(ref[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

struct Golden {
  std::string dir;
  EngramLayerShape shape;
  int64_t batch = 0, seq_len = 0;
  std::vector<int64_t> rows;
  std::vector<float> hidden, y;
};

Golden LoadGolden(const std::string& golden_case) {
  Golden g;
  g.dir = DataDir(golden_case);
  g.shape = ReadShape(g.dir);
  auto ids = ReadIdsNpy(env(), g.dir + "/rows.npy");
  EXPECT_TRUE(ids.ok()) << ids.status().ToString();
  if (ids.ok()) g.rows.assign(ids->begin(), ids->end());
  std::vector<uint64_t> shape;
  g.hidden = ReadFloats(g.dir + "/hidden.npy", &shape);
  EXPECT_EQ(shape.size(), 4u);
  if (shape.size() == 4) {
    g.batch = static_cast<int64_t>(shape[0]);
    g.seq_len = static_cast<int64_t>(shape[1]);
    EXPECT_EQ(shape[2], static_cast<uint64_t>(g.shape.hc_mult));
    EXPECT_EQ(shape[3], static_cast<uint64_t>(g.shape.hidden_size));
  }
  g.y = ReadFloats(g.dir + "/y.npy");
  EXPECT_EQ(g.rows.size(), static_cast<size_t>(g.batch * g.seq_len * g.shape.columns()));
  return g;
}

// Imports the golden embedding tensor as a store table of `dtype` and opens it resident.
class StoreTable {
 public:
  StoreTable(const std::string& weights, const std::string& path, DType dtype) {
    auto info = ReadSafetensorsInfo(env(), weights, kEmbeddingTensor);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    if (!info.ok()) return;
    Status s = ImportTable(env(), path, *info, dtype);
    EXPECT_TRUE(s.ok()) << s.ToString();
    es_options_t* options = es_options_create();
    es_options_set_dram_mode(options, ES_DRAM_RESIDENT);
    char* err = nullptr;
    table_ = es_table_open(path.c_str(), options, &err);
    es_options_destroy(options);
    EXPECT_NE(table_, nullptr) << (err ? err : "");
    es_free(err);
  }
  ~StoreTable() { es_table_close(table_); }
  es_table_t* get() const { return table_; }

 private:
  es_table_t* table_ = nullptr;
};

std::unique_ptr<EngramLayer> MakeLayer(const Golden& g, EngramLayerOptions options = {}) {
  auto w = LoadEngramLayerWeights(env(), g.dir + "/weights.safetensors", g.shape);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  if (!w.ok()) return nullptr;
  auto layer = EngramLayer::Create(std::move(*w), options);
  EXPECT_TRUE(layer.ok()) << layer.status().ToString();
  return layer.ok() ? std::move(*layer) : nullptr;
}

std::vector<float> RunForward(EngramLayer& layer, es_table_t* table, const Golden& g) {
  std::vector<float> out(g.y.size(), std::nanf(""));
  Status s = layer.Forward(table, g.rows.data(), g.hidden.data(), g.batch, g.seq_len, out.data());
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// ---- Against PyTorch ---------------------------------------------------------------------

class GoldenTest : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenTest, ForwardMatchesPyTorch) {
  const Golden g = LoadGolden(GetParam());
  testing::TempDir tmp;
  StoreTable table(g.dir + "/weights.safetensors", tmp.Sub("t"), DType::kF32);
  ASSERT_NE(table.get(), nullptr);
  auto layer = MakeLayer(g);
  ASSERT_NE(layer, nullptr);
  const std::vector<float> y = RunForward(*layer, table.get(), g);
  EXPECT_LE(MaxNormRelError(y, g.y), kTolerance);
}

TEST_P(GoldenTest, ThreadsAndChunksDoNotChangeTheResult) {
  const Golden g = LoadGolden(GetParam());
  testing::TempDir tmp;
  StoreTable table(g.dir + "/weights.safetensors", tmp.Sub("t"), DType::kF32);
  ASSERT_NE(table.get(), nullptr);
  for (int threads : {1, 3}) {
    for (int64_t chunk : {int64_t{1}, int64_t{5}, int64_t{1024}}) {
      EngramLayerOptions o;
      o.threads = threads;
      o.chunk_tokens = chunk;
      auto layer = MakeLayer(g, o);
      ASSERT_NE(layer, nullptr);
      EXPECT_LE(MaxNormRelError(RunForward(*layer, table.get(), g), g.y), kTolerance)
          << "threads " << threads << " chunk " << chunk;
    }
  }
  SetGemmThreads(1);
}

TEST_P(GoldenTest, ForwardEmbeddingsEqualsForwardFromTable) {
  const Golden g = LoadGolden(GetParam());
  testing::TempDir tmp;
  StoreTable table(g.dir + "/weights.safetensors", tmp.Sub("t"), DType::kF32);
  ASSERT_NE(table.get(), nullptr);
  auto layer = MakeLayer(g);
  ASSERT_NE(layer, nullptr);
  // Gather the rows by hand from the checkpoint's embedding tensor.
  auto info = ReadSafetensorsInfo(env(), g.dir + "/weights.safetensors", kEmbeddingTensor);
  ASSERT_TRUE(info.ok());
  auto emb = ReadF32Array(env(), *info);
  ASSERT_TRUE(emb.ok());
  const int64_t dim = g.shape.head_dim();
  std::vector<float> e;
  for (int64_t id : g.rows)
    e.insert(e.end(), emb->begin() + id * dim, emb->begin() + (id + 1) * dim);
  std::vector<float> from_e(g.y.size());
  ASSERT_TRUE(
      layer->ForwardEmbeddings(e.data(), g.hidden.data(), g.batch, g.seq_len, from_e.data()).ok());
  EXPECT_EQ(from_e, RunForward(*layer, table.get(), g));
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenTest, ::testing::Values("hc4", "hc1", "ngram4", "wide"));

// The hc1 case's embedding holds bf16-representable values: a bf16 table is lossless.
TEST(EngramLayerTest, Bf16TableMatchesPyTorch) {
  const Golden g = LoadGolden("hc1");
  testing::TempDir tmp;
  StoreTable table(g.dir + "/weights.safetensors", tmp.Sub("t"), DType::kBF16);
  ASSERT_NE(table.get(), nullptr);
  ASSERT_EQ(es_table_dtype(table.get()), ES_DTYPE_BF16);
  auto layer = MakeLayer(g);
  ASSERT_NE(layer, nullptr);
  EXPECT_LE(MaxNormRelError(RunForward(*layer, table.get(), g), g.y), kTolerance);
}

// An int8 table gives exactly the forward of an f32 table holding its dequantised rows.
TEST(EngramLayerTest, Int8TableIsDequantised) {
  const Golden g = LoadGolden("hc4");
  testing::TempDir tmp;
  StoreTable int8(g.dir + "/weights.safetensors", tmp.Sub("int8"), DType::kInt8);
  ASSERT_NE(int8.get(), nullptr);
  const uint64_t rows = es_table_rows(int8.get());
  const uint32_t dim = es_table_dim(int8.get()), row_bytes = es_table_row_bytes(int8.get());
  std::vector<uint64_t> all(rows);
  for (uint64_t i = 0; i < rows; ++i) all[i] = i;
  std::vector<uint8_t> raw(rows * row_bytes);
  std::vector<float> deq(rows * dim);
  char* err = nullptr;
  es_table_lookup(int8.get(), all.data(), rows, raw.data(), row_bytes, &err);
  ASSERT_EQ(err, nullptr) << err;
  es_dequantize(ES_DTYPE_INT8, dim, raw.data(), rows, row_bytes, deq.data(), dim * 4, &err);
  ASSERT_EQ(err, nullptr) << err;
  ASSERT_TRUE(WriteSafetensors(env(), tmp.Sub("deq.safetensors"),
                               {{kEmbeddingTensor, ElementType::kF32, {rows, dim}, deq.data()}})
                  .ok());
  StoreTable f32(tmp.Sub("deq.safetensors"), tmp.Sub("f32"), DType::kF32);
  ASSERT_NE(f32.get(), nullptr);
  auto layer = MakeLayer(g);
  ASSERT_NE(layer, nullptr);
  const std::vector<float> a = RunForward(*layer, int8.get(), g);
  EXPECT_EQ(a, RunForward(*layer, f32.get(), g));
  // Quantisation moved the result (the test would not notice a dtype mix-up otherwise)...
  EXPECT_GT(MaxNormRelError(a, g.y), kTolerance);
  // ...but not far.
  EXPECT_LT(MaxNormRelError(a, g.y), 0.05);
}

// ---- Causality and independence ----------------------------------------------------------

TEST(EngramLayerTest, LaterTokensAndOtherSequencesDoNotChangeAnOutput) {
  Golden g = LoadGolden("hc4");  // B = 2, T = 13
  testing::TempDir tmp;
  StoreTable table(g.dir + "/weights.safetensors", tmp.Sub("t"), DType::kF32);
  ASSERT_NE(table.get(), nullptr);
  auto layer = MakeLayer(g);
  ASSERT_NE(layer, nullptr);
  const std::vector<float> base = RunForward(*layer, table.get(), g);
  const int64_t per_token = int64_t{g.shape.hc_mult} * g.shape.hidden_size;
  const int64_t t = 7;  // change token (b = 0, t) in both inputs
  for (int64_t i = 0; i < per_token; ++i) g.hidden[t * per_token + i] += 0.5f;
  for (int c = 0; c < g.shape.columns(); ++c) g.rows[t * g.shape.columns() + c] = c;
  const std::vector<float> changed = RunForward(*layer, table.get(), g);
  const int64_t seq = g.seq_len * per_token;
  // Positions before t and the whole second sequence are bit-identical...
  EXPECT_TRUE(std::equal(base.begin(), base.begin() + t * per_token, changed.begin()));
  EXPECT_TRUE(std::equal(base.begin() + seq, base.end(), changed.begin() + seq));
  // ...position t and those that see it through the dilated conv (t + dilation) changed.
  for (int64_t pos : {t, t + g.shape.dilation()}) {
    EXPECT_FALSE(std::equal(base.begin() + pos * per_token, base.begin() + (pos + 1) * per_token,
                            changed.begin() + pos * per_token))
        << "position " << pos;
  }
  // t + 1 sees t only through the conv, which skips it (dilation 3): the residual path and
  // the taps t+1-3k are untouched.
  EXPECT_TRUE(std::equal(base.begin() + (t + 1) * per_token, base.begin() + (t + 2) * per_token,
                         changed.begin() + (t + 1) * per_token));
}

// ---- Kernels -----------------------------------------------------------------------------

TEST(FusionKernelTest, InPlaceEqualsOutOfPlace) {
  const int64_t B = 2, T = 9, M = 2, H = 300, K = 3;  // H spans two channel blocks
  std::vector<float> u(B * T * M * H), norm(M * H), conv(K * M * H);
  for (size_t i = 0; i < u.size(); ++i) u[i] = std::sin(0.37f * i) * 2.0f;
  for (size_t i = 0; i < norm.size(); ++i) norm[i] = 1.0f + 0.01f * (i % 7);
  for (size_t i = 0; i < conv.size(); ++i) conv[i] = std::cos(0.11f * i);
  std::vector<float> scale(B * T * M), out(u.size()), inplace = u;
  FusionParams p;
  p.batch = B, p.seq_len = T, p.hidden = H, p.hc_mult = M, p.kernel_size = K, p.dilation = 2;
  p.u = u.data(), p.norm = norm.data(), p.conv = conv.data(), p.row_scale = scale.data();
  p.out = out.data();
  FusionCpu(p, 2);
  p.u = inplace.data(), p.out = inplace.data();
  FusionCpu(p, 3);
  EXPECT_EQ(out, inplace);
  // Spot check one element against the formula (b 1, t 8, m 1, d 257): taps t, t-2, t-4.
  const int64_t b = 1, t = 8, m = 1, d = 257;
  double acc = 0;
  for (int64_t j = 0; j < K; ++j) {
    const int64_t tj = t - (K - 1 - j) * 2;
    const float* row = u.data() + ((b * T + tj) * M + m) * H;
    double ss = 0;
    for (int64_t i = 0; i < H; ++i) ss += double{row[i]} * row[i];
    acc += conv[j * M * H + m * H + d] * row[d] / std::sqrt(ss / H + 1e-5) * norm[m * H + d];
  }
  const double want = u[((b * T + t) * M + m) * H + d] + acc / (1 + std::exp(-acc));
  EXPECT_NEAR(out[((b * T + t) * M + m) * H + d], want, 1e-5 * std::max(1.0, std::abs(want)));
}

TEST(GatingKernelTest, ThreadsAgreeAndMatchTheFormula) {
  const int64_t N = 37, M = 3, H = 70, stride = (M + 1) * H + 5;  // padded proj rows
  std::vector<float> proj(N * stride), kb(M * H), vb(H), w1(M * H), w2(M * H), h(N * M * H);
  auto fill = [](std::vector<float>& v, float f) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(f * (i + 1));
  };
  fill(proj, 0.71f), fill(kb, 0.13f), fill(vb, 0.29f), fill(w1, 0.37f), fill(w2, 0.53f);
  fill(h, 0.97f);
  std::vector<float> u1(N * M * H), u3(N * M * H), g1(N * M), g3(N * M);
  GatingParams p;
  p.tokens = N, p.hidden = H, p.hc_mult = M, p.proj = proj.data(), p.proj_stride = stride;
  p.key_bias = kb.data(), p.value_bias = vb.data(), p.norm1 = w1.data(), p.norm2 = w2.data();
  p.hidden_states = h.data(), p.eps_key = 1.1920929e-07f, p.eps_query = 1.1920929e-07f;
  p.out_u = u1.data(), p.out_gate = g1.data();
  GatingCpu(p, 1);
  p.out_u = u3.data(), p.out_gate = g3.data();
  GatingCpu(p, 3);
  EXPECT_EQ(u1, u3);
  EXPECT_EQ(g1, g3);
  // Token 29, branch 2, in double.
  const int64_t n = 29, m = 2;
  double kk = 0, qq = 0;
  std::vector<double> k(H), q(H);
  for (int64_t d = 0; d < H; ++d) {
    k[d] = double{proj[n * stride + m * H + d]} + kb[m * H + d];
    q[d] = h[(n * M + m) * H + d];
    kk += k[d] * k[d], qq += q[d] * q[d];
  }
  double x = 0;
  for (int64_t d = 0; d < H; ++d) {
    x += k[d] / std::sqrt(kk / H + 1.1920929e-07) * w1[m * H + d] * q[d] /
         std::sqrt(qq / H + 1.1920929e-07) * w2[m * H + d];
  }
  x /= std::sqrt(double{H});
  const double s = (x > 0 ? 1 : -1) * std::sqrt(std::max(std::abs(x), 1e-6));
  const double gate = 1 / (1 + std::exp(-s));
  EXPECT_NEAR(g1[n * M + m], gate, 1e-6);
  const int64_t d = 41;
  EXPECT_NEAR(u1[(n * M + m) * H + d], gate * (proj[n * stride + M * H + d] + vb[d]), 1e-6);
}

TEST(GatingKernelTest, SignedSqrtEdges) {
  // x = 0 exactly (a zero query): sign(0) = 0, gate = sigmoid(0) = 0.5.
  EXPECT_EQ(GateFromSums(4.0f, 0.0f, 0.0f, 4, 1e-7f, 1e-7f), 0.5f);
  // |x| below 1e-6 is clamped to 1e-6 before the root: gate = sigmoid(+-1e-3).
  const float tiny = GateFromSums(4.0f, 4.0f, 1e-9f, 4, 0, 0);
  EXPECT_NEAR(tiny, 1.0f / (1.0f + std::exp(-1e-3f)), 1e-7);
  const float neg = GateFromSums(4.0f, 4.0f, -1e-9f, 4, 0, 0);
  EXPECT_NEAR(neg, 1.0f / (1.0f + std::exp(1e-3f)), 1e-7);
  // x = dot / (rms_k rms_q sqrt(H)) = 8 / (1 * 1 * 2) = 4: gate = sigmoid(2).
  EXPECT_NEAR(GateFromSums(4.0f, 4.0f, 8.0f, 4, 0, 0), 1.0f / (1.0f + std::exp(-2.0f)), 1e-7);
  EXPECT_TRUE(std::isnan(GateFromSums(4.0f, 4.0f, std::nanf(""), 4, 0, 0)));
}

TEST(CpuMathTest, ExpVecAndSiluVec) {
  double worst = 0;
  for (int i = -86900; i <= 87900; ++i) {  // inside the clamp range
    const float x = i * 1e-3f;
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(ExpVec(x) - want) / want);
  }
  EXPECT_LT(worst, 2e-7);
  // Clamped, so never inf or 0, and SiLU stays finite at the extremes.
  EXPECT_EQ(ExpVec(-1000.0f), ExpVec(-87.0f));
  EXPECT_EQ(ExpVec(1000.0f), ExpVec(88.0f));
  EXPECT_EQ(SiluVec(0.0f), 0.0f);
  EXPECT_FLOAT_EQ(SiluVec(1000.0f), 1000.0f);
  EXPECT_LT(std::abs(SiluVec(-1000.0f)), 1e-30f);
  EXPECT_NEAR(SiluVec(-2.0f), -2.0 / (1.0 + std::exp(2.0)), 1e-7);
}

// ---- Errors ------------------------------------------------------------------------------

TEST(EngramLayerTest, BadRowIdsAndTablesAreErrors) {
  Golden g = LoadGolden("hc1");
  testing::TempDir tmp;
  StoreTable table(g.dir + "/weights.safetensors", tmp.Sub("t"), DType::kF32);
  ASSERT_NE(table.get(), nullptr);
  auto layer = MakeLayer(g);
  ASSERT_NE(layer, nullptr);
  std::vector<float> out(g.y.size());
  std::vector<int64_t> rows = g.rows;
  rows[4] = -3;
  Status s =
      layer->Forward(table.get(), rows.data(), g.hidden.data(), g.batch, g.seq_len, out.data());
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("-3"), std::string::npos) << s.ToString();
  rows[4] = static_cast<int64_t>(es_table_rows(table.get()));
  s = layer->Forward(table.get(), rows.data(), g.hidden.data(), g.batch, g.seq_len, out.data());
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(rows[4])), std::string::npos) << s.ToString();
  // A table whose rows are not head_dim wide (hc4's heads are 4 wide, hc1's 8).
  StoreTable other(DataDir("hc4") + "/weights.safetensors", tmp.Sub("t4"), DType::kF32);
  s = layer->Forward(other.get(), g.rows.data(), g.hidden.data(), g.batch, g.seq_len, out.data());
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("head"), std::string::npos) << s.ToString();
}

// Writes the hc1 checkpoint's tensors again with one replaced (or dropped when data is null).
std::string RewriteWeights(const testing::TempDir& tmp, const std::string& name,
                           std::vector<uint64_t> shape, const float* data,
                           const std::string& extra = "") {
  const std::string src = DataDir("hc1") + "/weights.safetensors";
  std::vector<std::vector<float>> keep;
  keep.reserve(8);
  std::vector<TensorView> views;
  for (const char* t : {"value_proj.weight", "value_proj.bias", "key_projs.0.weight",
                        "key_projs.0.bias", "norm1.0.weight", "norm2.0.weight",
                        "short_conv.conv.weight", "short_conv.norms.0.weight"}) {
    if (name == t && data == nullptr) continue;
    auto info = ReadSafetensorsInfo(env(), src, t);
    EXPECT_TRUE(info.ok());
    keep.push_back(*ReadF32Array(env(), *info));
    if (name == t) {
      views.push_back({t, ElementType::kF32, shape, data});
    } else {
      views.push_back({t, ElementType::kF32, info->shape, keep.back().data()});
    }
  }
  static const float kOnes[40] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  if (!extra.empty()) views.push_back({extra, ElementType::kF32, {40}, kOnes});
  const std::string path = tmp.Sub("w.safetensors");
  EXPECT_TRUE(WriteSafetensors(env(), path, views).ok());
  return path;
}

TEST(LayerWeightsTest, ErrorsNameTheTensor) {
  const EngramLayerShape shape = ReadShape(DataDir("hc1"));  // H 40, E 24, M 1, K 3
  testing::TempDir tmp;
  std::vector<float> zeros(40 * 40);
  auto load = [&](const std::string& path) {
    return LoadEngramLayerWeights(env(), path, shape).status();
  };
  Status s = load(RewriteWeights(tmp, "key_projs.0.weight", {40, 16}, zeros.data()));
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("key_projs.0.weight has shape [40, 16], expected [40, 24]"),
            std::string::npos)
      << s.ToString();
  s = load(RewriteWeights(tmp, "short_conv.conv.weight", {40, 3}, zeros.data()));
  EXPECT_NE(s.message().find("short_conv.conv.weight has shape [40, 3], expected [40, 1, 3]"),
            std::string::npos)
      << s.ToString();
  s = load(RewriteWeights(tmp, "norm2.0.weight", {}, nullptr));
  EXPECT_NE(s.message().find("no tensor named norm2.0.weight"), std::string::npos) << s.ToString();
  s = load(RewriteWeights(tmp, "", {}, nullptr, "norm1.1.weight"));
  EXPECT_NE(s.message().find("more branches than hc_mult 1"), std::string::npos) << s.ToString();
  // The unchanged file loads, and a prefix that matches nothing is a missing tensor.
  EXPECT_TRUE(load(RewriteWeights(tmp, "", {}, nullptr)).ok());
  s = LoadEngramLayerWeights(env(), DataDir("hc1") + "/weights.safetensors", shape, "layers.2.")
          .status();
  EXPECT_NE(s.message().find("no tensor named layers.2.key_projs.0.weight"), std::string::npos)
      << s.ToString();
}

TEST(LayerWeightsTest, ShapeValidation) {
  EngramLayerShape s = ReadShape(DataDir("hc4"));
  EXPECT_TRUE(s.Validate().ok());
  EXPECT_EQ(s.columns(), 8);
  EXPECT_EQ(s.head_dim(), 4);
  EXPECT_EQ(s.embed_dim(), 32);
  s.n_head_per_ngram = 5;  // 16 values do not split over 5 heads
  EXPECT_TRUE(s.Validate().IsInvalidArgument());
  s.n_head_per_ngram = 4;
  s.max_ngram_size = 1;
  EXPECT_NE(s.Validate().message().find("max_ngram_size"), std::string::npos);
}

}  // namespace
}  // namespace engram::model
