// latentcv operator orientation_invariants (schema: ops/library.cpp): the molecule graph's
// per-pair orientation invariants, forward and analytic backward on CPU.
//
//   orientation_invariants(vq [M,C,8], edge_index [2,E], dh [E,3], y2 [E,5]) -> [E, 5C]
//     per pair e = (i, j) and channel c, with v = vq[:, c, 0:3] (unit vectors) and
//     q = vq[:, c, 3:8] (unit l = 2 tensors as 5 harmonic components), dh the unit pair
//     direction and y2 its l = 2 harmonics: the five blocks of C columns
//       v_i.v_j,  (v_i.dh)(v_j.dh),  q_i.q_j,  q_i.y2,  q_j.y2
//     (HierarchicalEncoder.orientation_invariants_reference), without the [E, C, 8] gathers
//     and the dozens of passes over [E, C, 3] and [E, C, 5] tensors of the core-torch path.
#include "latentcv/ops/common.h"

#include <tuple>

namespace latentcv::ops {
namespace {

constexpr int64_t kWidth = 8;  // per channel: 3 vector components, then 5 l = 2 components

void check_orientation_invariants(const Tensor& vq, const Tensor& edge_index, const Tensor& dh, const Tensor& y2) {
  check_cpu(vq, "vq");
  TORCH_CHECK(vq.dim() == 3 && vq.size(2) == kWidth, "latentcv ops: vq must be [M, C, 8]");
  TORCH_CHECK(edge_index.dim() == 2 && edge_index.size(0) == 2, "latentcv ops: edge_index must be [2, E]");
  const int64_t E = edge_index.size(1);
  TORCH_CHECK(dh.dim() == 2 && dh.size(0) == E && dh.size(1) == 3, "latentcv ops: dh must be [E, 3]");
  TORCH_CHECK(y2.dim() == 2 && y2.size(0) == E && y2.size(1) == 5, "latentcv ops: y2 must be [E, 5]");
  check_index(edge_index, vq.size(0), "edge_index");
}

template <typename scalar_t>
inline scalar_t dot(const scalar_t* a, const scalar_t* b, int n) {
  scalar_t s = 0;
  for (int k = 0; k < n; ++k) s += a[k] * b[k];
  return s;
}

Tensor orientation_invariants_cpu(const Tensor& vq, const Tensor& edge_index, const Tensor& dh, const Tensor& y2) {
  check_orientation_invariants(vq, edge_index, dh, y2);
  const int64_t C = vq.size(1), E = edge_index.size(1);
  auto v = vq.contiguous();
  auto ei = edge_index.to(torch::kLong).contiguous();
  auto u = dh.to(v.scalar_type()).contiguous();
  auto y = y2.to(v.scalar_type()).contiguous();
  auto out = torch::empty({E, 5 * C}, v.options());
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "orientation_invariants", [&] {
    const scalar_t* vv = v.data_ptr<scalar_t>();
    const int64_t* iv = ei.data_ptr<int64_t>();
    const int64_t* jv = iv + E;
    const scalar_t* uv = u.data_ptr<scalar_t>();
    const scalar_t* yv = y.data_ptr<scalar_t>();
    scalar_t* ov = out.data_ptr<scalar_t>();
    for (int64_t e = 0; e < E; ++e) {
      const scalar_t* pi = vv + iv[e] * C * kWidth;
      const scalar_t* pj = vv + jv[e] * C * kWidth;
      const scalar_t* ue = uv + 3 * e;
      const scalar_t* ye = yv + 5 * e;
      scalar_t* o = ov + e * 5 * C;
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* a = pi + c * kWidth;
        const scalar_t* b = pj + c * kWidth;
        o[c] = dot(a, b, 3);
        o[C + c] = dot(a, ue, 3) * dot(b, ue, 3);
        o[2 * C + c] = dot(a + 3, b + 3, 5);
        o[3 * C + c] = dot(a + 3, ye, 5);
        o[4 * C + c] = dot(b + 3, ye, 5);
      }
    }
  });
  return out;
}

// One pair's gradients: into gi, gj (the two molecules' [C, 8] rows of grad_vq) and gu, gy
// (the pair's rows of grad_dh, grad_y2), from g = dL/d(its 5C invariants).
template <typename scalar_t>
void pair_gradients(const scalar_t* pi, const scalar_t* pj, const scalar_t* ue, const scalar_t* ye, const scalar_t* g,
                    int64_t C, scalar_t* gi, scalar_t* gj, scalar_t* gu, scalar_t* gy) {
  for (int64_t c = 0; c < C; ++c) {
    const scalar_t *a = pi + c * kWidth, *b = pj + c * kWidth;
    scalar_t *ga = gi + c * kWidth, *gb = gj + c * kWidth;
    const scalar_t g_vv = g[c], g_vd = g[C + c], g_qq = g[2 * C + c], g_qi = g[3 * C + c], g_qj = g[4 * C + c];
    const scalar_t au = dot(a, ue, 3), bu = dot(b, ue, 3);
    for (int k = 0; k < 3; ++k) {
      ga[k] += g_vv * b[k] + g_vd * bu * ue[k];
      gb[k] += g_vv * a[k] + g_vd * au * ue[k];
      gu[k] += g_vd * (bu * a[k] + au * b[k]);
    }
    for (int k = 0; k < 5; ++k) {
      ga[3 + k] += g_qq * b[3 + k] + g_qi * ye[k];
      gb[3 + k] += g_qq * a[3 + k] + g_qj * ye[k];
      gy[k] += g_qi * a[3 + k] + g_qj * b[3 + k];
    }
  }
}

