#include "common/lsn.h"


#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace trickle {

std::string FormatLsn(Lsn lsn) {
  return absl::StrFormat("%X/%X", static_cast<uint32_t>(lsn >> 32),
                         static_cast<uint32_t>(lsn));
}

absl::StatusOr<Lsn> ParseLsn(absl::string_view text) {
  size_t slash = text.find('/');
  uint32_t hi = 0, lo = 0;
  if (slash == absl::string_view::npos ||
      !absl::SimpleHexAtoi(text.substr(0, slash), &hi) ||
      !absl::SimpleHexAtoi(text.substr(slash + 1), &lo)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an LSN: \"", text, "\" (expected the form 16/B374D848)"));
  }
  return (static_cast<Lsn>(hi) << 32) | lo;
}

}  // namespace trickle
