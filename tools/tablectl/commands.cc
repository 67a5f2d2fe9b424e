#include "tools/tablectl/commands.h"

#include <cstdio>

#ifndef TABLECTL_VERSION
#define TABLECTL_VERSION "0.0.0-dev"
#endif

namespace engram::tablectl {
namespace {

const char kDTypes[] = "f32|f16|bf16|int8|fp8_e4m3_ue8m0";

std::vector<Command> MakeCommands() {
  return {
      {"create",
       "TABLE --rows N --dim D --dtype " + std::string(kDTypes) + " [--fill zeros|random --seed S]",
       "Create a new table filled with zeros or deterministic random rows (refuses an existing "
       "TABLE).",
       {{"rows", "N", "number of rows (>= 1)"},
        {"dim", "D", "values per row (fp8_e4m3_ue8m0: a multiple of 32)"},
        {"dtype", "T", std::string("row dtype: ") + kDTypes},
        {"fill", "zeros|random", "row contents (default zeros)"},
        {"seed", "S", "seed of --fill random (default 0); same seed, same rows"}},
       &RunCreate},
      {"import",
       "TABLE SRC.npy|SRC.safetensors[:TENSOR] [--dtype T]",
       "Create or atomically replace TABLE from a 2-D array file.",
       {{"dtype", "T",
         "row dtype (default: the source's for f32/f16/bf16; required for other sources)"}},
       &RunImport},
      {"export",
       "TABLE DST.npy [--rows A:B] [--f32]",
       "Write rows [A, B) of TABLE to a .npy file (raw rows, or floats with --f32).",
       {{"rows", "A:B", "half-open row range; either side may be omitted (default: all rows)"},
        {"f32", "", "dequantise to float32 instead of writing the stored encoding"}},
       &RunExport},
      {"info",
       "TABLE [--json]",
       "Show a table's manifest (geometry, dtype, checksums, creation) and the I/O backend.",
       {},
       &RunInfo},
      {"verify",
       "TABLE [--json] [--max-errors N]",
       "Read every page and check it against its checksum; exit 1 if anything is corrupt.",
       {{"max-errors", "N", "report at most N bad pages (default 20)"}},
       &RunVerify},
      {"get",
       "TABLE ID... [--json] [--raw]",
       "Print rows by id, dequantised to floats (or the stored bytes in hex with --raw).",
       {{"raw", "", "print the stored row bytes as hex instead of values"}},
       &RunGet},
  };
}

}  // namespace

const std::vector<Command>& Commands() {
  static const std::vector<Command>* commands = new std::vector<Command>(MakeCommands());
  return *commands;
}

const Command* FindCommand(std::string_view name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

bool IsPlannedCommand(std::string_view name) {
  static const char* const kPlanned[] = {
      "bench",          "replay", "ngram-hash", "engram-forward", "profile",
      "vocab-compress", "serve",  "upsert",     "erase",          "compact"};
  for (const char* p : kPlanned) {
    if (name == p) return true;
  }
  return false;
}

const std::vector<FlagSpec>& CommonFlags() {
  static const std::vector<FlagSpec>* flags = new std::vector<FlagSpec>{
      {"json", "", "print the result as one JSON document on stdout"},
      {"progress", "", "show progress on stderr even when it is not a terminal (plain lines)"},
      {"no-progress", "", "never show progress"},
      {"help", "", "show this help"},
  };
  return *flags;
}

const char* ToolVersion() { return TABLECTL_VERSION; }

void PrintOverview() {
  std::printf("tablectl %s: build, import, inspect and verify engram-store tables.\n\n",
              ToolVersion());
  std::printf("usage: tablectl COMMAND ARGS [--json] [--progress]\n\ncommands:\n");
  for (const Command& c : Commands()) {
    std::printf("  %-7s %s\n          %s\n", c.name.c_str(), c.synopsis.c_str(), c.summary.c_str());
  }
  std::printf(
      "\nRun 'tablectl help COMMAND' for a command's flags, 'tablectl --version' for the "
      "version.\nErrors: one line on stderr, exit 2 for a bad command line, 1 for a failure.\n");
}

void PrintCommandHelp(const Command& command) {
  std::printf("usage: tablectl %s %s\n\n%s\n\nflags:\n", command.name.c_str(),
              command.synopsis.c_str(), command.summary.c_str());
  auto print_flags = [](const std::vector<FlagSpec>& flags) {
    for (const FlagSpec& f : flags) {
      const std::string left = "--" + f.name + (f.value_name.empty() ? "" : " " + f.value_name);
      std::printf("  %-22s %s\n", left.c_str(), f.help.c_str());
    }
  };
  print_flags(command.flags);
  print_flags(CommonFlags());
}

}  // namespace engram::tablectl
