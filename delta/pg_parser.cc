#include "delta/pg_parser.h"

#include <pg_query.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace trickle::delta {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Owns a libpg_query protobuf parse result.
class ParseResultHolder {
 public:
  explicit ParseResultHolder(PgQueryProtobufParseResult r) : result_(r) {}
  ~ParseResultHolder() { pg_query_free_protobuf_parse_result(result_); }
  ParseResultHolder(const ParseResultHolder&) = delete;
  ParseResultHolder& operator=(const ParseResultHolder&) = delete;
  const PgQueryProtobufParseResult& get() const { return result_; }

 private:
  PgQueryProtobufParseResult result_;
};

class DeparseResultHolder {
 public:
  explicit DeparseResultHolder(PgQueryDeparseResult r) : result_(r) {}
  ~DeparseResultHolder() { pg_query_free_deparse_result(result_); }
  DeparseResultHolder(const DeparseResultHolder&) = delete;
  DeparseResultHolder& operator=(const DeparseResultHolder&) = delete;
  const PgQueryDeparseResult& get() const { return result_; }

 private:
  PgQueryDeparseResult result_;
};

absl::StatusOr<std::string> DeparseUnchecked(const pg_query::ParseResult& tree) {
  std::string bytes;
  if (!tree.SerializeToString(&bytes)) {
    return absl::InternalError("cannot serialize a libpg_query parse tree");
  }
  PgQueryProtobuf pb;
  pb.len = bytes.size();
  pb.data = bytes.data();
  DeparseResultHolder result(pg_query_deparse_protobuf(pb));
  if (result.get().error != nullptr) {
    return absl::InternalError(
        absl::StrCat("libpg_query cannot deparse a generated tree: ", result.get().error->message));
  }
  return std::string(result.get().query);
}

absl::StatusOr<std::string> DeparseChecked(const pg_query::ParseResult& tree) {
  auto text = DeparseUnchecked(tree);
  if (!text.ok()) return text.status();
  auto reparsed = ParseSql(*text);
  if (!reparsed.ok()) {
    return absl::InternalError(
        absl::StrCat("libpg_query's deparser printed SQL that does not parse (",
                     reparsed.status().message(), "): ", *text));
  }
  if (CanonicalKey(tree) != CanonicalKey(*reparsed)) {
    return absl::InternalError(absl::StrCat(
        "libpg_query's deparser printed SQL that parses to a different tree; refusing it: ",
        *text));
  }
  return text;
}

}  // namespace

absl::StatusOr<pg_query::ParseResult> ParseSql(std::string_view sql) {
  std::string input(sql);  // libpg_query wants a NUL-terminated string
  ParseResultHolder result(pg_query_parse_protobuf(input.c_str()));
  if (result.get().error != nullptr) {
    const PgQueryError* e = result.get().error;
    if (e->cursorpos > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("syntax error at position ", e->cursorpos, ": ", e->message));
    }
    return absl::InvalidArgumentError(absl::StrCat("cannot parse SQL: ", e->message));
  }
  pg_query::ParseResult tree;
  if (!tree.ParseFromArray(result.get().parse_tree.data,
                           static_cast<int>(result.get().parse_tree.len))) {
    return absl::InternalError("cannot decode libpg_query's protobuf parse tree");
  }
  return tree;
}

absl::StatusOr<std::string> DeparseStatement(const pg_query::Node& stmt) {
  pg_query::ParseResult tree;
  tree.set_version(PG_VERSION_NUM);
  *tree.add_stmts()->mutable_stmt() = stmt;
  return DeparseChecked(tree);
}

absl::StatusOr<std::string> DeparseExpression(const pg_query::Node& expr) {
  pg_query::Node select;
  pg_query::SelectStmt* s = select.mutable_select_stmt();
  s->set_op(pg_query::SETOP_NONE);
  s->set_limit_option(pg_query::LIMIT_OPTION_DEFAULT);
  *s->add_target_list()->mutable_res_target()->mutable_val() = expr;
  auto text = DeparseStatement(select);
  if (!text.ok()) return text.status();
  constexpr std::string_view kPrefix = "SELECT ";
  if (!text->starts_with(kPrefix)) {
    return absl::InternalError(absl::StrCat("unexpected deparse of an expression: ", *text));
  }
  return text->substr(kPrefix.size());
}

void ClearLocations(Message* message) {
  const Reflection* reflection = message->GetReflection();
  const auto* descriptor = message->GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (field->is_repeated()) {
        int n = reflection->FieldSize(*message, field);
        for (int j = 0; j < n; ++j) {
          ClearLocations(reflection->MutableRepeatedMessage(message, field, j));
        }
      } else if (reflection->HasField(*message, field)) {
        ClearLocations(reflection->MutableMessage(message, field));
      }
    } else if (!field->is_repeated() && field->cpp_type() == FieldDescriptor::CPPTYPE_INT32 &&
               (field->name() == "location" || field->name() == "stmt_location" ||
                field->name() == "stmt_len")) {
      reflection->ClearField(message, field);
    }
  }
}

std::string CanonicalKey(const Message& message) {
  std::unique_ptr<Message> copy(message.New());
  copy->CopyFrom(message);
  ClearLocations(copy.get());
  std::string out;
  // Deterministic serialization: equal trees give equal bytes.
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    copy->SerializeToCodedStream(&coded);
  }
  return out;
}

}  // namespace trickle::delta
