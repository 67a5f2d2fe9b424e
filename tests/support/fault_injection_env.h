// FaultInjectionEnv: an Env over the real POSIX one that injects the faults the store must
// survive: EIO or short reads on a byte range of matching files (through Read() and through
// io_uring completions via FilterCompletion()), and ENOSPC once a write budget is spent.
//
// Thread safety: configure before use; reads may then run on any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "storage/env.h"

namespace engram::testing {

enum class ReadFault { kNone, kEIO, kShortRead };

class FaultInjectionEnv : public EnvWrapper {
 public:
  explicit FaultInjectionEnv(Env* base = Env::Default()) : EnvWrapper(base) {}

  // Reads of files whose path contains `path_part`, overlapping [begin, end), fail with `fault`.
  void SetReadFault(std::string path_part, uint64_t begin, uint64_t end, ReadFault fault);
  void ClearReadFault() { SetReadFault("", 0, 0, ReadFault::kNone); }
  // After `bytes` more bytes are appended (over all files), writes fail with ENOSPC.
  void SetWriteBudget(int64_t bytes) { write_budget_.store(bytes); }
  void ClearWriteBudget() { write_budget_.store(-1); }
  // Number of reads that hit an injected fault so far.
  uint64_t faults_injected() const { return faults_injected_.load(); }

  // Used by the wrapped files.
  ReadFault FaultFor(const std::string& path, uint64_t offset, size_t n) const;
  void CountFault() { faults_injected_.fetch_add(1); }
  // Returns false (and consumes nothing) when `n` bytes would exceed the budget.
  bool ConsumeWriteBudget(size_t n);

  Result<std::unique_ptr<RandomAccessFile>> OpenRandomAccess(const std::string& path,
                                                             bool direct_io) override;
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;

 private:
  mutable std::mutex mu_;
  std::string fault_path_;  // GUARDED_BY(mu_)
  uint64_t fault_begin_ = 0, fault_end_ = 0;
  ReadFault fault_ = ReadFault::kNone;
  std::atomic<int64_t> write_budget_{-1};  // < 0: unlimited
  std::atomic<uint64_t> faults_injected_{0};
};

}  // namespace engram::testing