std::tuple<Tensor, Tensor, Tensor> orientation_invariants_backward_cpu(const Tensor& grad, const Tensor& vq,
                                                                       const Tensor& edge_index, const Tensor& dh,
                                                                       const Tensor& y2) {
  check_cpu(grad, "grad");
  const int64_t C = vq.size(1), E = edge_index.size(1);
  auto v = vq.contiguous();
  auto ei = edge_index.to(torch::kLong).contiguous();
  auto u = dh.to(v.scalar_type()).contiguous();
  auto y = y2.to(v.scalar_type()).contiguous();
  auto g = grad.to(v.scalar_type()).contiguous();
  auto grad_vq = torch::zeros_like(v);
  auto grad_dh = torch::zeros_like(u);
  auto grad_y2 = torch::zeros_like(y);
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "orientation_invariants_backward", [&] {
    const scalar_t* vv = v.data_ptr<scalar_t>();
    const int64_t* iv = ei.data_ptr<int64_t>();
    const int64_t* jv = iv + E;
    const scalar_t* uv = u.data_ptr<scalar_t>();
    const scalar_t* yv = y.data_ptr<scalar_t>();
    const scalar_t* gv = g.data_ptr<scalar_t>();
    scalar_t* gq = grad_vq.data_ptr<scalar_t>();
    scalar_t* gu = grad_dh.data_ptr<scalar_t>();
    scalar_t* gy = grad_y2.data_ptr<scalar_t>();
    for (int64_t e = 0; e < E; ++e) {  // molecules are shared between pairs: one pass, in order
      const int64_t i = iv[e], j = jv[e];
      pair_gradients(vv + i * C * kWidth, vv + j * C * kWidth, uv + 3 * e, yv + 5 * e, gv + e * 5 * C, C,
                     gq + i * C * kWidth, gq + j * C * kWidth, gu + 3 * e, gy + 5 * e);
    }
  });
  return {grad_vq, grad_dh, grad_y2};
}

class OrientationInvariants : public torch::autograd::Function<OrientationInvariants> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& vq, const Tensor& edge_index, const Tensor& dh,
                        const Tensor& y2) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::orientation_invariants", "")
                         .typed<decltype(orientation_invariants_cpu)>();
    ctx->save_for_backward({vq, edge_index, dh, y2});
    at::AutoDispatchBelowADInplaceOrView guard;
    return op.call(vq, edge_index, dh, y2);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::orientation_invariants_backward", "")
                         .typed<decltype(orientation_invariants_backward_cpu)>();
    auto s = ctx->get_saved_variables();
    auto [grad_vq, grad_dh, grad_y2] = op.call(grads[0], s[0], s[1], s[2], s[3]);
    return {grad_vq, Tensor(), grad_dh, grad_y2};
  }
};

Tensor orientation_invariants_autograd(const Tensor& vq, const Tensor& edge_index, const Tensor& dh,
                                       const Tensor& y2) {
  return OrientationInvariants::apply(vq, edge_index, dh, y2);
}

std::tuple<Tensor, Tensor, Tensor> orientation_invariants_backward_autograd(const Tensor& grad, const Tensor& vq,
                                                                            const Tensor& edge_index,
                                                                            const Tensor& dh, const Tensor& y2) {
  refuse_second_derivative({grad, vq, dh, y2}, "orientation_invariants");
  at::AutoDispatchBelowADInplaceOrView guard;
  static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::orientation_invariants_backward", "")
                         .typed<decltype(orientation_invariants_backward_cpu)>();
  return op.call(grad, vq, edge_index, dh, y2);
}

}  // namespace
}  // namespace latentcv::ops

TORCH_LIBRARY_IMPL(latentcv, CPU, m) {
  m.impl("orientation_invariants", &latentcv::ops::orientation_invariants_cpu);
  m.impl("orientation_invariants_backward", &latentcv::ops::orientation_invariants_backward_cpu);
}

TORCH_LIBRARY_IMPL(latentcv, Autograd, m) {
  m.impl("orientation_invariants", &latentcv::ops::orientation_invariants_autograd);
  m.impl("orientation_invariants_backward", &latentcv::ops::orientation_invariants_backward_autograd);
}
