// latentcv operator pair_geometry (schema: ops/library.cpp): the molecule graph's per-pair
// geometry, forward and analytic backward on CPU.
//
//   pair_geometry(centers [M,3], cells [B,3,3], node_frame [M], edge_index [2,P],
//                 edge_shift [P,3], cutoff, r_on, rbf_mu, rbf_width)
//       -> (pairs [2,E], kept [E], d [E,3], r [E], w [E], rbf [E,R])
//     The molecule graph's per-pair geometry in one pass: d = c_j + n @ H_b - c_i (b the
//     frame of i), only the E pairs with |d|^2 < cutoff^2 kept (their P indices: kept),
//     r = sqrt(|d|^2 + 1e-30), the quintic switch w(r) from 1 at r_on to 0 at cutoff, and
//     the Gaussian basis rbf_k = exp(-(r - mu_k)^2 / (2 h^2)), mu = rbf_mu [R], h = rbf_width.
//     Differentiable in centers and cells (d, r, w and rbf all feed the gradient).
#include <torch/autograd.h>
#include "latentcv/ops/common.h"

#include <cmath>
#include <tuple>

namespace latentcv::ops {
namespace {

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

void check_pair_geometry(const Tensor& centers, const Tensor& cells, const Tensor& node_frame,
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
}

// Pass 1: the displacement d = c_j + n @ H_b - c_i of every pair (3 per pair in all_d), and
// the pairs inside the cutoff.
template <typename scalar_t>
std::vector<int64_t> displacements(const Tensor& c, const Tensor& h, const Tensor& sh, const Tensor& ei,
                                   const Tensor& fr, double cutoff, std::vector<scalar_t>& all_d) {
  const int64_t P = ei.size(1);
  const scalar_t* cv = c.data_ptr<scalar_t>();
  const scalar_t* hv = h.data_ptr<scalar_t>();
  const scalar_t* sv = sh.data_ptr<scalar_t>();
  const int64_t* iv = ei.data_ptr<int64_t>();
  const int64_t* jv = iv + P;
  const int64_t* fv = fr.data_ptr<int64_t>();
  all_d.assign(3 * P, scalar_t(0));
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
  return keep;
}

using PairGeometryOutputs = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

// Pass 2: the kept pairs' indices (pairs, kept), d, r, w and rbf.
template <typename scalar_t>
PairGeometryOutputs kept_geometry(const std::vector<int64_t>& keep, const std::vector<scalar_t>& all_d,
                                  const Tensor& ei, const Tensor& m, const torch::TensorOptions& opt, double cutoff,
                                  double r_on, double rbf_width) {
  const int64_t E = static_cast<int64_t>(keep.size()), R = m.size(0);
  const int64_t* iv = ei.data_ptr<int64_t>();
  const int64_t* jv = iv + ei.size(1);
  Tensor pairs = torch::empty({2, E}, torch::kLong), kept = torch::empty({E}, torch::kLong);
  Tensor d = torch::empty({E, 3}, opt), r = torch::empty({E}, opt), w = torch::empty({E}, opt);
  Tensor rbf = torch::empty({E, R}, opt);
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
      g[k] = scalar_t(-0.5) * x * x;  // exponentiated below, all at once
    }
  }
  rbf.exp_();  // ATen's vectorised exp: ~10x faster than a scalar std::exp per element
  return {pairs, kept, d, r, w, rbf};
}

PairGeometryOutputs pair_geometry_cpu(const Tensor& centers, const Tensor& cells, const Tensor& node_frame,
                                      const Tensor& edge_index, const Tensor& edge_shift, double cutoff, double r_on,
                                      const Tensor& rbf_mu, double rbf_width) {
  check_pair_geometry(centers, cells, node_frame, edge_index, edge_shift, cutoff, r_on, rbf_mu, rbf_width);
  auto c = centers.contiguous();
  auto h = cells.to(c.scalar_type()).contiguous();
  auto sh = edge_shift.to(c.scalar_type()).contiguous();
  auto ei = edge_index.to(torch::kLong).contiguous();
  auto fr = node_frame.to(torch::kLong).contiguous();
  auto m = rbf_mu.to(c.scalar_type()).contiguous();
  PairGeometryOutputs out;
  AT_DISPATCH_FLOATING_TYPES(c.scalar_type(), "pair_geometry", [&] {
    std::vector<scalar_t> all_d;
    const std::vector<int64_t> keep = displacements<scalar_t>(c, h, sh, ei, fr, cutoff, all_d);
    out = kept_geometry<scalar_t>(keep, all_d, ei, m, c.options(), cutoff, r_on, rbf_width);
  });
  return out;
}

// The gradients of the forward outputs d, r, w, rbf (nullptr: undefined, no contribution).
template <typename scalar_t>
struct OutputGrads {
  const scalar_t *d, *r, *w, *rbf;
};

