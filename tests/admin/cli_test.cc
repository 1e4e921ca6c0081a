// The `trickle` CLI against a real trickled: a golden transcript of a whole
// session (output shape, with times, LSNs, durations and sizes normalised),
// the shape of the commands whose output depends on the engine (explain,
// health, --json), every exit code, and --help everywhere.
//
// To rewrite the golden file after an intended change of the output:
//   TRICKLE_UPDATE_GOLDEN=1 ./cli_test --gtest_filter='*Golden*'
// and review the diff.
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/admin/trickled_process.h"
#include "tests/support/postgres_server.h"

namespace trickle::testing {
namespace {

using ::testing::HasSubstr;

// What varies from run to run becomes a placeholder; runs of spaces (table
// alignment follows the widths of the values) become one.
std::string Normalize(const std::string& text) {
  static const std::vector<std::pair<std::regex, std::string>> rules = {
      {std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)"), "<time>"},
      {std::regex(R"(\b[0-9A-F]{1,8}/[0-9A-F]{1,8}\b)"), "<lsn>"},
      {std::regex(R"(\b\d+(\.\d+)?(us|ms|s)\b)"), "<dur>"},
      {std::regex(R"(\b\d+m\d\ds\b|\b\d+h\d\dm\b)"), "<dur>"},
      {std::regex(R"(\b\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)\b)"), "<bytes>"},
      {std::regex(R"( {2,})"), " "},
  };
  std::string out = text;
  for (const auto& [re, placeholder] : rules) out = std::regex_replace(out, re, placeholder);
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto sql = TestPostgres().Connect();
    ASSERT_TRUE(sql.ok()) << sql.status();
    sql_ = std::move(*sql);
  }
  void StartService(const std::string& name, const std::string& token = "") {
    TrickledOptions options;
    options.name = name;
    options.auth_token = token;
    auto started = TrickledProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    trickled_ = std::move(*started);
  }
  CliResult Cli(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                const std::string& stdin_text = "") {
    if (trickled_ != nullptr && !env.contains("TRICKLE_ADDRESS")) env["TRICKLE_ADDRESS"] = trickled_->grpc_address();
    return RunCli(args, env, stdin_text);
  }
  void Sql(const std::string& statement) { ASSERT_TRUE(sql_->Exec(statement).ok()) << statement; }

