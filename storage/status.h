// Status and Result<T>: errors as values for every engram-store module.
//
// A Status is OK (cheap: no allocation) or carries a code and a message that names the
// problem (table, row, offset, path...). Result<T> holds either a T or a non-OK Status.
// No exception crosses a module edge; functions that can fail return one of these.
//
// Thread safety: values; distinct objects may be used from distinct threads freely.
#pragma once

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace engram {

class [[nodiscard]] Status {
 public:
  enum class Code : int {
    kOk = 0,
    kInvalidArgument = 1,   // caller error: bad id, bad option, bad shape
    kNotFound = 2,          // a file or table that does not exist
    kCorruption = 3,        // checksum mismatch, malformed file, truncated data
    kIOError = 4,           // the OS reported an error (EIO, ENOSPC, short read...)
    kNotSupported = 5,      // a feature this build or kernel lacks
    kAlreadyExists = 6,     // creating something that is there already
    kResourceExhausted = 7  // out of memory or another budget
  };

  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string_view msg) { return {Code::kInvalidArgument, msg}; }
  static Status NotFound(std::string_view msg) { return {Code::kNotFound, msg}; }
  static Status Corruption(std::string_view msg) { return {Code::kCorruption, msg}; }
  static Status IOError(std::string_view msg) { return {Code::kIOError, msg}; }
  static Status NotSupported(std::string_view msg) { return {Code::kNotSupported, msg}; }
  static Status AlreadyExists(std::string_view msg) { return {Code::kAlreadyExists, msg}; }
  static Status ResourceExhausted(std::string_view msg) { return {Code::kResourceExhausted, msg}; }
  // An IOError for the current errno-style value `err`, with context first: "CONTEXT: strerror".
  static Status FromErrno(std::string_view context, int err);

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  bool IsInvalidArgument() const { return code() == Code::kInvalidArgument; }
  bool IsNotFound() const { return code() == Code::kNotFound; }
  bool IsCorruption() const { return code() == Code::kCorruption; }
  bool IsIOError() const { return code() == Code::kIOError; }
  bool IsNotSupported() const { return code() == Code::kNotSupported; }

  // The message alone ("" for OK).
  const std::string& message() const;
  // "Corruption: <message>", or "OK".
  std::string ToString() const;

  // Marks a status as deliberately ignored; grep for it.
  void PermitUnchecked() const {}

  // Returns a copy whose message is prefixed with `context` + ": ".
  Status WithContext(std::string_view context) const;

 private:
  struct State {
    Code code;
    std::string message;
  };
  Status(Code code, std::string_view msg)
      : state_(std::make_shared<const State>(State{code, std::string(msg)})) {}

  std::shared_ptr<const State> state_;  // null means OK
};

// Either a value or an error. Access value() only when ok().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result built from an OK status has no value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace engram

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define ENGRAM_RETURN_IF_ERROR(expr) \
  do {                               \
    ::engram::Status _st = (expr);   \
    if (!_st.ok()) return _st;       \
  } while (0)

#define ENGRAM_CONCAT_INNER(a, b) a##b
#define ENGRAM_CONCAT(a, b) ENGRAM_CONCAT_INNER(a, b)
// `ENGRAM_ASSIGN_OR_RETURN(auto x, ResultExpr());` binds the value or returns the error.
#define ENGRAM_ASSIGN_OR_RETURN(lhs, expr) \
  ENGRAM_ASSIGN_OR_RETURN_IMPL(ENGRAM_CONCAT(_res_, __LINE__), lhs, expr)
#define ENGRAM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
