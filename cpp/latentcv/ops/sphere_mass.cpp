// latentcv operator sphere_mass (schema: ops/library.cpp): the pair sum of LargestNucleus
// (cv_models/layers/largest_nucleus.py), forward and analytic backward on CPU.
//
//   sphere_mass(share_weight u [a], centers x [a,3], cell [3,3] (rows a, b, c), radius, ramp)
//       -> mass [a]
//     mass_i = sum_j u_j g(r_ij), j = i included, over the minimum image d = x_j - x_i - n @ cell,
//     n = round((x_j - x_i) @ inv(cell)) (LargestNucleus.frame's formula), r = sqrt(|d|^2 +
//     1e-12) (as the reference: kSphereEps); g = 1 up to radius - ramp, then
//     0.5 (1 + cos(pi (r - radius + ramp) / ramp)), 0 from radius on. Each pair i < j is visited
//     once, those with r >= radius skipped after the distance; no [a, a] tensor. The backward
//     recomputes the pairs (nothing per pair is stored) and gives the gradients of u, centers
//     and cell (d depends on the cell only through -n @ cell, n fixed; the sum over pairs of
//     -n (x) dL/dd is taken as one over molecules and the pairs' d (x) dL/dd: cell_gradient).
//
// Computed in double whatever the inputs' dtype (float32 or float64: the mass and gradients are
// returned in it). The fractional coordinates are wrapped into [0, 1] once per molecule, so that
// a pair's image is round(s_j - s_i) in {-1, 0, 1} per axis: comparisons, no rounding call. Each
// row i runs as loops without branches (the distances; the close pairs' g, by Taylor series),
// which the compiler vectorises, and built also for AVX2/FMA and AVX-512 CPUs (chosen at load
// time); only the compaction of the close pairs and the accumulation are scalar.
#include "latentcv/ops/common.h"

#include <algorithm>
#include <cmath>
#include <tuple>

// The vectorised loops in three versions on x86-64 Linux with GCC >= 12 (function
// multiversioning: the loader picks the widest the CPU has); one version elsewhere.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define LATENTCV_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LATENTCV_VECTOR_CLONES
#endif

