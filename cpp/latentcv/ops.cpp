// latentcv's own TorchScript operators: fused per-edge kernels of the encoder (angular
// moments, bond-order sums, attention aggregation), forward and analytic backward, on CPU. Registered as torch.ops.latentcv.* by
// the shared library liblatentcv_ops.so, which the C++ core links (so the PLUMED action and
// the Python module have them) and Python loads with torch.ops.load_library
// (cv_models/ops.py). The same functions written with core torch ops (the reference the
// tests compare against) are in cv_models/layers.py. Only first derivatives are exact
// (what the MD forces and training need): a second backward through them raises.
//
//   shell_moments(edge_vec [E,3], rho [E,C], receiver [E], num_nodes, z_coeffs [L+1,K],
//                 xy_column K ints) -> T [num_nodes, C, K]
//     T[i,c,k] = sum_{e: receiver[e]=i} rho[e,c] Y_k(u_e),  u = d / sqrt(|d|^2 + 1e-30),
//     Y_k(u) = (sum_p z_coeffs[p,k] z^p) * W_{xy_column[k]}(x, y),
//     W = [1, Re (x+iy), Im (x+iy), Re (x+iy)^2, Im (x+iy)^2, ...].
//   bond_order_sums(tn [N,C,K], edge_index [2,E], edge_weight [E], degree_of_column K ints,
//                   num_degrees) -> (S1 [N,C,D], S2 [N,C,D])
//     s[e,c,d] = sum_{k of degree d} tn[i,c,k] tn[j,c,k],  (i, j) = edge_index[:, e],
//     S1[i,c,d] = sum_e w_e s[e,c,d],  S2[i,c,d] = sum_e w_e s[e,c,d]^2.
//   attention_aggregate(values [N,H,D], alpha [E,H], edge_index [2,E]) -> [N,H,D]
//     out[i,h,:] = sum_{e: (i, j) = edge_index[:, e]} alpha[e,h] values[j,h,:]
//     (the attention layer's weighted sum of gathered node values, no [E,H,D] tensor).
//   pair_geometry(centers [M,3], cells [B,3,3], node_frame [M], edge_index [2,P],
//                 edge_shift [P,3], cutoff, r_on, rbf_mu, rbf_width)
//       -> (pairs [2,E], kept [E], d [E,3], r [E], w [E], rbf [E,R])
//     The molecule graph's per-pair geometry in one pass: d = c_j + n @ H_b - c_i (b the
//     frame of i), only the E pairs with |d|^2 < cutoff^2 kept (their P indices: kept),
//     r = sqrt(|d|^2 + 1e-30), the quintic switch w(r) from 1 at r_on to 0 at cutoff, and
//     the Gaussian basis rbf_k = exp(-(r - mu_k)^2 / (2 h^2)), mu = rbf_mu [R], h = rbf_width.
//     Differentiable in centers and cells (d, r, w and rbf all feed the gradient).
#include <torch/autograd.h>
#include <torch/library.h>
#include <torch/torch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>
#include <vector>

#include "latentcv/ops.h"

namespace latentcv {

int ops_version() { return kOpsVersion; }

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr double kDirectionEps = 1e-30;  // as the reference: u = d / sqrt(|d|^2 + eps)

void check_cpu(const Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "latentcv ops: ", name,
              " is on ", t.device(), "; the fused kernels run on CPU (the encoder uses its core-torch "
              "path on other devices).");
}

void check_harmonics(const Tensor& z_coeffs, c10::IntArrayRef xy_column) {
  TORCH_CHECK(z_coeffs.dim() == 2 && z_coeffs.size(1) == static_cast<int64_t>(xy_column.size()),
              "latentcv ops: z_coeffs must be [L+1, K] with K = len(xy_column)");
  const int64_t max_m = z_coeffs.size(0) - 1;
  for (int64_t c : xy_column)
    TORCH_CHECK(c >= 0 && c <= 2 * max_m, "latentcv ops: xy_column entries must lie in [0, 2L]");
}

// The harmonics of one bond direction u: Y_k(u) = P_k(z) W_{col_k}(x, y) with the sparse
// z-polynomials P_k (nonzero coefficients only) and W = [1, C1, S1, ..., CL, SL],
// Re/Im (x + i y)^m; with derivatives also P_k'(z) and dW/dx, dW/dy.
template <typename scalar_t>
class Harmonics {
 public:
  Harmonics(const Tensor& z_coeffs, c10::IntArrayRef xy_column)
      : K_(z_coeffs.size(1)), L_(z_coeffs.size(0) - 1), col_(xy_column.begin(), xy_column.end()),
        zp_(L_ + 1), w_(2 * L_ + 1), wx_(2 * L_ + 1), wy_(2 * L_ + 1), pz_(K_), dpz_(K_), y_(K_) {
    auto zc = z_coeffs.to(torch::kFloat64).contiguous();
    const double* z = zc.data_ptr<double>();
    start_.push_back(0);
    for (int64_t k = 0; k < K_; ++k) {
      for (int64_t q = 0; q <= L_; ++q)
        if (z[q * K_ + k] != 0.0) {
          power_.push_back(q);
          coef_.push_back(static_cast<scalar_t>(z[q * K_ + k]));
        }
      start_.push_back(static_cast<int64_t>(power_.size()));
    }
  }

