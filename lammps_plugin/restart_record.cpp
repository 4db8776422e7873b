// latentcv — the restart record of `fix plumed` and the file operations of a restart
// (see restart_record.h, docs/restarts.md).

#include "restart_record.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace fs = std::filesystem;

namespace latentcv {

namespace {

// the bytes "LCVRST02" first: tell a version-2 record from a version-1 one (which began
// with the step, never this large)
constexpr std::uint64_t kMagic = 0x323054535256434CULL;
constexpr std::int64_t kMaxFiles = 4096;
constexpr std::int64_t kMaxPath = 4096;

class Reader {
 public:
  explicit Reader(const char *buf) : buf_(buf) {}
  template <class T> T get()
  {
    T value;
    std::memcpy(&value, buf_ + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  std::string text(std::int64_t length)
  {
    if (length < 0 || length > kMaxPath)
      throw std::runtime_error("a file name of " + std::to_string(length) + " bytes");
    std::string s(buf_ + at_, static_cast<std::size_t>(length));
    at_ += static_cast<std::size_t>(length);
    return s;
  }
  std::size_t at() const { return at_; }

 private:
  const char *buf_;
  std::size_t at_ = 0;
};

template <class T> void put(std::string &buf, const T &value)
{
  buf.append(reinterpret_cast<const char *>(&value), sizeof(T));
}

void put_text(std::string &buf, const std::string &s)
{
  put(buf, static_cast<std::int64_t>(s.size()));
  buf += s;
}

fs::path canonical_as_far_as_possible(const std::string &path)
{
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(fs::path(path), ec), ec);
  return ec ? fs::absolute(fs::path(path)).lexically_normal() : p;
}

void write_all(int fd, const char *data, std::size_t n, const std::string &name)
{
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw std::runtime_error("cannot write " + name + ": " + std::strerror(errno));
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

std::string copy_range_to_new_file(const std::string &path, std::int64_t from, std::int64_t to,
                                   std::int64_t step)
{
  std::string target = path + ".cut." + std::to_string(step);
  for (int k = 1; fs::exists(target); ++k) target = path + ".cut." + std::to_string(step) + "." + std::to_string(k);
  const int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  const int out = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    throw std::runtime_error("cannot create " + target + ": " + std::strerror(err));
  }
  try {
    std::vector<char> chunk(1 << 16);
    for (std::int64_t at = from; at < to;) {
      const ssize_t r = ::pread(in, chunk.data(), static_cast<std::size_t>(std::min<std::int64_t>(
                                                       static_cast<std::int64_t>(chunk.size()), to - at)), at);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) throw std::runtime_error("cannot read " + path + ": " + (r < 0 ? std::strerror(errno) : "shorter than expected"));
      write_all(out, chunk.data(), static_cast<std::size_t>(r), target);
      at += r;
    }
    if (::fsync(out) != 0) throw std::runtime_error("cannot write " + target + ": " + std::strerror(errno));
  } catch (...) {
    ::close(in);
    ::close(out);
    ::unlink(target.c_str());
    throw;
  }
  ::close(in);
  if (::close(out) != 0) {
    const int err = errno;
    ::unlink(target.c_str());
    throw std::runtime_error("cannot write " + target + ": " + std::strerror(err));
  }
  return target;
}

}    // namespace

/* ---------------------------------------------------------------------- */

std::string RestartRecord::serialize() const
{
  std::string buf;
  put(buf, kMagic);
  put(buf, step);
  put_text(buf, folder);
  put(buf, static_cast<std::int64_t>(files.size()));
  for (const auto &f : files) {
    put_text(buf, f.path);
    put(buf, f.size);
  }
  return buf;
}

RestartRecord RestartRecord::parse(const char *buf)
{
  RestartRecord record;
  Reader in(buf);
  if (in.get<std::uint64_t>() == kMagic) {
    record.step = in.get<std::int64_t>();
    record.folder = in.text(in.get<std::int64_t>());
    const auto nfiles = in.get<std::int64_t>();
    if (nfiles < 0 || nfiles > kMaxFiles)
      throw std::runtime_error("a record of " + std::to_string(nfiles) + " files");
    for (std::int64_t i = 0; i < nfiles; ++i) {
      File f;
      f.path = in.text(in.get<std::int64_t>());
      f.size = in.get<std::int64_t>();
      record.files.push_back(f);
    }
    return record;
  }
  // version 1: [step][int nfiles]{[int length][path][size]}, absolute paths
  Reader v1(buf);
  record.version = 1;
  record.step = v1.get<std::int64_t>();
  const int nfiles = v1.get<int>();
  if (nfiles < 0 || nfiles > kMaxFiles) throw std::runtime_error("a record of " + std::to_string(nfiles) + " files");
  for (int i = 0; i < nfiles; ++i) {
    File f;
    f.path = v1.text(v1.get<int>());
    f.size = v1.get<std::int64_t>();
    record.files.push_back(f);
  }
  return record;
}

/* ---------------------------------------------------------------------- */

std::string current_folder()
{
  return canonical_as_far_as_possible(fs::current_path().string()).string();
}

bool lies_inside(const std::string &path, const std::string &folder)
{
  const fs::path p = canonical_as_far_as_possible(path), dir = canonical_as_far_as_possible(folder);
  const fs::path rel = p.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != ".." && rel != ".";
}

std::string path_for_record(const std::string &path, const std::string &folder)
{
  const fs::path p = canonical_as_far_as_possible(path);
  if (lies_inside(p.string(), folder)) return p.lexically_relative(canonical_as_far_as_possible(folder)).string();
  return p.string();
}

std::string resolve_recorded_path(const std::string &stored, const std::string &folder)
{
  const fs::path p(stored);
  return (p.is_absolute() ? p : fs::path(folder) / p).lexically_normal().string();
}

std::int64_t file_size_or_missing(const std::string &path)
{
  std::error_code ec;
  const auto size = fs::file_size(fs::path(path), ec);
  return ec ? -1 : static_cast<std::int64_t>(size);
}

std::string cut_keeping_tail(const std::string &path, std::int64_t size, std::int64_t step)
{
  const std::int64_t now = file_size_or_missing(path);
  if (now < 0) throw std::runtime_error(path + " does not exist");
  if (now <= size) return {};
  const std::string kept = copy_range_to_new_file(path, size, now, step);
  std::error_code ec;
  fs::resize_file(fs::path(path), static_cast<std::uintmax_t>(size), ec);
  if (ec) throw std::runtime_error("cannot cut " + path + " back to " + std::to_string(size) + " bytes: " + ec.message() +
                                   " (its tail is also in " + kept + ")");
  return kept;
}

std::vector<std::string> kept_tails(const std::string &path)
{
  std::vector<std::string> out;
  const fs::path p(path);
  std::error_code ec;
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  const std::string prefix = p.filename().string() + ".cut.";
  for (const auto &entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) out.push_back(entry.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

/* ---------------------------------------------------------------------- */

ResumePlan plan_resume(const RestartRecord &record, const std::string &here)
{
  ResumePlan plan;
  const std::string writer = record.version >= 2 ? record.folder : std::string("(not recorded)");
  for (const auto &f : record.files) {
    if (f.size < 0) continue;
    const std::string path = resolve_recorded_path(f.path, here);
    const std::int64_t now = file_size_or_missing(path);
    if (record.folder != here && !lies_inside(path, here)) {
      plan.problems += "\n  " + path + " lies outside this folder (" + here + ") and belongs to the run in " +
                       writer + ": a restart touches only its own run's files";
    } else if (now < f.size) {
      plan.problems += "\n  " + path + (now < 0 ? " is missing" : " holds " + std::to_string(now) + " bytes") +
                       " but held " + std::to_string(f.size) + " bytes at step " + std::to_string(record.step) +
                       " (written by the run in " + writer + ")";
      const auto tails = kept_tails(path);
      if (!tails.empty())
        plan.problems += "; an earlier restart kept what it cut in " + tails.back() + ": append it back (cat " +
                         tails.back() + " >> " + path + ")";
    } else {
      plan.cuts.push_back({path, f});
    }
  }
  return plan;
}

void ResumePlan::keep_outputs(const std::vector<std::string> &outputs, const std::string &plumed_file)
{
  std::vector<Cut> kept;
  for (const auto &cut : cuts) {
    if (std::find(outputs.begin(), outputs.end(), canonical_as_far_as_possible(cut.path).string()) != outputs.end())
      kept.push_back(cut);
    else
      problems += "\n  " + cut.path + " is in the restart record but " + plumed_file + " does not write it";
  }
  cuts = kept;
}

}    // namespace latentcv