namespace latentcv::ops {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kSphereEps = 1e-12;  // as LargestNucleus.frame: r = sqrt(|d|^2 + 1e-12)

// One frame in double: u [a], radius^2, the cell and its inverse, and per axis p the wrapped
// fractional coordinates s[p] [a] in [0, 1] and integers k[p] [a]: (x @ inv(cell))[:, p] = s[p] + k[p].
struct Frame {
  int64_t a = 0;
  double radius2 = 0.0;
  std::vector<double> u, s[3], k[3];
  double cell[3][3], inv[3][3];
};

void invert_cell(Frame& f) {
  const auto& h = f.cell;
  const double c00 = h[1][1] * h[2][2] - h[1][2] * h[2][1], c01 = h[1][2] * h[2][0] - h[1][0] * h[2][2],
               c02 = h[1][0] * h[2][1] - h[1][1] * h[2][0];
  const double det = h[0][0] * c00 + h[0][1] * c01 + h[0][2] * c02;
  TORCH_CHECK(std::isfinite(det) && det != 0.0, "latentcv ops: sphere_mass: the cell is singular");
  const double inv[3][3] = {{c00, h[0][2] * h[2][1] - h[0][1] * h[2][2], h[0][1] * h[1][2] - h[0][2] * h[1][1]},
                            {c01, h[0][0] * h[2][2] - h[0][2] * h[2][0], h[0][2] * h[1][0] - h[0][0] * h[1][2]},
                            {c02, h[0][1] * h[2][0] - h[0][0] * h[2][1], h[0][0] * h[1][1] - h[0][1] * h[1][0]}};
  for (int p = 0; p < 3; ++p)
    for (int q = 0; q < 3; ++q) f.inv[p][q] = inv[p][q] / det;
}

Frame make_frame(const Tensor& u, const Tensor& centers, const Tensor& cell, double radius, double ramp) {
  check_cpu(u, "share_weight");
  check_cpu(centers, "centers");
  check_cpu(cell, "cell");
  TORCH_CHECK(u.dim() == 1 && u.is_floating_point(), "latentcv ops: sphere_mass: share_weight must be a float [a]");
  TORCH_CHECK(centers.dim() == 2 && centers.size(0) == u.size(0) && centers.size(1) == 3,
              "latentcv ops: sphere_mass: centers must be [a, 3] with a = share_weight's length");
  TORCH_CHECK(cell.dim() == 2 && cell.size(0) == 3 && cell.size(1) == 3, "latentcv ops: sphere_mass: cell must be [3, 3]");
  TORCH_CHECK(centers.scalar_type() == u.scalar_type() && cell.scalar_type() == u.scalar_type(),
              "latentcv ops: sphere_mass: share_weight, centers and cell must have one dtype");
  TORCH_CHECK(radius > 0.0 && ramp > 0.0 && ramp <= radius, "latentcv ops: sphere_mass: needs 0 < ramp <= radius");
  Frame f;
  f.a = u.size(0);
  f.radius2 = radius * radius;
  auto uu = u.to(torch::kDouble).contiguous(), x = centers.to(torch::kDouble).contiguous();
  auto h = cell.to(torch::kDouble).contiguous();
  f.u.assign(uu.data_ptr<double>(), uu.data_ptr<double>() + f.a);
  for (int p = 0; p < 3; ++p)
    for (int q = 0; q < 3; ++q) f.cell[p][q] = h.data_ptr<double>()[3 * p + q];
  invert_cell(f);
  const double* xv = x.data_ptr<double>();
  for (int p = 0; p < 3; ++p) {
    f.s[p].resize(f.a);
    f.k[p].resize(f.a);
    for (int64_t i = 0; i < f.a; ++i) {
      const double raw = xv[3 * i] * f.inv[0][p] + xv[3 * i + 1] * f.inv[1][p] + xv[3 * i + 2] * f.inv[2][p];
      f.k[p][i] = std::floor(raw);
      f.s[p][i] = raw - f.k[p][i];
    }
  }
  return f;
}

// 1/n! with the signs of the Taylor series of cos (even n) and sin (odd n), n <= 21: on
// [0, pi/2] their truncation errors are below 2e-17.
struct Taylor {
  double cos[11] = {}, sin[11] = {};
};
constexpr Taylor make_taylor() {
  Taylor t;
  double factorial = 1.0;
  for (int n = 0; n <= 21; ++n) {
    if (n > 0) factorial *= n;
    const double c = ((n / 2) % 2 ? -1.0 : 1.0) / factorial;
    (n % 2 ? t.sin : t.cos)[n / 2] = c;
  }
  return t;
}
constexpr Taylor kTaylor = make_taylor();

// g = 1 up to r_on = radius - ramp, then 0.5 (1 + cos(pi x)) = cos^2(z), x = (r - r_on) / ramp,
// z = pi max(x, 0) / 2 (x < 1: only pairs within the radius come here). Without branches (cos
// and sin of z by their Taylor series; max(x, 0) = (x + |x|) / 2), so that the compiler
// vectorises the loops; exactly 1 and 0 on the plateau.
struct Step {
  double r_on, ramp;
};

// over n pairs: r2 [n] -> g [n]
LATENTCV_VECTOR_CLONES void step_g(const Step& step, const double* __restrict r2, double* __restrict g, int64_t n) {
  const double r_on = step.r_on, inv_ramp = 1.0 / step.ramp;
  for (int64_t c = 0; c < n; ++c) {
    const double x = (std::sqrt(r2[c]) - r_on) * inv_ramp;
    const double z = 0.25 * kPi * (x + std::fabs(x)), w = z * z;
    double cz = kTaylor.cos[10];
    for (int k = 9; k >= 0; --k) cz = cz * w + kTaylor.cos[k];
    g[c] = cz * cz;
  }
}

// over n pairs: r2 [n] -> g [n], dg/dr / r [n]
LATENTCV_VECTOR_CLONES void step_g_dg(const Step& step, const double* __restrict r2, double* __restrict g,
                                      double* __restrict dg_over_r, int64_t n) {
  const double r_on = step.r_on, inv_ramp = 1.0 / step.ramp, scale = -kPi / step.ramp;
  for (int64_t c = 0; c < n; ++c) {
    const double r = std::sqrt(r2[c]), x = (r - r_on) * inv_ramp;
    const double z = 0.25 * kPi * (x + std::fabs(x)), w = z * z;
    double cz = kTaylor.cos[10], sz = kTaylor.sin[10];
    for (int k = 9; k >= 0; --k) {
      cz = cz * w + kTaylor.cos[k];
      sz = sz * w + kTaylor.sin[k];
    }
    g[c] = cz * cz;
    dg_over_r[c] = scale * cz * (sz * z) / r;
  }
}

// g of the pair j = i (r2 = eps): 1 unless radius - ramp < 1e-6
double self_weight(const Step& step) {
  double r2 = kSphereEps, g;
  step_g(step, &r2, &g, 1);
  return g;
}

inline double round_unit(double f) { return (f > 0.5 ? 1.0 : 0.0) - (f < -0.5 ? 1.0 : 0.0); }  // |f| <= 1

// For the pairs (i, j > i): the minimum image d (per axis) and r2 = |d|^2 + eps. Every array a
// restrict parameter: then the compiler vectorises the loop (no aliasing checks).
LATENTCV_VECTOR_CLONES void image_row(int64_t i, int64_t a, const double (&h)[3][3], const double* __restrict s0,
                                      const double* __restrict s1, const double* __restrict s2,
                                      double* __restrict r2, double* __restrict d0, double* __restrict d1,
                                      double* __restrict d2) {
  const double h00 = h[0][0], h01 = h[0][1], h02 = h[0][2], h10 = h[1][0], h11 = h[1][1], h12 = h[1][2],
               h20 = h[2][0], h21 = h[2][1], h22 = h[2][2];
  const double si0 = s0[i], si1 = s1[i], si2 = s2[i];
  for (int64_t j = i + 1; j < a; ++j) {
    const double f0 = s0[j] - si0, f1 = s1[j] - si1, f2 = s2[j] - si2;  // in [-1, 1]
    const double t0 = f0 - round_unit(f0), t1 = f1 - round_unit(f1), t2 = f2 - round_unit(f2);
    const double e0 = t0 * h00 + t1 * h10 + t2 * h20, e1 = t0 * h01 + t1 * h11 + t2 * h21,
                 e2 = t0 * h02 + t1 * h12 + t2 * h22;
    r2[j] = e0 * e0 + e1 * e1 + e2 * e2 + kSphereEps;
    d0[j] = e0, d1[j] = e1, d2[j] = e2;
  }
}

// Scratch of one row i: for j > i, d (per axis) and r2; then the close pairs (r2 < radius^2),
// compacted: their j, r2, g and (backward) dg/dr / r.
struct Row {
  std::vector<double> d[3], r2, close_r2, g, dg_over_r;
  std::vector<int64_t> close;
  int64_t count = 0;
  explicit Row(int64_t a) : r2(a), close_r2(a), g(a), dg_over_r(a), close(a) {
    for (auto& v : d) v.resize(a);
  }
};

// Row i: its distances, the close pairs compacted without a branch, their g (and dg/dr / r).
void fill_row(const Frame& f, const Step& step, int64_t i, bool derivative, Row& row) {
  image_row(i, f.a, f.cell, f.s[0].data(), f.s[1].data(), f.s[2].data(), row.r2.data(), row.d[0].data(),
            row.d[1].data(), row.d[2].data());
  const double* r2 = row.r2.data();
  int64_t count = 0;
  for (int64_t j = i + 1; j < f.a; ++j) {
    row.close[count] = j;
    row.close_r2[count] = r2[j];
    count += r2[j] < f.radius2;
  }
  row.count = count;
  if (derivative)
    step_g_dg(step, row.close_r2.data(), row.g.data(), row.dg_over_r.data(), count);
  else
    step_g(step, row.close_r2.data(), row.g.data(), count);
}

// mass [a] (zeroed) += the pair sum
void mass_pairs(const Frame& f, const Step& step, double* mass) {
  const double g0 = self_weight(step);
  Row row(f.a);
  for (int64_t i = 0; i < f.a; ++i) {
    fill_row(f, step, i, false, row);
    const double ui = f.u[i];
    double mi = ui * g0;
    for (int64_t c = 0; c < row.count; ++c) {
      const int64_t j = row.close[c];
      mi += f.u[j] * row.g[c];
      mass[j] += ui * row.g[c];
    }
    mass[i] += mi;
  }
}

// dL/dcell = -sum over pairs of N (x) v, N = x_j - x_i - d in cell units (integers): from
// sum_pairs (x_j - x_i) (x) v = sum_m x_m (x) gx_m (x relative to molecule 0, and in cell units)
// and W = sum_pairs d (x) v.
void cell_gradient(const Frame& f, const double* gx, const double (&W)[3][3], double* gh) {
  for (int p = 0; p < 3; ++p)
    for (int q = 0; q < 3; ++q) {
      double acc = 0.0;
      for (int m = 0; m < 3; ++m) acc += f.inv[m][p] * W[m][q];
      for (int64_t i = 1; i < f.a; ++i)
        acc -= ((f.s[p][i] - f.s[p][0]) + (f.k[p][i] - f.k[p][0])) * gx[3 * i + q];
      gh[3 * p + q] = acc;
    }
}

// gu [a] = grad * g0 on entry, gx [a, 3] zeroed; gh [3, 3] written. grad_u_j += grad_i g_ij; a pair
// moves x_j by +v and x_i by -v, v = c d / r, c = (grad_i u_j + grad_j u_i) g'(r); the cell by -N (x) v.
void mass_pairs_backward(const Frame& f, const Step& step, const double* gm, double* gu, double* gx, double* gh) {
  double w00 = 0.0, w11 = 0.0, w22 = 0.0, w01 = 0.0, w02 = 0.0, w12 = 0.0;  // W = sum_pairs d (x) v
  Row row(f.a);
  for (int64_t i = 0; i < f.a; ++i) {
    fill_row(f, step, i, true, row);
    const double *d0 = row.d[0].data(), *d1 = row.d[1].data(), *d2 = row.d[2].data();
    double gui = 0.0, gx0 = 0.0, gx1 = 0.0, gx2 = 0.0;
    for (int64_t c = 0; c < row.count; ++c) {
      const int64_t j = row.close[c];
      gu[j] += gm[i] * row.g[c];
      gui += gm[j] * row.g[c];
      const double cr = (gm[i] * f.u[j] + gm[j] * f.u[i]) * row.dg_over_r[c];
      const double e0 = d0[j], e1 = d1[j], e2 = d2[j], v0 = cr * e0, v1 = cr * e1, v2 = cr * e2;
      gx[3 * j] += v0, gx[3 * j + 1] += v1, gx[3 * j + 2] += v2;
      gx0 -= v0, gx1 -= v1, gx2 -= v2;
      w00 += v0 * e0, w11 += v1 * e1, w22 += v2 * e2, w01 += v0 * e1, w02 += v0 * e2, w12 += v1 * e2;
    }
    gu[i] += gui;
    gx[3 * i] += gx0, gx[3 * i + 1] += gx1, gx[3 * i + 2] += gx2;
  }
  const double W[3][3] = {{w00, w01, w02}, {w01, w11, w12}, {w02, w12, w22}};
  cell_gradient(f, gx, W, gh);
}

Tensor sphere_mass_cpu(const Tensor& share_weight, const Tensor& centers, const Tensor& cell, double radius,
                       double ramp) {
  const Frame f = make_frame(share_weight, centers, cell, radius, ramp);
  auto mass = torch::zeros({f.a}, share_weight.options().dtype(torch::kDouble));
  mass_pairs(f, Step{radius - ramp, ramp}, mass.data_ptr<double>());
  return mass.to(share_weight.scalar_type());
}

std::tuple<Tensor, Tensor, Tensor> sphere_mass_backward_cpu(const Tensor& grad, const Tensor& share_weight,
                                                            const Tensor& centers, const Tensor& cell, double radius,
                                                            double ramp) {
  check_cpu(grad, "grad");
  const Frame f = make_frame(share_weight, centers, cell, radius, ramp);
  TORCH_CHECK(grad.dim() == 1 && grad.size(0) == f.a, "latentcv ops: sphere_mass_backward: grad must be [a]");
  const Step step{radius - ramp, ramp};
  auto gm = grad.to(torch::kDouble).contiguous();
  auto opts = gm.options();
  auto grad_u = gm * self_weight(step), grad_x = torch::zeros({f.a, 3}, opts), grad_cell = torch::zeros({3, 3}, opts);
  mass_pairs_backward(f, step, gm.data_ptr<double>(), grad_u.data_ptr<double>(), grad_x.data_ptr<double>(),
                      grad_cell.data_ptr<double>());
  const auto dtype = share_weight.scalar_type();
  return {grad_u.to(dtype), grad_x.to(dtype), grad_cell.to(dtype)};
}

class SphereMass : public torch::autograd::Function<SphereMass> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& share_weight, const Tensor& centers, const Tensor& cell,
                        double radius, double ramp) {
    static auto op =
        c10::Dispatcher::singleton().findSchemaOrThrow("latentcv::sphere_mass", "").typed<decltype(sphere_mass_cpu)>();
    ctx->save_for_backward({share_weight, centers, cell});
    ctx->saved_data["radius"] = radius;
    ctx->saved_data["ramp"] = ramp;
    at::AutoDispatchBelowADInplaceOrView guard;
    return op.call(share_weight, centers, cell, radius, ramp);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::sphere_mass_backward", "")
                         .typed<decltype(sphere_mass_backward_cpu)>();
    auto s = ctx->get_saved_variables();
    auto [grad_u, grad_x, grad_cell] = op.call(grads[0], s[0], s[1], s[2], ctx->saved_data["radius"].toDouble(),
                                               ctx->saved_data["ramp"].toDouble());
    return {grad_u, grad_x, grad_cell, Tensor(), Tensor()};
  }
};

