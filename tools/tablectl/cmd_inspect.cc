// tablectl info / verify / get: the commands that read a table without changing it.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "storage/table.h"
#include "storage/table_format.h"
#include "tools/tablectl/cmd_common.h"
#include "tools/tablectl/commands.h"
#include "tools/tablectl/output.h"

namespace engram::tablectl {
namespace {

// Opens `path` for reading rows straight from the NVMe tier: no DRAM cache or resident copy
// is built, so a one-shot command costs only the reads it makes.
Result<std::unique_ptr<Table>> OpenForReading(const std::string& path) {
  TableOptions options;
  options.dram_mode = DramMode::kNone;
  return Table::Open(path, options);
}

// ---- info ----

// The DRAM tier a server would put in front of this table with default TableOptions.
std::string DefaultDramTier() {
  const TableOptions defaults;
  return "cache " + FormatBytes(static_cast<double>(defaults.dram_cache_bytes)) + " (default)";
}

Json InfoJson(const std::string& path, const Manifest& m, const std::string& io_backend) {
  Json j = ManifestToJson(m);
  j["table"] = path;
  j["pages"] = m.layout.num_pages();
  j["creation"]["created_utc"] = FormatUtc(m.creation.created_unix_seconds);
  j["tiers"] = {{"dram", DefaultDramTier()}, {"nvme", io_backend}};
  j["io_backend"] = io_backend;
  return j;
}

void PrintInfoText(const Json& j) {
  auto line = [](const char* key, const std::string& value) {
    std::printf("%-16s %s\n", key, value.c_str());
  };
  auto num = [&](const char* key) { line((std::string(key) + ":").c_str(), j.at(key).dump()); };
  line("table:", j["table"].get<std::string>());
  num("format_version");
  num("rows");
  num("dim");
  line("dtype:", j["dtype"].get<std::string>());
  num("row_bytes");
  num("rows_per_page");
  num("pages_per_row");
  num("pages");
  line("data_bytes:",
       j["data_bytes"].dump() + " (" + FormatBytes(j["data_bytes"].get<double>()) + ")");
  const Json& c = j["checksum"];
  line("checksum:", c["algorithm"].get<std::string>() + " per " + c["block_bytes"].dump() +
                        "-byte page (checksums file xxh3 " + c["file_xxh3"].get<std::string>() +
                        ")");
  line("table_uuid:", j["table_uuid"].get<std::string>());
  const Json& cr = j["creation"];
  std::string created = cr["created_utc"].get<std::string>() + " by " +
                        cr["tool_version"].get<std::string>() + ": " +
                        cr["source"].get<std::string>();
  if (!cr["fill"].get<std::string>().empty()) {
    created += ", fill " + cr["fill"].get<std::string>();
    if (cr["fill"] == "random") created += " seed " + cr["seed"].dump();
  }
  line("created:", created);
  line("tiers:", "dram " + j["tiers"]["dram"].get<std::string>() + " -> nvme " +
                     j["tiers"]["nvme"].get<std::string>());
  line("io_backend:", j["io_backend"].get<std::string>());
}

// ---- get ----

struct GetOptions {
  std::string table;
  std::vector<uint64_t> ids;
  bool raw = false;
};

Result<GetOptions> ParseGetOptions(const ParsedArgs& args) {
  ENGRAM_RETURN_IF_ERROR(CheckPositionalCount(args, 2, SIZE_MAX, "TABLE ID..."));
  GetOptions o;
  ENGRAM_ASSIGN_OR_RETURN(o.table, TablePath(args.positional()[0]));
  o.ids.reserve(args.positional().size() - 1);
  for (size_t i = 1; i < args.positional().size(); ++i) {
    ENGRAM_ASSIGN_OR_RETURN(uint64_t id, ParseUint64(args.positional()[i], "row id"));
    o.ids.push_back(id);
  }
  o.raw = args.Has("raw");
  return o;
}

void PrintRows(const GetOptions& o, const Table& table, const std::vector<uint8_t>& rows,
               bool as_json) {
  const uint32_t row_bytes = table.row_bytes(), dim = table.dim();
  std::vector<float> values(dim);
  Json out_rows = Json::array();
  for (size_t i = 0; i < o.ids.size(); ++i) {
    const uint8_t* row = rows.data() + i * row_bytes;
    std::string text = std::to_string(o.ids[i]) + ":";
    Json entry = {{"id", o.ids[i]}};
    if (o.raw) {
      entry["hex"] = HexBytes(row, row_bytes);
      text += " " + entry["hex"].get<std::string>();
    } else {
      DequantizeRow(table.dtype(), dim, row, values.data());
      if (as_json) entry["values"] = values;
      for (float v : values) text += " " + FormatFloat(v);
    }
    if (as_json) {
      out_rows.push_back(std::move(entry));
    } else {
      std::printf("%s\n", text.c_str());
    }
  }
  if (as_json) {
    PrintJson({{"table", o.table},
               {"dtype", std::string(DTypeName(table.dtype()))},
               {"dim", dim},
               {"rows", std::move(out_rows)}});
  }
}

}  // namespace

int RunInfo(const ParsedArgs& args) {
  Status s = CheckPositionalCount(args, 1, 1, "TABLE");
  Result<std::string> path = s.ok() ? TablePath(args.positional()[0]) : Result<std::string>(s);
  if (!path.ok()) return ReportArgumentError("info", path.status());
  Result<Manifest> manifest = ReadManifest(Env::Default(), *path);
  if (!manifest.ok()) return ReportFailure(manifest.status());
  // Opening the table checks its checksums file and data size and sets up the NVMe reader,
  // which tells which I/O backend this machine gives it.
  Result<std::unique_ptr<Table>> table = OpenForReading(*path);
  const std::string backend =
      table.ok() ? (*table)->NvmeDescription() : "unavailable (open failed)";
  const Json doc = InfoJson(*path, *manifest, backend);
  if (args.Has("json")) {
    PrintJson(doc);
  } else {
    PrintInfoText(doc);
  }
  return table.ok() ? kExitOk : ReportFailure(table.status());
}

int RunVerify(const ParsedArgs& args) {
  Status s = CheckPositionalCount(args, 1, 1, "TABLE");
  Result<std::string> path = s.ok() ? TablePath(args.positional()[0]) : Result<std::string>(s);
  if (!path.ok()) return ReportArgumentError("verify", path.status());
  uint64_t max_errors = 20;
  if (std::optional<std::string> v = args.Value("max-errors")) {
    Result<uint64_t> n = ParseUint64(*v, "--max-errors");
    if (!n.ok()) return ReportArgumentError("verify", n.status());
    max_errors = *n;
  }
  Env* env = Env::Default();
  Result<Manifest> manifest = ReadManifest(env, *path);
  if (!manifest.ok()) return ReportFailure(manifest.status());
  const CommonOptions common = GetCommonOptions(args);
  std::vector<std::string> problems;
  Status result;
  {
    Progress progress("verify", common.progress, kPageSize);
    result = VerifyTable(env, *path, &problems, max_errors, progress.Callback());
  }
  const uint64_t pages = manifest->layout.num_pages();
  if (common.json) {
    Json doc = {{"table", *path}, {"ok", result.ok()}, {"pages", pages}, {"problems", problems}};
    if (!result.ok()) doc["error"] = result.message();
    PrintJson(doc);
  } else if (result.ok()) {
    std::printf("OK: %llu pages verified\n", static_cast<unsigned long long>(pages));
  } else {
    for (const std::string& p : problems) std::printf("%s\n", p.c_str());
  }
  return result.ok() ? kExitOk : ReportFailure(result);
}

int RunGet(const ParsedArgs& args) {
  Result<GetOptions> o = ParseGetOptions(args);
  if (!o.ok()) return ReportArgumentError("get", o.status());
  Result<std::unique_ptr<Table>> table = OpenForReading(o->table);
  if (!table.ok()) return ReportFailure(table.status());
  Table& t = **table;
  std::vector<uint8_t> rows(o->ids.size() * t.row_bytes());
  Status s = t.Lookup(o->ids.data(), o->ids.size(), rows.data(), t.row_bytes());
  if (!s.ok()) return ReportFailure(s);
  PrintRows(*o, t, rows, args.Has("json"));
  return kExitOk;
}

}  // namespace engram::tablectl