  // Evaluates y() (and, with derivatives, the factors gradient() needs) at unit vector u.
  void set(const scalar_t u[3], bool derivatives) {
    const scalar_t x = u[0], y = u[1], z = u[2];
    zp_[0] = 1;
    for (int64_t q = 1; q <= L_; ++q) zp_[q] = zp_[q - 1] * z;
    w_[0] = 1;
    wx_[0] = wy_[0] = 0;
    scalar_t c = 1, s = 0;  // Re, Im of (x + i y)^(m-1)
    for (int64_t m = 1; m <= L_; ++m) {
      if (derivatives) {  // d/dx (x+iy)^m = m (x+iy)^(m-1), d/dy = i m (x+iy)^(m-1)
        wx_[2 * m - 1] = m * c;
        wx_[2 * m] = m * s;
        wy_[2 * m - 1] = -m * s;
        wy_[2 * m] = m * c;
      }
      const scalar_t cn = x * c - y * s, sn = x * s + y * c;
      c = cn;
      s = sn;
      w_[2 * m - 1] = c;
      w_[2 * m] = s;
    }
    for (int64_t k = 0; k < K_; ++k) {
      scalar_t p = 0, dp = 0;
      for (int64_t t = start_[k]; t < start_[k + 1]; ++t) {
        const int64_t q = power_[t];
        p += coef_[t] * zp_[q];
        if (derivatives && q > 0) dp += q * coef_[t] * zp_[q - 1];
      }
      pz_[k] = p;
      dpz_[k] = dp;
      y_[k] = p * w_[col_[k]];
    }
  }

  const scalar_t* y() const { return y_.data(); }

  // Gradient w.r.t. u of sum_k G_k Y_k(u), after set(u, true).
  void gradient(const scalar_t* G, scalar_t gu[3]) const {
    scalar_t gx = 0, gy = 0, gz = 0;
    for (int64_t k = 0; k < K_; ++k) {
      const int64_t col = col_[k];
      gx += G[k] * pz_[k] * wx_[col];
      gy += G[k] * pz_[k] * wy_[col];
      gz += G[k] * dpz_[k] * w_[col];
    }
    gu[0] = gx;
    gu[1] = gy;
    gu[2] = gz;
  }

 private:
  int64_t K_, L_;
  std::vector<int64_t> col_, start_, power_;
  std::vector<scalar_t> coef_, zp_, w_, wx_, wy_, pz_, dpz_, y_;
};

template <typename scalar_t>
void unit_direction(const scalar_t* d, scalar_t u[3], scalar_t& r) {
  r = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + static_cast<scalar_t>(kDirectionEps));
  for (int a = 0; a < 3; ++a) u[a] = d[a] / r;
}

void check_index(const Tensor& index, int64_t n, const char* name) {
  if (index.numel() == 0) return;
  TORCH_CHECK(index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < n, "latentcv ops: ", name,
              " holds node indices outside [0, ", n, ")");
}

Tensor shell_moments_cpu(const Tensor& edge_vec, const Tensor& rho, const Tensor& receiver, int64_t num_nodes,
                         const Tensor& z_coeffs, c10::IntArrayRef xy_column) {
  check_cpu(edge_vec, "edge_vec");
  check_harmonics(z_coeffs, xy_column);
  TORCH_CHECK(edge_vec.dim() == 2 && edge_vec.size(1) == 3, "latentcv ops: edge_vec must be [E, 3]");
  TORCH_CHECK(rho.dim() == 2 && rho.size(0) == edge_vec.size(0), "latentcv ops: rho must be [E, C]");
  TORCH_CHECK(receiver.dim() == 1 && receiver.size(0) == edge_vec.size(0), "latentcv ops: receiver must be [E]");
  check_index(receiver, num_nodes, "receiver");
  const int64_t E = edge_vec.size(0), C = rho.size(1), K = z_coeffs.size(1);
  auto d = edge_vec.contiguous();
  auto p = rho.to(d.scalar_type()).contiguous();
  auto idx = receiver.to(torch::kLong).contiguous();
  auto out = torch::zeros({num_nodes, C, K}, d.options());
  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "shell_moments", [&] {
    const scalar_t* dv = d.data_ptr<scalar_t>();
    const scalar_t* pv = p.data_ptr<scalar_t>();
    const int64_t* iv = idx.data_ptr<int64_t>();
    scalar_t* ov = out.data_ptr<scalar_t>();
    Harmonics<scalar_t> harm(z_coeffs, xy_column);
    for (int64_t e = 0; e < E; ++e) {
      scalar_t u[3], r;
      unit_direction(dv + 3 * e, u, r);
      harm.set(u, false);
      const scalar_t* y = harm.y();
      scalar_t* oi = ov + iv[e] * C * K;
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t rc = pv[e * C + c];
        scalar_t* o = oi + c * K;
        for (int64_t k = 0; k < K; ++k) o[k] += rc * y[k];
      }
    }
  });
  return out;
}

std::tuple<Tensor, Tensor> shell_moments_backward_cpu(const Tensor& grad, const Tensor& edge_vec, const Tensor& rho,
                                                      const Tensor& receiver, const Tensor& z_coeffs,
                                                      c10::IntArrayRef xy_column) {
  check_cpu(grad, "grad");
  const int64_t E = edge_vec.size(0), C = rho.size(1), K = z_coeffs.size(1);
  auto d = edge_vec.contiguous();
  auto p = rho.to(d.scalar_type()).contiguous();
  auto g = grad.to(d.scalar_type()).contiguous();
  auto idx = receiver.to(torch::kLong).contiguous();
  auto grad_vec = torch::zeros_like(d);
  auto grad_rho = torch::zeros_like(p);
  const auto z64 = z_coeffs.to(torch::kFloat64).contiguous();  // no tensor op inside the threads
  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "shell_moments_backward", [&] {
    const scalar_t* dv = d.data_ptr<scalar_t>();
    const scalar_t* pv = p.data_ptr<scalar_t>();
    const scalar_t* gv = g.data_ptr<scalar_t>();
    const int64_t* iv = idx.data_ptr<int64_t>();
    scalar_t* gd = grad_vec.data_ptr<scalar_t>();
    scalar_t* gp = grad_rho.data_ptr<scalar_t>();
    // every edge writes only its own gradients: edges run in parallel (torch's intra-op threads)
    at::parallel_for(0, E, 512, [&](int64_t first, int64_t last) {
    Harmonics<scalar_t> harm(z64, xy_column);
    std::vector<scalar_t> G(K);
    for (int64_t e = first; e < last; ++e) {
      const scalar_t* gi = gv + iv[e] * C * K;
      scalar_t u[3], r;
      unit_direction(dv + 3 * e, u, r);
      harm.set(u, true);
      const scalar_t* y = harm.y();
      std::fill(G.begin(), G.end(), scalar_t(0));
      for (int64_t c = 0; c < C; ++c) {  // dL/drho[e,c] = sum_k grad[i,c,k] Y_k; G_k = sum_c grad[i,c,k] rho[e,c]
        const scalar_t* gc = gi + c * K;
        const scalar_t rc = pv[e * C + c];
        scalar_t acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          acc += gc[k] * y[k];
          G[k] += gc[k] * rc;
        }
        gp[e * C + c] = acc;
      }
      scalar_t gu[3];
      harm.gradient(G.data(), gu);
      // u = d / r: du/dd = (I - u u^T) / r
      const scalar_t ug = u[0] * gu[0] + u[1] * gu[1] + u[2] * gu[2];
      for (int a = 0; a < 3; ++a) gd[3 * e + a] = (gu[a] - u[a] * ug) / r;
    }
    });
  });
  return {grad_vec, grad_rho};
}

