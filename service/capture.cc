#include "service/capture.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/pg_connection.h"
#include "common/status_macros.h"
#include "pgoutput/tuple_fill.h"
#include "spdlog/spdlog.h"

namespace trickle::service {

using pgoutput::ColumnKind;

namespace {

storage::v1::Datum::Kind DatumKind(ColumnKind kind) {
  switch (kind) {
    case ColumnKind::kNull: return storage::v1::Datum::NULL_;
    // Filled in from the old row before encoding when there is one.
    case ColumnKind::kUnchanged: return storage::v1::Datum::UNAVAILABLE;
    case ColumnKind::kText: return storage::v1::Datum::TEXT;
    case ColumnKind::kBinary: return storage::v1::Datum::BINARY;
  }
  return storage::v1::Datum::NULL_;
}

const char* ReplicaIdentityName(char identity) {
  switch (identity) {
    case 'd': return "DEFAULT";
    case 'n': return "NOTHING";
    case 'f': return "FULL";
    case 'i': return "USING INDEX";
  }
  return "unknown";
}

}  // namespace

void EncodeOldValues(const pgoutput::Tuple& tuple, storage::ChangeRecordEncoder* out) {
  for (const pgoutput::ColumnValue& c : tuple) out->AddOldValue(DatumKind(c.kind), c.data);
}

void EncodeNewValues(const pgoutput::Tuple& tuple, storage::ChangeRecordEncoder* out) {
  for (const pgoutput::ColumnValue& c : tuple) out->AddNewValue(DatumKind(c.kind), c.data);
}

void EncodeOldValuesWithoutRow(const pgoutput::RelationSchema& rel, const pgoutput::Tuple& key,
                               storage::ChangeRecordEncoder* out) {
  for (size_t i = 0; i < rel.columns.size(); ++i) {
    if (rel.columns[i].is_key && i < key.size() && key[i].kind != ColumnKind::kUnchanged) {
      out->AddOldValue(DatumKind(key[i].kind), key[i].data);
    } else {
      out->AddOldValue(storage::v1::Datum::UNAVAILABLE, {});
    }
  }
}

Capture::Capture(storage::ChangeLog* log, CaptureOptions options)
    : log_(log), options_(options), decoder_(options.protocol_version) {
  written_lsn_ = log_->durable_lsn();
  absl::MutexLock lock(&mu_);
  received_lsn_ = log_->durable_lsn();
}

absl::StatusOr<std::unique_ptr<Capture>> Capture::Create(storage::ChangeLog* log,
                                                         CaptureOptions options) {
  std::unique_ptr<Capture> capture(new Capture(log, options));
  TRICKLE_ASSIGN_OR_RETURN(std::vector<storage::RelationSchema> stored, log->LatestRelations());
  for (const storage::RelationSchema& s : stored) {
    pgoutput::RelationSchema schema;
    schema.relation_oid = s.relation_oid();
    schema.version = s.version();
    schema.namespace_name = s.namespace_name() == "pg_catalog" ? "" : s.namespace_name();
    schema.relation_name = s.relation_name();
    schema.replica_identity = s.replica_identity().empty() ? 'd' : s.replica_identity()[0];
    for (const auto& c : s.columns()) {
      schema.columns.push_back({c.is_key(), c.name(), c.type_oid(), c.type_modifier()});
    }
    capture->log_versions_[s.relation_oid()] = s.version();
    TRICKLE_RETURN_IF_ERROR(capture->relations_.Restore(std::move(schema)));
  }
  return capture;
}

absl::Status Capture::OnXLogData(Lsn wal_start, Lsn wal_end, std::string_view payload) {
  return decoder_.Decode(payload, this);
}

void Capture::OnKeepalive(Lsn wal_end) {
  if (in_transaction_) return;
  // Everything committed before wal_end has been sent and handled.
  idle_lsn_ = std::max(idle_lsn_, wal_end);
  AdvanceReceived(wal_end);
  PublishIdlePosition();
}

void Capture::PublishIdlePosition() {
  // The keepalive came with no transaction open, so every transaction before
  // it was received; once the last of them is durable, so is everything
  // before idle_lsn_. Later transactions commit after it.
  if (!in_transaction_ && log_->durable_lsn() >= last_end_lsn_ &&
      idle_lsn_ > idle_confirmable_lsn_.load()) {
    idle_confirmable_lsn_ = idle_lsn_;
  }
}

void Capture::AdvanceReceived(Lsn lsn) {
  absl::MutexLock lock(&mu_);
  if (lsn > received_lsn_) received_lsn_ = lsn;
}

absl::Status Capture::SyncLog() {
  TRICKLE_RETURN_IF_ERROR(log_->Sync());
  stats_.syncs++;
  last_sync_ = absl::Now();
  PublishIdlePosition();
  return absl::OkStatus();
}

absl::Status Capture::OnIdle(bool stopping) {
  if (log_->durable_lsn() >= written_lsn_.load()) return absl::OkStatus();
  if (!stopping && absl::Now() - last_sync_ < options_.sync_interval / 10) {
    return absl::OkStatus();  // the stream calls again shortly
  }
  return SyncLog();
}

Lsn Capture::FlushedLsn() {
  return std::max(log_->durable_lsn(), idle_confirmable_lsn_.load());
}

void Capture::OnStreaming() {
  absl::MutexLock lock(&mu_);
  streaming_ = true;
}

void Capture::OnDisconnect() {
  {
    absl::MutexLock lock(&mu_);
    if (streaming_) down_since_ = absl::Now();
    streaming_ = false;
  }
  if (in_transaction_ && !skipping_) {
    absl::Status s = log_->AbortTransaction();
    if (!s.ok()) spdlog::warn("forgetting the partial transaction: {}", s.ToString());
  }
  in_transaction_ = false;
  skipping_ = false;
  current_fences_.clear();
  // A new connection decodes again from the slot: the decoder starts fresh.
  decoder_.Reset();
}

absl::StatusOr<const pgoutput::RelationSchema*> Capture::Relation(pgoutput::Oid oid,
                                                                   const char* what) const {
  auto schema = relations_.Current(oid);
  if (!schema.ok()) {
    return absl::InternalError(absl::StrCat(what, " for relation OID ", oid,
                                            " arrived before its Relation message"));
  }
  return *schema;
}

absl::Status Capture::OnBegin(const pgoutput::BeginMessage& m) {
  if (in_transaction_) {
    return absl::InternalError(absl::StrCat("Begin of xid ", m.xid, " inside transaction xid ",
                                            current_.xid()));
  }
  TRICKLE_ASSIGN_OR_RETURN(bool fresh, log_->BeginTransaction(m.final_lsn, m.xid, m.commit_time));
  in_transaction_ = true;
  skipping_ = !fresh;
  current_.Clear();
  current_.set_xid(m.xid);
  current_.set_commit_lsn(m.final_lsn);
  current_.set_commit_time(m.commit_time);
  current_fences_.clear();
  return absl::OkStatus();
}

absl::Status Capture::OnCommit(const pgoutput::CommitMessage& m) {
  if (!in_transaction_) {
    return absl::InternalError(absl::StrCat("Commit at ", FormatLsn(m.commit_lsn),
                                            " without a Begin"));
  }
  in_transaction_ = false;
  current_.set_end_lsn(m.end_lsn);
  last_end_lsn_ = m.end_lsn;
  if (skipping_) {
    stats_.skipped_transactions++;
  } else {
    TRICKLE_RETURN_IF_ERROR(log_->CommitTransaction(m.end_lsn));
    written_lsn_ = m.end_lsn;
    spdlog::debug("stored transaction xid {} commit {} ({} relations)", current_.xid(),
                  FormatLsn(m.commit_lsn), current_.relation_oids_size());
    stats_.transactions++;
    stats_.last_commit_time = m.commit_time;
    if (absl::Now() - last_sync_ >= options_.sync_interval) TRICKLE_RETURN_IF_ERROR(SyncLog());
  }
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& token : current_fences_) fences_[token] = m.commit_lsn;
    if (m.end_lsn > received_lsn_) received_lsn_ = m.end_lsn;
  }
  current_fences_.clear();
  if (!skipping_ && commit_listener_) commit_listener_(current_);
  return absl::OkStatus();
}

