// The consistency protocol's pure core: snapshots, xid visibility, frontiers.
//
// A refresh runs in a REPEATABLE READ transaction with snapshot S
// (pg_current_snapshot(): xmin, xmax, xip). A fence committed after S has
// commit LSN F, so every transaction visible in S has commit LSN < F.
// A stream table's frontier (L, E) says: every source transaction with
// commit LSN < L is applied, except those in E (commit LSNs of transactions
// that were logged below L but invisible in the snapshot that set L).
//
// Invariants enforced here (and only here):
//  * A refresh applies exactly the logged transactions T with
//    commit_lsn(T) < F, visible in S, and not applied by (L, E).
//  * The new frontier is (F, {T logged, commit_lsn(T) < F, invisible in S}).
//  Together with "frontier and data commit in one transaction" this makes
//  every change applied exactly once across refreshes and crashes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/lsn.h"
#include "change_log.pb.h"

namespace trickle::scheduler {

// pg_current_snapshot() with 64-bit xids (xid8).
struct Snapshot {
  uint64_t xmin = 0;
  uint64_t xmax = 0;
  std::vector<uint64_t> xip;  // sorted

  // Parses PostgreSQL's text form "xmin:xmax:xip1,xip2,...".
  static absl::StatusOr<Snapshot> Parse(absl::string_view text);

  // Widens a 32-bit xid as pgoutput sends it to 64 bits by its signed
  // distance from xmax: xid8 = xmax - (int32)((uint32)xmax - xid). A
  // transaction that began after S widens to >= xmax in every epoch.
  uint64_t Widen(uint32_t xid) const;
  // Whether the transaction's effects are visible in this snapshot.
  bool Visible(uint32_t xid) const;
};

struct Frontier {
  Lsn lsn = 0;                    // L
  std::vector<Lsn> exceptions;    // E: commit LSNs below L not yet applied, sorted

  // Text form stored in the catalog: "L" or "L;E1,E2".
  std::string Encode() const;
  static absl::StatusOr<Frontier> Decode(absl::string_view text);
  bool operator==(const Frontier&) const = default;
};

struct DeltaSelection {
  // Transactions to apply, in commit order.
  std::vector<storage::v1::TransactionRecord> apply;
  Frontier next;
};

// Chooses what a refresh applies. `logged` are the log's transactions with
// commit LSN in [min(L, E...), F), in commit order (from
// ChangeLog::ReadTransactions). `fence` is F.
DeltaSelection SelectDelta(const std::vector<storage::v1::TransactionRecord>& logged,
                           const Frontier& frontier, const Snapshot& snapshot, Lsn fence);

// The lowest LSN a frontier still needs from the log (L, or its lowest
// exception): the log may be trimmed below it.
Lsn LowestNeeded(const Frontier& frontier);

}  // namespace trickle::scheduler
