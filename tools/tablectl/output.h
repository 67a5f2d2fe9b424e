// Output conventions shared by every tablectl command.
//
//   - Results go to stdout: text for people, or one JSON document with --json.
//   - Errors go to stderr as exactly one line, "tablectl: error: <message>", and the command
//     exits with kExitUsage (bad command line) or kExitFailure (the work failed: missing or
//     corrupt table, id out of range, I/O error).
//
// Thread safety: writes to the process's stdout/stderr; call from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace engram::tablectl {

// JSON documents keep their keys in insertion order, so output reads top-down like the text.
using Json = nlohmann::ordered_json;

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Prints "tablectl: error: <message>" (newlines folded into spaces) and returns the code.
int ReportError(std::string_view message, int exit_code);
// A runtime failure: the Status message, exit kExitFailure.
int ReportFailure(const Status& status);
// A command-line mistake, exit kExitUsage. `command` ("create") prefixes the message when set.
int ReportUsage(std::string_view command, std::string_view message);

// Writes `doc` to stdout, indented, followed by a newline. Invalid UTF-8 in strings (odd path
// bytes) is replaced rather than thrown.
void PrintJson(const Json& doc);

// "%.9g": the shortest form that reads back as the same float.
std::string FormatFloat(float v);
// Lower-case hex of `n` bytes, no separators.
std::string HexBytes(const uint8_t* data, size_t n);
// "2024-11-29T01:25:00Z" for seconds since the epoch (UTC).
std::string FormatUtc(uint64_t unix_seconds);

}  // namespace engram::tablectl
