// PostgreSQL log sequence numbers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace trickle {

// A WAL position. 0 is "invalid / the beginning".
using Lsn = uint64_t;
inline constexpr Lsn kInvalidLsn = 0;

// "16/B374D848", PostgreSQL's textual form.
std::string FormatLsn(Lsn lsn);
absl::StatusOr<Lsn> ParseLsn(std::string_view text);

}  // namespace trickle
