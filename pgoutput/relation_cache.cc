#include "pgoutput/relation_cache.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace trickle::pgoutput {

std::string RelationSchema::QualifiedName() const {
  return absl::StrCat(namespace_name.empty() ? "pg_catalog" : namespace_name, ".", relation_name);
}

bool RelationSchema::SameSchemaAs(const RelationMessage& message) const {
  return namespace_name == message.namespace_name && relation_name == message.relation_name &&
         replica_identity == message.replica_identity && columns == message.columns;
}

SchemaVersion RelationCache::Apply(const RelationMessage& message) {
  std::vector<std::unique_ptr<RelationSchema>>& versions = versions_[message.relation_oid];
  if (!versions.empty() && versions.back()->SameSchemaAs(message)) {
    return versions.back()->version;
  }
  auto schema = std::make_unique<RelationSchema>();
  schema->relation_oid = message.relation_oid;
  schema->version = versions.empty() ? 1 : versions.back()->version + 1;
  schema->namespace_name = message.namespace_name;
  schema->relation_name = message.relation_name;
  schema->replica_identity = message.replica_identity;
  schema->columns = message.columns;
  versions.push_back(std::move(schema));
  return versions.back()->version;
}

absl::Status RelationCache::Restore(RelationSchema schema) {
  if (schema.version == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot restore schema of relation ", schema.QualifiedName(), " (OID ",
                     schema.relation_oid, "): version 0 is not a valid version"));
  }
  std::vector<std::unique_ptr<RelationSchema>>& versions = versions_[schema.relation_oid];
  if (!versions.empty() && schema.version <= versions.back()->version) {
    auto it = std::find_if(versions.begin(), versions.end(),
                           [&](const auto& v) { return v->version == schema.version; });
    if (it != versions.end() && **it == schema) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot restore schema version ", schema.version, " of relation ",
                     schema.QualifiedName(), " (OID ", schema.relation_oid, "): ",
                     it != versions.end() ? "a different schema already has that version"
                                          : "versions must be restored in ascending order",
                     " (latest known version is ", versions.back()->version, ")"));
  }
  versions.push_back(std::make_unique<RelationSchema>(std::move(schema)));
  return absl::OkStatus();
}

absl::StatusOr<const RelationSchema*> RelationCache::Current(Oid oid) const {
  auto it = versions_.find(oid);
  if (it == versions_.end() || it->second.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no schema known for relation OID ", oid,
                     ": pgoutput sends a Relation message before a relation's first change, so a "
                     "change without one means messages were lost or decoded out of order"));
  }
  return it->second.back().get();
}

absl::StatusOr<const RelationSchema*> RelationCache::Get(Oid oid, SchemaVersion version) const {
  auto it = versions_.find(oid);
  if (it != versions_.end()) {
    for (const auto& schema : it->second) {
      if (schema->version == version) return schema.get();
    }
  }
  return absl::NotFoundError(
      absl::StrCat("no schema version ", version, " known for relation OID ", oid));
}

}  // namespace trickle::pgoutput