// Column ranges [start[d], start[d+1]) of each degree d; the columns must be grouped by degree.
std::vector<int64_t> degree_ranges(c10::IntArrayRef degree_of_column, int64_t num_degrees) {
  std::vector<int64_t> start(num_degrees + 1, 0);
  int64_t prev = 0;
  for (int64_t dg : degree_of_column) {
    TORCH_CHECK(dg >= 0 && dg < num_degrees, "latentcv ops: degree_of_column entries must lie in [0, num_degrees)");
    TORCH_CHECK(dg >= prev, "latentcv ops: degree_of_column must be sorted (columns grouped by degree)");
    prev = dg;
    ++start[dg + 1];
  }
  for (int64_t d = 0; d < num_degrees; ++d) start[d + 1] += start[d];
  return start;
}

// s[c*D + d] = sum over the columns k of degree d of a[c*K + k] b[c*K + k]
template <typename scalar_t>
inline void degree_dots(const scalar_t* a, const scalar_t* b, int64_t C, int64_t K, const std::vector<int64_t>& start,
                        scalar_t* s) {
  const int64_t D = static_cast<int64_t>(start.size()) - 1;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t d = 0; d < D; ++d) {
      scalar_t acc = 0;
      for (int64_t k = start[d]; k < start[d + 1]; ++k) acc += a[c * K + k] * b[c * K + k];
      s[c * D + d] = acc;
    }
}

std::tuple<Tensor, Tensor> bond_order_sums_cpu(const Tensor& tn, const Tensor& edge_index, const Tensor& edge_weight,
                                               c10::IntArrayRef degree_of_column, int64_t num_degrees) {
  check_cpu(tn, "tn");
  TORCH_CHECK(tn.dim() == 3 && tn.size(2) == static_cast<int64_t>(degree_of_column.size()),
              "latentcv ops: tn must be [N, C, K] with K = len(degree_of_column)");
  TORCH_CHECK(edge_index.dim() == 2 && edge_index.size(0) == 2, "latentcv ops: edge_index must be [2, E]");
  TORCH_CHECK(edge_weight.dim() == 1 && edge_weight.size(0) == edge_index.size(1), "latentcv ops: edge_weight must be [E]");
  const auto start = degree_ranges(degree_of_column, num_degrees);
  const int64_t N = tn.size(0), C = tn.size(1), K = tn.size(2), D = num_degrees, E = edge_index.size(1);
  check_index(edge_index, N, "edge_index");
  auto t = tn.contiguous();
  auto w = edge_weight.to(t.scalar_type()).contiguous();
  auto ei = edge_index.to(torch::kLong).contiguous();
  auto s1 = torch::zeros({N, C, D}, t.options());
  auto s2 = torch::zeros({N, C, D}, t.options());
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "bond_order_sums", [&] {
    const scalar_t* tv = t.data_ptr<scalar_t>();
    const scalar_t* wv = w.data_ptr<scalar_t>();
    const int64_t* iv = ei.data_ptr<int64_t>();
    const int64_t* jv = iv + E;
    scalar_t* o1 = s1.data_ptr<scalar_t>();
    scalar_t* o2 = s2.data_ptr<scalar_t>();
    std::vector<scalar_t> s(C * D);
    for (int64_t e = 0; e < E; ++e) {
      const scalar_t we = wv[e];
      if (we == 0) continue;
      const int64_t i = iv[e];
      degree_dots(tv + i * C * K, tv + jv[e] * C * K, C, K, start, s.data());
      for (int64_t cd = 0; cd < C * D; ++cd) {
        o1[i * C * D + cd] += we * s[cd];
        o2[i * C * D + cd] += we * s[cd] * s[cd];
      }
    }
  });
  return {s1, s2};
}

