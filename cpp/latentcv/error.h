// latentcv C++ core: the error type, and the one-line summaries of other errors our messages
// quote. Engines (PLUMED, LAMMPS, Python) turn it into their own error mechanism; its
// message always says what to do.
#pragma once
#include <stdexcept>
#include <string>

namespace latentcv {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error("latentcv: " + what) {}
};

// The first line of an exception's text (torch's carry a C++ backtrace after it).
inline std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// The line of a TorchScript traceback that says what went wrong (its last "...Error: ..."
// line, e.g. "RuntimeError: ..."), else the first line.
inline std::string error_line(const std::string& text) {
  std::string found;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (line.find("Error: ") != std::string::npos) found = line;
    start = end + 1;
  }
  const size_t lead = found.find_first_not_of(' ');
  return found.empty() ? first_line(text) : found.substr(lead == std::string::npos ? 0 : lead);
}

}  // namespace latentcv
