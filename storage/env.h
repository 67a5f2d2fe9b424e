// Env: the one seam through which engram-store touches files and directories.
//
// Everything in storage/ that opens, reads, writes, renames or syncs goes through an Env, so
// tests can substitute a fault-injecting layer (see tests/storage/fault_injection_env.h) that
// turns reads into EIO or short reads and writes into ENOSPC. Env::Default() is the POSIX one.
//
// The io_uring reader needs a raw descriptor: RandomAccessFile::fd() gives it, and every
// completion the kernel reports for that descriptor is passed through FilterCompletion(), so
// the same fault layer drives the io_uring path too.
//
// Thread safety: Env and RandomAccessFile methods may be called from any thread concurrently.
// A WritableFile is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"

namespace engram {

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;

  // The path the file was opened with (for error messages).
  virtual const std::string& path() const = 0;
  // Reads exactly `n` bytes at `offset` into `buf`. A read that ends early is an IOError
  // "short read" naming path, offset and the byte counts; EIO and friends are IOErrors too.
  // REQUIRES: with direct I/O, buf, offset and n are 4096-aligned.
  virtual Status Read(uint64_t offset, size_t n, void* buf) const = 0;
  // Descriptor for io_uring submission; valid while the object lives.
  virtual int fd() const = 0;
  // Called with every result the kernel returned for a read submitted on fd() (bytes read or
  // -errno). Returns the result the reader should act on. The POSIX file returns `res`.
  virtual int64_t FilterCompletion(uint64_t offset, size_t n, void* buf, int64_t res) const {
    (void)offset, (void)n, (void)buf;
    return res;
  }
  // Current size in bytes.
  virtual Result<uint64_t> Size() const = 0;
  // True when opened with O_DIRECT.
  virtual bool direct_io() const = 0;
};

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all of `data` (retrying partial writes); ENOSPC and friends are IOErrors.
  virtual Status Append(const void* data, size_t n) = 0;
  // Flushes data and metadata to stable storage (fdatasync).
  virtual Status Sync() = 0;
  // Closes; further calls are invalid. The destructor closes without reporting errors.
  virtual Status Close() = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX Env. Never deleted.
  static Env* Default();

  // Opens an existing file for reading. `direct_io` asks for O_DIRECT; if the file system
  // refuses it (tmpfs), the file opens buffered and direct_io() reports false.
  virtual Result<std::unique_ptr<RandomAccessFile>> OpenRandomAccess(const std::string& path,
                                                                     bool direct_io) = 0;
  // Creates or truncates `path` for writing.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;

  virtual bool FileExists(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Atomically swaps two existing paths (renameat2 RENAME_EXCHANGE).
  virtual Status ExchangePaths(const std::string& a, const std::string& b) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Creates one directory; AlreadyExists if it is there.
  virtual Status CreateDir(const std::string& path) = 0;
  // Removes a directory and everything below it; OK if it does not exist.
  virtual Status RemoveDirRecursive(const std::string& path) = 0;
  // fsyncs a directory so renames inside it are durable.
  virtual Status SyncDir(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;

  // Reads a whole (small) file.
  Result<std::string> ReadFileToString(const std::string& path);
  // Writes `data` to `path` so that a crash leaves either the old file or the new one:
  // write `path`.tmp, fsync it, rename over `path`, fsync the directory.
  Status WriteFileAtomically(const std::string& path, std::string_view data);
};

// An Env that forwards every call to `target` (as LevelDB's EnvWrapper): a subclass overrides
// only what it changes (tests' fault-injecting and gating Envs). `target` must outlive it.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  Result<std::unique_ptr<RandomAccessFile>> OpenRandomAccess(const std::string& path,
                                                             bool direct_io) override {
    return target_->OpenRandomAccess(path, direct_io);
  }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  bool FileExists(const std::string& p) override { return target_->FileExists(p); }
  Result<uint64_t> FileSize(const std::string& p) override { return target_->FileSize(p); }
  Status RenameFile(const std::string& a, const std::string& b) override {
    return target_->RenameFile(a, b);
  }
  Status ExchangePaths(const std::string& a, const std::string& b) override {
    return target_->ExchangePaths(a, b);
  }
  Status RemoveFile(const std::string& p) override { return target_->RemoveFile(p); }
  Status CreateDir(const std::string& p) override { return target_->CreateDir(p); }
  Status RemoveDirRecursive(const std::string& p) override {
    return target_->RemoveDirRecursive(p);
  }
  Status SyncDir(const std::string& p) override { return target_->SyncDir(p); }
  Result<std::vector<std::string>> ListDir(const std::string& p) override {
    return target_->ListDir(p);
  }

 private:
  Env* const target_;
};

// Directory part of a path ("." when there is none).
std::string DirName(const std::string& path);
// path + "/" + name, without doubling the slash.
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace engram
