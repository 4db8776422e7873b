// latentcv C++ core tests: a minimal harness (no test framework ships with the venv).
// TEST(suite, name) registers a test; EXPECT* record a failure with its file and line and
// go on; main.cpp runs the tests of the suites named on its command line (all without one).
#pragma once

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace latentcv_test {

struct Case {
  std::string suite, name;
  std::function<void()> run;
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

inline int& failures() {
  static int n = 0;
  return n;
}

struct Register {
  Register(const char* suite, const char* name, std::function<void()> run) {
    registry().push_back({suite, name, std::move(run)});
  }
};

// a fresh folder of this process for the files a test writes (removed by the test)
inline std::filesystem::path scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("latentcv_core_tests_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

inline void fail(const char* file, int line, const std::string& what) {
  ++failures();
  std::cerr << file << ":" << line << ": FAILED: " << what << "\n";
}

}  // namespace latentcv_test

#define LATENTCV_CONCAT2(a, b) a##b
#define LATENTCV_CONCAT(a, b) LATENTCV_CONCAT2(a, b)
#define TEST(suite, name)                                                                               \
  static void suite##_##name();                                                                         \
  static const latentcv_test::Register LATENTCV_CONCAT(register_, __LINE__)(#suite, #name, suite##_##name); \
  static void suite##_##name()

// (not CHECK: torch's c10/util/Logging.h defines that)
#define EXPECT(cond)                                             \
  do {                                                           \
    if (!(cond)) latentcv_test::fail(__FILE__, __LINE__, #cond); \
  } while (0)

// |a - b| <= tol
#define EXPECT_NEAR(a, b, tol)                                                                  \
  do {                                                                                         \
    const double a_ = (a), b_ = (b);                                                           \
    if (!(std::abs(a_ - b_) <= (tol))) {                                                       \
      std::ostringstream m_;                                                                   \
      m_.precision(17);                                                                        \
      m_ << #a << " = " << a_ << " vs " << #b << " = " << b_ << " (tolerance " << (tol) << ")"; \
      latentcv_test::fail(__FILE__, __LINE__, m_.str());                                       \
    }                                                                                          \
  } while (0)

// `stmt` throws an exception of type `type` whose what() contains `text`
#define EXPECT_THROWS(stmt, type, text)                                                            \
  do {                                                                                            \
    bool thrown_ = false;                                                                         \
    try {                                                                                         \
      stmt;                                                                                       \
    } catch (const type& e_) {                                                                    \
      thrown_ = true;                                                                             \
      if (std::string(e_.what()).find(text) == std::string::npos)                                 \
        latentcv_test::fail(__FILE__, __LINE__, std::string("message '") + e_.what() + "' lacks '" + \
                                                    (text) + "'");                                \
    }                                                                                             \
    if (!thrown_) latentcv_test::fail(__FILE__, __LINE__, #stmt " did not throw " #type);         \
  } while (0)
