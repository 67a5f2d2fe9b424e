// .npy and .safetensors reading and writing (see array_file.h).
//
// .npy (numpy's format.py): "\x93NUMPY", major, minor, then a little-endian header length
// (2 bytes for 1.0, 4 bytes for 2.0 and 3.0), then that many bytes of a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces and '\n'.
// The dict is parsed by a small Python-literal parser below (no eval, bounded depth).
//
// .safetensors: an 8-byte little-endian header size N, N bytes of JSON
// {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]}, "__metadata__": {..}},
// then the data buffer; offsets are relative to the first byte after the header.
#include "storage/array_file.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>
#include <utility>

#include "storage/dtype.h"

namespace engram {
namespace {

static_assert(std::endian::native == std::endian::little, "array files are read in place");

constexpr char kNpyMagic[] = "\x93NUMPY";
constexpr size_t kNpyMagicLen = 6;
// numpy itself refuses headers over 10000 bytes unless asked; anything above this is garbage.
constexpr uint64_t kMaxNpyHeaderBytes = uint64_t{1} << 20;
// The safetensors spec caps the JSON header at 100 MB.
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
// Nesting allowed in an .npy header literal (structured dtypes are rejected anyway).
constexpr int kMaxLiteralDepth = 16;
// Bytes converted per read in ReadF32Array / ReadIdsNpy.
constexpr size_t kConvertChunkBytes = size_t{1} << 20;

struct TypeNames {
  ElementType type;
  std::string_view name;         // ours
  std::string_view npy;          // numpy descr without the byte-order character ("" if none)
  std::string_view safetensors;  // safetensors dtype
};

constexpr std::array<TypeNames, 13> kTypes = {{
    {ElementType::kF32, "f32", "f4", "F32"},
    {ElementType::kF64, "f64", "f8", "F64"},
    {ElementType::kF16, "f16", "f2", "F16"},
    {ElementType::kBF16, "bf16", "", "BF16"},
    {ElementType::kI8, "i8", "i1", "I8"},
    {ElementType::kU8, "u8", "u1", "U8"},
    {ElementType::kI16, "i16", "i2", "I16"},
    {ElementType::kU16, "u16", "u2", "U16"},
    {ElementType::kI32, "i32", "i4", "I32"},
    {ElementType::kU32, "u32", "u4", "U32"},
    {ElementType::kI64, "i64", "i8", "I64"},
    {ElementType::kU64, "u64", "u8", "U64"},
    {ElementType::kF8E4M3, "f8_e4m3", "", "F8_E4M3"},
}};

const TypeNames& NamesOf(ElementType t) {
  for (const TypeNames& n : kTypes) {
    if (n.type == t) return n;
  }
  return kTypes[0];  // unreachable for valid enum values
}

uint64_t ReadLE(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// product(shape) * elem_size, or nullopt on overflow.
std::optional<uint64_t> ShapeBytes(const std::vector<uint64_t>& shape, size_t elem_size) {
  uint64_t bytes = elem_size;
  for (uint64_t d : shape) {
    if (__builtin_mul_overflow(bytes, d, &bytes)) return std::nullopt;
  }
  return bytes;
}

std::string ShapeString(const std::vector<uint64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

bool IsIntegerType(ElementType t) {
  switch (t) {
    case ElementType::kI8:
    case ElementType::kU8:
    case ElementType::kI16:
    case ElementType::kU16:
    case ElementType::kI32:
    case ElementType::kU32:
    case ElementType::kI64:
    case ElementType::kU64:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// A tiny parser for the Python literal in an .npy header: dicts, tuples, lists, strings,
// integers, True/False/None. Anything else is an error; nesting is bounded.

struct PyValue {
  enum class Kind { kNone, kBool, kInt, kStr, kTuple, kList, kDict } kind = Kind::kNone;
  bool b = false;
  bool negative = false;
  uint64_t magnitude = 0;  // |integer|
  std::string str;
  std::vector<PyValue> items;                         // tuple / list
  std::vector<std::pair<std::string, PyValue>> dict;  // keys are strings in .npy headers
};

class PyLiteralParser {
 public:
  explicit PyLiteralParser(std::string_view text) : text_(text) {}

  // Parses the whole text as one value; returns an error description or "".
  std::string ParseAll(PyValue* out) {
    std::string err = ParseValue(out, 0);
    if (!err.empty()) return err;
    SkipSpace();
    if (pos_ != text_.size())
      return "unexpected text after the dict at byte " + std::to_string(pos_);
    return "";
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  std::string Expected(std::string_view what) {
    return "expected " + std::string(what) + " at byte " + std::to_string(pos_);
  }

  std::string ParseValue(PyValue* out, int depth) {
    if (depth > kMaxLiteralDepth) return "nesting too deep at byte " + std::to_string(pos_);
    SkipSpace();
    if (pos_ >= text_.size()) return Expected("a value");
    const char c = text_[pos_];
    if (c == '{') return ParseDict(out, depth);
    if (c == '(') return ParseSequence(out, depth, ')', PyValue::Kind::kTuple);
    if (c == '[') return ParseSequence(out, depth, ']', PyValue::Kind::kList);
    if (c == '\'' || c == '"') {
      out->kind = PyValue::Kind::kStr;
      return ParseString(&out->str);
    }
    if (c == '-' || c == '+' || std::isdigit(static_cast<unsigned char>(c))) return ParseInt(out);
    return ParseWord(out);
  }

  std::string ParseWord(PyValue* out) {
    for (auto [word, kind, b] : {std::tuple{"True", PyValue::Kind::kBool, true},
                                 std::tuple{"False", PyValue::Kind::kBool, false},
                                 std::tuple{"None", PyValue::Kind::kNone, false}}) {
      std::string_view w(word);
      if (text_.substr(pos_, w.size()) == w) {
        pos_ += w.size();
        out->kind = kind;
        out->b = b;
        return "";
      }
    }
    return Expected("a Python literal");
  }

  std::string ParseInt(PyValue* out) {
    out->kind = PyValue::Kind::kInt;
    if (text_[pos_] == '-' || text_[pos_] == '+') out->negative = text_[pos_++] == '-';
    const size_t start = pos_;
    uint64_t v = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      const uint64_t digit = static_cast<uint64_t>(text_[pos_] - '0');
      if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, digit, &v)) {
        return "integer too large at byte " + std::to_string(start);
      }
      ++pos_;
    }
    if (pos_ == start) return Expected("digits");
    if (pos_ < text_.size() && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;  // Python 2
    out->magnitude = v;
    return "";
  }

  std::string ParseString(std::string* out) {
    const char quote = text_[pos_++];
    while (pos_ < text_.size() && text_[pos_] != quote) {
      char c = text_[pos_++];
      if (c == '\\') {
        if (pos_ >= text_.size()) break;
        c = text_[pos_++];
      }
      out->push_back(c);
    }
    if (pos_ >= text_.size()) return "unterminated string";
    ++pos_;  // closing quote
    return "";
  }

  std::string ParseSequence(PyValue* out, int depth, char close, PyValue::Kind kind) {
    out->kind = kind;
    ++pos_;  // opening bracket
    while (!Consume(close)) {
      out->items.emplace_back();
      std::string err = ParseValue(&out->items.back(), depth + 1);
      if (!err.empty()) return err;
      if (Consume(close)) break;
      if (!Consume(',')) return Expected("',' or '" + std::string(1, close) + "'");
    }
    return "";
  }

  std::string ParseDict(PyValue* out, int depth) {
    out->kind = PyValue::Kind::kDict;
    ++pos_;  // '{'
    while (!Consume('}')) {
      SkipSpace();
      if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
        return Expected("a string key");
      }
      std::string key;
      std::string err = ParseString(&key);
      if (!err.empty()) return err;
      if (!Consume(':')) return Expected("':'");
      PyValue v;
      err = ParseValue(&v, depth + 1);
      if (!err.empty()) return err;
      out->dict.emplace_back(std::move(key), std::move(v));
      if (Consume('}')) break;
      if (!Consume(',')) return Expected("',' or '}'");
    }
    return "";
  }

  std::string_view text_;
  size_t pos_ = 0;
};

const PyValue* DictGet(const PyValue& dict, std::string_view key) {
  for (const auto& [k, v] : dict.dict) {
    if (k == key) return &v;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// .npy

Status NpyCorrupt(const std::string& path, std::string_view what) {
  return Status::Corruption(path + ": not a valid .npy file: " + std::string(what));
}

Result<ElementType> ParseNpyDescr(const std::string& path, const std::string& descr) {
  if (descr.size() < 2)
    return Status::NotSupported(path + ": unsupported .npy dtype '" + descr + "'");
  const char order = descr[0];
  const std::string_view code = std::string_view(descr).substr(1);
  for (const TypeNames& n : kTypes) {
    if (n.npy.empty() || n.npy != code) continue;
    const bool one_byte = ElementSize(n.type) == 1;
    if (order == '<' || order == '|' || order == '=' || (one_byte && order == '>')) return n.type;
    if (order == '>') {
      return Status::NotSupported(path + ": big-endian .npy data ('" + descr +
                                  "') is not supported; save it little-endian");
    }
  }
  return Status::NotSupported(path + ": unsupported .npy dtype '" + descr +
                              "' (supported: <f4 <f8 <f2 |i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8)");
}

Result<std::vector<uint64_t>> ParseNpyShape(const std::string& path, const PyValue* shape) {
  if (shape == nullptr) return NpyCorrupt(path, "header has no 'shape'");
  if (shape->kind != PyValue::Kind::kTuple && shape->kind != PyValue::Kind::kList) {
    return NpyCorrupt(path, "'shape' is not a tuple");
  }
  std::vector<uint64_t> dims;
  for (const PyValue& d : shape->items) {
    if (d.kind != PyValue::Kind::kInt || (d.negative && d.magnitude != 0)) {
      return NpyCorrupt(path, "'shape' holds something other than a non-negative integer");
    }
    dims.push_back(d.magnitude);
  }
  return dims;
}

// Fills type and shape from the header dict text.
Status ParseNpyHeader(const std::string& path, std::string_view text, ArrayInfo* info) {
  PyValue dict;
  std::string err = PyLiteralParser(text).ParseAll(&dict);
  if (!err.empty()) return NpyCorrupt(path, "bad header: " + err);
  if (dict.kind != PyValue::Kind::kDict) return NpyCorrupt(path, "header is not a dict");
  const PyValue* descr = DictGet(dict, "descr");
  if (descr == nullptr) return NpyCorrupt(path, "header has no 'descr'");
  if (descr->kind != PyValue::Kind::kStr) {
    return Status::NotSupported(path + ": structured .npy dtypes are not supported");
  }
  ENGRAM_ASSIGN_OR_RETURN(info->type, ParseNpyDescr(path, descr->str));
  const PyValue* fortran = DictGet(dict, "fortran_order");
  if (fortran == nullptr || fortran->kind != PyValue::Kind::kBool) {
    return NpyCorrupt(path, "header has no boolean 'fortran_order'");
  }
  ENGRAM_ASSIGN_OR_RETURN(info->shape, ParseNpyShape(path, DictGet(dict, "shape")));
  // A 0-d or 1-d array is the same in either order; others must be C order.
  size_t big_dims = 0;
  for (uint64_t d : info->shape) big_dims += d > 1;
  if (fortran->b && big_dims > 1) {
    return Status::NotSupported(path +
                                ": Fortran-order .npy arrays are not supported; save "
                                "with np.ascontiguousarray");
  }
  return Status::OK();
}

// Checks that [data_offset, data_offset + data_bytes) lies inside a file of `file_size` bytes.
Status CheckDataFits(const ArrayInfo& info, uint64_t file_size) {
  uint64_t end;
  if (__builtin_add_overflow(info.data_offset, info.data_bytes, &end) || end > file_size) {
    return Status::Corruption(
        info.path + ": truncated: " + (info.tensor.empty() ? "" : "tensor '" + info.tensor + "' ") +
        "needs " + std::to_string(info.data_bytes) + " data bytes at offset " +
        std::to_string(info.data_offset) + " but the file has " + std::to_string(file_size) +
        " bytes");
  }
  return Status::OK();
}

Status SetDataBytes(ArrayInfo* info) {
  std::optional<uint64_t> bytes = ShapeBytes(info->shape, ElementSize(info->type));
  if (!bytes) {
    return Status::Corruption(info->path + ": shape " + ShapeString(info->shape) +
                              " overflows 64-bit byte counts");
  }
  info->data_bytes = *bytes;
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// .safetensors

using json = nlohmann::json;

Status StCorrupt(const std::string& path, std::string_view what) {
  return Status::Corruption(path + ": not a valid .safetensors file: " + std::string(what));
}

Result<ElementType> ParseStDtype(const std::string& path, const std::string& tensor,
                                 const json& dtype) {
  if (!dtype.is_string()) return StCorrupt(path, "tensor '" + tensor + "' has no string dtype");
  const std::string& name = dtype.get_ref<const std::string&>();
  for (const TypeNames& n : kTypes) {
    if (n.safetensors == name) return n.type;
  }
  return Status::NotSupported(path + ": tensor '" + tensor + "' has unsupported dtype " + name);
}

Result<std::vector<uint64_t>> ParseStShape(const std::string& path, const std::string& tensor,
                                           const json& shape) {
  if (!shape.is_array()) return StCorrupt(path, "tensor '" + tensor + "' has no shape list");
  std::vector<uint64_t> dims;
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) {
      return StCorrupt(path, "tensor '" + tensor + "' shape holds a non-integer or negative value");
    }
    dims.push_back(d.get<uint64_t>());
  }
  return dims;
}

// Fills `info` (path and tensor set) from one header entry; `buffer_start`/`buffer_bytes`
// describe the data buffer after the header.
Status ParseStEntry(const json& entry, uint64_t buffer_start, uint64_t buffer_bytes,
                    ArrayInfo* info) {
  const std::string& path = info->path;
  const std::string& name = info->tensor;
  if (!entry.is_object()) return StCorrupt(path, "entry '" + name + "' is not an object");
  auto dt = entry.find("dtype");
  auto sh = entry.find("shape");
  auto off = entry.find("data_offsets");
  if (dt == entry.end() || sh == entry.end() || off == entry.end()) {
    return StCorrupt(path, "tensor '" + name + "' lacks dtype, shape or data_offsets");
  }
  ENGRAM_ASSIGN_OR_RETURN(info->type, ParseStDtype(path, name, *dt));
  ENGRAM_ASSIGN_OR_RETURN(info->shape, ParseStShape(path, name, *sh));
  ENGRAM_RETURN_IF_ERROR(SetDataBytes(info));
  if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned()) {
    return StCorrupt(path, "tensor '" + name + "' data_offsets is not [BEGIN, END]");
  }
  const uint64_t begin = (*off)[0].get<uint64_t>();
  const uint64_t end = (*off)[1].get<uint64_t>();
  if (begin > end || end - begin != info->data_bytes) {
    return StCorrupt(path, "tensor '" + name + "' data_offsets [" + std::to_string(begin) + ", " +
                               std::to_string(end) + "] do not hold " +
                               std::to_string(info->data_bytes) + " bytes of shape " +
                               ShapeString(info->shape));
  }
  info->data_offset = buffer_start + begin;
  if (end > buffer_bytes) {
    return Status::Corruption(path + ": truncated: tensor '" + name + "' ends at data byte " +
                              std::to_string(end) + " but the data buffer has " +
                              std::to_string(buffer_bytes) + " bytes");
  }
  return Status::OK();
}

std::string TensorNames(const json& header) {
  std::string names;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    if (!names.empty()) names += ", ";
    names += it.key();
  }
  return names.empty() ? "none" : names;
}

Result<ArrayInfo> ReadSafetensorsInfoImpl(Env* env, const std::string& path,
                                          const std::string& tensor) {
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->OpenRandomAccess(path, false));
  ENGRAM_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size < 8) return StCorrupt(path, "file of " + std::to_string(size) + " bytes has no header");
  uint8_t len_bytes[8];
  ENGRAM_RETURN_IF_ERROR(file->Read(0, 8, len_bytes));
  const uint64_t header_len = ReadLE(len_bytes, 8);
  if (header_len > size - 8) {
    return Status::Corruption(path + ": truncated: header length " + std::to_string(header_len) +
                              " is larger than the " + std::to_string(size - 8) +
                              " bytes after the length field");
  }
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return StCorrupt(path, "header length " + std::to_string(header_len) + " exceeds 100 MB");
  }
  std::string text(header_len, '\0');
  ENGRAM_RETURN_IF_ERROR(file->Read(8, header_len, text.data()));
  const json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return StCorrupt(path, "header is not a JSON object");
  }
  ArrayInfo info;
  info.path = path;
  info.tensor = tensor;
  if (tensor.empty()) {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") continue;
      if (!info.tensor.empty()) {
        return Status::InvalidArgument(path + " holds several tensors; name one as " + path +
                                       ":TENSOR (tensors: " + TensorNames(header) + ")");
      }
      info.tensor = it.key();
    }
    if (info.tensor.empty()) return Status::InvalidArgument(path + " holds no tensors");
  }
  auto entry = header.find(info.tensor);
  if (info.tensor == "__metadata__" || entry == header.end()) {
    return Status::InvalidArgument(path + ": no tensor named '" + info.tensor +
                                   "' (tensors: " + TensorNames(header) + ")");
  }
  ENGRAM_RETURN_IF_ERROR(ParseStEntry(*entry, 8 + header_len, size - 8 - header_len, &info));
  return info;
}