std::tuple<Tensor, Tensor> bond_order_sums_backward_cpu(const Tensor& g1, const Tensor& g2, const Tensor& tn,
                                                        const Tensor& edge_index, const Tensor& edge_weight,
                                                        c10::IntArrayRef degree_of_column, int64_t num_degrees) {
  check_cpu(g1, "grad");
  const auto start = degree_ranges(degree_of_column, num_degrees);
  const int64_t C = tn.size(1), K = tn.size(2), D = num_degrees, E = edge_index.size(1);
  auto t = tn.contiguous();
  auto a1 = g1.to(t.scalar_type()).contiguous();
  auto a2 = g2.to(t.scalar_type()).contiguous();
  auto w = edge_weight.to(t.scalar_type()).contiguous();
  auto ei = edge_index.to(torch::kLong).contiguous();
  auto grad_tn = torch::zeros_like(t);
  auto grad_w = torch::zeros_like(w);
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "bond_order_sums_backward", [&] {
    const scalar_t* tv = t.data_ptr<scalar_t>();
    const scalar_t* g1v = a1.data_ptr<scalar_t>();
    const scalar_t* g2v = a2.data_ptr<scalar_t>();
    const scalar_t* wv = w.data_ptr<scalar_t>();
    const int64_t* iv = ei.data_ptr<int64_t>();
    const int64_t* jv = iv + E;
    scalar_t* gt = grad_tn.data_ptr<scalar_t>();
    scalar_t* gw = grad_w.data_ptr<scalar_t>();
    std::vector<scalar_t> s(C * D);
    for (int64_t e = 0; e < E; ++e) {
      const int64_t i = iv[e], j = jv[e];
      const scalar_t we = wv[e];
      const scalar_t* ti = tv + i * C * K;
      const scalar_t* tj = tv + j * C * K;
      degree_dots(ti, tj, C, K, start, s.data());
      const scalar_t* h1 = g1v + i * C * D;
      const scalar_t* h2 = g2v + i * C * D;
      scalar_t dw = 0;
      for (int64_t cd = 0; cd < C * D; ++cd) {
        dw += h1[cd] * s[cd] + h2[cd] * s[cd] * s[cd];
        s[cd] = we * (h1[cd] + 2 * h2[cd] * s[cd]);  // now d(loss)/d s[e, c, d]
      }
      gw[e] = dw;
      if (we == 0) continue;
      scalar_t* gi = gt + i * C * K;
      scalar_t* gj = gt + j * C * K;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t d = 0; d < D; ++d) {
          const scalar_t a = s[c * D + d];
          for (int64_t k = start[d]; k < start[d + 1]; ++k) {
            gi[c * K + k] += a * tj[c * K + k];
            gj[c * K + k] += a * ti[c * K + k];
          }
        }
    }
  });
  return {grad_tn, grad_w};
}

Tensor attention_aggregate_cpu(const Tensor& values, const Tensor& alpha, const Tensor& edge_index) {
  check_cpu(values, "values");
  TORCH_CHECK(values.dim() == 3, "latentcv ops: values must be [N, H, D]");
  TORCH_CHECK(alpha.dim() == 2 && alpha.size(1) == values.size(1), "latentcv ops: alpha must be [E, H]");
  TORCH_CHECK(edge_index.dim() == 2 && edge_index.size(0) == 2 && edge_index.size(1) == alpha.size(0),
              "latentcv ops: edge_index must be [2, E]");
  const int64_t N = values.size(0), H = values.size(1), D = values.size(2), E = alpha.size(0);
  check_index(edge_index, N, "edge_index");
  auto v = values.contiguous();
  auto a = alpha.to(v.scalar_type()).contiguous();
  auto ei = edge_index.to(torch::kLong).contiguous();
  auto out = torch::zeros_like(v);
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "attention_aggregate", [&] {
    const scalar_t* vv = v.data_ptr<scalar_t>();
    const scalar_t* av = a.data_ptr<scalar_t>();
    const int64_t* iv = ei.data_ptr<int64_t>();
    const int64_t* jv = iv + E;
    scalar_t* ov = out.data_ptr<scalar_t>();
    for (int64_t e = 0; e < E; ++e) {
      scalar_t* oi = ov + iv[e] * H * D;
      const scalar_t* vj = vv + jv[e] * H * D;
      for (int64_t h = 0; h < H; ++h) {
        const scalar_t w = av[e * H + h];
        for (int64_t d = 0; d < D; ++d) oi[h * D + d] += w * vj[h * D + d];
      }
    }
  });
  return out;
}

std::tuple<Tensor, Tensor> attention_aggregate_backward_cpu(const Tensor& grad, const Tensor& values, const Tensor& alpha,
                                                            const Tensor& edge_index) {
  check_cpu(grad, "grad");
  const int64_t H = values.size(1), D = values.size(2), E = alpha.size(0);
  auto v = values.contiguous();
  auto a = alpha.to(v.scalar_type()).contiguous();
  auto g = grad.to(v.scalar_type()).contiguous();
  auto ei = edge_index.to(torch::kLong).contiguous();
  auto grad_values = torch::zeros_like(v);
  auto grad_alpha = torch::zeros_like(a);
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "attention_aggregate_backward", [&] {
    const scalar_t* vv = v.data_ptr<scalar_t>();
    const scalar_t* av = a.data_ptr<scalar_t>();
    const scalar_t* gv = g.data_ptr<scalar_t>();
    const int64_t* iv = ei.data_ptr<int64_t>();
    const int64_t* jv = iv + E;
    scalar_t* gvv = grad_values.data_ptr<scalar_t>();
    scalar_t* gav = grad_alpha.data_ptr<scalar_t>();
    for (int64_t e = 0; e < E; ++e) {
      const scalar_t* gi = gv + iv[e] * H * D;
      const scalar_t* vj = vv + jv[e] * H * D;
      scalar_t* gj = gvv + jv[e] * H * D;
      for (int64_t h = 0; h < H; ++h) {
        const scalar_t w = av[e * H + h];
        scalar_t acc = 0;
        for (int64_t d = 0; d < D; ++d) {
          acc += gi[h * D + d] * vj[h * D + d];
          gj[h * D + d] += w * gi[h * D + d];
        }
        gav[e * H + h] = acc;
      }
    }
  });
  return {grad_values, grad_alpha};
}

// ---- pair geometry: displacement, distance, switch and radial basis of the kept pairs ----

// The quintic switch s(x) = 1 - 10 x^3 + 15 x^4 - 6 x^5, x = (r - r_on) / (cutoff - r_on)
// clamped to [0, 1], and ds/dr (cv_models/graphs.py: switch).
template <typename scalar_t>
inline void quintic_switch(scalar_t r, double cutoff, double r_on, scalar_t& w, scalar_t& dw) {
  const scalar_t span = static_cast<scalar_t>(cutoff - r_on);
  scalar_t x = (r - static_cast<scalar_t>(r_on)) / span;
  if (x <= 0) {
    w = 1;
    dw = 0;
    return;
  }
  if (x >= 1) {
    w = 0;
    dw = 0;
    return;
  }
  const scalar_t x2 = x * x;
  w = 1 - x2 * x * (10 - 15 * x + 6 * x2);
  const scalar_t omx = 1 - x;
  dw = -30 * x2 * omx * omx / span;
}

