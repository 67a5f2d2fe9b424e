// Helpers shared by the command implementations (cmd_*.cc): common flags and TABLE arguments.
//
// Thread safety: pure functions over parsed arguments.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "storage/dtype.h"
#include "storage/status.h"
#include "storage/table_format.h"
#include "tools/tablectl/args.h"
#include "tools/tablectl/output.h"
#include "tools/tablectl/progress.h"

namespace engram::tablectl {

struct CommonOptions {
  bool json = false;
  ProgressMode progress = ProgressMode::kOff;
};
CommonOptions GetCommonOptions(const ParsedArgs& args);

// InvalidArgument unless min <= positional count <= max; `usage` names what is expected
// ("TABLE DST.npy").
Status CheckPositionalCount(const ParsedArgs& args, size_t min, size_t max,
                            const std::string& usage);

// A TABLE argument as a directory path: trailing slashes dropped ("t/" -> "t"). Served-table
// URIs (tcp://, unix://) are NotSupported in this build; an empty name is InvalidArgument.
Result<std::string> TablePath(const std::string& arg);

// The value of a required flag; InvalidArgument "missing --rows N" when absent.
Result<std::string> RequiredValue(const ParsedArgs& args, const std::string& flag,
                                  const std::string& value_name);

// Exit status for a Status from argument checking: InvalidArgument is a usage error (2, with
// a pointer to the command's help), anything else a failure (1).
int ReportArgumentError(const std::string& command, const Status& status);

// After create/import: {"command", "table", "rows", "dim", "dtype", "row_bytes",
// "data_bytes", "table_uuid"}, or the text "TABLE: R rows x D DTYPE (B bytes/row, S data)".
Json TableSummaryJson(const std::string& command, const std::string& table,
                      const Manifest& manifest);
std::string TableSummaryText(const std::string& table, const Manifest& manifest);

// --dtype NAME, when given.
Result<std::optional<DType>> OptionalDType(const ParsedArgs& args);

}  // namespace engram::tablectl
