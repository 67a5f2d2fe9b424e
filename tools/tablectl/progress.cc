#include "tools/tablectl/progress.h"

#include <unistd.h>

#include <algorithm>

namespace engram::tablectl {
namespace {

constexpr int kBarWidth = 30;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

int Percent(uint64_t done, uint64_t total) {
  if (total == 0) return 100;
  return static_cast<int>(
      std::min<double>(100.0, 100.0 * static_cast<double>(done) / static_cast<double>(total)));
}

}  // namespace

ProgressMode ChooseProgressMode(bool progress_flag, bool no_progress) {
  if (no_progress) return ProgressMode::kOff;
  if (::isatty(STDERR_FILENO)) return ProgressMode::kTty;
  return progress_flag ? ProgressMode::kLines : ProgressMode::kOff;
}

std::string FormatBytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 5) {
    bytes /= 1024.0;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof(buf), "%.0f B", bytes);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", bytes, kUnits[unit]);
  }
  return buf;
}

Progress::Progress(std::string label, ProgressMode mode, double bytes_per_unit, FILE* out)
    : label_(std::move(label)), mode_(mode), bytes_per_unit_(bytes_per_unit), out_(out) {}

Progress::~Progress() { Finish(); }

std::string Progress::BarLine(uint64_t done, uint64_t total, double bytes_per_unit) {
  const int pct = Percent(done, total);
  const int filled = pct * kBarWidth / 100;
  std::string line = "[" + std::string(filled, '#') + std::string(kBarWidth - filled, ' ') + "] ";
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%d%% ", pct);
  return line + buf + FormatBytes(static_cast<double>(done) * bytes_per_unit) + "/" +
         FormatBytes(static_cast<double>(total) * bytes_per_unit);
}

void Progress::Update(uint64_t done, uint64_t total) {
  if (mode_ == ProgressMode::kTty) {
    DrawTty(done, total);
  } else if (mode_ == ProgressMode::kLines) {
    const int decile = Percent(done, total) / 10;
    if (decile <= last_decile_) return;
    last_decile_ = decile;
    std::fprintf(out_, "%s: %d%% %s/%s\n", label_.c_str(), decile * 10,
                 FormatBytes(static_cast<double>(done) * bytes_per_unit_).c_str(),
                 FormatBytes(static_cast<double>(total) * bytes_per_unit_).c_str());
    std::fflush(out_);
  }
}

void Progress::DrawTty(uint64_t done, uint64_t total) {
  const auto now = std::chrono::steady_clock::now();
  const bool final = done >= total;
  if (line_open_ && !final && now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  std::string line = BarLine(done, total, bytes_per_unit_);
  const size_t width = line.size();
  if (width < last_width_) line.append(last_width_ - width, ' ');  // blank a longer old line
  last_width_ = width;
  std::fprintf(out_, "\r%s", line.c_str());
  std::fflush(out_);
  line_open_ = true;
}

void Progress::Finish() {
  if (!line_open_) return;
  std::fputc('\n', out_);
  std::fflush(out_);
  line_open_ = false;
}

std::function<void(uint64_t, uint64_t)> Progress::Callback() {
  return [this](uint64_t done, uint64_t total) { Update(done, total); };
}

}  // namespace engram::tablectl
