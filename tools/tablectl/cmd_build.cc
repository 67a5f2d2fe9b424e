// tablectl create / import / export: the commands that write tables or array files.
#include <cstring>
#include <vector>

#include "storage/array_file.h"
#include "storage/table_builder.h"
#include "storage/table_format.h"
#include "storage/table_import.h"
#include "tools/tablectl/cmd_common.h"
#include "tools/tablectl/commands.h"
#include "tools/tablectl/output.h"

namespace engram::tablectl {
namespace {

struct CreateOptions {
  std::string table;
  uint64_t rows = 0;
  uint32_t dim = 0;
  DType dtype = DType::kF32;
  bool random = false;
  uint64_t seed = 0;
};

Result<CreateOptions> ParseCreateOptions(const ParsedArgs& args) {
  ENGRAM_RETURN_IF_ERROR(CheckPositionalCount(args, 1, 1, "TABLE"));
  CreateOptions o;
  ENGRAM_ASSIGN_OR_RETURN(o.table, TablePath(args.positional()[0]));
  ENGRAM_ASSIGN_OR_RETURN(std::string rows, RequiredValue(args, "rows", "N"));
  ENGRAM_ASSIGN_OR_RETURN(o.rows, ParseUint64(rows, "--rows"));
  ENGRAM_ASSIGN_OR_RETURN(std::string dim, RequiredValue(args, "dim", "D"));
  ENGRAM_ASSIGN_OR_RETURN(o.dim, ParseUint32(dim, "--dim"));
  ENGRAM_ASSIGN_OR_RETURN(std::string dtype, RequiredValue(args, "dtype", "T"));
  ENGRAM_ASSIGN_OR_RETURN(o.dtype, ParseDType(dtype));
  const std::string fill = args.Value("fill").value_or("zeros");
  if (fill != "zeros" && fill != "random") {
    return Status::InvalidArgument("--fill: '" + fill + "' is not zeros or random");
  }
  o.random = fill == "random";
  if (std::optional<std::string> seed = args.Value("seed")) {
    if (!o.random) return Status::InvalidArgument("--seed applies only to --fill random");
    ENGRAM_ASSIGN_OR_RETURN(o.seed, ParseUint64(*seed, "--seed"));
  }
  // Geometry errors (0 rows, fp8 dim not a multiple of 32) are command-line mistakes too.
  ENGRAM_RETURN_IF_ERROR(TableLayout::Make(o.rows, o.dim, o.dtype).status());
  return o;
}

Status ExecuteCreate(const CreateOptions& o, const CommonOptions& common) {
  ENGRAM_ASSIGN_OR_RETURN(TableLayout layout, TableLayout::Make(o.rows, o.dim, o.dtype));
  CreationInfo creation;
  creation.source = "create";
  creation.fill = o.random ? "random" : "zeros";
  creation.seed = o.seed;
  creation.tool_version = std::string("tablectl ") + ToolVersion();
  // "zeros" is what quantising 0.0f gives in the dtype (all-zero bytes for every dtype but
  // possibly a scale); computed once.
  std::vector<uint8_t> zero_row(layout.row_bytes);
  const std::vector<float> zeros(o.dim, 0.0f);
  QuantizeRow(o.dtype, o.dim, zeros.data(), zero_row.data());
  auto make_row = [&](uint64_t id, uint8_t* out) {
    if (o.random) {
      RandomRow(o.dtype, o.dim, o.seed, id, out);
    } else {
      std::memcpy(out, zero_row.data(), zero_row.size());
    }
  };
  Progress progress("create", common.progress,
                    static_cast<double>(layout.data_bytes()) / static_cast<double>(o.rows));
  Env* env = Env::Default();
  Status s = BuildTable(env, o.table, o.rows, o.dim, o.dtype, creation, /*replace=*/false, make_row,
                        progress.Callback());
  progress.Finish();
  ENGRAM_RETURN_IF_ERROR(s);
  ENGRAM_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(env, o.table));
  if (common.json) {
    Json doc = TableSummaryJson("create", o.table, manifest);
    doc["fill"] = creation.fill;
    doc["seed"] = o.seed;
    PrintJson(doc);
  } else {
    std::string fill = creation.fill;
    if (o.random) fill += " seed " + std::to_string(o.seed);
    std::printf("created %s, fill %s\n", TableSummaryText(o.table, manifest).c_str(), fill.c_str());
  }
  return Status::OK();
}

struct ImportOptions {
  std::string table;
  std::string source;  // "FILE.npy" or "FILE.safetensors[:TENSOR]"
  std::optional<DType> dtype;
};

Result<ImportOptions> ParseImportOptions(const ParsedArgs& args) {
  ENGRAM_RETURN_IF_ERROR(
      CheckPositionalCount(args, 2, 2, "TABLE SRC.npy|SRC.safetensors[:TENSOR]"));
  ImportOptions o;
  ENGRAM_ASSIGN_OR_RETURN(o.table, TablePath(args.positional()[0]));
  o.source = args.positional()[1];
  ENGRAM_ASSIGN_OR_RETURN(o.dtype, OptionalDType(args));
  return o;
}

Status ExecuteImport(const ImportOptions& o, const CommonOptions& common) {
  Env* env = Env::Default();
  ENGRAM_ASSIGN_OR_RETURN(ArrayInfo info, ReadArrayInfo(env, o.source));
  {
    // ImportTable reports progress in source rows.
    const uint64_t rows = info.shape.empty() ? 1 : info.shape[0];
    Progress progress("import", common.progress,
                      rows ? static_cast<double>(info.data_bytes) / static_cast<double>(rows) : 0);
    Status s = ImportTable(env, o.table, info, o.dtype, progress.Callback());
    progress.Finish();
    ENGRAM_RETURN_IF_ERROR(s);
  }
  ENGRAM_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(env, o.table));
  if (common.json) {
    Json doc = TableSummaryJson("import", o.table, manifest);
    doc["source"] = info.path;
    doc["tensor"] = info.tensor;
    doc["source_dtype"] = std::string(ElementTypeName(info.type));
    doc["source_shape"] = info.shape;
    PrintJson(doc);
  } else {
    std::printf("imported %s from %s\n", TableSummaryText(o.table, manifest).c_str(),
                o.source.c_str());
  }
  return Status::OK();
}