absl::Status Capture::OnRelation(const pgoutput::RelationMessage& m) {
  auto previous = relations_.Current(m.relation_oid);
  pgoutput::SchemaVersion before = previous.ok() ? (*previous)->version : 0;
  pgoutput::SchemaVersion after = relations_.Apply(m);
  storage::RelationSchema schema;
  schema.set_relation_oid(m.relation_oid);
  schema.set_namespace_name(m.namespace_name.empty() ? "pg_catalog" : m.namespace_name);
  schema.set_relation_name(m.relation_name);
  schema.set_replica_identity(std::string(1, m.replica_identity));
  schema.set_first_seen_lsn(current_.commit_lsn());
  for (const pgoutput::RelationColumn& c : m.columns) {
    auto* col = schema.add_columns();
    col->set_name(c.name);
    col->set_type_oid(c.type_oid);
    col->set_type_modifier(c.type_modifier);
    col->set_is_key(c.is_key);
  }
  // Storage numbers the versions (and recognises a replayed schema).
  TRICKLE_ASSIGN_OR_RETURN(uint32_t version, log_->RecordRelation(schema));
  log_versions_[m.relation_oid] = version;
  if (before != 0 && before != after) {
    spdlog::info("relation {}.{} (OID {}) changed schema: now version {}", schema.namespace_name(),
                 m.relation_name, m.relation_oid, version);
  }
  return absl::OkStatus();
}