Status CheckStName(const std::string& name, std::vector<std::string>* seen) {
  if (name.empty() || name == "__metadata__") {
    return Status::InvalidArgument("safetensors tensor name '" + name + "' is not allowed");
  }
  if (std::find(seen->begin(), seen->end(), name) != seen->end()) {
    return Status::InvalidArgument("safetensors tensor name '" + name + "' appears twice");
  }
  seen->push_back(name);
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Conversions

// Reads the array's data in chunks, calling fn(first_element, bytes, count) for each.
template <typename Fn>
Status ForEachChunk(Env* env, const ArrayInfo& info, Fn&& fn) {
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->OpenRandomAccess(info.path, false));
  ENGRAM_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  ENGRAM_RETURN_IF_ERROR(CheckDataFits(info, size));
  const size_t elem = ElementSize(info.type);
  const uint64_t total = info.data_bytes / elem;
  const uint64_t per_chunk = kConvertChunkBytes / elem;
  std::vector<uint8_t> buf(static_cast<size_t>(std::min(total, per_chunk) * elem));
  for (uint64_t first = 0; first < total; first += per_chunk) {
    const uint64_t n = std::min(per_chunk, total - first);
    ENGRAM_RETURN_IF_ERROR(file->Read(info.data_offset + first * elem, n * elem, buf.data()));
    ENGRAM_RETURN_IF_ERROR(fn(first, buf.data(), n));
  }
  return Status::OK();
}

