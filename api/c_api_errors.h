// Internal to api/: the errptr convention shared by every C API source file (not installed,
// not public). Messages are malloc'd so the caller frees them with es_free().
#pragma once

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "storage/status.h"

namespace engram::c_api {

// A malloc'd copy of `s` (NULL if out of memory).
inline char* CopyString(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// Replaces *errptr (freeing an earlier message) with `message`; no-op when errptr is NULL.
inline void SetError(char** errptr, const std::string& message) {
  if (errptr == nullptr) return;
  std::free(*errptr);
  *errptr = CopyString(message);
}

// True when `s` is OK; otherwise reports it through errptr.
inline bool Check(const Status& s, char** errptr) {
  if (s.ok()) return true;
  SetError(errptr, s.ToString());
  return false;
}

// The integer a C caller passed for an enum parameter, read without an enum load: loading a
// value outside the enumerators' range is undefined in C++ (UBSan's -fsanitize=enum), and C
// callers may pass any int. Validate with this before using the parameter as an enum.
template <typename E>
int EnumCode(const E& e) {
  static_assert(sizeof(E) == sizeof(int), "C API enums are int-sized");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

// Runs `body`, turning any exception that escapes it into an errptr message.
template <typename F>
void Guard(char** errptr, F&& body) {
  try {
    body();
  } catch (const std::bad_alloc&) {
    SetError(errptr, "Resource exhausted: out of memory");
  } catch (const std::exception& e) {
    SetError(errptr, std::string("Internal error: ") + e.what());
  } catch (...) {
    SetError(errptr, "Internal error: unknown exception");
  }
}

}  // namespace engram::c_api