struct PairGeometryCheck {
  int64_t M, B, P;
};

PairGeometryCheck check_pair_geometry(const Tensor& centers, const Tensor& cells, const Tensor& node_frame,
                                      const Tensor& edge_index, const Tensor& edge_shift, double cutoff, double r_on,
                                      const Tensor& rbf_mu, double rbf_width) {
  check_cpu(centers, "centers");
  TORCH_CHECK(centers.dim() == 2 && centers.size(1) == 3, "latentcv ops: centers must be [M, 3]");
  TORCH_CHECK(cells.dim() == 3 && cells.size(1) == 3 && cells.size(2) == 3, "latentcv ops: cells must be [B, 3, 3]");
  TORCH_CHECK(node_frame.dim() == 1 && node_frame.size(0) == centers.size(0), "latentcv ops: node_frame must be [M]");
  TORCH_CHECK(edge_index.dim() == 2 && edge_index.size(0) == 2, "latentcv ops: edge_index must be [2, P]");
  TORCH_CHECK(edge_shift.dim() == 2 && edge_shift.size(1) == 3 && edge_shift.size(0) == edge_index.size(1),
              "latentcv ops: edge_shift must be [P, 3]");
  TORCH_CHECK(cutoff > 0 && r_on >= 0 && r_on < cutoff, "latentcv ops: need 0 <= r_on < cutoff");
  TORCH_CHECK(rbf_mu.dim() == 1 && rbf_mu.size(0) >= 1 && rbf_width > 0,
              "latentcv ops: need rbf_mu [R] (R >= 1) and rbf_width > 0");
  const int64_t M = centers.size(0), B = cells.size(0);
  check_index(edge_index, M, "edge_index");
  check_index(node_frame, B, "node_frame");
  return {M, B, edge_index.size(1)};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> pair_geometry_cpu(
    const Tensor& centers, const Tensor& cells, const Tensor& node_frame, const Tensor& edge_index,
    const Tensor& edge_shift, double cutoff, double r_on, const Tensor& rbf_mu, double rbf_width) {
  const auto dims = check_pair_geometry(centers, cells, node_frame, edge_index, edge_shift, cutoff, r_on, rbf_mu,
                                        rbf_width);
  auto c = centers.contiguous();
  auto h = cells.to(c.scalar_type()).contiguous();
  auto sh = edge_shift.to(c.scalar_type()).contiguous();
  auto ei = edge_index.to(torch::kLong).contiguous();
  auto fr = node_frame.to(torch::kLong).contiguous();
  const int64_t P = dims.P, R = rbf_mu.size(0);
  auto m = rbf_mu.to(c.scalar_type()).contiguous();
  Tensor pairs, kept, d, r, w, rbf;
  AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "pair_geometry", [&] {
    const scalar_t* cv = c.data_ptr<scalar_t>();
    const scalar_t* hv = h.data_ptr<scalar_t>();
    const scalar_t* sv = sh.data_ptr<scalar_t>();
    const int64_t* iv = ei.data_ptr<int64_t>();
    const int64_t* jv = iv + P;
    const int64_t* fv = fr.data_ptr<int64_t>();
    // pass 1: displacements of all pairs, and which are inside the cutoff
    std::vector<scalar_t> all_d(3 * P);
    std::vector<int64_t> keep;
    keep.reserve(P);
    const scalar_t rc2 = static_cast<scalar_t>(cutoff * cutoff);
    for (int64_t p = 0; p < P; ++p) {
      const int64_t i = iv[p], j = jv[p];
      const scalar_t* hb = hv + 9 * fv[i];
      const scalar_t* n = sv + 3 * p;
      scalar_t* dp = all_d.data() + 3 * p;
      scalar_t r2 = 0;
      for (int a = 0; a < 3; ++a) {
        dp[a] = cv[3 * j + a] + n[0] * hb[a] + n[1] * hb[3 + a] + n[2] * hb[6 + a] - cv[3 * i + a];
        r2 += dp[a] * dp[a];
      }
      if (r2 < rc2) keep.push_back(p);
    }
    // pass 2: the kept pairs' geometry
    const int64_t E = static_cast<int64_t>(keep.size());
    pairs = torch::empty({2, E}, torch::kLong);
    kept = torch::empty({E}, torch::kLong);
    d = torch::empty({E, 3}, c.options());
    r = torch::empty({E}, c.options());
    w = torch::empty({E}, c.options());
    rbf = torch::empty({E, R}, c.options());
    int64_t* pv = pairs.data_ptr<int64_t>();
    int64_t* kv = kept.data_ptr<int64_t>();
    scalar_t* dv = d.data_ptr<scalar_t>();
    scalar_t* rv = r.data_ptr<scalar_t>();
    scalar_t* wv = w.data_ptr<scalar_t>();
    scalar_t* gv = rbf.data_ptr<scalar_t>();
    const scalar_t* mu = m.data_ptr<scalar_t>();
    const scalar_t inv_h = static_cast<scalar_t>(1.0 / rbf_width);
    for (int64_t e = 0; e < E; ++e) {
      const int64_t p = keep[e];
      pv[e] = iv[p];
      pv[E + e] = jv[p];
      kv[e] = p;
      const scalar_t* dp = all_d.data() + 3 * p;
      for (int a = 0; a < 3; ++a) dv[3 * e + a] = dp[a];
      const scalar_t re = std::sqrt(dp[0] * dp[0] + dp[1] * dp[1] + dp[2] * dp[2] + static_cast<scalar_t>(kDirectionEps));
      rv[e] = re;
      scalar_t dw;
      quintic_switch(re, cutoff, r_on, wv[e], dw);
      scalar_t* g = gv + R * e;
      for (int64_t k = 0; k < R; ++k) {
        const scalar_t x = (re - mu[k]) * inv_h;
        g[k] = std::exp(scalar_t(-0.5) * x * x);
      }
    }
  });
  return {pairs, kept, d, r, w, rbf};
}

