#include "tests/support/fault_injection_env.h"

#include <cerrno>

namespace engram::testing {
namespace {

class FaultFile final : public RandomAccessFile {
 public:
  FaultFile(FaultInjectionEnv* env, std::unique_ptr<RandomAccessFile> base)
      : env_(env), base_(std::move(base)) {}

  const std::string& path() const override { return base_->path(); }
  int fd() const override { return base_->fd(); }
  bool direct_io() const override { return base_->direct_io(); }
  Result<uint64_t> Size() const override { return base_->Size(); }

  Status Read(uint64_t offset, size_t n, void* buf) const override {
    switch (env_->FaultFor(path(), offset, n)) {
      case ReadFault::kNone:
        return base_->Read(offset, n, buf);
      case ReadFault::kEIO:
        env_->CountFault();
        return Status::FromErrno("read " + path() + " at offset " + std::to_string(offset), EIO);
      case ReadFault::kShortRead:
        env_->CountFault();
        return Status::IOError("short read of " + path() + " at offset " + std::to_string(offset) +
                               ": wanted " + std::to_string(n) + " bytes, got " +
                               std::to_string(n / 2));
    }
    return Status::OK();
  }

  int64_t FilterCompletion(uint64_t offset, size_t n, void* buf, int64_t res) const override {
    switch (env_->FaultFor(path(), offset, n)) {
      case ReadFault::kNone:
        return base_->FilterCompletion(offset, n, buf, res);
      case ReadFault::kEIO:
        env_->CountFault();
        return -EIO;
      case ReadFault::kShortRead:
        env_->CountFault();
        return res > 0 ? res / 2 : res;
    }
    return res;
  }

 private:
  FaultInjectionEnv* const env_;
  std::unique_ptr<RandomAccessFile> base_;
};

class BudgetedWritableFile final : public WritableFile {
 public:
  BudgetedWritableFile(FaultInjectionEnv* env, std::string path, std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}
  Status Append(const void* data, size_t n) override {
    if (!env_->ConsumeWriteBudget(n)) return Status::FromErrno("write " + path_, ENOSPC);
    return base_->Append(data, n);
  }
  Status Sync() override { return base_->Sync(); }
  Status Close() override { return base_->Close(); }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

void FaultInjectionEnv::SetReadFault(std::string path_part, uint64_t begin, uint64_t end,
                                     ReadFault fault) {
  std::lock_guard<std::mutex> lock(mu_);
  fault_path_ = std::move(path_part);
  fault_begin_ = begin;
  fault_end_ = end;
  fault_ = fault;
}

ReadFault FaultInjectionEnv::FaultFor(const std::string& path, uint64_t offset, size_t n) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (fault_ == ReadFault::kNone || path.find(fault_path_) == std::string::npos)
    return ReadFault::kNone;
  const bool overlaps = offset < fault_end_ && offset + n > fault_begin_;
  return overlaps ? fault_ : ReadFault::kNone;
}

bool FaultInjectionEnv::ConsumeWriteBudget(size_t n) {
  int64_t budget = write_budget_.load();
  while (budget >= 0) {
    if (static_cast<int64_t>(n) > budget) return false;
    if (write_budget_.compare_exchange_weak(budget, budget - static_cast<int64_t>(n))) return true;
  }
  return true;
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::OpenRandomAccess(
    const std::string& path, bool direct_io) {
  ENGRAM_ASSIGN_OR_RETURN(auto base, EnvWrapper::OpenRandomAccess(path, direct_io));
  return std::unique_ptr<RandomAccessFile>(new FaultFile(this, std::move(base)));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(const std::string& path) {
  ENGRAM_ASSIGN_OR_RETURN(auto base, EnvWrapper::NewWritableFile(path));
  return std::unique_ptr<WritableFile>(new BudgetedWritableFile(this, path, std::move(base)));
}

}  // namespace engram::testing
