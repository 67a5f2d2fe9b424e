#include "storage/table_format.h"

#include <xxhash.h>

#include <cstring>

namespace engram {
namespace {

using nlohmann::json;

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

Result<uint64_t> ParseHex64(const std::string& s) {
  if (s.size() != 16) return Status::Corruption("bad hex checksum '" + s + "'");
  uint64_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return Status::Corruption("bad hex checksum '" + s + "'");
    v = v << 4 | static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace

json ManifestToJson(const Manifest& m) {
  const TableLayout& l = m.layout;
  return json{
      {"format", "engram-store-table"},
      {"format_version", m.format_version},
      {"rows", l.rows},
      {"dim", l.dim},
      {"dtype", std::string(DTypeName(l.dtype))},
      {"row_bytes", l.row_bytes},
      {"page_size", kPageSize},
      {"rows_per_page", l.rows_per_page},
      {"pages_per_row", l.pages_per_row},
      {"data_file", kDataFileName},
      {"data_bytes", l.data_bytes()},
      {"checksum",
       {{"algorithm", m.checksum_algorithm},
        {"block_bytes", m.checksum_block_bytes},
        {"file", kChecksumFileName},
        {"file_xxh3", Hex64(m.checksums_file_xxh3)}}},
      {"table_uuid", m.table_uuid},
      {"creation",
       {{"source", m.creation.source},
        {"fill", m.creation.fill},
        {"seed", m.creation.seed},
        {"created_unix_seconds", m.creation.created_unix_seconds},
        {"tool_version", m.creation.tool_version}}},
  };
}

namespace {

Status CheckEqual(const std::string& table, const char* field, uint64_t stored, uint64_t derived) {
  if (stored == derived) return Status::OK();
  return Status::Corruption("table " + table + ": manifest field '" + field + "' is " +
                            std::to_string(stored) + " but the geometry gives " +
                            std::to_string(derived));
}

Result<Manifest> FromJson(const json& j, const std::string& table) {
  Manifest m;
  m.format_version = j.at("format_version").get<uint32_t>();
  if (m.format_version != kFormatVersion) {
    return Status::NotSupported(
        "table " + table + ": manifest format_version " + std::to_string(m.format_version) +
        " is not supported (this build reads version " + std::to_string(kFormatVersion) + ")");
  }
  ENGRAM_ASSIGN_OR_RETURN(DType dtype, ParseDType(j.at("dtype").get<std::string>()));
  auto layout = TableLayout::Make(j.at("rows").get<uint64_t>(), j.at("dim").get<uint32_t>(), dtype);
  if (!layout.ok()) return Status::Corruption("table " + table + ": " + layout.status().message());
  m.layout = *layout;
  ENGRAM_RETURN_IF_ERROR(CheckEqual(table, "row_bytes", j.at("row_bytes"), m.layout.row_bytes));
  ENGRAM_RETURN_IF_ERROR(CheckEqual(table, "page_size", j.at("page_size"), kPageSize));
  ENGRAM_RETURN_IF_ERROR(
      CheckEqual(table, "rows_per_page", j.at("rows_per_page"), m.layout.rows_per_page));
  ENGRAM_RETURN_IF_ERROR(
      CheckEqual(table, "pages_per_row", j.at("pages_per_row"), m.layout.pages_per_row));
  ENGRAM_RETURN_IF_ERROR(
      CheckEqual(table, "data_bytes", j.at("data_bytes"), m.layout.data_bytes()));
  const json& c = j.at("checksum");
  m.checksum_algorithm = c.at("algorithm").get<std::string>();
  if (m.checksum_algorithm != kChecksumAlgorithm) {
    return Status::NotSupported("table " + table + ": checksum algorithm '" + m.checksum_algorithm +
                                "' is not supported");
  }
  m.checksum_block_bytes = c.at("block_bytes").get<uint32_t>();
  ENGRAM_RETURN_IF_ERROR(
      CheckEqual(table, "checksum.block_bytes", m.checksum_block_bytes, kPageSize));
  ENGRAM_ASSIGN_OR_RETURN(m.checksums_file_xxh3, ParseHex64(c.at("file_xxh3").get<std::string>()));
  m.table_uuid = j.at("table_uuid").get<std::string>();
  const json& cr = j.at("creation");
  m.creation.source = cr.at("source").get<std::string>();
  m.creation.fill = cr.at("fill").get<std::string>();
  m.creation.seed = cr.at("seed").get<uint64_t>();
  m.creation.created_unix_seconds = cr.at("created_unix_seconds").get<uint64_t>();
  m.creation.tool_version = cr.at("tool_version").get<std::string>();
  return m;
}

}  // namespace

Result<TableLayout> TableLayout::Make(uint64_t rows, uint32_t dim, DType dtype) {
  if (rows == 0) return Status::InvalidArgument("rows must be at least 1");
  ENGRAM_ASSIGN_OR_RETURN(uint32_t row_bytes, RowBytes(dtype, dim));
  TableLayout l;
  l.rows = rows;
  l.dim = dim;
  l.dtype = dtype;
  l.row_bytes = row_bytes;
  if (row_bytes <= kPageSize) {
    l.rows_per_page = kPageSize / row_bytes;
    l.pages_per_row = 1;
  } else {
    l.rows_per_page = 0;
    l.pages_per_row = (row_bytes + kPageSize - 1) / kPageSize;
  }
  if (l.num_pages() > (uint64_t{1} << 40)) {
    return Status::InvalidArgument("table of " + std::to_string(rows) + " rows is too large");
  }
  return l;
}

uint64_t Checksum(const void* data, size_t n) { return XXH3_64bits(data, n); }

std::string SerializeManifest(const Manifest& manifest) {
  json j = ManifestToJson(manifest);
  const std::string body = j.dump();
  j["manifest_xxh3"] = Hex64(Checksum(body.data(), body.size()));
  return j.dump(2) + "\n";
}

Result<Manifest> ParseManifest(std::string_view text, const std::string& table) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption("table " + table +
                              ": MANIFEST is not valid JSON (truncated or torn write?)");
  }
  try {
    if (j.value("format", "") != "engram-store-table") {
      return Status::Corruption("table " + table + ": MANIFEST is not an engram-store manifest");
    }
    if (!j.contains("manifest_xxh3")) {
      return Status::Corruption("table " + table + ": MANIFEST has no manifest_xxh3 field");
    }
    ENGRAM_ASSIGN_OR_RETURN(uint64_t stored, ParseHex64(j["manifest_xxh3"].get<std::string>()));
    j.erase("manifest_xxh3");
    const std::string body = j.dump();
    if (Checksum(body.data(), body.size()) != stored) {
      return Status::Corruption("table " + table + ": MANIFEST checksum mismatch");
    }
    return FromJson(j, table);
  } catch (const json::exception& e) {
    return Status::Corruption("table " + table + ": MANIFEST field missing or of the wrong type (" +
                              e.what() + ")");
  }
}

Result<Manifest> ReadManifest(Env* env, const std::string& table_dir) {
  const std::string path = JoinPath(table_dir, kManifestName);
  if (!env->FileExists(path)) {
    if (env->FileExists(path + ".tmp")) {
      return Status::Corruption("table " + table_dir +
                                ": no MANIFEST, only MANIFEST.tmp left by an interrupted write; "
                                "the table was never completed (re-create or re-import it)");
    }
    if (!env->FileExists(table_dir))
      return Status::NotFound("table " + table_dir + " does not exist");
    return Status::NotFound("table " + table_dir + " has no MANIFEST (not a table directory)");
  }
  ENGRAM_ASSIGN_OR_RETURN(std::string text, env->ReadFileToString(path));
  return ParseManifest(text, table_dir);
}

Status WriteManifest(Env* env, const std::string& table_dir, const Manifest& manifest) {
  return env->WriteFileAtomically(JoinPath(table_dir, kManifestName), SerializeManifest(manifest));
}

Result<std::vector<uint64_t>> ReadPageChecksums(Env* env, const std::string& table_dir,
                                                const Manifest& manifest) {
  const std::string path = JoinPath(table_dir, kChecksumFileName);
  ENGRAM_ASSIGN_OR_RETURN(auto file, env->OpenRandomAccess(path, /*direct_io=*/false));
  ENGRAM_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  const uint64_t pages = manifest.layout.num_pages();
  if (size != pages * sizeof(uint64_t)) {
    return Status::Corruption("table " + table_dir + ": checksums file has " +
                              std::to_string(size) + " bytes, expected " +
                              std::to_string(pages * sizeof(uint64_t)) + " (truncated?)");
  }
  std::vector<uint64_t> sums(pages);
  ENGRAM_RETURN_IF_ERROR(file->Read(0, size, sums.data()));
  if (Checksum(sums.data(), size) != manifest.checksums_file_xxh3) {
    return Status::Corruption("table " + table_dir +
                              ": checksums file does not match its hash in MANIFEST");
  }
  return sums;
}

Status PageChecksumMismatch(const std::string& table, const TableLayout& layout, uint64_t page,
                            uint64_t row) {
  return Status::Corruption(
      "table " + table + ": checksum mismatch in data page " + std::to_string(page) +
      " (file offset " + std::to_string(page * kPageSize) + ") holding row " + std::to_string(row) +
      " at offset " + std::to_string(layout.OffsetOf(row)));
}

}  // namespace engram