struct ExportCommandOptions {
  std::string table;
  std::string out;
  RowRange range;
  bool as_f32 = false;
};

Result<ExportCommandOptions> ParseExportOptions(const ParsedArgs& args) {
  ENGRAM_RETURN_IF_ERROR(CheckPositionalCount(args, 2, 2, "TABLE DST.npy"));
  ExportCommandOptions o;
  ENGRAM_ASSIGN_OR_RETURN(o.table, TablePath(args.positional()[0]));
  o.out = args.positional()[1];
  if (std::optional<std::string> rows = args.Value("rows")) {
    ENGRAM_ASSIGN_OR_RETURN(o.range, ParseRowRange(*rows));
  }
  o.as_f32 = args.Has("f32");
  return o;
}

Status ExecuteExport(const ExportCommandOptions& o, const CommonOptions& common) {
  Env* env = Env::Default();
  ENGRAM_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(env, o.table));
  const TableLayout& l = manifest.layout;
  const uint64_t end = o.range.end.value_or(l.rows);
  if (o.range.begin > l.rows || end > l.rows) {
    return Status::InvalidArgument("--rows " + std::to_string(o.range.begin) + ":" +
                                   std::to_string(end) + " is outside table " + o.table + " of " +
                                   std::to_string(l.rows) + " rows");
  }
  ExportOptions options;
  options.begin = o.range.begin;
  options.end = end;
  options.as_f32 = o.as_f32;
  {
    // ExportTable reports progress in rows.
    Progress progress("export", common.progress,
                      o.as_f32 ? 4.0 * l.dim : static_cast<double>(l.row_bytes));
    Status s = ExportTable(env, o.table, o.out, options, progress.Callback());
    progress.Finish();
    ENGRAM_RETURN_IF_ERROR(s);
  }
  ENGRAM_ASSIGN_OR_RETURN(uint64_t file_bytes, env->FileSize(o.out));
  if (common.json) {
    PrintJson({{"command", "export"},
               {"table", o.table},
               {"out", o.out},
               {"begin", o.range.begin},
               {"end", end},
               {"rows", end - o.range.begin},
               {"dtype", std::string(DTypeName(l.dtype))},
               {"as_f32", o.as_f32},
               {"file_bytes", file_bytes}});
  } else {
    std::printf("exported rows [%llu, %llu) of %s to %s (%s)\n",
                static_cast<unsigned long long>(o.range.begin),
                static_cast<unsigned long long>(end), o.table.c_str(), o.out.c_str(),
                FormatBytes(static_cast<double>(file_bytes)).c_str());
  }
  return Status::OK();
}

}  // namespace

int RunCreate(const ParsedArgs& args) {
  Result<CreateOptions> o = ParseCreateOptions(args);
  if (!o.ok()) return ReportArgumentError("create", o.status());
  Status s = ExecuteCreate(*o, GetCommonOptions(args));
  return s.ok() ? kExitOk : ReportFailure(s);
}

int RunImport(const ParsedArgs& args) {
  Result<ImportOptions> o = ParseImportOptions(args);
  if (!o.ok()) return ReportArgumentError("import", o.status());
  Status s = ExecuteImport(*o, GetCommonOptions(args));
  return s.ok() ? kExitOk : ReportFailure(s);
}

int RunExport(const ParsedArgs& args) {
  Result<ExportCommandOptions> o = ParseExportOptions(args);
  if (!o.ok()) return ReportArgumentError("export", o.status());
  Status s = ExecuteExport(*o, GetCommonOptions(args));
  return s.ok() ? kExitOk : ReportFailure(s);
}

}  // namespace engram::tablectl