absl::Status Capture::AppendChange(pgoutput::Oid oid) {
  stats_.changes++;
  auto* oids = current_.mutable_relation_oids();
  if (std::find(oids->begin(), oids->end(), oid) == oids->end()) oids->Add(oid);
  return log_->AppendEncoded(oid, encoder_.bytes());
}

absl::Status Capture::OnInsert(const pgoutput::InsertMessage& m) {
  if (skipping_) return absl::OkStatus();
  TRICKLE_ASSIGN_OR_RETURN(const pgoutput::RelationSchema* rel, Relation(m.relation_oid, "Insert"));
  encoder_.Start(storage::ChangeRecord::INSERT, log_versions_[rel->relation_oid]);
  EncodeNewValues(m.new_tuple, &encoder_);
  return AppendChange(m.relation_oid);
}

absl::Status Capture::OnUpdate(const pgoutput::UpdateMessage& m) {
  if (skipping_) return absl::OkStatus();
  TRICKLE_ASSIGN_OR_RETURN(const pgoutput::RelationSchema* rel, Relation(m.relation_oid, "Update"));
  encoder_.Start(storage::ChangeRecord::UPDATE, log_versions_[rel->relation_oid]);
  const bool has_unchanged = std::any_of(m.new_tuple.begin(), m.new_tuple.end(), [](const auto& c) {
    return c.kind == ColumnKind::kUnchanged;
  });
  if (m.old_kind != pgoutput::OldTupleKind::kFull) {
    // Only the key (or nothing: the key did not change) came with it.
    NoteOldRowUnavailable(*rel, "UPDATE");
    EncodeOldValuesWithoutRow(*rel, m.old_kind == pgoutput::OldTupleKind::kKey ? m.old_tuple : m.new_tuple,
                              &encoder_);
    EncodeNewValues(m.new_tuple, &encoder_);  // an unchanged TOASTed value: UNAVAILABLE
    return AppendChange(m.relation_oid);
  }
  EncodeOldValues(m.old_tuple, &encoder_);
  if (!has_unchanged) {
    EncodeNewValues(m.new_tuple, &encoder_);
    return AppendChange(m.relation_oid);
  }
  // Rare: copy only when a TOASTed value must be filled in from the old row.
  pgoutput::UpdateMessage filled = m;
  absl::Status fill = pgoutput::FillUnchangedToast(*rel, &filled);
  if (!fill.ok() && !absl::IsFailedPrecondition(fill)) return fill;  // a schema mismatch: a bug
  if (!fill.ok()) {
    // The old row lacks it too: the value stays UNAVAILABLE, and readers of
    // the column take a FULL refresh instead of a wrong row.
    spdlog::warn("{}; stream tables reading the column take a FULL refresh", std::string(fill.message()));
    stats_.unavailable_values++;
  }
  EncodeNewValues(fill.ok() ? filled.new_tuple : m.new_tuple, &encoder_);
  return AppendChange(m.relation_oid);
}