// Gradients w.r.t. centers [M,3] and cells [B,3,3] from those of d, r, w and rbf (any of
// them may be undefined: no contribution).
using OptionalTensor = std::optional<Tensor>;

std::tuple<Tensor, Tensor> pair_geometry_backward_cpu(const OptionalTensor& grad_d, const OptionalTensor& grad_r,
                                                      const OptionalTensor& grad_w, const OptionalTensor& grad_rbf,
                                                      const Tensor& pairs, const Tensor& kept,
                                                      const Tensor& d, const Tensor& r, const Tensor& rbf,
                                                      const Tensor& edge_shift, const Tensor& node_frame,
                                                      int64_t num_nodes, int64_t num_frames, double cutoff, double r_on,
                                                      const Tensor& rbf_mu, double rbf_width) {
  check_cpu(d, "d");
  const int64_t E = d.size(0), R = rbf.size(1);
  const auto opt = d.options();
  auto defined_or_empty = [&](const OptionalTensor& g) {
    return g.has_value() && g->defined() ? g->to(d.scalar_type()).contiguous() : Tensor();
  };
  auto gd = defined_or_empty(grad_d), gr = defined_or_empty(grad_r), gw = defined_or_empty(grad_w),
       gb = defined_or_empty(grad_rbf);
  auto dc = d.contiguous();
  auto rc = r.contiguous();
  auto bc = rbf.contiguous();
  auto sh = edge_shift.to(d.scalar_type()).contiguous();
  auto pr = pairs.to(torch::kLong).contiguous();
  auto kp = kept.to(torch::kLong).contiguous();
  auto fr = node_frame.to(torch::kLong).contiguous();
  auto mc = rbf_mu.to(d.scalar_type()).contiguous();
  auto grad_centers = torch::zeros({num_nodes, 3}, opt);
  auto grad_cells = torch::zeros({num_frames, 3, 3}, opt);
  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "pair_geometry_backward", [&] {
    const scalar_t* gdv = gd.defined() ? gd.data_ptr<scalar_t>() : nullptr;
    const scalar_t* grv = gr.defined() ? gr.data_ptr<scalar_t>() : nullptr;
    const scalar_t* gwv = gw.defined() ? gw.data_ptr<scalar_t>() : nullptr;
    const scalar_t* gbv = gb.defined() ? gb.data_ptr<scalar_t>() : nullptr;
    const scalar_t* dv = dc.data_ptr<scalar_t>();
    const scalar_t* rv = rc.data_ptr<scalar_t>();
    const scalar_t* bv = bc.data_ptr<scalar_t>();
    const scalar_t* sv = sh.data_ptr<scalar_t>();
    const int64_t* iv = pr.data_ptr<int64_t>();
    const int64_t* jv = iv + E;
    const int64_t* kv = kp.data_ptr<int64_t>();
    const int64_t* fv = fr.data_ptr<int64_t>();
    scalar_t* gc = grad_centers.data_ptr<scalar_t>();
    scalar_t* gh = grad_cells.data_ptr<scalar_t>();
    const scalar_t* mu = mc.data_ptr<scalar_t>();
    const scalar_t inv_h2 = static_cast<scalar_t>(1.0 / (rbf_width * rbf_width));
    for (int64_t e = 0; e < E; ++e) {
      const scalar_t re = rv[e];
      scalar_t g_r = grv ? grv[e] : scalar_t(0);  // dL/dr, all paths through r
      if (gwv) {
        scalar_t w, dw;
        quintic_switch(re, cutoff, r_on, w, dw);
        g_r += gwv[e] * dw;
      }
      if (gbv) {  // d rbf_k / dr = -rbf_k (r - mu_k) / h^2
        const scalar_t* gk = gbv + R * e;
        const scalar_t* bk = bv + R * e;
        scalar_t acc = 0;
        for (int64_t k = 0; k < R; ++k) acc -= gk[k] * bk[k] * (re - mu[k]);
        g_r += acc * inv_h2;
      }
      const scalar_t* de = dv + 3 * e;
      scalar_t g[3];
      for (int a = 0; a < 3; ++a) g[a] = (gdv ? gdv[3 * e + a] : scalar_t(0)) + g_r * de[a] / re;
      const int64_t i = iv[e], j = jv[e];
      const scalar_t* n = sv + 3 * kv[e];
      scalar_t* ghb = gh + 9 * fv[i];
      for (int a = 0; a < 3; ++a) {
        gc[3 * j + a] += g[a];
        gc[3 * i + a] -= g[a];
        for (int b = 0; b < 3; ++b) ghb[3 * b + a] += n[b] * g[a];  // d_a = sum_b n_b H[b, a]
      }
    }
  });
  return {grad_centers, grad_cells};
}

// ---- autograd: first derivatives through the analytic backward kernels -------------------

c10::List<int64_t> to_list(c10::IntArrayRef v) { return c10::List<int64_t>(std::vector<int64_t>(v.begin(), v.end())); }

