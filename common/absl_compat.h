// Debian's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0: its
// absl::string_view is its own type, not std::string_view, and the two do
// not convert implicitly. Project APIs take std::string_view; this is the one
// place that bridges to Abseil's.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace trickle {

inline absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view FromAbsl(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace trickle
