#include "latentcv/neighbor_list.h"

#include <algorithm>
#include <cmath>

#include "latentcv/error.h"

namespace latentcv {
namespace {

struct Frame3 {
  double h[3][3];     // rows: lattice vectors
  double inv[3][3];   // inverse of h: frac = r · inv
  double width[3];    // distance between opposite faces, per lattice direction
};

Frame3 make_frame(const Cell& cell) {
  Frame3 f{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) f.h[i][j] = cell[3 * i + j];
  const auto& h = f.h;
  const double det = h[0][0] * (h[1][1] * h[2][2] - h[1][2] * h[2][1]) -
                     h[0][1] * (h[1][0] * h[2][2] - h[1][2] * h[2][0]) +
                     h[0][2] * (h[1][0] * h[2][1] - h[1][1] * h[2][0]);
  if (!(std::abs(det) > 1e-12) || !std::isfinite(det))
    throw Error("the periodic cell is degenerate or missing (volume " + std::to_string(det) +
                "); latentcv needs a periodic box in all three directions.");
  // inverse via cofactors
  f.inv[0][0] = (h[1][1] * h[2][2] - h[1][2] * h[2][1]) / det;
  f.inv[0][1] = (h[0][2] * h[2][1] - h[0][1] * h[2][2]) / det;
  f.inv[0][2] = (h[0][1] * h[1][2] - h[0][2] * h[1][1]) / det;
  f.inv[1][0] = (h[1][2] * h[2][0] - h[1][0] * h[2][2]) / det;
  f.inv[1][1] = (h[0][0] * h[2][2] - h[0][2] * h[2][0]) / det;
  f.inv[1][2] = (h[0][2] * h[1][0] - h[0][0] * h[1][2]) / det;
  f.inv[2][0] = (h[1][0] * h[2][1] - h[1][1] * h[2][0]) / det;
  f.inv[2][1] = (h[0][1] * h[2][0] - h[0][0] * h[2][1]) / det;
  f.inv[2][2] = (h[0][0] * h[1][1] - h[0][1] * h[1][0]) / det;
  // width along lattice direction k = 1 / |column k of inv| (reciprocal vector length)
  for (int k = 0; k < 3; ++k) {
    const double n = std::sqrt(f.inv[0][k] * f.inv[0][k] + f.inv[1][k] * f.inv[1][k] +
                               f.inv[2][k] * f.inv[2][k]);
    f.width[k] = 1.0 / n;
  }
  return f;
}

// A cell list in fractional space: bins along each lattice direction, at least `cutoff`
// wide, searched `reach` bins each side; each centre wrapped into [0,1) and binned.
struct CellList {
  int nbin[3], reach[3];
  std::vector<double> frac;  // [M*3] fractional coordinates wrapped into [0,1)
  std::vector<int> wrap;     // [M*3] the integer image each centre came from
  std::vector<int> bin_of, head, next;
};

void choose_bins(const Frame3& f, double cutoff, size_t m, CellList& cl) {
  int* nbin = cl.nbin;
  for (int k = 0; k < 3; ++k) {
    const double fit = std::min(f.width[k] / cutoff, 1024.0);  // also bounds the int below
    nbin[k] = std::max(1, static_cast<int>(std::floor(fit)));
  }
  // A sparse box would get far more bins than centres: widen the bins (fewer along the
  // direction with the most) until there are at most kMaxBinsPerCentre per centre.
  const long max_bins = std::max<long>(27, kMaxBinsPerCentre * static_cast<long>(m));
  while (static_cast<long>(nbin[0]) * nbin[1] * nbin[2] > max_bins) {
    const int k = nbin[0] >= nbin[1] && nbin[0] >= nbin[2] ? 0 : (nbin[1] >= nbin[2] ? 1 : 2);
    nbin[k] = std::max(1, nbin[k] / 2);
  }
  for (int k = 0; k < 3; ++k) cl.reach[k] = static_cast<int>(std::ceil(cutoff * nbin[k] / f.width[k]));
}

void fill_bins(const Frame3& f, const std::vector<double>& centers, CellList& cl) {
  const size_t m = centers.size() / 3;
  const int* nbin = cl.nbin;
  cl.frac.assign(3 * m, 0.0);
  cl.wrap.assign(3 * m, 0);
  cl.bin_of.assign(m, 0);
  cl.head.assign(static_cast<long>(nbin[0]) * nbin[1] * nbin[2], -1);
  cl.next.assign(m, -1);
  for (size_t i = 0; i < m; ++i) {
    const double* r = &centers[3 * i];
    int b[3];
    for (int k = 0; k < 3; ++k) {
      const double s = r[0] * f.inv[0][k] + r[1] * f.inv[1][k] + r[2] * f.inv[2][k];
      if (!std::isfinite(s))
        throw Error("a molecule centre is not finite (NaN or inf positions?).");
      const double fl = std::floor(s);
      cl.wrap[3 * i + k] = static_cast<int>(fl);
      cl.frac[3 * i + k] = s - fl;
      b[k] = std::min(nbin[k] - 1, static_cast<int>(cl.frac[3 * i + k] * nbin[k]));
    }
    cl.bin_of[i] = (b[0] * nbin[1] + b[1]) * nbin[2] + b[2];
    cl.next[i] = cl.head[cl.bin_of[i]];
    cl.head[cl.bin_of[i]] = static_cast<int>(i);
  }
}

// Bin `j` (j0, j1, j2) seen from centre i through image w: its centres within the cutoff.
void add_pairs_in_bin(size_t i, int j0, int j1, int j2, const int w[3], const Frame3& f, const CellList& cl,
                      double cut2, PairList& out) {
  const int* nbin = cl.nbin;
  const auto& frac = cl.frac;
  const auto& wrap = cl.wrap;
  for (int j = cl.head[(j0 * nbin[1] + j1) * nbin[2] + j2]; j >= 0; j = cl.next[j]) {
    // displacement in fractional space between wrapped centres, plus the image w
    const double ds[3] = {frac[3 * j] + w[0] - frac[3 * i], frac[3 * j + 1] + w[1] - frac[3 * i + 1],
                          frac[3 * j + 2] + w[2] - frac[3 * i + 2]};
    if (static_cast<size_t>(j) == i && w[0] == 0 && w[1] == 0 && w[2] == 0) continue;
    double d[3];
    for (int k = 0; k < 3; ++k) d[k] = ds[0] * f.h[0][k] + ds[1] * f.h[1][k] + ds[2] * f.h[2][k];
    if (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] >= cut2) continue;
    out.first.push_back(static_cast<int64_t>(i));
    out.second.push_back(j);
    // shift relative to the unwrapped centres: c_j + n·H − c_i
    for (int k = 0; k < 3; ++k) out.shift.push_back(static_cast<double>(w[k] + wrap[3 * i + k] - wrap[3 * j + k]));
  }
}

// Every neighbour of centre i, searching `reach` bins each side (across periodic images).
void add_pairs_of(size_t i, const Frame3& f, const CellList& cl, double cut2, PairList& out) {
  const int* nbin = cl.nbin;
  const int bi = cl.bin_of[i];
  const int b[3] = {bi / (nbin[1] * nbin[2]), (bi / nbin[2]) % nbin[1], bi % nbin[2]};
  int w[3], jb[3];
  for (int o0 = -cl.reach[0]; o0 <= cl.reach[0]; ++o0) {
    const int c0 = b[0] + o0;
    w[0] = static_cast<int>(std::floor(static_cast<double>(c0) / nbin[0]));
    jb[0] = c0 - w[0] * nbin[0];
    for (int o1 = -cl.reach[1]; o1 <= cl.reach[1]; ++o1) {
      const int c1 = b[1] + o1;
      w[1] = static_cast<int>(std::floor(static_cast<double>(c1) / nbin[1]));
      jb[1] = c1 - w[1] * nbin[1];
      for (int o2 = -cl.reach[2]; o2 <= cl.reach[2]; ++o2) {
        const int c2 = b[2] + o2;
        w[2] = static_cast<int>(std::floor(static_cast<double>(c2) / nbin[2]));
        jb[2] = c2 - w[2] * nbin[2];
        add_pairs_in_bin(i, jb[0], jb[1], jb[2], w, f, cl, cut2, out);
      }
    }
  }
}

}  // namespace