  std::unique_ptr<PgConnection> sql_;
  std::unique_ptr<TrickledProcess> trickled_;
};

TEST_F(CliTest, GoldenSessionTranscript) {
  Sql("CREATE TABLE cli_orders (id int PRIMARY KEY, customer text, amount numeric);"
      "ALTER TABLE cli_orders REPLICA IDENTITY FULL;"
      "INSERT INTO cli_orders VALUES (1, 'ada', 10), (2, 'grace', 20)");
  StartService("cligolden");
  std::string transcript;
  auto step = [&](const std::vector<std::string>& args, const std::string& stdin_text = "") {
    CliResult r = Cli(args, {}, stdin_text);
    std::vector<std::string> shown;
    for (const std::string& a : args) shown.push_back(a.find(' ') == std::string::npos ? a : "'" + a + "'");
    absl::StrAppend(&transcript, "$ trickle ", absl::StrJoin(shown, " "), "\n", r.out);
    if (!r.err.empty()) absl::StrAppend(&transcript, "[stderr] ", r.err);
    absl::StrAppend(&transcript, "[exit ", r.exit_code, "]\n\n");
  };
  step({"--version"});
  step({"create", "cli_totals", "SELECT customer, sum(amount) AS total FROM cli_orders GROUP BY customer",
        "--schedule=downstream"});
  step({"create", "cli_ids", "-", "--schedule", "downstream", "--mode=full"}, "SELECT id FROM cli_orders\n");
  step({"list"});
  Sql("INSERT INTO cli_orders VALUES (3, 'ada', 5)");
  step({"refresh", "cli_totals"});
  step({"refresh", "cli_totals"});
  step({"refresh", "cli_ids", "--full"});
  step({"status", "cli_totals", "--history=2"});
  step({"alter", "cli_totals", "--schedule=2h", "--verify=true"});
  step({"status", "nope"});
  step({"drop", "cli_totals"});
  step({"drop", "public.cli_ids"});
  step({"list"});

  std::string actual = Normalize(transcript);
  std::string golden_path = std::string(GOLDEN_DIR) + "/session.txt";
  if (std::getenv("TRICKLE_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden_path) << actual;
    GTEST_SKIP() << "rewrote " << golden_path;
  }
  std::string expected = ReadFile(golden_path);
  ASSERT_FALSE(expected.empty()) << "missing " << golden_path << "; run with TRICKLE_UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, expected) << "raw transcript:\n" << transcript;
}

TEST_F(CliTest, ExplainHealthAndJsonHaveTheirShape) {
  Sql("CREATE TABLE shape_src (id int PRIMARY KEY, grp int, v int);"
      "ALTER TABLE shape_src REPLICA IDENTITY FULL;"
      "INSERT INTO shape_src SELECT g, g % 3, g FROM generate_series(1, 30) g");
  StartService("clishape");
  CliResult r = Cli({"create", "shape_sum", "SELECT grp, sum(v) AS s FROM shape_src GROUP BY grp", "--schedule=downstream"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = Cli({"explain", "shape_sum"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("shape_sum: maintained by DIFFERENTIAL refresh\n"));
  EXPECT_THAT(r.out, HasSubstr("Aggregate"));
  EXPECT_THAT(r.out, HasSubstr("\n-- delta SQL\n"));
  EXPECT_THAT(r.out, HasSubstr("\n-- MERGE\nMERGE INTO public.shape_sum"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("EXPLAIN (ANALYZE")));

  Sql("UPDATE shape_src SET v = v + 1 WHERE id <= 2");
  r = Cli({"explain", "shape_sum", "--analyze"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("-- EXPLAIN (ANALYZE, BUFFERS) of the delta SQL on 4 pending delta rows from 1 "
                               "transactions (rolled back)\n["));
  EXPECT_THAT(r.out, HasSubstr("\"Actual Rows\""));

  r = Cli({"health"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> labels;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    if (line[0] != ' ') labels.push_back(std::string(line.substr(0, line.find(':'))));
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"ready", "capture", "slot", "change log", "workers", "stream tables",
                                               "last error", "version"}));
  EXPECT_THAT(r.out, HasSubstr("ready:           yes\n  database         ok\n  slot_streaming   ok\n  catalog          ok\n"));
  EXPECT_THAT(r.out, HasSubstr("stream tables:   1 ACTIVE\n"));

  r = Cli({"list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"stream_tables\": ["));
  EXPECT_THAT(r.out, HasSubstr("\"name\": \"public.shape_sum\""));
  EXPECT_THAT(r.out, HasSubstr("\"effective_mode\": \"REFRESH_MODE_DIFFERENTIAL\""));
  r = Cli({"--json", "status", "shape_sum"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"recent_refreshes\": ["));
  r = Cli({"health", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"ready\": true"));
  r = Cli({"refresh", "shape_sum", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"action\": \"REFRESH_ACTION_DIFFERENTIAL\""));
  EXPECT_THAT(r.out, HasSubstr("\"delta_rows\": \"4\""));  // int64 is a string in proto JSON
}

TEST_F(CliTest, ExitCodesScriptsCanRelyOn) {
  Sql("CREATE TABLE codes_src (id int PRIMARY KEY, v int); ALTER TABLE codes_src REPLICA IDENTITY FULL");
  StartService("clicodes");
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string stderr_has;
  };
  std::vector<Case> cases = {
      {{}, 2, "no command given"},
      {{"bogus"}, 2, "unknown command \"bogus\""},
      {{"create"}, 2, "create takes 2 arguments, got 0"},
      {{"create", "x"}, 2, "Usage: trickle create"},
      {{"list", "extra"}, 2, "list takes 0 arguments, got 1"},
      {{"list", "--nope"}, 2, "unknown option --nope"},
      {{"list", "--cascade"}, 2, "unknown option --cascade"},
      {{"create", "a", "SELECT 1", "--mode=weird"}, 2, "--mode=weird is not auto, full or differential"},
      {{"status", "x", "--history=abc"}, 2, "--history=abc is not a count"},
      {{"list", "--timeout=soon"}, 2, "--timeout=soon is not a duration"},
      {{"alter", "x"}, 2, "nothing to change"},
      {{"fuse", "reset", "x"}, 2, "--action must be apply, reinitialize or skip-changes"},
      {{"fuse", "blow", "x", "--action=apply"}, 2, "unknown fuse command"},
      {{"status", "nope"}, 3, "NOT_FOUND: no stream table named public.nope"},
      {{"refresh", "nope"}, 3, "NOT_FOUND"},
      {{"drop", "nope"}, 3, "NOT_FOUND"},
      {{"create", "codes_bad", "SELECT id, random() AS r FROM codes_src", "--mode=differential"}, 4,
       "INVALID_ARGUMENT: stream table public.codes_bad cannot be maintained differentially: volatile function random()"},
      {{"create", "codes_up", "SELECT id, v FROM codes_src", "--schedule=downstream"}, 0, ""},
      {{"create", "codes_up", "SELECT id FROM codes_src"}, 5, "ALREADY_EXISTS"},
      {{"create", "codes_down", "SELECT v, count(*) AS n FROM codes_up GROUP BY v", "--schedule=downstream"}, 0, ""},
      {{"drop", "codes_up"}, 5, "FAILED_PRECONDITION: cannot drop stream table public.codes_up: stream tables "
                                "public.codes_down read it; drop them first or drop with cascade"},
      {{"fuse", "reset", "codes_up", "--action=apply"}, 5, "is not blown"},
      {{"drop", "codes_up", "--cascade"}, 0, ""},
      {{"--address=127.0.0.1:1", "list", "--timeout=3s"}, 6, "cannot reach trickled at 127.0.0.1:1"},
  };
  for (const Case& c : cases) {
    CliResult r = Cli(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << absl::StrJoin(c.args, " ") << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.stderr_has)) << absl::StrJoin(c.args, " ");
    if (c.exit_code != 0) {
      EXPECT_TRUE(r.out.empty()) << absl::StrJoin(c.args, " ") << ": " << r.out;
    }
  }
}

TEST_F(CliTest, TokenFromFileOrEnvironment) {
  const std::string token = "cli-test-token";
  StartService("clitoken", token);
  CliResult r = Cli({"list"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_THAT(r.err, HasSubstr("UNAUTHENTICATED"));
  r = Cli({"list"}, {{"TRICKLE_AUTH_TOKEN", "wrong"}});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  r = Cli({"list"}, {{"TRICKLE_AUTH_TOKEN", token}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "no stream tables\n");
  std::string file = MakeTempDir("trickle-token-") + "/token";
  std::ofstream(file) << token << "\n";  // a trailing newline is not part of the token
  r = Cli({"--token-file", file, "list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Cli({"list", "--token-file=/no/such/file"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // Health needs no token.
  r = Cli({"health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CliTest, HelpEverywhere) {
  CliResult r = RunCli({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("Commands:"));
  EXPECT_THAT(r.out, HasSubstr("Exit codes:"));
  r = RunCli({"help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("Commands:"));
  for (const char* command : {"create", "alter", "drop", "refresh", "list", "status", "explain", "health", "fuse"}) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {command, "--help"}, {command, "-h"}, {"help", command}}) {
      r = RunCli(args);
      EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << ": " << r.err;
      EXPECT_THAT(r.out, HasSubstr(absl::StrCat("Usage: trickle ", command))) << absl::StrJoin(args, " ");
      EXPECT_TRUE(r.err.empty()) << r.err;
    }
  }
}

}  // namespace
}  // namespace trickle::testing