Tensor sphere_mass_autograd(const Tensor& share_weight, const Tensor& centers, const Tensor& cell, double radius,
                            double ramp) {
  return SphereMass::apply(share_weight, centers, cell, radius, ramp);
}

std::tuple<Tensor, Tensor, Tensor> sphere_mass_backward_autograd(const Tensor& grad, const Tensor& share_weight,
                                                                 const Tensor& centers, const Tensor& cell,
                                                                 double radius, double ramp) {
  refuse_second_derivative({grad, share_weight, centers, cell}, "sphere_mass");
  at::AutoDispatchBelowADInplaceOrView guard;
  static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::sphere_mass_backward", "")
                         .typed<decltype(sphere_mass_backward_cpu)>();
  return op.call(grad, share_weight, centers, cell, radius, ramp);
}

}  // namespace
}  // namespace latentcv::ops

TORCH_LIBRARY_IMPL(latentcv, CPU, m) {
  m.impl("sphere_mass", &latentcv::ops::sphere_mass_cpu);
  m.impl("sphere_mass_backward", &latentcv::ops::sphere_mass_backward_cpu);
}

TORCH_LIBRARY_IMPL(latentcv, Autograd, m) {
  m.impl("sphere_mass", &latentcv::ops::sphere_mass_autograd);
  m.impl("sphere_mass_backward", &latentcv::ops::sphere_mass_backward_autograd);
}
