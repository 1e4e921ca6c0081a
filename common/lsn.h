// PostgreSQL log sequence numbers.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace trickle {

// A WAL position. 0 is "invalid / the beginning".
using Lsn = uint64_t;
inline constexpr Lsn kInvalidLsn = 0;

// "16/B374D848", PostgreSQL's textual form.
std::string FormatLsn(Lsn lsn);
absl::StatusOr<Lsn> ParseLsn(absl::string_view text);

}  // namespace trickle