// One id, or an error naming its position when it is negative.
Result<uint64_t> IdAt(const ArrayInfo& info, const uint8_t* p, uint64_t pos) {
  const size_t elem = ElementSize(info.type);
  const uint64_t raw = ReadLE(p, elem);
  bool negative = false;
  int64_t value = 0;
  switch (info.type) {
    case ElementType::kI8:
      value = static_cast<int8_t>(raw);
      negative = value < 0;
      break;
    case ElementType::kI16:
      value = static_cast<int16_t>(raw);
      negative = value < 0;
      break;
    case ElementType::kI32:
      value = static_cast<int32_t>(raw);
      negative = value < 0;
      break;
    case ElementType::kI64:
      value = static_cast<int64_t>(raw);
      negative = value < 0;
      break;
    default:
      break;
  }
  if (negative) {
    return Status::InvalidArgument(info.path + ": negative id " + std::to_string(value) +
                                   " at position " + std::to_string(pos));
  }
  return raw;
}

std::string NpyHeader(ElementType type, const std::vector<uint64_t>& shape) {
  const char order = ElementSize(type) == 1 ? '|' : '<';
  std::string dict = "{'descr': '" + std::string(1, order) + std::string(NamesOf(type).npy) +
                     "', 'fortran_order': False, 'shape': " + ShapeString(shape) + ", }";
  // Version 1.0 prefix is 10 bytes; 2.0 (for huge headers) 12. Pad so data starts 64-aligned.
  const bool v2 = dict.size() + 1 + 10 > 65535;
  const size_t prefix = v2 ? 12 : 10;
  const size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict.push_back('\n');
  std::string out(kNpyMagic, kNpyMagicLen);
  out.push_back(static_cast<char>(v2 ? 2 : 1));
  out.push_back(0);
  for (size_t i = 0; i < prefix - 8; ++i) out.push_back(static_cast<char>(dict.size() >> (8 * i)));
  return out + dict;
}

}  // namespace

