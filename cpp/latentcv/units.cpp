#include "latentcv/units.h"

#include <array>

#include "latentcv/error.h"

namespace latentcv {
namespace {

struct LengthUnit {
  const char* name;
  double nm;  // size in nm; 0 = reduced units
};

// Same table as cv_models/units.py.
constexpr std::array<LengthUnit, 3> kLengthUnits{{{"lj", 0.0}, {"nm", 1.0}, {"A", 0.1}}};

// "lj (reduced), nm and A"
std::string accepted_units() {
  std::string out;
  for (size_t i = 0; i < kLengthUnits.size(); ++i) {
    if (i > 0) out += i + 1 == kLengthUnits.size() ? " and " : ", ";
    out += kLengthUnits[i].name;
    if (kLengthUnits[i].nm == 0.0) out += " (reduced)";
  }
  return out;
}

}  // namespace

std::optional<double> nm_per_length_unit(const std::string& unit, const std::string& model_path) {
  for (const auto& u : kLengthUnits)
    if (unit == u.name) return u.nm > 0.0 ? std::optional<double>(u.nm) : std::nullopt;
  throw Error("'" + model_path + "' declares length_unit '" + unit + "'; supported are " + accepted_units() + ".");
}

}  // namespace latentcv
