// latentcv operator attention_aggregate (schema: ops/library.cpp), forward and analytic
// backward on CPU.
//
//   attention_aggregate(values [N,H,D], alpha [E,H], edge_index [2,E]) -> [N,H,D]
//     out[i,h,:] = sum_{e: (i, j) = edge_index[:, e]} alpha[e,h] values[j,h,:]
//     (the attention layer's weighted sum of gathered node values, no [E,H,D] tensor).
#include "latentcv/ops/common.h"

#include <tuple>

namespace latentcv::ops {
namespace {

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

std::tuple<Tensor, Tensor> attention_aggregate_backward_autograd(const Tensor& grad, const Tensor& values,
                                                                 const Tensor& alpha, const Tensor& edge_index) {
  refuse_second_derivative({grad, values, alpha}, "attention_aggregate");
  at::AutoDispatchBelowADInplaceOrView guard;
  static auto op = c10::Dispatcher::singleton()
                         .findSchemaOrThrow("latentcv::attention_aggregate_backward", "")
                         .typed<decltype(attention_aggregate_backward_cpu)>();
  return op.call(grad, values, alpha, edge_index);
}

}  // namespace
}  // namespace latentcv::ops

TORCH_LIBRARY_IMPL(latentcv, CPU, m) {
  m.impl("attention_aggregate", &latentcv::ops::attention_aggregate_cpu);
  m.impl("attention_aggregate_backward", &latentcv::ops::attention_aggregate_backward_cpu);
}

TORCH_LIBRARY_IMPL(latentcv, Autograd, m) {
  m.impl("attention_aggregate", &latentcv::ops::attention_aggregate_autograd);
  m.impl("attention_aggregate_backward", &latentcv::ops::attention_aggregate_backward_autograd);
}