float ElementToFloat(ElementType t, const uint8_t* p) {
  switch (t) {
    case ElementType::kF32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case ElementType::kF64: {
      double v;
      std::memcpy(&v, p, 8);
      return static_cast<float>(v);
    }
    case ElementType::kF16:
      return HalfToFloat(static_cast<uint16_t>(ReadLE(p, 2)));
    case ElementType::kBF16:
      return BFloat16ToFloat(static_cast<uint16_t>(ReadLE(p, 2)));
    case ElementType::kF8E4M3:
      return Fp8E4M3ToFloat(*p);
    case ElementType::kI8:
      return static_cast<float>(static_cast<int8_t>(*p));
    case ElementType::kU8:
      return static_cast<float>(*p);
    case ElementType::kI16:
      return static_cast<float>(static_cast<int16_t>(ReadLE(p, 2)));
    case ElementType::kU16:
      return static_cast<float>(ReadLE(p, 2));
    case ElementType::kI32:
      return static_cast<float>(static_cast<int32_t>(ReadLE(p, 4)));
    case ElementType::kU32:
      return static_cast<float>(ReadLE(p, 4));
    case ElementType::kI64:
      return static_cast<float>(static_cast<int64_t>(ReadLE(p, 8)));
    case ElementType::kU64:
      return static_cast<float>(ReadLE(p, 8));
  }
  return 0.0f;
}

