// The Engram layer's shape and weights, and loading them from a .safetensors checkpoint.
//
// Tensor names are the reference module's state_dict names (BRIEF section 3), optionally
// under a prefix ("layers.3.engram." + name) for a whole-model checkpoint:
//   value_proj.weight [H, E]    value_proj.bias [H]
//   key_projs.{m}.weight [H, E] key_projs.{m}.bias [H]          m < hc_mult
//   norm1.{m}.weight [H]        norm2.{m}.weight [H]
//   short_conv.conv.weight [M*H, 1, K]   short_conv.norms.{m}.weight [H]
// with H = hidden_size, M = hc_mult, E = (max_ngram_size - 1) * n_embed_per_ngram and
// K = kernel_size. multi_head_embedding.embedding.weight (the table) is not read here: the
// rows come from a store table. Other tensors in the file are ignored; a key_projs.{M} or
// norm1.{M} tensor (more branches than hc_mult) is an error, since it means the config and the
// checkpoint disagree. F32, F64, F16 and BF16 tensors are converted to f32 (exactly, F64 by
// rounding); any other dtype is InvalidArgument naming the tensor.
//
// The file is read through storage/array_file.h, a file-format utility; model/ reaches the
// store's tables only through the C API (api/engram_store.h).
//
// Thread safety: values and pure functions.
#pragma once

#include <string>
#include <vector>

#include "storage/env.h"
#include "storage/status.h"

namespace engram::model {

// The sizes the layer needs (a subset of EngramConfig, engram_config.h).
struct EngramLayerShape {
  int hidden_size = 0;        // H
  int hc_mult = 0;            // M
  int max_ngram_size = 0;     // orders 2..max_ngram_size; also the conv's dilation
  int n_embed_per_ngram = 0;  // values per order, split over the heads
  int n_head_per_ngram = 0;
  int kernel_size = 0;  // K

  // Table columns per token: (max_ngram_size - 1) * n_head_per_ngram.
  int columns() const { return (max_ngram_size - 1) * n_head_per_ngram; }
  // Values per table row: n_embed_per_ngram / n_head_per_ngram.
  int head_dim() const { return n_head_per_ngram > 0 ? n_embed_per_ngram / n_head_per_ngram : 0; }
  // E, the projections' input size: (max_ngram_size - 1) * n_embed_per_ngram.
  int embed_dim() const { return (max_ngram_size - 1) * n_embed_per_ngram; }
  int dilation() const { return max_ngram_size; }

  // InvalidArgument naming the field unless every size is >= 1, max_ngram_size >= 2, and
  // n_embed_per_ngram is a multiple of n_head_per_ngram (the reference's flatten of the head
  // rows only matches its Linear input size then).
  Status Validate() const;
};

struct EngramLayerWeights {
  EngramLayerShape shape;
  // [(M + 1) * H, E]: key_projs.0.weight, ..., key_projs.{M-1}.weight, value_proj.weight,
  // stacked, so the layer runs every projection as one GEMM.
  std::vector<float> proj_weight;
  std::vector<float> proj_bias;  // [(M + 1) * H]: the matching biases
  std::vector<float> norm1;      // [M, H]
  std::vector<float> norm2;      // [M, H]
  std::vector<float> conv;       // [M * H, K]: short_conv.conv.weight as stored
  std::vector<float> conv_norm;  // [M, H]: short_conv.norms.{m}.weight

  // InvalidArgument unless shape is valid and every vector has its size above.
  Status Validate() const;
};

// Reads the weights for `shape` from `path` (tensor names prefixed by `prefix`). Errors name
// the file and the tensor: NotFound-like InvalidArgument for a missing tensor, InvalidArgument
// for a wrong shape ("has shape [32, 16], expected [32, 32]") or dtype, the reader's
// Corruption for a malformed file.
Result<EngramLayerWeights> LoadEngramLayerWeights(Env* env, const std::string& path,
                                                  const EngramLayerShape& shape,
                                                  const std::string& prefix = "");

}  // namespace engram::model
