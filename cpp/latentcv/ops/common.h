// latentcv's TorchScript operators (torch.ops.latentcv.*, liblatentcv_ops.so): what every
// operator's file shares. Each operator lives in its own file of cpp/latentcv/ops/ (kernel,
// analytic backward, autograd, and the registration of its CPU and Autograd kernels);
// ops/library.cpp is the table of their schemas. Only first derivatives are exact (what the
// MD forces and training need): a second backward through them raises.
#pragma once

#include <torch/autograd.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <initializer_list>
#include <optional>
#include <vector>

namespace latentcv::ops {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptionalTensor = std::optional<Tensor>;

constexpr double kDirectionEps = 1e-30;  // as the reference: u = d / sqrt(|d|^2 + eps)

inline void check_cpu(const Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "latentcv ops: ", name,
              " is on ", t.device(), "; the fused kernels run on CPU (the encoder uses its core-torch "
              "path on other devices).");
}

inline void check_index(const Tensor& index, int64_t n, const char* name) {
  if (index.numel() == 0) return;
  TORCH_CHECK(index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < n, "latentcv ops: ", name,
              " holds node indices outside [0, ", n, ")");
}

inline c10::List<int64_t> to_list(c10::IntArrayRef v) {
  return c10::List<int64_t>(std::vector<int64_t>(v.begin(), v.end()));
}

// The backward kernels are not differentiable themselves: refuse a differentiable call
// (autograd.grad(..., create_graph=True)) instead of returning silently wrong second derivatives.
inline void refuse_second_derivative(std::initializer_list<Tensor> inputs, const char* op) {
  if (!torch::autograd::GradMode::is_enabled()) return;
  for (const auto& t : inputs)
    TORCH_CHECK(!(t.defined() && t.requires_grad()), "latentcv ops: ", op,
                " has first derivatives only; second derivatives (create_graph=True) are not implemented. "
                "Set fused = False on the AngularMoments layer for the core-torch path.");
}

}  // namespace latentcv::ops