// ---------------------------------------------------------------------------------------------

size_t ElementSize(ElementType t) {
  switch (t) {
    case ElementType::kF64:
    case ElementType::kI64:
    case ElementType::kU64:
      return 8;
    case ElementType::kF32:
    case ElementType::kI32:
    case ElementType::kU32:
      return 4;
    case ElementType::kF16:
    case ElementType::kBF16:
    case ElementType::kI16:
    case ElementType::kU16:
      return 2;
    case ElementType::kI8:
    case ElementType::kU8:
    case ElementType::kF8E4M3:
      return 1;
  }
  return 1;
}

std::string_view ElementTypeName(ElementType t) { return NamesOf(t).name; }

Result<ArrayInfo> ReadNpyInfo(Env* env, const std::string& path) {
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->OpenRandomAccess(path, false));
  ENGRAM_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size < 10)
    return NpyCorrupt(path, "file of " + std::to_string(size) + " bytes has no header");
  uint8_t pre[12] = {};
  ENGRAM_RETURN_IF_ERROR(file->Read(0, std::min<uint64_t>(size, 12), pre));
  if (std::memcmp(pre, kNpyMagic, kNpyMagicLen) != 0) return NpyCorrupt(path, "bad magic");
  const uint8_t major = pre[6];
  if (major < 1 || major > 3) {
    return Status::NotSupported(path + ": .npy format version " + std::to_string(major) + "." +
                                std::to_string(pre[7]) + " is not supported");
  }
  const size_t len_bytes = major == 1 ? 2 : 4;
  const uint64_t prefix = 8 + len_bytes;
  if (size < prefix) return NpyCorrupt(path, "file ends inside the header length");
  const uint64_t header_len = ReadLE(pre + 8, len_bytes);
  if (header_len > size - prefix) {
    return Status::Corruption(path + ": truncated: header length " + std::to_string(header_len) +
                              " is larger than the " + std::to_string(size - prefix) +
                              " bytes after the prefix");
  }
  if (header_len > kMaxNpyHeaderBytes) {
    return NpyCorrupt(path, "header length " + std::to_string(header_len) + " is implausible");
  }
  std::string text(header_len, '\0');
  ENGRAM_RETURN_IF_ERROR(file->Read(prefix, header_len, text.data()));
  ArrayInfo info;
  info.path = path;
  ENGRAM_RETURN_IF_ERROR(ParseNpyHeader(path, text, &info));
  info.data_offset = prefix + header_len;
  ENGRAM_RETURN_IF_ERROR(SetDataBytes(&info));
  ENGRAM_RETURN_IF_ERROR(CheckDataFits(info, size));
  return info;
}

