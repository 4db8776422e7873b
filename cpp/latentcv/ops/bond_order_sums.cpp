// latentcv operator bond_order_sums (schema: ops/library.cpp): the weighted sums over a
// node's bonds of the per-degree bond orders and their squares, forward and analytic
// backward on CPU.
//
//   bond_order_sums(tn [N,C,K], edge_index [2,E], edge_weight [E], degree_of_column K ints,
//                   num_degrees) -> (S1 [N,C,D], S2 [N,C,D])
//     s[e,c,d] = sum_{k of degree d} tn[i,c,k] tn[j,c,k],  (i, j) = edge_index[:, e],
//     S1[i,c,d] = sum_e w_e s[e,c,d],  S2[i,c,d] = sum_e w_e s[e,c,d]^2.
#include "latentcv/ops/common.h"

#include <tuple>

namespace latentcv::ops {
namespace {

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

std::tuple<Tensor, Tensor> bond_order_sums_autograd(const Tensor& tn, const Tensor& edge_index, const Tensor& edge_weight,
                                                    c10::IntArrayRef degree_of_column, int64_t num_degrees) {
  auto out = BondOrderSums::apply(tn, edge_index, edge_weight, degree_of_column, num_degrees);
  return {out[0], out[1]};
}

std::tuple<Tensor, Tensor> bond_order_sums_backward_autograd(const Tensor& g1, const Tensor& g2, const Tensor& tn,
                                                             const Tensor& edge_index, const Tensor& edge_weight,
                                                             c10::IntArrayRef degree_of_column, int64_t num_degrees) {
  refuse_second_derivative({g1, g2, tn, edge_weight}, "bond_order_sums");
  at::AutoDispatchBelowADInplaceOrView guard;
  static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::bond_order_sums_backward", "")
                         .typed<decltype(bond_order_sums_backward_cpu)>();
  return op.call(g1, g2, tn, edge_index, edge_weight, degree_of_column, num_degrees);
}

}  // namespace
}  // namespace latentcv::ops

TORCH_LIBRARY_IMPL(latentcv, CPU, m) {
  m.impl("bond_order_sums", &latentcv::ops::bond_order_sums_cpu);
  m.impl("bond_order_sums_backward", &latentcv::ops::bond_order_sums_backward_cpu);
}

TORCH_LIBRARY_IMPL(latentcv, Autograd, m) {
  m.impl("bond_order_sums", &latentcv::ops::bond_order_sums_autograd);
  m.impl("bond_order_sums_backward", &latentcv::ops::bond_order_sums_backward_autograd);
}
