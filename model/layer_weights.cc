#include "model/layer_weights.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "storage/array_file.h"

namespace engram::model {
namespace {

std::string ShapeString(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Status CheckPositive(int value, int min, const char* name) {
  if (value >= min) return Status::OK();
  return Status::InvalidArgument(std::string(name) + " must be >= " + std::to_string(min) +
                                 ", got " + std::to_string(value));
}

bool IsFloatType(ElementType t) {
  return t == ElementType::kF32 || t == ElementType::kF64 || t == ElementType::kF16 ||
         t == ElementType::kBF16;
}

// Reads tensor `name` (shape `expected`) converted to f32 into dst[0, product(expected)).
Status ReadTensor(Env* env, const std::string& path, const std::string& name,
                  const std::vector<uint64_t>& expected, float* dst) {
  Result<ArrayInfo> info = ReadSafetensorsInfo(env, path, name);
  if (!info.ok() && info.status().IsInvalidArgument()) {
    // The reader's message lists every tensor of the file; a checkpoint may hold thousands.
    return Status::InvalidArgument("weights " + path + ": no tensor named " + name);
  }
  if (!info.ok()) return info.status().WithContext("weights " + path);
  if (info->shape != expected) {
    return Status::InvalidArgument("weights " + path + ": " + name + " has shape " +
                                   ShapeString(info->shape) + ", expected " +
                                   ShapeString(expected));
  }
  if (!IsFloatType(info->type)) {
    return Status::InvalidArgument("weights " + path + ": " + name + " has dtype " +
                                   std::string(ElementTypeName(info->type)) +
                                   ", expected f32, f64, f16 or bf16");
  }
  Result<std::vector<float>> values = ReadF32Array(env, *info);
  if (!values.ok()) return values.status().WithContext("weights " + path + ": " + name);
  std::copy(values->begin(), values->end(), dst);
  return Status::OK();
}

// A tensor that must not be there: branch `m` == hc_mult of a per-branch family.
Status CheckNoExtraBranch(Env* env, const std::string& path, const std::string& prefix,
                          const EngramLayerShape& s) {
  for (const char* family : {"key_projs", "norm1", "norm2", "short_conv.norms"}) {
    const std::string name = prefix + family + "." + std::to_string(s.hc_mult) + ".weight";
    if (ReadSafetensorsInfo(env, path, name).ok()) {
      return Status::InvalidArgument("weights " + path + ": has " + name +
                                     ", more branches than hc_mult " + std::to_string(s.hc_mult));
    }
  }
  return Status::OK();
}

}  // namespace

Status EngramLayerShape::Validate() const {
  ENGRAM_RETURN_IF_ERROR(CheckPositive(hidden_size, 1, "hidden_size"));
  ENGRAM_RETURN_IF_ERROR(CheckPositive(hc_mult, 1, "hc_mult"));
  ENGRAM_RETURN_IF_ERROR(CheckPositive(max_ngram_size, 2, "max_ngram_size"));
  ENGRAM_RETURN_IF_ERROR(CheckPositive(n_embed_per_ngram, 1, "n_embed_per_ngram"));
  ENGRAM_RETURN_IF_ERROR(CheckPositive(n_head_per_ngram, 1, "n_head_per_ngram"));
  ENGRAM_RETURN_IF_ERROR(CheckPositive(kernel_size, 1, "kernel_size"));
  if (n_embed_per_ngram % n_head_per_ngram != 0) {
    return Status::InvalidArgument("n_embed_per_ngram " + std::to_string(n_embed_per_ngram) +
                                   " is not a multiple of n_head_per_ngram " +
                                   std::to_string(n_head_per_ngram));
  }
  // Keep every product the layer forms (e.g. (M + 1) * H * E) well inside int64.
  const int64_t kMax = int64_t{1} << 24;
  if (int64_t{hidden_size} * hc_mult > kMax || embed_dim() > kMax ||
      int64_t{kernel_size} * max_ngram_size > kMax) {
    return Status::InvalidArgument("layer sizes too large");
  }
  return Status::OK();
}

Status EngramLayerWeights::Validate() const {
  ENGRAM_RETURN_IF_ERROR(shape.Validate());
  const size_t H = shape.hidden_size, M = shape.hc_mult, E = shape.embed_dim();
  const size_t K = shape.kernel_size;
  struct Check {
    const std::vector<float>& v;
    size_t size;
    const char* name;
  };
  for (const Check& c : {Check{proj_weight, (M + 1) * H * E, "proj_weight"},
                         Check{proj_bias, (M + 1) * H, "proj_bias"}, Check{norm1, M * H, "norm1"},
                         Check{norm2, M * H, "norm2"}, Check{conv, M * H * K, "conv"},
                         Check{conv_norm, M * H, "conv_norm"}}) {
    if (c.v.size() != c.size) {
      return Status::InvalidArgument(std::string("layer weights: ") + c.name + " has " +
                                     std::to_string(c.v.size()) + " values, expected " +
                                     std::to_string(c.size));
    }
  }
  return Status::OK();
}

Result<EngramLayerWeights> LoadEngramLayerWeights(Env* env, const std::string& path,
                                                  const EngramLayerShape& shape,
                                                  const std::string& prefix) {
  ENGRAM_RETURN_IF_ERROR(shape.Validate());
  EngramLayerWeights w;
  w.shape = shape;
  const uint64_t H = shape.hidden_size, M = shape.hc_mult, E = shape.embed_dim();
  const uint64_t K = shape.kernel_size;
  w.proj_weight.resize((M + 1) * H * E);
  w.proj_bias.resize((M + 1) * H);
  w.norm1.resize(M * H);
  w.norm2.resize(M * H);
  w.conv.resize(M * H * K);
  w.conv_norm.resize(M * H);
  const std::string p = prefix;
  for (uint64_t m = 0; m <= M; ++m) {
    const std::string base = m < M ? p + "key_projs." + std::to_string(m) : p + "value_proj";
    ENGRAM_RETURN_IF_ERROR(
        ReadTensor(env, path, base + ".weight", {H, E}, w.proj_weight.data() + m * H * E));
    ENGRAM_RETURN_IF_ERROR(ReadTensor(env, path, base + ".bias", {H}, w.proj_bias.data() + m * H));
  }
  for (uint64_t m = 0; m < M; ++m) {
    const std::string i = std::to_string(m);
    ENGRAM_RETURN_IF_ERROR(
        ReadTensor(env, path, p + "norm1." + i + ".weight", {H}, w.norm1.data() + m * H));
    ENGRAM_RETURN_IF_ERROR(
        ReadTensor(env, path, p + "norm2." + i + ".weight", {H}, w.norm2.data() + m * H));
    ENGRAM_RETURN_IF_ERROR(ReadTensor(env, path, p + "short_conv.norms." + i + ".weight", {H},
                                      w.conv_norm.data() + m * H));
  }
  ENGRAM_RETURN_IF_ERROR(
      ReadTensor(env, path, p + "short_conv.conv.weight", {M * H, 1, K}, w.conv.data()));
  ENGRAM_RETURN_IF_ERROR(CheckNoExtraBranch(env, path, p, shape));
  return w;
}

}  // namespace engram::model