Result<ArrayInfo> ReadSafetensorsInfo(Env* env, const std::string& path,
                                      const std::string& tensor) {
  try {
    return ReadSafetensorsInfoImpl(env, path, tensor);
  } catch (const std::exception& e) {  // nlohmann type errors; none expected after the checks
    return StCorrupt(path, e.what());
  }
}

Result<ArrayInfo> ReadArrayInfo(Env* env, const std::string& path_and_tensor) {
  constexpr std::string_view kSt = ".safetensors";
  const std::string& s = path_and_tensor;
  if (s.size() >= kSt.size() && s.compare(s.size() - kSt.size(), kSt.size(), kSt) == 0) {
    return ReadSafetensorsInfo(env, s, "");
  }
  const size_t colon = s.find(std::string(kSt) + ":");
  if (colon != std::string::npos) {
    const size_t end = colon + kSt.size();
    return ReadSafetensorsInfo(env, s.substr(0, end), s.substr(end + 1));
  }
  constexpr std::string_view kNpy = ".npy";
  if (s.size() >= kNpy.size() && s.compare(s.size() - kNpy.size(), kNpy.size(), kNpy) == 0) {
    return ReadNpyInfo(env, s);
  }
  return Status::InvalidArgument(s +
                                 ": unknown array file type (expected FILE.npy, "
                                 "FILE.safetensors or FILE.safetensors:TENSOR)");
}

