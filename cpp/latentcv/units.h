// latentcv C++ core: the length units a model may declare (metadata "length_unit") and
// their size in nm. Python mirror: cv_models/units.py (MODEL_LENGTH_UNITS, NM_PER_UNIT);
// change both together.
#pragma once
#include <optional>
#include <string>

namespace latentcv {

// The size in nm of one model length unit: "nm" 1.0, "A" 0.1; "lj" is reduced (σ) and has
// no size in nm (std::nullopt). Throws latentcv::Error naming the accepted units for any
// other unit; `model_path` names the model that declared it.
std::optional<double> nm_per_length_unit(const std::string& unit, const std::string& model_path);

}  // namespace latentcv
