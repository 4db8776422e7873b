// latentcv C++ core tests: runs the suites named on the command line (all when none), one
// line per test; exit status 1 if any check failed. ctest runs one suite per test
// (cpp/CMakeLists.txt); tests/test_cpp_core.py runs ctest from `make test`.
#include <exception>
#include <set>

#include "check.h"

int main(int argc, char** argv) {
  std::set<std::string> suites(argv + 1, argv + argc);
  int ran = 0;
  for (const auto& c : latentcv_test::registry()) {
    if (!suites.empty() && !suites.count(c.suite)) continue;
    const int before = latentcv_test::failures();
    try {
      c.run();
    } catch (const std::exception& e) {
      latentcv_test::fail(__FILE__, __LINE__, c.suite + "." + c.name + " threw: " + e.what());
    }
    std::cout << (latentcv_test::failures() == before ? "ok     " : "FAILED ") << c.suite << "." << c.name << "\n";
    ++ran;
  }
  if (ran == 0) {
    std::cerr << "no test in the suites asked for\n";
    return 1;
  }
  std::cout << ran << " tests, " << latentcv_test::failures() << " failed checks\n";
  return latentcv_test::failures() == 0 ? 0 : 1;
}