std::array<double, 3> cell_widths(const Cell& cell) {
  const Frame3 f = make_frame(cell);
  return {f.width[0], f.width[1], f.width[2]};
}

PairList build_pair_list(const std::vector<double>& centers, const Cell& cell, double cutoff) {
  const Frame3 f = make_frame(cell);
  const size_t m = centers.size() / 3;
  PairList out;
  if (m == 0) return out;
  if (!(cutoff > 0.0)) throw Error("the neighbour cutoff must be positive.");
  CellList cl;
  choose_bins(f, cutoff, m, cl);
  fill_bins(f, centers, cl);
  const double cut2 = cutoff * cutoff;
  for (size_t i = 0; i < m; ++i) add_pairs_of(i, f, cl, cut2, out);
  return out;
}

bool VerletList::needs_rebuild(const std::vector<double>& centers, const Cell& cell) const {
  if (!built_ || centers.size() != centers_at_build_.size()) return true;
  double max_disp2 = 0.0;
  for (size_t i = 0; i < centers.size(); i += 3) {
    double d2 = 0.0;
    for (int k = 0; k < 3; ++k) {
      const double d = centers[i + k] - centers_at_build_[i + k];
      d2 += d * d;
    }
    max_disp2 = std::max(max_disp2, d2);
  }
  // A pair distance changes by at most |Δc_i| + |Δc_j| + Σ_k |n_k| |Δa_k|.
  double cell_term = 0.0;
  for (int k = 0; k < 3; ++k) {
    double d2 = 0.0;
    for (int l = 0; l < 3; ++l) {
      const double d = cell[3 * k + l] - cell_at_build_[3 * k + l];
      d2 += d * d;
    }
    cell_term += max_abs_shift_[k] * std::sqrt(d2);
  }
  return 2.0 * std::sqrt(max_disp2) + cell_term >= skin_;
}

bool VerletList::update(const std::vector<double>& centers, const Cell& cell) {
  if (!needs_rebuild(centers, cell)) return false;
  const auto widths = cell_widths(cell);
  for (int k = 0; k < 3; ++k)
    if (widths[k] < cutoff_)
      throw Error("the periodic box is " + std::to_string(widths[k]) + " wide along lattice vector " +
                  std::string(1, "abc"[k]) + ", less than the model cutoff " + std::to_string(cutoff_) +
                  " (model length units): every molecule would see its own periodic images, which the model "
                  "never saw in training. Use a box at least one cutoff wide in every direction (more molecules), "
                  "or check the length units (a model in nm in an Angstrom run reads a box 10x too small).");
  pairs_ = build_pair_list(centers, cell, cutoff_ + skin_);
  centers_at_build_ = centers;
  cell_at_build_ = cell;
  max_abs_shift_ = {0.0, 0.0, 0.0};
  for (size_t p = 0; p < pairs_.size(); ++p)
    for (int k = 0; k < 3; ++k)
      max_abs_shift_[k] = std::max(max_abs_shift_[k], std::abs(pairs_.shift[3 * p + k]));
  built_ = true;
  ++rebuilds_;
  return true;
}

}  // namespace latentcv
