// Import and export between tables and array files (see table_import.h).
//
// Import streams the source in chunks of whole rows (at most kImportChunkRows rows and about
// kImportChunkBytes bytes), converts each chunk to table rows and appends it to a TableBuilder
// that replaces the destination atomically. Export reads consecutive id batches through
// Table::Lookup (NVMe tier only: a one-pass scan gains nothing from a DRAM cache) into an
// NpyWriter writing "<dst>.tmp", renamed over <dst> once complete.
//
// Raw rows: a u8/i8 source with an explicit target dtype is taken as rows already encoded in
// that dtype, one row per array row, so every export (including bf16's raw u1 form) imports
// back byte for byte. The row width must equal RowBytes(dtype, dim) for some dim.
#include "storage/table_import.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "storage/table.h"
#include "storage/table_builder.h"

namespace engram {
namespace {

constexpr uint64_t kImportChunkRows = 65536;
constexpr uint64_t kImportChunkBytes = uint64_t{64} << 20;
constexpr uint64_t kExportBatchRows = 4096;

bool IsFloatSource(ElementType t) {
  return t == ElementType::kF32 || t == ElementType::kF64 || t == ElementType::kF16 ||
         t == ElementType::kBF16 || t == ElementType::kF8E4M3;
}

std::string SourceName(const ArrayInfo& source) {
  return source.tensor.empty() ? source.path : source.path + ":" + source.tensor;
}

// How source rows become table rows.
struct ImportPlan {
  uint64_t rows = 0;
  uint32_t dim = 0;
  DType dtype = DType::kF32;
  bool raw = false;            // copy bytes as they are
  uint64_t src_row_bytes = 0;  // bytes of one source row
};

// The dim whose row is exactly `row_bytes` wide in `dtype`, if any.
std::optional<uint32_t> DimForRowBytes(DType dtype, uint64_t row_bytes) {
  uint64_t dim = 0;
  switch (dtype) {
    case DType::kF32:
      dim = row_bytes / 4;
      break;
    case DType::kF16:
    case DType::kBF16:
      dim = row_bytes / 2;
      break;
    case DType::kInt8:
      dim = row_bytes > 4 ? row_bytes - 4 : 0;
      break;
    case DType::kFp8E4M3Ue8m0:
      dim = row_bytes / (kFp8BlockValues + 1) * kFp8BlockValues;
      break;
  }
  if (dim == 0 || dim > UINT32_MAX) return std::nullopt;
  auto rb = RowBytes(dtype, static_cast<uint32_t>(dim));
  if (!rb.ok() || *rb != row_bytes) return std::nullopt;
  return static_cast<uint32_t>(dim);
}

Result<DType> DefaultDType(const ArrayInfo& source) {
  switch (source.type) {
    case ElementType::kF32:
      return DType::kF32;
    case ElementType::kF16:
      return DType::kF16;
    case ElementType::kBF16:
      return DType::kBF16;
    default:
      return Status::InvalidArgument(SourceName(source) + ": a " +
                                     std::string(ElementTypeName(source.type)) +
                                     " source needs an explicit target dtype");
  }
}

Result<ImportPlan> PlanImport(const ArrayInfo& source, std::optional<DType> dtype) {
  const std::string name = SourceName(source);
  if (source.shape.size() != 2) {
    std::string shape;
    for (uint64_t d : source.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    return Status::InvalidArgument(name + ": import needs a 2-D array [rows, cols], got shape (" +
                                   shape + (source.shape.size() == 1 ? ",)" : ")"));
  }
  ImportPlan plan;
  plan.rows = source.shape[0];
  const uint64_t cols = source.shape[1];
  uint64_t total_bytes = 0;
  if (cols > UINT32_MAX ||
      __builtin_mul_overflow(cols, ElementSize(source.type), &plan.src_row_bytes) ||
      __builtin_mul_overflow(plan.rows, plan.src_row_bytes, &total_bytes)) {
    return Status::InvalidArgument(name + ": shape (" + std::to_string(plan.rows) + ", " +
                                   std::to_string(cols) + ") is too large");
  }
  if (source.data_bytes != total_bytes) {
    return Status::InvalidArgument(name + ": data_bytes does not match the shape");
  }
  const bool byte_source = source.type == ElementType::kU8 || source.type == ElementType::kI8;
  if (byte_source && dtype.has_value()) {
    plan.raw = true;
    plan.dtype = *dtype;
    std::optional<uint32_t> dim = DimForRowBytes(*dtype, cols);
    if (!dim) {
      return Status::InvalidArgument(name + ": " + std::to_string(cols) +
                                     "-byte raw rows are not a whole " +
                                     std::string(DTypeName(*dtype)) +
                                     " row (int8: dim + 4 bytes; fp8_e4m3_ue8m0: dim + dim/32 " +
                                     "with dim a multiple of 32; f32: 4*dim; f16/bf16: 2*dim)");
    }
    plan.dim = *dim;
    return plan;
  }
  if (!IsFloatSource(source.type)) {
    return Status::InvalidArgument(
        name + ": cannot import a " + std::string(ElementTypeName(source.type)) +
        " array (float sources, or u8/i8 raw rows with an explicit dtype)");
  }
  if (dtype.has_value()) {
    plan.dtype = *dtype;
  } else {
    ENGRAM_ASSIGN_OR_RETURN(plan.dtype, DefaultDType(source));
  }
  plan.dim = static_cast<uint32_t>(cols);
  ENGRAM_RETURN_IF_ERROR(RowBytes(plan.dtype, plan.dim).status().WithContext(name));
  return plan;
}

// Converts `n` source rows at `src` to table rows at `dst`.
void ConvertRows(const ArrayInfo& source, const ImportPlan& plan, uint32_t row_bytes,
                 const uint8_t* src, uint64_t n, uint8_t* dst, std::vector<float>* scratch) {
  if (plan.raw) {
    std::memcpy(dst, src, n * row_bytes);
    return;
  }
  const bool same_bytes = (source.type == ElementType::kF32 && plan.dtype == DType::kF32) ||
                          (source.type == ElementType::kF16 && plan.dtype == DType::kF16) ||
                          (source.type == ElementType::kBF16 && plan.dtype == DType::kBF16);
  if (same_bytes) {  // exact: QuantizeRow of the widened floats would give the same bytes
    std::memcpy(dst, src, n * row_bytes);
    return;
  }
  const size_t elem = ElementSize(source.type);
  scratch->resize(plan.dim);
  for (uint64_t r = 0; r < n; ++r) {
    const uint8_t* row = src + r * plan.src_row_bytes;
    for (uint32_t i = 0; i < plan.dim; ++i)
      (*scratch)[i] = ElementToFloat(source.type, row + i * elem);
    QuantizeRow(plan.dtype, plan.dim, scratch->data(), dst + r * row_bytes);
  }
}

Status CheckSourceSize(const RandomAccessFile& file, const ArrayInfo& source) {
  ENGRAM_ASSIGN_OR_RETURN(uint64_t size, file.Size());
  if (source.data_offset > size || source.data_bytes > size - source.data_offset) {
    return Status::Corruption(source.path + ": truncated: needs " +
                              std::to_string(source.data_bytes) + " data bytes at offset " +
                              std::to_string(source.data_offset) + " but the file has " +
                              std::to_string(size) + " bytes");
  }
  return Status::OK();
}

// The .npy element type and columns export writes for a table.
struct ExportShape {
  ElementType type;
  uint64_t cols;
  bool dequantize;
};

ExportShape ExportShapeFor(const TableLayout& l, bool as_f32) {
  if (as_f32 || l.dtype == DType::kF32) return {ElementType::kF32, l.dim, l.dtype != DType::kF32};
  if (l.dtype == DType::kF16) return {ElementType::kF16, l.dim, false};
  return {ElementType::kU8, l.row_bytes, false};
}

Status ExportRows(Table* table, uint64_t begin, uint64_t end, const ExportShape& shape,
                  NpyWriter* writer, const ProgressFn& progress) {
  const TableLayout& l = table->layout();
  const uint64_t batch = std::min(kExportBatchRows, std::max<uint64_t>(end - begin, 1));
  std::vector<uint64_t> ids(batch);
  std::vector<uint8_t> rows(batch * l.row_bytes);
  std::vector<float> floats(shape.dequantize ? batch * l.dim : 0);
  for (uint64_t first = begin; first < end; first += batch) {
    const uint64_t n = std::min(batch, end - first);
    for (uint64_t i = 0; i < n; ++i) ids[i] = first + i;
    ENGRAM_RETURN_IF_ERROR(table->Lookup(ids.data(), n, rows.data(), l.row_bytes));
    if (shape.dequantize) {
      for (uint64_t i = 0; i < n; ++i) {
        DequantizeRow(l.dtype, l.dim, rows.data() + i * l.row_bytes, floats.data() + i * l.dim);
      }
      ENGRAM_RETURN_IF_ERROR(writer->Append(floats.data(), n * l.dim * sizeof(float)));
    } else {
      ENGRAM_RETURN_IF_ERROR(writer->Append(rows.data(), n * l.row_bytes));
    }
    if (progress) progress(first + n - begin, end - begin);
  }
  return Status::OK();
}

}  // namespace

Status ImportTable(Env* env, const std::string& table_path, const ArrayInfo& source,
                   std::optional<DType> dtype, const ProgressFn& progress) {
  ENGRAM_ASSIGN_OR_RETURN(ImportPlan plan, PlanImport(source, dtype));
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->OpenRandomAccess(source.path, false));
  ENGRAM_RETURN_IF_ERROR(CheckSourceSize(*file, source));
  CreationInfo creation;
  creation.source = "import " + SourceName(source);
  auto created =
      TableBuilder::Create(env, table_path, plan.rows, plan.dim, plan.dtype, creation, true);
  if (!created.ok()) {
    return created.status().WithContext("importing " + SourceName(source) + " into " + table_path);
  }
  std::unique_ptr<TableBuilder> builder = std::move(created).value();
  const uint32_t row_bytes = builder->layout().row_bytes;
  const uint64_t chunk_rows = std::clamp<uint64_t>(
      kImportChunkBytes / std::max(plan.src_row_bytes, uint64_t{row_bytes}), 1, kImportChunkRows);
  const uint64_t first_chunk = std::min(chunk_rows, plan.rows);
  std::vector<uint8_t> src(first_chunk * plan.src_row_bytes);
  std::vector<uint8_t> dst(plan.raw ? 0 : first_chunk * row_bytes);
  std::vector<float> scratch;
  for (uint64_t first = 0; first < plan.rows; first += chunk_rows) {
    const uint64_t n = std::min(chunk_rows, plan.rows - first);
    const uint64_t offset = source.data_offset + first * plan.src_row_bytes;
    ENGRAM_RETURN_IF_ERROR(file->Read(offset, n * plan.src_row_bytes, src.data()));
    const uint8_t* rows = src.data();
    if (!plan.raw) {
      ConvertRows(source, plan, row_bytes, src.data(), n, dst.data(), &scratch);
      rows = dst.data();
    }
    ENGRAM_RETURN_IF_ERROR(builder->AddRows(rows, n));
    if (progress) progress(first + n, plan.rows);
  }
  return builder->Finish();
}

Status ExportTable(Env* env, const std::string& table_path, const std::string& npy_path,
                   const ExportOptions& options, const ProgressFn& progress) {
  TableOptions topts;
  topts.env = env;
  topts.dram_mode = DramMode::kNone;
  ENGRAM_ASSIGN_OR_RETURN(auto table, Table::Open(table_path, topts));
  const uint64_t end = options.end.value_or(table->rows());
  if (options.begin > end || end > table->rows()) {
    return Status::InvalidArgument("table " + table_path + ": rows " +
                                   std::to_string(options.begin) + ":" + std::to_string(end) +
                                   " are outside 0:" + std::to_string(table->rows()));
  }
  const ExportShape shape = ExportShapeFor(table->layout(), options.as_f32);
  const std::string tmp = npy_path + ".tmp";
  Status s;
  {
    auto writer = NpyWriter::Create(env, tmp, shape.type, {end - options.begin, shape.cols});
    s = writer.status();
    if (s.ok()) s = ExportRows(table.get(), options.begin, end, shape, writer->get(), progress);
    if (s.ok()) s = (*writer)->Finish();
  }
  if (s.ok()) s = env->RenameFile(tmp, npy_path);
  if (!s.ok()) env->RemoveFile(tmp).PermitUnchecked();  // best effort: the error matters more
  return s;
}

}  // namespace engram
