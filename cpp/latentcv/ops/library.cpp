// latentcv's own TorchScript operators: fused per-edge kernels of the encoder (angular
// moments, bond-order sums, attention aggregation, the molecule pairs' geometry and
// orientation invariants) and the pair
// sum of the largest nucleus (sphere_mass), forward and analytic backward, on CPU. Registered
// as torch.ops.latentcv.* by the shared library liblatentcv_ops.so, which the C++ core links
// (so the PLUMED action and the Python module have them) and Python loads with
// torch.ops.load_library (cv_models/native/ops.py). The same functions written with core
// torch ops (the reference the tests compare against) are in cv_models/layers/.
//
// This file is the library table: every operator's schema. Each operator's file in this
// folder holds its kernels, its autograd and the registration of both (TORCH_LIBRARY_IMPL, CPU
// and Autograd), and documents what it computes. Adding an operator: its file, its schemas
// here, the file in cpp/CMakeLists.txt, and kOpsVersion (latentcv/ops.h) with OPS_VERSION
// (cv_models/native/ops.py).
#include <torch/library.h>

#include "latentcv/ops.h"

namespace latentcv {

int ops_version() { return kOpsVersion; }

}  // namespace latentcv

// The library table: each operator's schemas; its kernels are registered by its own file.
TORCH_LIBRARY(latentcv, m) {
  // shell_moments.cpp
  m.def("shell_moments(Tensor edge_vec, Tensor rho, Tensor receiver, int num_nodes, Tensor z_coeffs, int[] xy_column) -> Tensor");
  m.def("shell_moments_backward(Tensor grad, Tensor edge_vec, Tensor rho, Tensor receiver, Tensor z_coeffs, int[] xy_column) -> (Tensor, Tensor)");
  // bond_order_sums.cpp
  m.def("bond_order_sums(Tensor tn, Tensor edge_index, Tensor edge_weight, int[] degree_of_column, int num_degrees) -> (Tensor, Tensor)");
  m.def("bond_order_sums_backward(Tensor grad_s1, Tensor grad_s2, Tensor tn, Tensor edge_index, Tensor edge_weight, int[] degree_of_column, int num_degrees) -> (Tensor, Tensor)");
  // attention_aggregate.cpp
  m.def("attention_aggregate(Tensor values, Tensor alpha, Tensor edge_index) -> Tensor");
  m.def("attention_aggregate_backward(Tensor grad, Tensor values, Tensor alpha, Tensor edge_index) -> (Tensor, Tensor)");
  // pair_geometry.cpp
  m.def("pair_geometry(Tensor centers, Tensor cells, Tensor node_frame, Tensor edge_index, Tensor edge_shift, float cutoff, float r_on, Tensor rbf_mu, float rbf_width) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("pair_geometry_backward(Tensor? grad_d, Tensor? grad_r, Tensor? grad_w, Tensor? grad_rbf, Tensor pairs, Tensor kept, Tensor d, Tensor r, Tensor rbf, Tensor edge_shift, Tensor node_frame, int num_nodes, int num_frames, float cutoff, float r_on, Tensor rbf_mu, float rbf_width) -> (Tensor, Tensor)");
  // orientation_invariants.cpp
  m.def("orientation_invariants(Tensor vq, Tensor edge_index, Tensor dh, Tensor y2) -> Tensor");
  m.def("orientation_invariants_backward(Tensor grad, Tensor vq, Tensor edge_index, Tensor dh, Tensor y2) -> (Tensor, Tensor, Tensor)");
  // sphere_mass.cpp
  m.def("sphere_mass(Tensor share_weight, Tensor centers, Tensor cell, float radius, float ramp) -> Tensor");
  m.def("sphere_mass_backward(Tensor grad, Tensor share_weight, Tensor centers, Tensor cell, float radius, float ramp) -> (Tensor, Tensor, Tensor)");
}