class ShellMoments : public torch::autograd::Function<ShellMoments> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& edge_vec, const Tensor& rho, const Tensor& receiver,
                        int64_t num_nodes, const Tensor& z_coeffs, c10::IntArrayRef xy_column) {
    static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("latentcv::shell_moments", "").typed<decltype(shell_moments_cpu)>();
    ctx->save_for_backward({edge_vec, rho, receiver, z_coeffs});
    ctx->saved_data["xy_column"] = to_list(xy_column);
    at::AutoDispatchBelowADInplaceOrView guard;
    return op.call(edge_vec, rho, receiver, num_nodes, z_coeffs, xy_column);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::shell_moments_backward", "")
                         .typed<decltype(shell_moments_backward_cpu)>();
    auto saved = ctx->get_saved_variables();
    auto xy = ctx->saved_data["xy_column"].toIntList().vec();
    auto [grad_vec, grad_rho] = op.call(grads[0], saved[0], saved[1], saved[2], saved[3], xy);
    return {grad_vec, grad_rho, Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

class BondOrderSums : public torch::autograd::Function<BondOrderSums> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& tn, const Tensor& edge_index,
                               const Tensor& edge_weight, c10::IntArrayRef degree_of_column, int64_t num_degrees) {
    static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("latentcv::bond_order_sums", "").typed<decltype(bond_order_sums_cpu)>();
    ctx->save_for_backward({tn, edge_index, edge_weight});
    ctx->saved_data["degree_of_column"] = to_list(degree_of_column);
    ctx->saved_data["num_degrees"] = num_degrees;
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [s1, s2] = op.call(tn, edge_index, edge_weight, degree_of_column, num_degrees);
    return {s1, s2};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::bond_order_sums_backward", "")
                         .typed<decltype(bond_order_sums_backward_cpu)>();
    auto saved = ctx->get_saved_variables();
    auto deg = ctx->saved_data["degree_of_column"].toIntList().vec();
    const int64_t nd = ctx->saved_data["num_degrees"].toInt();
    const auto& tn = saved[0];
    Tensor g1 = grads[0].defined() ? grads[0] : torch::zeros({tn.size(0), tn.size(1), nd}, tn.options());
    Tensor g2 = grads[1].defined() ? grads[1] : torch::zeros_like(g1);
    auto [grad_tn, grad_w] = op.call(g1, g2, saved[0], saved[1], saved[2], deg, nd);
    return {grad_tn, Tensor(), grad_w, Tensor(), Tensor()};
  }
};

class AttentionAggregate : public torch::autograd::Function<AttentionAggregate> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& values, const Tensor& alpha, const Tensor& edge_index) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::attention_aggregate", "")
                         .typed<decltype(attention_aggregate_cpu)>();
    ctx->save_for_backward({values, alpha, edge_index});
    at::AutoDispatchBelowADInplaceOrView guard;
    return op.call(values, alpha, edge_index);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::attention_aggregate_backward", "")
                         .typed<decltype(attention_aggregate_backward_cpu)>();
    auto saved = ctx->get_saved_variables();
    auto [grad_values, grad_alpha] = op.call(grads[0], saved[0], saved[1], saved[2]);
    return {grad_values, grad_alpha, Tensor()};
  }
};

Tensor attention_aggregate_autograd(const Tensor& values, const Tensor& alpha, const Tensor& edge_index) {
  return AttentionAggregate::apply(values, alpha, edge_index);
}

Tensor shell_moments_autograd(const Tensor& edge_vec, const Tensor& rho, const Tensor& receiver, int64_t num_nodes,
                              const Tensor& z_coeffs, c10::IntArrayRef xy_column) {
  return ShellMoments::apply(edge_vec, rho, receiver, num_nodes, z_coeffs, xy_column);
}

std::tuple<Tensor, Tensor> bond_order_sums_autograd(const Tensor& tn, const Tensor& edge_index, const Tensor& edge_weight,
                                                    c10::IntArrayRef degree_of_column, int64_t num_degrees) {
  auto out = BondOrderSums::apply(tn, edge_index, edge_weight, degree_of_column, num_degrees);
  return {out[0], out[1]};
}

// The backward kernels are not differentiable themselves: refuse a differentiable call
// (autograd.grad(..., create_graph=True)) instead of returning silently wrong second derivatives.
void refuse_second_derivative(std::initializer_list<Tensor> inputs, const char* op) {
  if (!torch::autograd::GradMode::is_enabled()) return;
  for (const auto& t : inputs)
    TORCH_CHECK(!(t.defined() && t.requires_grad()), "latentcv ops: ", op,
                " has first derivatives only; second derivatives (create_graph=True) are not implemented. "
                "Set fused = False on the AngularMoments layer for the core-torch path.");
}

std::tuple<Tensor, Tensor> shell_moments_backward_autograd(const Tensor& grad, const Tensor& edge_vec, const Tensor& rho,
                                                           const Tensor& receiver, const Tensor& z_coeffs,
                                                           c10::IntArrayRef xy_column) {
  refuse_second_derivative({grad, edge_vec, rho}, "shell_moments");
  at::AutoDispatchBelowADInplaceOrView guard;
  return shell_moments_backward_cpu(grad, edge_vec, rho, receiver, z_coeffs, xy_column);
}

std::tuple<Tensor, Tensor> bond_order_sums_backward_autograd(const Tensor& g1, const Tensor& g2, const Tensor& tn,
                                                             const Tensor& edge_index, const Tensor& edge_weight,
                                                             c10::IntArrayRef degree_of_column, int64_t num_degrees) {
  refuse_second_derivative({g1, g2, tn, edge_weight}, "bond_order_sums");
  at::AutoDispatchBelowADInplaceOrView guard;
  return bond_order_sums_backward_cpu(g1, g2, tn, edge_index, edge_weight, degree_of_column, num_degrees);
}

std::tuple<Tensor, Tensor> attention_aggregate_backward_autograd(const Tensor& grad, const Tensor& values,
                                                                 const Tensor& alpha, const Tensor& edge_index) {
  refuse_second_derivative({grad, values, alpha}, "attention_aggregate");
  at::AutoDispatchBelowADInplaceOrView guard;
  return attention_aggregate_backward_cpu(grad, values, alpha, edge_index);
}

