// The tablectl command table and the entry points of the commands (one function each).
//
// main() looks a command up by name, parses its flags (the command's own plus CommonFlags())
// and calls run(), which returns the process exit status (output.h: 0, 1 failure, 2 usage).
// Commands print results on stdout and errors through output.h.
//
// Thread safety: single-threaded CLI code.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tools/tablectl/args.h"

namespace engram::tablectl {

struct Command {
  std::string name;
  std::string synopsis;         // arguments after the name, as in BRIEF section 4
  std::string summary;          // one line
  std::vector<FlagSpec> flags;  // the command's own flags (CommonFlags() are added)
  int (*run)(const ParsedArgs& args) = nullptr;
};

// Every implemented command, in the order `tablectl help` lists them.
const std::vector<Command>& Commands();
// nullptr when `name` is not a command of this build.
const Command* FindCommand(std::string_view name);
// True for commands named in the BRIEF contract that this build does not implement yet.
bool IsPlannedCommand(std::string_view name);
// --json, --progress, --no-progress, --help: accepted by every command.
const std::vector<FlagSpec>& CommonFlags();

// Help texts (stdout).
void PrintOverview();
void PrintCommandHelp(const Command& command);

// Version string of this tool ("0.1.0").
const char* ToolVersion();

int RunCreate(const ParsedArgs& args);
int RunImport(const ParsedArgs& args);
int RunExport(const ParsedArgs& args);
int RunInfo(const ParsedArgs& args);
int RunVerify(const ParsedArgs& args);
int RunGet(const ParsedArgs& args);
int RunBench(const ParsedArgs& args);
int RunReplay(const ParsedArgs& args);
int RunProfile(const ParsedArgs& args);
int RunNgramHash(const ParsedArgs& args);
int RunVocabCompress(const ParsedArgs& args);
int RunEngramForward(const ParsedArgs& args);

}  // namespace engram::tablectl