Result<std::vector<uint64_t>> ReadIdsNpy(Env* env, const std::string& path) {
  ENGRAM_ASSIGN_OR_RETURN(ArrayInfo info, ReadNpyInfo(env, path));
  if (!IsIntegerType(info.type)) {
    return Status::InvalidArgument(path + ": ids must be an integer array, got " +
                                   std::string(ElementTypeName(info.type)));
  }
  const size_t elem = ElementSize(info.type);
  std::vector<uint64_t> ids;
  ids.reserve(info.data_bytes / elem);
  ENGRAM_RETURN_IF_ERROR(ForEachChunk(env, info, [&](uint64_t first, const uint8_t* p, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      ENGRAM_ASSIGN_OR_RETURN(uint64_t id, IdAt(info, p + i * elem, first + i));
      ids.push_back(id);
    }
    return Status::OK();
  }));
  return ids;
}

Result<std::vector<float>> ReadF32Array(Env* env, const ArrayInfo& info) {
  const size_t elem = ElementSize(info.type);
  std::vector<float> out(info.data_bytes / elem);
  ENGRAM_RETURN_IF_ERROR(ForEachChunk(env, info, [&](uint64_t first, const uint8_t* p, uint64_t n) {
    if (info.type == ElementType::kF32) {
      std::memcpy(out.data() + first, p, n * 4);
    } else {
      for (uint64_t i = 0; i < n; ++i) out[first + i] = ElementToFloat(info.type, p + i * elem);
    }
    return Status::OK();
  }));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writers

Result<std::unique_ptr<NpyWriter>> NpyWriter::Create(Env* env, const std::string& path,
                                                     ElementType type,
                                                     std::vector<uint64_t> shape) {
  if (NamesOf(type).npy.empty()) {
    return Status::NotSupported(path + ": " + std::string(ElementTypeName(type)) +
                                " has no .npy dtype; write it as raw u8 bytes");
  }
  std::optional<uint64_t> bytes = ShapeBytes(shape, ElementSize(type));
  if (!bytes)
    return Status::InvalidArgument(path + ": shape " + ShapeString(shape) + " is too large");
  std::unique_ptr<NpyWriter> w(new NpyWriter());
  ENGRAM_ASSIGN_OR_RETURN(w->file_, env->NewWritableFile(path));
  w->path_ = path;
  w->expected_bytes_ = *bytes;
  const std::string header = NpyHeader(type, shape);
  ENGRAM_RETURN_IF_ERROR(w->file_->Append(header.data(), header.size()).WithContext(path));
  return w;
}

Status NpyWriter::Append(const void* data, size_t bytes) {
  if (file_ == nullptr) return Status::InvalidArgument(path_ + ": NpyWriter already finished");
  if (bytes > expected_bytes_ - written_bytes_) {
    return Status::InvalidArgument(path_ + ": appending " + std::to_string(bytes) +
                                   " bytes passes the " + std::to_string(expected_bytes_) +
                                   " the shape holds");
  }
  ENGRAM_RETURN_IF_ERROR(file_->Append(data, bytes).WithContext(path_));
  written_bytes_ += bytes;
  return Status::OK();
}

Status NpyWriter::Finish() {
  if (file_ == nullptr) return Status::InvalidArgument(path_ + ": NpyWriter already finished");
  if (written_bytes_ != expected_bytes_) {
    return Status::InvalidArgument(path_ + ": only " + std::to_string(written_bytes_) + " of " +
                                   std::to_string(expected_bytes_) + " data bytes appended");
  }
  ENGRAM_RETURN_IF_ERROR(file_->Sync().WithContext(path_));
  Status s = file_->Close().WithContext(path_);
  file_.reset();
  return s;
}

Status WriteNpy(Env* env, const std::string& path, ElementType type,
                const std::vector<uint64_t>& shape, const void* data) {
  ENGRAM_ASSIGN_OR_RETURN(auto writer, NpyWriter::Create(env, path, type, shape));
  std::optional<uint64_t> bytes = ShapeBytes(shape, ElementSize(type));
  ENGRAM_RETURN_IF_ERROR(writer->Append(data, static_cast<size_t>(*bytes)));
  return writer->Finish();
}

Status WriteSafetensors(Env* env, const std::string& path, const std::vector<TensorView>& tensors) {
  json header = json::object();
  std::vector<std::string> seen;
  uint64_t offset = 0;
  for (const TensorView& t : tensors) {
    ENGRAM_RETURN_IF_ERROR(CheckStName(t.name, &seen).WithContext(path));
    std::optional<uint64_t> bytes = ShapeBytes(t.shape, ElementSize(t.type));
    if (!bytes) return Status::InvalidArgument(path + ": tensor '" + t.name + "' is too large");
    header[t.name] = {{"dtype", std::string(NamesOf(t.type).safetensors)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + *bytes}}};
    offset += *bytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const std::exception& e) {  // a tensor name that is not valid UTF-8
    return Status::InvalidArgument(path + ": cannot encode the safetensors header: " + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i));
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(path));
  ENGRAM_RETURN_IF_ERROR(file->Append(len, 8).WithContext(path));
  ENGRAM_RETURN_IF_ERROR(file->Append(text.data(), text.size()).WithContext(path));
  for (const TensorView& t : tensors) {
    const uint64_t bytes = *ShapeBytes(t.shape, ElementSize(t.type));
    ENGRAM_RETURN_IF_ERROR(file->Append(t.data, static_cast<size_t>(bytes)).WithContext(path));
  }
  ENGRAM_RETURN_IF_ERROR(file->Sync().WithContext(path));
  return file->Close().WithContext(path);
}

}  // namespace engram
