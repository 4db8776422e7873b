// latentcv C++ core tests: the molecule-centre neighbour list (neighbor_list.h) against a
// brute-force search over periodic images, and the Verlet list's rebuild rule.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "check.h"
#include "latentcv/error.h"
#include "latentcv/neighbor_list.h"

using latentcv::Cell;
using latentcv::PairList;

namespace {

using Pair = std::tuple<long, long, int, int, int>;  // i, j, image n

std::vector<Pair> sorted_pairs(const PairList& p) {
  std::vector<Pair> out;
  for (size_t k = 0; k < p.size(); ++k)
    out.emplace_back(p.first[k], p.second[k], static_cast<int>(std::lround(p.shift[3 * k])),
                     static_cast<int>(std::lround(p.shift[3 * k + 1])), static_cast<int>(std::lround(p.shift[3 * k + 2])));
  std::sort(out.begin(), out.end());
  return out;
}

// every (i, j, n) with |c_j + n H - c_i| < cutoff, n searched far enough for any cutoff here
std::vector<Pair> brute_force(const std::vector<double>& c, const Cell& h, double cutoff) {
  std::vector<Pair> out;
  const long m = static_cast<long>(c.size() / 3);
  const int reach = 4;
  for (long i = 0; i < m; ++i)
    for (long j = 0; j < m; ++j)
      for (int n0 = -reach; n0 <= reach; ++n0)
        for (int n1 = -reach; n1 <= reach; ++n1)
          for (int n2 = -reach; n2 <= reach; ++n2) {
            if (i == j && n0 == 0 && n1 == 0 && n2 == 0) continue;
            double r2 = 0.0;
            for (int a = 0; a < 3; ++a) {
              const double d = c[3 * j + a] + n0 * h[a] + n1 * h[3 + a] + n2 * h[6 + a] - c[3 * i + a];
              r2 += d * d;
            }
            if (r2 < cutoff * cutoff) out.emplace_back(i, j, n0, n1, n2);
          }
  std::sort(out.begin(), out.end());
  return out;
}

// m centres at random fractional coordinates in [-0.5, 1.5): many outside the box
std::vector<double> random_centers(const Cell& h, int m, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-0.5, 1.5);
  std::vector<double> c(3 * m);
  for (int i = 0; i < m; ++i) {
    const double s[3] = {u(rng), u(rng), u(rng)};
    for (int a = 0; a < 3; ++a) c[3 * i + a] = s[0] * h[a] + s[1] * h[3 + a] + s[2] * h[6 + a];
  }
  return c;
}

const Cell kTriclinic{4.0, 0.0, 0.0, 1.2, 3.8, 0.0, -0.7, 0.9, 4.2};

}  // namespace

TEST(neighbor_list, matches_brute_force_in_a_triclinic_cell) {
  const auto c = random_centers(kTriclinic, 40, 7);
  for (double cutoff : {0.9, 1.7, 3.1}) {  // 3.1: beyond half the cell, several images of a centre
    const auto fast = sorted_pairs(latentcv::build_pair_list(c, kTriclinic, cutoff));
    const auto slow = brute_force(c, kTriclinic, cutoff);
    EXPECT(!slow.empty());
    EXPECT(fast == slow);
  }
}

TEST(neighbor_list, sparse_box_gets_few_wide_bins) {
  // two centres in a box 1000 cutoffs wide: at most kMaxBinsPerCentre bins each, same pairs
  const Cell h{1000.0, 0.0, 0.0, 0.0, 1000.0, 0.0, 0.0, 0.0, 1000.0};
  const std::vector<double> c{1.0, 1.0, 0.2, 1.5, 1.0, 999.9};  // neighbours across the z face
  const auto fast = sorted_pairs(latentcv::build_pair_list(c, h, 1.0));
  EXPECT(fast == brute_force(c, h, 1.0));
  EXPECT(fast.size() == 2);
}

TEST(neighbor_list, bad_input_is_an_error) {
  const std::vector<double> c{0.0, 0.0, 0.0, 1.0, 0.0, 0.0};
  const Cell flat{4.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0};
  EXPECT_THROWS(latentcv::build_pair_list(c, flat, 1.0), latentcv::Error, "degenerate or missing");
  const Cell box{4.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 4.0};
  std::vector<double> nan_c = c;
  nan_c[4] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROWS(latentcv::build_pair_list(nan_c, box, 1.0), latentcv::Error, "not finite");
  EXPECT_THROWS(latentcv::build_pair_list(c, box, 0.0), latentcv::Error, "cutoff must be positive");
  EXPECT(latentcv::build_pair_list({}, box, 1.0).size() == 0);
}

TEST(neighbor_list, verlet_list_rebuilds_only_past_half_the_skin) {
  const Cell box{6.0, 0.0, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0, 6.0};
  auto c = random_centers(box, 30, 11);
  latentcv::VerletList list(1.5, 0.4);
  EXPECT(list.update(c, box));
  EXPECT(sorted_pairs(list.pairs()) == brute_force(c, box, 1.9));  // built with cutoff + skin
  c[0] += 0.15;  // 2 x 0.15 < skin: the list still holds every pair within the cutoff
  EXPECT(!list.update(c, box));
  c[0] += 0.1;  // 2 x 0.25 >= skin
  EXPECT(list.update(c, box));
  EXPECT(list.rebuilds() == 2);
  Cell strained = box;
  strained[0] += 0.5;  // the box moved: image shifts of 1 box change distances by 0.5
  EXPECT(list.update(c, strained));
}

TEST(neighbor_list, box_narrower_than_the_cutoff_is_an_error) {
  const Cell narrow{6.0, 0.0, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0, 1.2};
  latentcv::VerletList list(1.5, 0.3);
  EXPECT_THROWS(list.update(random_centers(narrow, 10, 3), narrow), latentcv::Error,
               "wide along lattice vector c, less than the model cutoff");
}
