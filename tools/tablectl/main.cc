// tablectl: the operator's command-line tool for engram-store tables (BRIEF section 4).
//
// main() only dispatches: it finds the command, parses its flags and calls the command's
// function (commands.h), which calls library functions. Help, version and errors follow
// output.h's conventions.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "storage/table_format.h"
#include "tools/tablectl/args.h"
#include "tools/tablectl/commands.h"
#include "tools/tablectl/output.h"

namespace engram::tablectl {
namespace {

int Help(const std::vector<std::string>& words) {
  if (words.size() <= 1) {
    PrintOverview();
    return kExitOk;
  }
  const Command* command = FindCommand(words[1]);
  if (command == nullptr) return ReportUsage("", "no help for unknown command '" + words[1] + "'");
  PrintCommandHelp(*command);
  return kExitOk;
}

int UnknownCommand(const std::string& name) {
  if (IsPlannedCommand(name)) {
    return ReportUsage("", "command '" + name + "' is not implemented in this build yet");
  }
  if (!name.empty() && name[0] == '-') return ReportUsage("", "unknown flag '" + name + "'");
  return ReportUsage("", "unknown command '" + name + "'");
}

int Main(int argc, char** argv) {
  const std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty()) return ReportUsage("", "no command given");
  const std::string& first = words[0];
  if (first == "help" || first == "--help" || first == "-h") return Help(words);
  if (first == "--version" || first == "version") {
    std::printf("tablectl %s (table format version %u)\n", ToolVersion(), kFormatVersion);
    return kExitOk;
  }
  const Command* command = FindCommand(first);
  if (command == nullptr) return UnknownCommand(first);
  std::vector<FlagSpec> flags = command->flags;
  flags.insert(flags.end(), CommonFlags().begin(), CommonFlags().end());
  Result<ParsedArgs> args =
      ParseArgs(std::vector<std::string>(words.begin() + 1, words.end()), flags);
  if (!args.ok()) return ReportUsage(command->name, args.status().message());
  if (args->Has("help")) {
    PrintCommandHelp(*command);
    return kExitOk;
  }
  return command->run(*args);
}

}  // namespace
}  // namespace engram::tablectl

int main(int argc, char** argv) {
  try {
    return engram::tablectl::Main(argc, argv);
  } catch (const std::exception& e) {  // e.g. bad_alloc: still one line and a failure code
    return engram::tablectl::ReportError(std::string("unexpected failure: ") + e.what(),
                                         engram::tablectl::kExitFailure);
  }
}
