#include "storage/status.h"

#include <cstring>

namespace engram {

Status Status::FromErrno(std::string_view context, int err) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  return IOError(msg);
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return state_ ? state_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  const char* name = "Unknown";
  switch (state_->code) {
    case Code::kOk:
      name = "OK";
      break;
    case Code::kInvalidArgument:
      name = "Invalid argument";
      break;
    case Code::kNotFound:
      name = "Not found";
      break;
    case Code::kCorruption:
      name = "Corruption";
      break;
    case Code::kIOError:
      name = "IO error";
      break;
    case Code::kNotSupported:
      name = "Not supported";
      break;
    case Code::kAlreadyExists:
      name = "Already exists";
      break;
    case Code::kResourceExhausted:
      name = "Resource exhausted";
      break;
  }
  return std::string(name) + ": " + state_->message;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += state_->message;
  return Status(state_->code, msg);
}

}  // namespace engram
