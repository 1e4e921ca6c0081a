#include "publisher/publication.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "trickle_publisher_sql.h"

namespace trickle::publisher {
namespace {

constexpr char kRowId[] = "__pgt_row_id";
constexpr char kHiddenPrefix[] = "__pgt_";
constexpr char kFullResult[] = "__trickle_full_result";
constexpr char kFullDiff[] = "__trickle_full_diff";
constexpr char kStoredCtid[] = "__trickle_stored_ctid";
constexpr size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1

std::string Qualified(PgConnection& conn, const StreamTableRef& t) {
  return absl::StrCat(conn.QuoteIdentifier(t.schema), ".", conn.QuoteIdentifier(t.name));
}

bool HasColumn(const delta::DeltaPlan& plan, absl::string_view name) {
  for (const auto& c : plan.columns) {
    if (c.name == name) return true;
  }
  return false;
}

std::string QuotedList(PgConnection& conn, const std::vector<std::string>& names,
                       absl::string_view alias = "") {
  std::vector<std::string> out;
  for (const auto& n : names) {
    out.push_back(alias.empty() ? conn.QuoteIdentifier(n)
                                : absl::StrCat(alias, ".", conn.QuoteIdentifier(n)));
  }
  return absl::StrJoin(out, ", ");
}

// Column list and identity together (the caller's transaction): PostgreSQL
// accepts either change alone and then fails every UPDATE and DELETE.
absl::Status SetPublishedColumns(PgConnection& conn, const std::string& publication,
                                 const std::string& qualified, const PublicationLayout& want) {
  std::string set_table = absl::StrCat("ALTER PUBLICATION ", conn.QuoteIdentifier(publication),
                                       " SET TABLE ", qualified);
  if (want.columns) absl::StrAppend(&set_table, " (", QuotedList(conn, *want.columns), ")");
  TRICKLE_RETURN_IF_ERROR(conn.Exec(set_table).status());
  return conn
      .Exec(absl::StrCat("ALTER TABLE ", qualified, " REPLICA IDENTITY ",
                         want.identity == IdentityKind::kPrimaryKey ? "DEFAULT" : "FULL"))
      .status();
}

// The comment of publication `publication`; nullopt when there is no such
// publication.
absl::StatusOr<std::optional<std::string>> OwnerComment(PgConnection& conn, const std::string& publication) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult r, conn.ExecParams(std::string(sql::kPublicationOwner), {publication}));
  if (r.rows() == 0) return std::optional<std::string>();
  return std::optional<std::string>(std::string(r.Get(0, 0)));
}

}  // namespace

PublicationLayout ChooseLayout(const delta::DeltaPlan& plan, bool read_by_stream_table) {
  PublicationLayout layout;
  // A __pgt_row_id column means the identity may hold NULLs (or is a
  // multiset's value + ordinal): no primary key can be made of it.
  bool natural = !plan.identity_columns.empty() && !HasColumn(plan, kRowId);
  if (natural) {
    layout.key = plan.identity_columns;
  } else {
    layout.key = {kRowKeyColumn};
    layout.surrogate_key = true;
  }
  if (read_by_stream_table) {
    layout.identity = IdentityKind::kFull;
    return layout;
  }
  layout.identity = IdentityKind::kPrimaryKey;
  std::vector<std::string> columns;
  for (const auto& c : plan.columns) {
    bool in_key = std::find(layout.key.begin(), layout.key.end(), c.name) != layout.key.end();
    if (!c.hidden || in_key) columns.push_back(c.name);
  }
  if (layout.surrogate_key) columns.push_back(kRowKeyColumn);
  layout.columns = std::move(columns);
  return layout;
}

std::string DefaultPublicationName(const std::string& schema, const std::string& name) {
  std::string out = schema == "public" ? absl::StrCat(name, "_pub")
                                       : absl::StrCat(schema, "_", name, "_pub");
  if (out.size() > kMaxIdentifierBytes) {
    size_t cut = kMaxIdentifierBytes;
    // Never split a UTF-8 character.
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

absl::StatusOr<bool> IsOwned(PgConnection& conn, const std::string& publication,
                             const StreamTableRef& table) {
  TRICKLE_ASSIGN_OR_RETURN(std::optional<std::string> comment, OwnerComment(conn, publication));
  return comment == absl::StrCat(kCommentPrefix, table.QualifiedName());
}

absl::Status CheckNotForeign(PgConnection& conn, const std::string& publication,
                             const StreamTableRef& table) {
  TRICKLE_ASSIGN_OR_RETURN(std::optional<std::string> comment, OwnerComment(conn, publication));
  if (!comment || *comment == absl::StrCat(kCommentPrefix, table.QualifiedName())) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "publication \"", publication, "\" already exists and was not created by trickle for stream table ",
      table.QualifiedName(), "; trickle does not touch it: choose another name (--publication) or drop it yourself"));
}

