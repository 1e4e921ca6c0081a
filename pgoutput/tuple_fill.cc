#include "pgoutput/tuple_fill.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace trickle::pgoutput {
namespace {

bool IsUnchanged(const ColumnValue& v) { return v.kind == ColumnKind::kUnchanged; }

std::string ColumnName(const RelationSchema& schema, size_t index) {
  return index < schema.columns.size() ? schema.columns[index].name : absl::StrCat("#", index + 1);
}

}  // namespace

absl::Status FillUnchangedToast(const RelationSchema& schema, UpdateMessage* update) {
  Tuple& new_tuple = update->new_tuple;
  auto first_unchanged = std::find_if(new_tuple.begin(), new_tuple.end(), IsUnchanged);
  if (first_unchanged == new_tuple.end()) return absl::OkStatus();  // the common case

  const std::string relation = schema.QualifiedName();
  if (update->relation_oid != schema.relation_oid) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot fill unchanged TOAST columns: the Update is for relation OID ",
                     update->relation_oid, " but the schema given is ", relation, " (OID ",
                     schema.relation_oid, ")"));
  }
  if (new_tuple.size() != schema.columns.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "relation \"", relation, "\": the Update's new tuple has ", new_tuple.size(),
        " columns but schema version ", schema.version, " has ", schema.columns.size()));
  }
  const size_t first = static_cast<size_t>(first_unchanged - new_tuple.begin());
  if (update->old_kind != OldTupleKind::kFull) {
    return absl::FailedPreconditionError(
        absl::StrCat("relation \"", relation, "\" column \"", ColumnName(schema, first),
                     "\": the Update left this TOASTed value unchanged and carries ",
                     update->old_kind == OldTupleKind::kKey ? "only the old key" : "no old row",
                     " to copy it from; run ALTER TABLE ", relation, " REPLICA IDENTITY FULL"));
  }
  const Tuple& old_tuple = update->old_tuple;
  if (old_tuple.size() != new_tuple.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("relation \"", relation, "\": the Update's old tuple has ", old_tuple.size(),
                     " columns but its new tuple has ", new_tuple.size()));
  }
  // Check every column before changing any, so an error leaves the tuple as
  // it was.
  for (size_t i = first; i < new_tuple.size(); ++i) {
    if (IsUnchanged(new_tuple[i]) && IsUnchanged(old_tuple[i])) {
      return absl::FailedPreconditionError(
          absl::StrCat("relation \"", relation, "\" column \"", ColumnName(schema, i),
                       "\": the Update left this TOASTed value unchanged and the full old row has "
                       "it unchanged too, so there is no value to copy"));
    }
  }
  for (size_t i = first; i < new_tuple.size(); ++i) {
    if (IsUnchanged(new_tuple[i])) new_tuple[i] = old_tuple[i];
  }
  return absl::OkStatus();
}

}  // namespace trickle::pgoutput