class PairGeometry : public torch::autograd::Function<PairGeometry> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& centers, const Tensor& cells,
                               const Tensor& node_frame, const Tensor& edge_index, const Tensor& edge_shift,
                               double cutoff, double r_on, const Tensor& rbf_mu, double rbf_width) {
    static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("latentcv::pair_geometry", "").typed<decltype(pair_geometry_cpu)>();
    Tensor pairs, kept, d, r, w, rbf;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      std::tie(pairs, kept, d, r, w, rbf) =
          op.call(centers, cells, node_frame, edge_index, edge_shift, cutoff, r_on, rbf_mu, rbf_width);
    }
    ctx->mark_non_differentiable({pairs, kept});
    ctx->save_for_backward({pairs, kept, d, r, rbf, edge_shift, node_frame, rbf_mu});
    ctx->saved_data["num_nodes"] = centers.size(0);
    ctx->saved_data["num_frames"] = cells.size(0);
    ctx->saved_data["cutoff"] = cutoff;
    ctx->saved_data["r_on"] = r_on;
    ctx->saved_data["rbf_width"] = rbf_width;
    return {pairs, kept, d, r, w, rbf};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::pair_geometry_backward", "")
                         .typed<decltype(pair_geometry_backward_cpu)>();
    auto s = ctx->get_saved_variables();
    auto [grad_centers, grad_cells] =
        op.call(OptionalTensor(grads[2]), OptionalTensor(grads[3]), OptionalTensor(grads[4]), OptionalTensor(grads[5]), s[0], s[1], s[2], s[3], s[4], s[5], s[6],
                ctx->saved_data["num_nodes"].toInt(), ctx->saved_data["num_frames"].toInt(),
                ctx->saved_data["cutoff"].toDouble(), ctx->saved_data["r_on"].toDouble(), s[7],
                ctx->saved_data["rbf_width"].toDouble());
    return {grad_centers, grad_cells, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> pair_geometry_autograd(
    const Tensor& centers, const Tensor& cells, const Tensor& node_frame, const Tensor& edge_index,
    const Tensor& edge_shift, double cutoff, double r_on, const Tensor& rbf_mu, double rbf_width) {
  auto o = PairGeometry::apply(centers, cells, node_frame, edge_index, edge_shift, cutoff, r_on, rbf_mu, rbf_width);
  return {o[0], o[1], o[2], o[3], o[4], o[5]};
}

std::tuple<Tensor, Tensor> pair_geometry_backward_autograd(
    const OptionalTensor& grad_d, const OptionalTensor& grad_r, const OptionalTensor& grad_w,
    const OptionalTensor& grad_rbf, const Tensor& pairs,
    const Tensor& kept, const Tensor& d, const Tensor& r, const Tensor& rbf, const Tensor& edge_shift,
    const Tensor& node_frame, int64_t num_nodes, int64_t num_frames, double cutoff, double r_on, const Tensor& rbf_mu,
    double rbf_width) {
  auto value = [](const OptionalTensor& g) { return g.has_value() ? *g : Tensor(); };
  refuse_second_derivative({value(grad_d), value(grad_r), value(grad_w), value(grad_rbf), d, r, rbf}, "pair_geometry");
  at::AutoDispatchBelowADInplaceOrView guard;
  return pair_geometry_backward_cpu(grad_d, grad_r, grad_w, grad_rbf, pairs, kept, d, r, rbf, edge_shift, node_frame,
                                    num_nodes, num_frames, cutoff, r_on, rbf_mu, rbf_width);
}

}  // namespace
}  // namespace latentcv

TORCH_LIBRARY(latentcv, m) {
  m.def("shell_moments(Tensor edge_vec, Tensor rho, Tensor receiver, int num_nodes, Tensor z_coeffs, int[] xy_column) -> Tensor");
  m.def("shell_moments_backward(Tensor grad, Tensor edge_vec, Tensor rho, Tensor receiver, Tensor z_coeffs, int[] xy_column) -> (Tensor, Tensor)");
  m.def("bond_order_sums(Tensor tn, Tensor edge_index, Tensor edge_weight, int[] degree_of_column, int num_degrees) -> (Tensor, Tensor)");
  m.def("attention_aggregate(Tensor values, Tensor alpha, Tensor edge_index) -> Tensor");
  m.def("attention_aggregate_backward(Tensor grad, Tensor values, Tensor alpha, Tensor edge_index) -> (Tensor, Tensor)");
  m.def("pair_geometry(Tensor centers, Tensor cells, Tensor node_frame, Tensor edge_index, Tensor edge_shift, float cutoff, float r_on, Tensor rbf_mu, float rbf_width) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("pair_geometry_backward(Tensor? grad_d, Tensor? grad_r, Tensor? grad_w, Tensor? grad_rbf, Tensor pairs, Tensor kept, Tensor d, Tensor r, Tensor rbf, Tensor edge_shift, Tensor node_frame, int num_nodes, int num_frames, float cutoff, float r_on, Tensor rbf_mu, float rbf_width) -> (Tensor, Tensor)");
  m.def("bond_order_sums_backward(Tensor grad_s1, Tensor grad_s2, Tensor tn, Tensor edge_index, Tensor edge_weight, int[] degree_of_column, int num_degrees) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(latentcv, CPU, m) {
  m.impl("shell_moments", &latentcv::shell_moments_cpu);
  m.impl("shell_moments_backward", &latentcv::shell_moments_backward_cpu);
  m.impl("bond_order_sums", &latentcv::bond_order_sums_cpu);
  m.impl("bond_order_sums_backward", &latentcv::bond_order_sums_backward_cpu);
  m.impl("attention_aggregate", &latentcv::attention_aggregate_cpu);
  m.impl("attention_aggregate_backward", &latentcv::attention_aggregate_backward_cpu);
  m.impl("pair_geometry", &latentcv::pair_geometry_cpu);
  m.impl("pair_geometry_backward", &latentcv::pair_geometry_backward_cpu);
}

TORCH_LIBRARY_IMPL(latentcv, Autograd, m) {
  m.impl("shell_moments", &latentcv::shell_moments_autograd);
  m.impl("bond_order_sums", &latentcv::bond_order_sums_autograd);
  m.impl("shell_moments_backward", &latentcv::shell_moments_backward_autograd);
  m.impl("bond_order_sums_backward", &latentcv::bond_order_sums_backward_autograd);
  m.impl("attention_aggregate", &latentcv::attention_aggregate_autograd);
  m.impl("attention_aggregate_backward", &latentcv::attention_aggregate_backward_autograd);
  m.impl("pair_geometry", &latentcv::pair_geometry_autograd);
  m.impl("pair_geometry_backward", &latentcv::pair_geometry_backward_autograd);
}
