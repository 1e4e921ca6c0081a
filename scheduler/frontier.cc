#include "scheduler/frontier.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace trickle::scheduler {

absl::StatusOr<Snapshot> Snapshot::Parse(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  Snapshot s;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &s.xmin) ||
      !absl::SimpleAtoi(parts[1], &s.xmax)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a pg_snapshot: \"", text, "\" (expected xmin:xmax:xip,...)"));
  }
  if (!parts[2].empty()) {
    for (absl::string_view x : absl::StrSplit(parts[2], ',')) {
      uint64_t xid = 0;
      if (!absl::SimpleAtoi(x, &xid)) {
        return absl::InvalidArgumentError(absl::StrCat("not a pg_snapshot: \"", text, "\""));
      }
      s.xip.push_back(xid);
    }
  }
  std::sort(s.xip.begin(), s.xip.end());
  return s;
}

uint64_t Snapshot::Widen(uint32_t xid) const {
  // By the signed 32-bit distance from xmax, never by copying xmax's epoch:
  // a transaction visible to or running in S, or one that began after S,
  // is within 2^31 of xmax, on whichever side of an epoch boundary.
  int32_t behind = static_cast<int32_t>(static_cast<uint32_t>(xmax) - xid);
  return xmax - static_cast<uint64_t>(static_cast<int64_t>(behind));
}

bool Snapshot::Visible(uint32_t xid) const {
  uint64_t wide = Widen(xid);
  if (wide < xmin) return true;
  if (wide >= xmax) return false;
  return !std::binary_search(xip.begin(), xip.end(), wide);
}

std::string Frontier::Encode() const {
  if (exceptions.empty()) return FormatLsn(lsn);
  std::vector<std::string> e;
  for (Lsn x : exceptions) e.push_back(FormatLsn(x));
  return absl::StrCat(FormatLsn(lsn), ";", absl::StrJoin(e, ","));
}

absl::StatusOr<Frontier> Frontier::Decode(absl::string_view text) {
  Frontier f;
  std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits(';', 1));
  TRICKLE_ASSIGN_OR_RETURN(f.lsn, ParseLsn(parts[0]));
  if (parts.size() == 2 && !parts[1].empty()) {
    for (absl::string_view x : absl::StrSplit(parts[1], ',')) {
      TRICKLE_ASSIGN_OR_RETURN(Lsn lsn, ParseLsn(x));
      f.exceptions.push_back(lsn);
    }
  }
  std::sort(f.exceptions.begin(), f.exceptions.end());
  return f;
}

DeltaSelection SelectDelta(const std::vector<storage::v1::TransactionRecord>& logged,
                           const Frontier& frontier, const Snapshot& snapshot, Lsn fence) {
  DeltaSelection out;
  out.next.lsn = std::max(fence, frontier.lsn);
  for (const storage::v1::TransactionRecord& t : logged) {
    Lsn c = t.commit_lsn();
    if (c >= fence) continue;
    bool pending = c >= frontier.lsn ||
                   std::binary_search(frontier.exceptions.begin(), frontier.exceptions.end(), c);
    if (!pending) continue;  // applied by an earlier refresh
    if (snapshot.Visible(t.xid())) {
      out.apply.push_back(t);
    } else {
      out.next.exceptions.push_back(c);
    }
  }
  std::sort(out.next.exceptions.begin(), out.next.exceptions.end());
  return out;
}

Lsn LowestNeeded(const Frontier& frontier) {
  if (frontier.exceptions.empty()) return frontier.lsn;
  return std::min(frontier.lsn, frontier.exceptions.front());
}

}  // namespace trickle::scheduler
