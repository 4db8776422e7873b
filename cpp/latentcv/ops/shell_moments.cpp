// latentcv operator shell_moments (schema: ops/library.cpp): the angular moments of each
// node's bonds, forward and analytic backward on CPU.
//
//   shell_moments(edge_vec [E,3], rho [E,C], receiver [E], num_nodes, z_coeffs [L+1,K],
//                 xy_column K ints) -> T [num_nodes, C, K]
//     T[i,c,k] = sum_{e: receiver[e]=i} rho[e,c] Y_k(u_e),  u = d / sqrt(|d|^2 + 1e-30),
//     Y_k(u) = (sum_p z_coeffs[p,k] z^p) * W_{xy_column[k]}(x, y),
//     W = [1, Re (x+iy), Im (x+iy), Re (x+iy)^2, Im (x+iy)^2, ...].
#include "latentcv/ops/common.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <tuple>

namespace latentcv::ops {
namespace {

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

Tensor shell_moments_autograd(const Tensor& edge_vec, const Tensor& rho, const Tensor& receiver, int64_t num_nodes,
                              const Tensor& z_coeffs, c10::IntArrayRef xy_column) {
  return ShellMoments::apply(edge_vec, rho, receiver, num_nodes, z_coeffs, xy_column);
}

std::tuple<Tensor, Tensor> shell_moments_backward_autograd(const Tensor& grad, const Tensor& edge_vec, const Tensor& rho,
                                                           const Tensor& receiver, const Tensor& z_coeffs,
                                                           c10::IntArrayRef xy_column) {
  refuse_second_derivative({grad, edge_vec, rho}, "shell_moments");
  at::AutoDispatchBelowADInplaceOrView guard;
  static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::shell_moments_backward", "")
                         .typed<decltype(shell_moments_backward_cpu)>();
  return op.call(grad, edge_vec, rho, receiver, z_coeffs, xy_column);
}

}  // namespace
}  // namespace latentcv::ops

TORCH_LIBRARY_IMPL(latentcv, CPU, m) {
  m.impl("shell_moments", &latentcv::ops::shell_moments_cpu);
  m.impl("shell_moments_backward", &latentcv::ops::shell_moments_backward_cpu);
}

TORCH_LIBRARY_IMPL(latentcv, Autograd, m) {
  m.impl("shell_moments", &latentcv::ops::shell_moments_autograd);
  m.impl("shell_moments_backward", &latentcv::ops::shell_moments_backward_autograd);
}