absl::Status Create(PgConnection& conn, const std::string& publication, const StreamTableRef& table,
                    bool read_by_stream_table) {
  TRICKLE_ASSIGN_OR_RETURN(std::optional<std::string> comment, OwnerComment(conn, publication));
  if (comment && *comment != absl::StrCat(kCommentPrefix, table.QualifiedName())) {
    return CheckNotForeign(conn, publication, table);  // the error, worded in one place
  }
  std::string pub = conn.QuoteIdentifier(publication);
  if (!comment) {
    // The table joins in ApplyLayout, with its column list.
    TRICKLE_RETURN_IF_ERROR(
        conn.Exec(absl::StrCat("CREATE PUBLICATION ", pub,
                               " WITH (publish = 'insert, update, delete, truncate')"))
            .status());
    TRICKLE_RETURN_IF_ERROR(
        conn.Exec(absl::StrCat("COMMENT ON PUBLICATION ", pub, " IS ",
                               conn.QuoteLiteral(absl::StrCat(kCommentPrefix, table.QualifiedName()))))
            .status());
  }
  return ApplyLayout(conn, publication, table, read_by_stream_table);
}

absl::Status ApplyLayout(PgConnection& conn, const std::string& publication,
                         const StreamTableRef& table, bool read_by_stream_table) {
  PublicationLayout want = ChooseLayout(*table.plan, read_by_stream_table);
  std::string qualified = Qualified(conn, table);
  TRICKLE_ASSIGN_OR_RETURN(PgResult now,
                           conn.ExecParams(std::string(sql::kTableLayout), {qualified, publication}));
  if (now.rows() == 0) {
    return absl::NotFoundError(absl::StrCat("stream table ", table.QualifiedName(), " has no storage table"));
  }
  char identity = now.Get(0, 0).empty() ? '?' : now.Get(0, 0)[0];
  std::string primary_key(now.Get(0, 1));
  bool member = now.Get(0, 2) == "t";
  std::optional<std::string> columns = now.GetOptional(0, 3);

  std::string want_key = absl::StrJoin(want.key, ",");
  std::optional<std::string> want_columns;
  if (want.columns) want_columns = absl::StrJoin(*want.columns, ",");
  char want_identity = want.identity == IdentityKind::kPrimaryKey ? 'd' : 'f';
  bool need_key = primary_key != want_key;
  if (!need_key && identity == want_identity && member && columns == want_columns) {
    return absl::OkStatus();
  }
  if (need_key) {
    if (!primary_key.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "stream table ", table.QualifiedName(), " has a primary key on (", primary_key,
          ") that is not its row identity (", want_key, "); drop that constraint and retry"));
    }
    if (want.surrogate_key) {
      TRICKLE_RETURN_IF_ERROR(conn.Exec(absl::StrCat("ALTER TABLE ", qualified, " ADD COLUMN IF NOT EXISTS ",
                                                     conn.QuoteIdentifier(kRowKeyColumn),
                                                     " bigint GENERATED ALWAYS AS IDENTITY, ADD PRIMARY KEY (",
                                                     conn.QuoteIdentifier(kRowKeyColumn), ")"))
                                  .status());
      return SetPublishedColumns(conn, publication, qualified, want);
    }
    // The engine's unique index on the identity becomes the primary key
    // (keeping its name): the business key downstream consumers see.
    TRICKLE_ASSIGN_OR_RETURN(PgResult indexes,
                             conn.ExecParams(std::string(sql::kUniqueIndexes), {qualified}));
    std::string index;
    for (int i = 0; i < indexes.rows(); ++i) {
      if (indexes.Get(i, 1) == want_key) index = std::string(indexes.Get(i, 0));
    }
    if (index.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "stream table ", table.QualifiedName(), " has no unique index on its row identity (",
          want_key, "); rebuild it (alter its query) and retry"));
    }
    std::vector<std::string> not_null;
    for (const auto& k : want.key) {
      not_null.push_back(absl::StrCat("ALTER COLUMN ", conn.QuoteIdentifier(k), " SET NOT NULL"));
    }
    TRICKLE_RETURN_IF_ERROR(
        conn.Exec(absl::StrCat("ALTER TABLE ", qualified, " ", absl::StrJoin(not_null, ", "))).status());
    TRICKLE_RETURN_IF_ERROR(conn.Exec(absl::StrCat("ALTER TABLE ", qualified, " ADD CONSTRAINT ",
                                                   conn.QuoteIdentifier(index),
                                                   " PRIMARY KEY USING INDEX ",
                                                   conn.QuoteIdentifier(index)))
                                .status());
  }
  return SetPublishedColumns(conn, publication, qualified, want);
}

