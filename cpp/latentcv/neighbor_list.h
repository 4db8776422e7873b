// O(N) Verlet list over molecule centres, built with cell lists in fractional space and
// reused across steps until something moved more than half the skin (docs/model-contract.md).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace latentcv {

using Cell = std::array<double, 9>;  // row-major; rows are the lattice vectors a, b, c

// Directed pairs (i, j, n) with |c_j + n·H − c_i| < cutoff, both directions listed.
struct PairList {
  std::vector<int64_t> first;   // [P] i
  std::vector<int64_t> second;  // [P] j
  std::vector<double> shift;    // [P*3] integer image offsets n, in lattice vectors
  size_t size() const { return first.size(); }
};

// Build a full pair list of `centers` ([M*3], Cartesian) in the periodic `cell` with a
// cell list: O(M) for a fixed density; handles cutoffs beyond half the box (several
// images) and triclinic cells. Throws latentcv::Error for a degenerate cell.
// Memory is O(M) whatever the box: a sparse box gets fewer, wider bins (at most
// kMaxBinsPerCentre per centre).
PairList build_pair_list(const std::vector<double>& centers, const Cell& cell, double cutoff);

constexpr long kMaxBinsPerCentre = 8;

// The distance between opposite faces of the cell along each lattice direction.
std::array<double, 3> cell_widths(const Cell& cell);

// Keeps a pair list built with cutoff + skin and says when it must be rebuilt.
class VerletList {
 public:
  VerletList(double cutoff, double skin) : cutoff_(cutoff), skin_(skin) {}
  // Rebuilds if needed; returns true when it did. Throws latentcv::Error when the cell is
  // narrower than the cutoff along a lattice direction (a molecule would see its own images).
  bool update(const std::vector<double>& centers, const Cell& cell);
  const PairList& pairs() const { return pairs_; }
  long rebuilds() const { return rebuilds_; }
  double cutoff() const { return cutoff_; }
  double skin() const { return skin_; }

 private:
  bool needs_rebuild(const std::vector<double>& centers, const Cell& cell) const;
  double cutoff_, skin_;
  PairList pairs_;
  std::vector<double> centers_at_build_;
  Cell cell_at_build_{};
  std::array<double, 3> max_abs_shift_{};  // largest |n_k| in the list, per lattice vector
  long rebuilds_ = 0;
  bool built_ = false;
};

}  // namespace latentcv
