// latentcv — the write-failure guard of `fix plumed` (see output_guard.h).

#include "output_guard.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace fs = std::filesystem;

namespace latentcv {

namespace {

// binary formats PLUMED may write (compressed files, DUMPATOMS trajectories): not line based
bool is_text_output(const std::string &path)
{
  for (const char *suffix : {".gz", ".xtc", ".trr", ".dcd", ".bin"})
    if (path.size() >= std::strlen(suffix) && path.compare(path.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
      return false;
  return true;
}

std::string megabytes(double bytes)
{
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f MB", bytes / 1048576.0);
  return buf;
}

}    // namespace

std::int64_t cut_half_line(const std::string &path)
{
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const off_t size = ::lseek(fd, 0, SEEK_END);
  off_t end = size;
  char chunk[4096];
  bool found = size <= 0;
  while (!found && end > 0) {
    const off_t from = std::max<off_t>(0, end - static_cast<off_t>(sizeof(chunk)));
    const ssize_t r = ::pread(fd, chunk, static_cast<size_t>(end - from), from);
    if (r <= 0) break;
    for (ssize_t i = r - 1; i >= 0; --i)
      if (chunk[i] == '\n') {
        end = from + i + 1;
        found = true;
        break;
      }
    if (!found) end = from;
  }
  ::close(fd);
  if (end >= size) return 0;
  std::error_code ec;
  fs::resize_file(fs::path(path), static_cast<std::uintmax_t>(end), ec);
  return ec ? 0 : static_cast<std::int64_t>(size - end);
}

void OutputGuard::watch(const std::vector<std::string> &files, double reserve_bytes)
{
  files_ = files;
  reserve_bytes_ = reserve_bytes;
  folders_.clear();
  for (const auto &f : files) {
    const std::string dir = fs::path(f).has_parent_path() ? fs::path(f).parent_path().string() : ".";
    if (std::find(folders_.begin(), folders_.end(), dir) == folders_.end()) folders_.push_back(dir);
  }
  last_check_ = std::chrono::steady_clock::now();
}

bool OutputGuard::due() const
{
  return !files_.empty() && std::chrono::steady_clock::now() - last_check_ >= period;
}

std::string OutputGuard::trim_half_lines()
{
  std::string cuts;
  for (const auto &f : files_) {
    if (!is_text_output(f)) continue;
    const std::int64_t cut = cut_half_line(f);
    if (cut > 0) cuts += " " + f + " ended in a half line (" + std::to_string(cut) + " bytes, now removed);";
  }
  return cuts;
}

std::string OutputGuard::check()
{
  last_check_ = std::chrono::steady_clock::now();
  if (files_.empty()) return {};
  std::string problems;
  errno = 0;
  if (std::fflush(nullptr) != 0)    // every stdio stream, PLUMED's among them
    problems += std::string(" writing failed (") + std::strerror(errno) + ");";
  problems += trim_half_lines();
  for (const auto &dir : folders_) {
    struct statvfs fsinfo {};
    if (::statvfs(dir.c_str(), &fsinfo) != 0) continue;
    const double free_bytes = static_cast<double>(fsinfo.f_bavail) * static_cast<double>(fsinfo.f_frsize);
    if (free_bytes < reserve_bytes_)
      problems += " only " + megabytes(free_bytes) + " free on the file system of " + dir + " (the fix stops at " +
                  megabytes(reserve_bytes_) + ": keyword reserve);";
  }
  if (!problems.empty()) problems.pop_back();
  return problems;
}

}    // namespace latentcv