absl::Status Capture::OnDelete(const pgoutput::DeleteMessage& m) {
  if (skipping_) return absl::OkStatus();
  TRICKLE_ASSIGN_OR_RETURN(const pgoutput::RelationSchema* rel, Relation(m.relation_oid, "Delete"));
  encoder_.Start(storage::ChangeRecord::DELETE, log_versions_[rel->relation_oid]);
  if (m.old_kind == pgoutput::OldTupleKind::kFull) {
    EncodeOldValues(m.old_tuple, &encoder_);
  } else {
    NoteOldRowUnavailable(*rel, "DELETE");
    EncodeOldValuesWithoutRow(*rel, m.old_tuple, &encoder_);
  }
  return AppendChange(m.relation_oid);
}

void Capture::NoteOldRowUnavailable(const pgoutput::RelationSchema& rel, const char* op) {
  stats_.unavailable_values++;
  if (!warned_unavailable_.insert(rel.relation_oid).second) return;  // once per relation and run
  spdlog::warn(
      "{} on source table \"{}\" at {} arrived without its old row (REPLICA IDENTITY {}): its old "
      "values are logged as unavailable, and every stream table that reads a column of it takes a "
      "FULL refresh for this change; run ALTER TABLE {} REPLICA IDENTITY FULL to avoid that",
      op, rel.QualifiedName(), FormatLsn(current_.commit_lsn()), ReplicaIdentityName(rel.replica_identity),
      rel.QualifiedName());
}

absl::Status Capture::OnTruncate(const pgoutput::TruncateMessage& m) {
  if (skipping_) return absl::OkStatus();
  for (pgoutput::Oid oid : m.relation_oids) {
    TRICKLE_ASSIGN_OR_RETURN(const pgoutput::RelationSchema* rel, Relation(oid, "Truncate"));
    encoder_.Start(storage::ChangeRecord::TRUNCATE, log_versions_[rel->relation_oid]);
    TRICKLE_RETURN_IF_ERROR(AppendChange(oid));
  }
  return absl::OkStatus();
}

absl::Status Capture::OnMessage(const pgoutput::LogicalMessage& m) {
  if (m.prefix != kFencePrefix) return absl::OkStatus();
  if (!m.transactional || !in_transaction_) {
    // A non-transactional fence proves nothing about snapshot order.
    spdlog::warn("ignoring non-transactional {} message \"{}\"", kFencePrefix, m.content);
    return absl::OkStatus();
  }
  current_fences_.push_back(m.content);
  if (skipping_) return absl::OkStatus();
  return log_->AddFenceToken(m.content);
}

absl::Status Capture::OnStreamStart(const pgoutput::StreamStartMessage& m) {
  return absl::FailedPreconditionError(absl::StrCat(
      "the server streams in-progress transaction ", m.xid,
      " but Trickle did not ask for streaming; check that nothing else sets streaming on slot"));
}

absl::StatusOr<Lsn> Capture::WaitForFence(const std::string& token, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  auto found = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return fences_.contains(token); };
  while (!found()) {
    const absl::Time now = absl::Now();
    if (!streaming_ && (now >= deadline || now >= down_since_ + options_.fence_outage_grace)) {
      // An outage, not this refresh's fault: the fence is in PostgreSQL's
      // WAL and arrives once the stream reconnects; the refresh is retried.
      return OutageError(absl::UnavailableError(absl::StrCat(
          "fence \"", token, "\" cannot arrive: the replication stream is not connected (down for ",
          absl::FormatDuration(absl::Trunc(now - down_since_, absl::Milliseconds(1))),
          "; trickled reconnects on its own; see its log for why)")));
    }
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "fence \"", token, "\" did not arrive through the replication stream within ",
          absl::FormatDuration(timeout), " although it is connected"));
    }
    // Woken by the fence, and by the stream going down or coming back.
    const bool was_streaming = streaming_;
    auto changed = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return found() || streaming_ != was_streaming; };
    mu_.AwaitWithDeadline(absl::Condition(&changed),
                          was_streaming ? deadline : std::min(deadline, down_since_ + options_.fence_outage_grace));
  }
  Lsn lsn = fences_[token];
  fences_.erase(token);
  return lsn;
}

absl::Status Capture::WaitForLsn(Lsn lsn, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return received_lsn_ >= lsn; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&reached), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("the change log did not reach ", FormatLsn(lsn),
                                                    " within ", absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

}  // namespace trickle::service
