#include "tools/tablectl/cmd_common.h"

#include "tools/tablectl/output.h"

namespace engram::tablectl {

CommonOptions GetCommonOptions(const ParsedArgs& args) {
  CommonOptions c;
  c.json = args.Has("json");
  c.progress = ChooseProgressMode(args.Has("progress"), args.Has("no-progress"));
  return c;
}

Status CheckPositionalCount(const ParsedArgs& args, size_t min, size_t max,
                            const std::string& usage) {
  const size_t n = args.positional().size();
  if (n < min) return Status::InvalidArgument("missing arguments: expected " + usage);
  if (n > max) {
    return Status::InvalidArgument("unexpected argument '" + args.positional()[max] +
                                   "': expected " + usage);
  }
  return Status::OK();
}

Result<std::string> TablePath(const std::string& arg) {
  if (arg.rfind("tcp://", 0) == 0 || arg.rfind("unix://", 0) == 0) {
    return Status::NotSupported("served tables (" + arg +
                                ") are not supported by this build of tablectl yet");
  }
  if (arg.empty()) return Status::InvalidArgument("TABLE is an empty path");
  std::string path = arg;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

Result<std::string> RequiredValue(const ParsedArgs& args, const std::string& flag,
                                  const std::string& value_name) {
  std::optional<std::string> value = args.Value(flag);
  if (!value) return Status::InvalidArgument("missing --" + flag + " " + value_name);
  return *value;
}

int ReportArgumentError(const std::string& command, const Status& status) {
  if (status.IsInvalidArgument()) return ReportUsage(command, status.message());
  return ReportFailure(status);
}

Json TableSummaryJson(const std::string& command, const std::string& table,
                      const Manifest& manifest) {
  const TableLayout& l = manifest.layout;
  return {{"command", command},
          {"table", table},
          {"rows", l.rows},
          {"dim", l.dim},
          {"dtype", std::string(DTypeName(l.dtype))},
          {"row_bytes", l.row_bytes},
          {"data_bytes", l.data_bytes()},
          {"table_uuid", manifest.table_uuid}};
}

std::string TableSummaryText(const std::string& table, const Manifest& manifest) {
  const TableLayout& l = manifest.layout;
  return table + ": " + std::to_string(l.rows) + " rows x " + std::to_string(l.dim) + " " +
         std::string(DTypeName(l.dtype)) + " (" + std::to_string(l.row_bytes) + " bytes/row, " +
         FormatBytes(static_cast<double>(l.data_bytes())) + " data)";
}

Result<std::optional<DType>> OptionalDType(const ParsedArgs& args) {
  std::optional<std::string> name = args.Value("dtype");
  if (!name) return std::optional<DType>();
  ENGRAM_ASSIGN_OR_RETURN(DType dtype, ParseDType(*name));
  return std::optional<DType>(dtype);
}

}  // namespace engram::tablectl
