// POSIX implementation of Env.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "storage/env.h"

namespace engram {
namespace {

std::string Where(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path;
}

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd, bool direct)
      : path_(std::move(path)), fd_(fd), direct_(direct) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  const std::string& path() const override { return path_; }
  int fd() const override { return fd_; }
  bool direct_io() const override { return direct_; }

  Status Read(uint64_t offset, size_t n, void* buf) const override {
    char* dst = static_cast<char*>(buf);
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, dst + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(
            Where("read", path_) + " at offset " + std::to_string(offset + done), errno);
      }
      if (r == 0) {
        return Status::IOError("short read of " + path_ + " at offset " + std::to_string(offset) +
                               ": wanted " + std::to_string(n) + " bytes, got " +
                               std::to_string(done));
      }
      done += static_cast<size_t>(r);
    }
    return Status::OK();
  }

  Result<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Status::FromErrno(Where("stat", path_), errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  const std::string path_;
  const int fd_;
  const bool direct_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(const void* data, size_t n) override {
    const char* src = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, src, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(Where("write", path_), errno);
      }
      src += w;
      n -= static_cast<size_t>(w);
    }
    return Status::OK();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return Status::FromErrno(Where("fsync", path_), errno);
    return Status::OK();
  }

  Status Close() override {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return Status::FromErrno(Where("close", path_), errno);
    return Status::OK();
  }

 private:
  const std::string path_;
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<RandomAccessFile>> OpenRandomAccess(const std::string& path,
                                                             bool direct_io) override {
    int fd = -1;
    bool direct = false;
    if (direct_io) {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
      direct = fd >= 0;
      if (fd < 0 && errno != EINVAL) return Status::FromErrno(Where("open", path), errno);
    }
    if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::NotFound(path + ": no such file");
      return Status::FromErrno(Where("open", path), errno);
    }
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd, direct));
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Status::FromErrno(Where("create", path), errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return Status::NotFound(path + ": no such file");
      return Status::FromErrno(Where("stat", path), errno);
    }
    return static_cast<uint64_t>(st.st_size);
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Status::FromErrno("rename " + from + " -> " + to, errno);
    }
    return Status::OK();
  }

  Status ExchangePaths(const std::string& a, const std::string& b) override {
    if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) {
      return Status::FromErrno("exchange " + a + " <-> " + b, errno);
    }
    return Status::OK();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::FromErrno(Where("remove", path), errno);
    return Status::OK();
  }

  Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0) {
      if (errno == EEXIST) return Status::AlreadyExists(path + " already exists");
      return Status::FromErrno(Where("mkdir", path), errno);
    }
    return Status::OK();
  }

  Status RemoveDirRecursive(const std::string& path) override {
    auto names = ListDir(path);
    if (!names.ok()) return names.status().IsNotFound() ? Status::OK() : names.status();
    for (const std::string& name : *names) {
      std::string child = JoinPath(path, name);
      struct stat st;
      if (::lstat(child.c_str(), &st) != 0) return Status::FromErrno(Where("stat", child), errno);
      Status s = S_ISDIR(st.st_mode) ? RemoveDirRecursive(child) : RemoveFile(child);
      if (!s.ok()) return s;
    }
    if (::rmdir(path.c_str()) != 0) return Status::FromErrno(Where("rmdir", path), errno);
    return Status::OK();
  }

  Status SyncDir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(Where("open dir", path), errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return Status::FromErrno(Where("fsync dir", path), err);
    return Status::OK();
  }

  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) {
      if (errno == ENOENT) return Status::NotFound(path + ": no such directory");
      return Status::FromErrno(Where("list", path), errno);
    }
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(dir)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    ::closedir(dir);
    return names;
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

Result<std::string> Env::ReadFileToString(const std::string& path) {
  ENGRAM_ASSIGN_OR_RETURN(auto file, OpenRandomAccess(path, /*direct_io=*/false));
  ENGRAM_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  std::string data(size, '\0');
  if (size > 0) ENGRAM_RETURN_IF_ERROR(file->Read(0, size, data.data()));
  return data;
}

Status Env::WriteFileAtomically(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  {
    ENGRAM_ASSIGN_OR_RETURN(auto file, NewWritableFile(tmp));
    ENGRAM_RETURN_IF_ERROR(file->Append(data.data(), data.size()));
    ENGRAM_RETURN_IF_ERROR(file->Sync());
    ENGRAM_RETURN_IF_ERROR(file->Close());
  }
  ENGRAM_RETURN_IF_ERROR(RenameFile(tmp, path));
  return SyncDir(DirName(path));
}

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace engram
