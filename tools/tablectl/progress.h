// Progress display for long tablectl commands, always on stderr.
//
//   kTty:   one line redrawn in place, "\r[#####     ] 52% 1.2 GiB/2.3 GiB", at most ~10 times a
//           second (and always at 100%); Finish() ends the line.
//   kLines: a plain line each time another 10% is done ("create: 50% 1.2 GiB/2.3 GiB"), for
//           logs (stderr not a TTY and --progress given).
//   kOff:   nothing.
// Amounts are shown as bytes: Update(done, total) counts units of `bytes_per_unit` bytes
// (rows, pages...), so callers pass the library's own progress counts unchanged.
//
// Thread safety: one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace engram::tablectl {

enum class ProgressMode { kOff, kTty, kLines };

// kTty when stderr is a terminal, else kLines if `progress_flag`, else kOff; `no_progress`
// wins over both.
ProgressMode ChooseProgressMode(bool progress_flag, bool no_progress);

// "512 B", "12.0 KiB", "1.2 GiB".
std::string FormatBytes(double bytes);

class Progress {
 public:
  Progress(std::string label, ProgressMode mode, double bytes_per_unit, FILE* out = stderr);
  ~Progress();  // calls Finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Update(uint64_t done, uint64_t total);
  // Ends a TTY line (so an error message starts on a fresh line); idempotent.
  void Finish();
  // Update bound to this object, for library progress callbacks. Valid while *this lives.
  std::function<void(uint64_t, uint64_t)> Callback();

  // The TTY line for (done, total) without the leading '\r' (exposed for tests).
  static std::string BarLine(uint64_t done, uint64_t total, double bytes_per_unit);

 private:
  void DrawTty(uint64_t done, uint64_t total);

  const std::string label_;
  const ProgressMode mode_;
  const double bytes_per_unit_;
  FILE* const out_;
  bool line_open_ = false;  // a TTY line is drawn and not yet ended
  size_t last_width_ = 0;   // chars of the last TTY line, to blank leftovers
  int last_decile_ = 0;     // last 10% step printed in kLines mode (0% is never printed)
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace engram::tablectl
