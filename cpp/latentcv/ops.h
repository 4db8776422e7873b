// latentcv's own TorchScript operators (ops/: library.cpp the schemas, one file per operator),
// in the shared library liblatentcv_ops.so.
#pragma once

namespace latentcv {

// Bumped when an operator is added or its schema or meaning changes; models record the
// version they need. 1: shell_moments, bond_order_sums; 2: + attention_aggregate;
// 3: + pair_geometry; 4: + sphere_mass; 5: + orientation_invariants.
constexpr int kOpsVersion = 5;

// The library's version. Calling it also makes every user of the core load the library
// (and so register torch.ops.latentcv.*), which the linker would otherwise drop as unused.
int ops_version();

}  // namespace latentcv