// dL/dr of kept pair e, through every path: r itself, the switch w(r), the radial basis rbf(r).
template <typename scalar_t>
scalar_t grad_of_r(const OutputGrads<scalar_t>& g, int64_t e, scalar_t re, const scalar_t* rbf_e, const scalar_t* mu,
                   int64_t R, double cutoff, double r_on, scalar_t inv_h2) {
  scalar_t g_r = g.r ? g.r[e] : scalar_t(0);
  if (g.w) {
    scalar_t w, dw;
    quintic_switch(re, cutoff, r_on, w, dw);
    g_r += g.w[e] * dw;
  }
  if (g.rbf) {  // d rbf_k / dr = -rbf_k (r - mu_k) / h^2
    const scalar_t* gk = g.rbf + R * e;
    scalar_t acc = 0;
    for (int64_t k = 0; k < R; ++k) acc -= gk[k] * rbf_e[k] * (re - mu[k]);
    g_r += acc * inv_h2;
  }
  return g_r;
}

// Each kept pair's gradient w.r.t. d, added to its two centres and to the cell of its frame.
template <typename scalar_t>
void scatter_pair_gradients(const OutputGrads<scalar_t>& g, const Tensor& d, const Tensor& r, const Tensor& rbf,
                            const Tensor& sh, const Tensor& pr, const Tensor& kp, const Tensor& fr, const Tensor& mc,
                            double cutoff, double r_on, double rbf_width, Tensor& grad_centers, Tensor& grad_cells) {
  const int64_t E = d.size(0), R = rbf.size(1);
  const scalar_t* dv = d.data_ptr<scalar_t>();
  const scalar_t* rv = r.data_ptr<scalar_t>();
  const scalar_t* bv = rbf.data_ptr<scalar_t>();
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
    const scalar_t g_r = grad_of_r(g, e, re, bv + R * e, mu, R, cutoff, r_on, inv_h2);
    const scalar_t* de = dv + 3 * e;
    scalar_t ge[3];
    for (int a = 0; a < 3; ++a) ge[a] = (g.d ? g.d[3 * e + a] : scalar_t(0)) + g_r * de[a] / re;
    const int64_t i = iv[e], j = jv[e];
    const scalar_t* n = sv + 3 * kv[e];
    scalar_t* ghb = gh + 9 * fv[i];
    for (int a = 0; a < 3; ++a) {
      gc[3 * j + a] += ge[a];
      gc[3 * i + a] -= ge[a];
      for (int b = 0; b < 3; ++b) ghb[3 * b + a] += n[b] * ge[a];  // d_a = sum_b n_b H[b, a]
    }
  }
}

// Gradients w.r.t. centers [M,3] and cells [B,3,3] from those of d, r, w and rbf (any of
// them may be undefined: no contribution).
std::tuple<Tensor, Tensor> pair_geometry_backward_cpu(const OptionalTensor& grad_d, const OptionalTensor& grad_r,
                                                      const OptionalTensor& grad_w, const OptionalTensor& grad_rbf,
                                                      const Tensor& pairs, const Tensor& kept,
                                                      const Tensor& d, const Tensor& r, const Tensor& rbf,
                                                      const Tensor& edge_shift, const Tensor& node_frame,
                                                      int64_t num_nodes, int64_t num_frames, double cutoff, double r_on,
                                                      const Tensor& rbf_mu, double rbf_width) {
  check_cpu(d, "d");
  auto defined_or_empty = [&](const OptionalTensor& g) {
    return g.has_value() && g->defined() ? g->to(d.scalar_type()).contiguous() : Tensor();
  };
  auto gd = defined_or_empty(grad_d), gr = defined_or_empty(grad_r), gw = defined_or_empty(grad_w),
       gb = defined_or_empty(grad_rbf);
  auto sh = edge_shift.to(d.scalar_type()).contiguous();
  auto pr = pairs.to(torch::kLong).contiguous();
  auto kp = kept.to(torch::kLong).contiguous();
  auto fr = node_frame.to(torch::kLong).contiguous();
  auto mc = rbf_mu.to(d.scalar_type()).contiguous();
  auto grad_centers = torch::zeros({num_nodes, 3}, d.options());
  auto grad_cells = torch::zeros({num_frames, 3, 3}, d.options());
  AT_DISPATCH_FLOATING_TYPES(d.scalar_type(), "pair_geometry_backward", [&] {
    auto view = [](const Tensor& t) { return t.defined() ? t.data_ptr<scalar_t>() : nullptr; };
    const OutputGrads<scalar_t> g{view(gd), view(gr), view(gw), view(gb)};
    scatter_pair_gradients(g, d.contiguous(), r.contiguous(), rbf.contiguous(), sh, pr, kp, fr, mc, cutoff, r_on,
                           rbf_width, grad_centers, grad_cells);
  });
  return {grad_centers, grad_cells};
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
  static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::pair_geometry_backward", "")
                         .typed<decltype(pair_geometry_backward_cpu)>();
  return op.call(grad_d, grad_r, grad_w, grad_rbf, pairs, kept, d, r, rbf, edge_shift, node_frame,
                                    num_nodes, num_frames, cutoff, r_on, rbf_mu, rbf_width);
}

}  // namespace
}  // namespace latentcv::ops

TORCH_LIBRARY_IMPL(latentcv, CPU, m) {
  m.impl("pair_geometry", &latentcv::ops::pair_geometry_cpu);
  m.impl("pair_geometry_backward", &latentcv::ops::pair_geometry_backward_cpu);
}

TORCH_LIBRARY_IMPL(latentcv, Autograd, m) {
  m.impl("pair_geometry", &latentcv::ops::pair_geometry_autograd);
  m.impl("pair_geometry_backward", &latentcv::ops::pair_geometry_backward_autograd);
}