absl::Status Drop(PgConnection& conn, const std::string& publication, const StreamTableRef& table) {
  TRICKLE_ASSIGN_OR_RETURN(std::optional<std::string> comment, OwnerComment(conn, publication));
  if (comment) {
    if (*comment != absl::StrCat(kCommentPrefix, table.QualifiedName())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "publication \"", publication, "\" is not the one trickle created for stream table ",
          table.QualifiedName(), " (its comment differs); trickle does not drop it"));
    }
    TRICKLE_RETURN_IF_ERROR(
        conn.Exec(absl::StrCat("DROP PUBLICATION ", conn.QuoteIdentifier(publication))).status());
  }
  TRICKLE_ASSIGN_OR_RETURN(PgResult exists,
                           conn.ExecParams("SELECT to_regclass($1) IS NOT NULL", {Qualified(conn, table)}));
  if (exists.Get(0, 0) == "t") {
    TRICKLE_RETURN_IF_ERROR(
        conn.Exec(absl::StrCat("ALTER TABLE ", Qualified(conn, table), " REPLICA IDENTITY FULL")).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<RowCounts> ReadTransactionCounts(PgConnection& conn, const StreamTableRef& table) {
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult r, conn.ExecParams(std::string(sql::kTransactionCounts), {Qualified(conn, table)}));
  RowCounts c;
  absl::SimpleAtoi(r.Get(0, 0), &c.inserted);
  absl::SimpleAtoi(r.Get(0, 1), &c.updated);
  absl::SimpleAtoi(r.Get(0, 2), &c.deleted);
  return c;
}

absl::StatusOr<RowCounts> EmitRefreshBoundary(PgConnection& conn, const StreamTableRef& table,
                                              const RowCounts& before,
                                              const RefreshBoundary& boundary) {
  // A text[] literal; LSNs hold only hex digits and '/'.
  std::string exceptions = absl::StrCat("{", absl::StrJoin(boundary.exceptions, ","), "}");
  TRICKLE_ASSIGN_OR_RETURN(
      PgResult r,
      conn.ExecParams(std::string(sql::kRefreshBoundary),
                      {Qualified(conn, table), table.QualifiedName(), boundary.action,
                       boundary.frontier_lsn, exceptions, std::to_string(before.inserted),
                       std::to_string(before.updated), std::to_string(before.deleted),
                       boundary.truncated ? "true" : "false"}));
  RowCounts c;
  absl::SimpleAtoi(r.Get(0, 0), &c.inserted);
  absl::SimpleAtoi(r.Get(0, 1), &c.updated);
  absl::SimpleAtoi(r.Get(0, 2), &c.deleted);
  return c;
}

std::vector<std::string> FullRefreshDiffSql(PgConnection& conn, const StreamTableRef& table) {
  const delta::DeltaPlan& plan = *table.plan;
  if (plan.identity_columns.empty() || plan.full_select_sql.empty()) return {};
  std::string target = Qualified(conn, table);
  std::string result = conn.QuoteIdentifier(kFullResult);
  // Matched like the MERGE matches: through the __pgt_row_id hash (indexed)
  // and then exactly when the identity may hold NULLs, else by equality.
  bool hashed = HasColumn(plan, kRowId);
  std::vector<std::string> match;
  if (hashed) {
    match.push_back(absl::StrCat("t.", conn.QuoteIdentifier(kRowId), " = n.", conn.QuoteIdentifier(kRowId)));
  }
  for (const auto& k : plan.identity_columns) {
    std::string col = conn.QuoteIdentifier(k);
    match.push_back(absl::StrCat("t.", col, hashed ? " IS NOT DISTINCT FROM n." : " = n.", col));
  }
  std::string on = absl::StrJoin(match, " AND ");
  std::vector<std::string> all, rest;
  for (const auto& c : plan.columns) {
    all.push_back(c.name);
    bool identity = c.name == kRowId || std::find(plan.identity_columns.begin(),
                                                  plan.identity_columns.end(),
                                                  c.name) != plan.identity_columns.end();
    if (!identity) rest.push_back(c.name);
  }
  std::vector<std::string> out;
  if (!hashed) {
    // A NOT NULL key: one FULL JOIN of the stored rows with the full result
    // finds what differs (a small set, with the stored row's ctid), then
    // three small statements apply it.
    std::string diff = conn.QuoteIdentifier(kFullDiff);
    std::string ctid = conn.QuoteIdentifier(kStoredCtid);
    std::string key = conn.QuoteIdentifier(plan.identity_columns[0]);
    std::string differs = absl::StrCat("t.ctid IS NULL OR n.", key, " IS NULL");
    if (!rest.empty()) {
      absl::StrAppend(&differs, " OR ROW(", QuotedList(conn, rest, "t"), ") IS DISTINCT FROM ROW(",
                      QuotedList(conn, rest, "n"), ")");
    }
    out.push_back(absl::StrCat("CREATE TEMP TABLE ", diff, " ON COMMIT DROP AS SELECT t.ctid AS ", ctid,
                               ", n.* FROM ", target, " t FULL JOIN (", plan.full_select_sql, ") n ON ", on,
                               " WHERE ", differs));
    out.push_back(absl::StrCat("DELETE FROM ", target, " t USING ", diff, " d WHERE t.ctid = d.", ctid,
                               " AND d.", key, " IS NULL"));
    if (!rest.empty()) {
      std::vector<std::string> sets;
      for (const auto& c : rest) {
        sets.push_back(absl::StrCat(conn.QuoteIdentifier(c), " = d.", conn.QuoteIdentifier(c)));
      }
      out.push_back(absl::StrCat("UPDATE ", target, " t SET ", absl::StrJoin(sets, ", "), " FROM ", diff,
                                 " d WHERE t.ctid = d.", ctid, " AND d.", key, " IS NOT NULL"));
    }
    out.push_back(absl::StrCat("INSERT INTO ", target, " (", QuotedList(conn, all), ") SELECT ",
                               QuotedList(conn, all, "d"), " FROM ", diff, " d WHERE d.", ctid, " IS NULL"));
    out.push_back(absl::StrCat("DROP TABLE ", diff));
    return out;
  }
  // Identity with NULLs: matched through the hash, then exactly (IS NOT
  // DISTINCT FROM is not a FULL JOIN condition): the full result in a temp
  // table, then DELETE, UPDATE and INSERT against it.
  out.push_back(absl::StrCat("CREATE TEMP TABLE ", result, " ON COMMIT DROP AS ", plan.full_select_sql));
  out.push_back(absl::StrCat("ANALYZE ", result));
  out.push_back(absl::StrCat("DELETE FROM ", target, " t WHERE NOT EXISTS (SELECT FROM ", result,
                             " n WHERE ", on, ")"));
  if (!rest.empty()) {
    std::vector<std::string> sets;
    for (const auto& c : rest) {
      sets.push_back(absl::StrCat(conn.QuoteIdentifier(c), " = n.", conn.QuoteIdentifier(c)));
    }
    // Only rows that really differ are written: a recomputed, unchanged row
    // emits nothing downstream.
    out.push_back(absl::StrCat("UPDATE ", target, " t SET ", absl::StrJoin(sets, ", "), " FROM ",
                               result, " n WHERE ", on, " AND ROW(", QuotedList(conn, rest, "t"),
                               ") IS DISTINCT FROM ROW(", QuotedList(conn, rest, "n"), ")"));
  }
  out.push_back(absl::StrCat("INSERT INTO ", target, " (", QuotedList(conn, all), ") SELECT ",
                             QuotedList(conn, all, "n"), " FROM ", result, " n WHERE NOT EXISTS (SELECT FROM ",
                             target, " t WHERE ", on, ")"));
  out.push_back(absl::StrCat("DROP TABLE ", result));
  return out;
}

}  // namespace trickle::publisher
