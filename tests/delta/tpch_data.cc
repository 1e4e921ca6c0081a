#include "tests/delta/tpch_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "tests/delta/random_choice.h"

namespace trickle::delta::testing {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status Exec(PgConnection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  if (!r.ok()) {
    return absl::Status(r.status().code(), absl::StrCat(r.status().message(), "\nin: ", sql));
  }
  return absl::OkStatus();
}

// The sizes of the loaded data and the highest keys now.
struct Extent {
  int parts = 0, suppliers = 0, customers = 0;
  int max_order = 0, max_customer = 0;
};

}  // namespace

absl::Status LoadTpch(PgConnection& conn, double sf) {
  for (const char* file : {"schema.sql", "generator.sql"}) {
    TRICKLE_ASSIGN_OR_RETURN(std::string sql, ReadFile(absl::StrCat(TRICKLE_TPCH_DIR, "/", file)));
    TRICKLE_RETURN_IF_ERROR(Exec(conn, "SET client_min_messages = warning;\n" + sql));
  }
  return Exec(conn, absl::StrFormat("SELECT tpch_gen.load(%g)", sf));
}

absl::StatusOr<std::vector<TpchQuery>> TpchQueries(double sf) {
  // The LIMITs of the specification's queries (clause 2.4).
  const std::map<std::string, int> limits = {
      {"q02", 100}, {"q03", 10}, {"q10", 20}, {"q18", 100}, {"q21", 100}};
  std::vector<TpchQuery> out;
  for (int n = 1; n <= 22; ++n) {
    TpchQuery q;
    q.name = absl::StrFormat("q%02d", n);
    TRICKLE_ASSIGN_OR_RETURN(std::string text,
                             ReadFile(absl::StrCat(TRICKLE_TPCH_DIR, "/queries/", q.name, ".sql")));
    // Drop the comment lines at the top; the rest is the query.
    std::string query;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("--", 0) == 0) continue;
      absl::StrAppend(&query, query.empty() ? "" : "\n", line);
    }
    q.query = absl::StrReplaceAll(query, {{":FRACTION", absl::StrFormat("%g", 0.0001 / sf)}});
    auto it = limits.find(q.name);
    q.limit = it == limits.end() ? 0 : it->second;
    out.push_back(std::move(q));
  }
  return out;
}

absl::Status ApplyTpchBatch(PgConnection& conn, std::mt19937_64& rng, const TpchBatchSize& size) {
  TRICKLE_ASSIGN_OR_RETURN(PgResult r,
                           conn.Exec("SELECT parts, suppliers, customers,"
                                     " (SELECT coalesce(max(o_orderkey), 1) FROM tpch.orders),"
                                     " (SELECT coalesce(max(c_custkey), 1) FROM tpch.customer)"
                                     " FROM tpch_gen.size"));
  if (r.rows() != 1) return absl::FailedPreconditionError("tpch_gen.size has no row: load first");
  Extent e;
  e.parts = std::stoi(std::string(r.Get(0, 0)));
  e.suppliers = std::stoi(std::string(r.Get(0, 1)));
  e.customers = std::stoi(std::string(r.Get(0, 2)));
  e.max_order = std::stoi(std::string(r.Get(0, 3)));
  e.max_customer = std::stoi(std::string(r.Get(0, 4)));

  // Rows are picked by a random key and the next existing one, through the
  // primary key (no scan).
  auto order = [&]() {
    return absl::StrCat("(SELECT o_orderkey FROM tpch.orders WHERE o_orderkey >= ",
                        Uniform(rng, 1, e.max_order), " ORDER BY o_orderkey LIMIT 1)");
  };
  auto line = [&]() {
    return absl::StrCat(
        "(l_orderkey, l_linenumber) = (SELECT l_orderkey, l_linenumber FROM tpch.lineitem"
        " WHERE l_orderkey >= ",
        Uniform(rng, 1, e.max_order), " ORDER BY l_orderkey, l_linenumber LIMIT 1)");
  };
  auto customer = [&]() {
    return absl::StrCat("(SELECT c_custkey FROM tpch.customer WHERE c_custkey >= ",
                        Uniform(rng, 1, e.max_customer), " ORDER BY c_custkey LIMIT 1)");
  };
  auto part = [&]() { return Uniform(rng, 1, e.parts); };
  auto supplier = [&]() { return Uniform(rng, 1, e.suppliers); };
  auto money = [&](int lo, int hi) {  // lo/100 .. hi/100
    return absl::StrCat("(", Uniform(rng, lo, hi), " / 100.0)");
  };
  auto seed = [&]() { return Uniform(rng, 2, 1000000000); };

  std::vector<std::string> sql;
  if (Chance(rng, 0.8)) {
    sql.push_back(
        absl::StrCat("SELECT tpch_gen.rf1(", Uniform(rng, 1, size.new_orders), ", ", seed(), ")"));
  }
  if (Chance(rng, 0.8)) {
    sql.push_back(absl::StrCat("SELECT tpch_gen.rf2(", Uniform(rng, 1, size.deleted_orders), ", ",
                               seed(), ")"));
  }
  const std::vector<std::string> modes = {"'REG AIR'", "'AIR'",  "'RAIL'", "'SHIP'",
                                          "'TRUCK'",   "'MAIL'", "'FOB'"};
  const std::vector<std::string> segments = {"'AUTOMOBILE'", "'BUILDING'", "'FURNITURE'",
                                             "'MACHINERY'", "'HOUSEHOLD'"};
  const std::vector<std::string> brands = {"'Brand#12'", "'Brand#23'", "'Brand#34'", "'Brand#45'",
                                           "'Brand#51'"};
  const std::vector<std::string> containers = {"'SM CASE'", "'MED BOX'", "'MED CAN'",
                                               "'LG BOX'",  "'MED BAG'", "'WRAP JAR'"};
  const std::vector<std::string> types = {"'ECONOMY ANODIZED STEEL'", "'PROMO BRUSHED BRASS'",
                                          "'MEDIUM POLISHED TIN'", "'STANDARD PLATED BRASS'",
                                          "'LARGE BURNISHED COPPER'"};
  for (int i = Uniform(rng, 0, size.updates); i > 0; --i) {
    switch (Uniform(rng, 0, 19)) {
      case 0: {  // quantity, and the price with it
        int q = Uniform(rng, 1, 50);
        sql.push_back(
            absl::StrCat("UPDATE tpch.lineitem SET l_quantity = ", q, ", l_extendedprice = (", q,
                         " * tpch_gen.retailprice(l_partkey))::numeric(12,2) WHERE ", line()));
        break;
      }
      case 1:
        sql.push_back(absl::StrCat("UPDATE tpch.lineitem SET l_discount = ", money(0, 10),
                                   ", l_tax = ", money(0, 8), " WHERE ", line()));
        break;
      case 2: {  // dates move across the queries' date ranges
        int k = Uniform(rng, -200, 200);
        sql.push_back(absl::StrCat("UPDATE tpch.lineitem SET l_shipdate = l_shipdate + ", k,
                                   ", l_commitdate = l_commitdate + ", Uniform(rng, -30, 30),
                                   ", l_receiptdate = l_receiptdate + ", k,
                                   ", l_linestatus = CASE WHEN l_shipdate + ", k,
                                   " > date '1995-06-17' THEN 'O' ELSE 'F' END WHERE ", line()));
        break;
      }
      case 3: {  // another part (and one of its suppliers): join keys change
        int p = part();
        sql.push_back(absl::StrCat("UPDATE tpch.lineitem SET l_partkey = ", p,
                                   ", l_suppkey = tpch_gen.supplier_of_part(", p, ", ",
                                   Uniform(rng, 0, 3), ", ", e.suppliers,
                                   "), l_extendedprice = (l_quantity * tpch_gen.retailprice(", p,
                                   "))::numeric(12,2) WHERE ", line()));
        break;
      }
      case 4:
        sql.push_back(absl::StrCat(
            "UPDATE tpch.lineitem SET l_suppkey = tpch_gen.supplier_of_part(l_partkey, ",
            Uniform(rng, 0, 3), ", ", e.suppliers, "), l_shipmode = ", Pick(rng, modes), " WHERE ",
            line()));
        break;
      case 5:
        sql.push_back(absl::StrCat(
            "UPDATE tpch.lineitem SET l_returnflag = CASE l_returnflag WHEN 'R' THEN 'A' "
            "WHEN 'A' THEN 'R' ELSE 'N' END WHERE ",
            line()));
        break;
      case 6:
        sql.push_back(absl::StrCat("UPDATE tpch.orders SET o_orderdate = o_orderdate + ",
                                   Uniform(rng, -300, 300), " WHERE o_orderkey = ", order()));
        break;
      case 7:
        sql.push_back(absl::StrCat("UPDATE tpch.orders SET o_custkey = ", customer(),
                                   " WHERE o_orderkey = ", order()));
        break;
      case 8:
        sql.push_back(absl::StrCat(
            "UPDATE tpch.orders SET o_orderpriority = ",
            Pick<std::string>(rng, {"'1-URGENT'", "'2-HIGH'", "'3-MEDIUM'", "'5-LOW'"}),
            ", o_orderstatus = ", Pick<std::string>(rng, {"'F'", "'O'", "'P'"}),
            ", o_totalprice = ", money(100000, 50000000), " WHERE o_orderkey = ", order()));
        break;
      case 9:
        sql.push_back(
            absl::StrCat("UPDATE tpch.orders SET o_comment = ",
                         Pick<std::string>(rng, {"'special packages requests'", "'final deposits'",
                                                 "'even special requests'"}),
                         " WHERE o_orderkey = ", order()));
        break;
      case 10: {  // an order moves to a new key with its lineitems
        // Lineitems first: both statements then see the same order key k and
        // the same new key (above every order key).
        std::string k = order();
        const char* to = "(SELECT max(o_orderkey) + 1 FROM tpch.orders)";
        sql.push_back(
            absl::StrCat("UPDATE tpch.lineitem SET l_orderkey = ", to, " WHERE l_orderkey = ", k));
        sql.push_back(
            absl::StrCat("UPDATE tpch.orders SET o_orderkey = ", to, " WHERE o_orderkey = ", k));
        break;
      }
      case 11: {
        int n = Uniform(rng, 0, 24);
        sql.push_back(absl::StrCat("UPDATE tpch.customer SET c_acctbal = ", money(-99999, 999999),
                                   ", c_mktsegment = ", Pick(rng, segments),
                                   Chance(rng, 0.5)
                                       ? absl::StrCat(", c_nationkey = ", n, ", c_phone = '",
                                                      n + 10, "' || substr(c_phone, 3)")
                                       : "",
                                   " WHERE c_custkey = ", customer()));
        break;
      }
      case 12:
        if (Chance(rng, 0.5)) {
          sql.push_back(absl::StrCat(
              "INSERT INTO tpch.customer SELECT (SELECT max(c_custkey) + 1 FROM tpch.customer),"
              " c_name, c_address, c_nationkey, c_phone, c_acctbal, c_mktsegment, c_comment FROM "
              "tpch_gen.customers(",
              Uniform(rng, 1, e.customers), ", ", Uniform(rng, 1, e.customers), ", ", seed(),
              ") LIMIT 1"));
        } else {
          sql.push_back(absl::StrCat("DELETE FROM tpch.customer WHERE c_custkey = ", customer()));
        }
        break;
      case 13:
        sql.push_back(absl::StrCat(
            "UPDATE tpch.part SET ",
            Pick<std::string>(
                rng, {absl::StrCat("p_brand = ", Pick(rng, brands)),
                      absl::StrCat("p_container = ", Pick(rng, containers)),
                      absl::StrCat("p_type = ", Pick(rng, types)),
                      absl::StrCat("p_size = ", Pick<int>(rng, {15, 3, 9, 14, 23, 36, 49})),
                      absl::StrCat("p_retailprice = ", money(90000, 200000)),
                      "p_name = 'forest ' || p_name", "p_name = 'dark green ivory'"}),
            " WHERE p_partkey = ", part()));
        break;
      case 14:
      case 15:
        sql.push_back(absl::StrCat(
            "UPDATE tpch.partsupp SET ",
            Chance(rng, 0.5) ? absl::StrCat("ps_supplycost = ", money(100, 100000))
                             : absl::StrCat("ps_availqty = ", Uniform(rng, 1, 9999)),
            " WHERE (ps_partkey, ps_suppkey) = (SELECT ps_partkey, ps_suppkey FROM tpch.partsupp"
            " WHERE ps_partkey >= ",
            part(), " ORDER BY ps_partkey, ps_suppkey LIMIT 1)"));
        break;
      case 16: {
        int n = Uniform(rng, 0, 24);
        sql.push_back(absl::StrCat(
            "UPDATE tpch.supplier SET ",
            Pick<std::string>(
                rng, {absl::StrCat("s_acctbal = ", money(-99999, 999999)),
                      absl::StrCat("s_nationkey = ", n, ", s_phone = '", n + 10,
                                   "' || substr(s_phone, 3)"),
                      "s_comment = 'Customer slyly Complaints'", "s_comment = 'final foxes'"}),
            " WHERE s_suppkey = ", supplier()));
        break;
      }
      case 17: {  // a join partner deleted in the batch that points at it
        int p = part();
        sql.push_back(absl::StrCat("UPDATE tpch.lineitem SET l_partkey = ", p, " WHERE ", line()));
        sql.push_back(absl::StrCat("DELETE FROM tpch.part WHERE p_partkey = ", p));
        break;
      }
      case 18:
        if (Chance(rng, 0.5)) {  // one more lineitem in an existing order
          sql.push_back(absl::StrCat(
              "INSERT INTO tpch.lineitem SELECT l_orderkey, l_partkey, l_suppkey,"
              " (SELECT max(l_linenumber) + 1 FROM tpch.lineitem x WHERE x.l_orderkey = "
              "l.l_orderkey),"
              " l_quantity, l_extendedprice, l_discount, l_tax, l_returnflag, l_linestatus,"
              " l_shipdate, l_commitdate, l_receiptdate, l_shipinstruct, l_shipmode, l_comment"
              " FROM tpch.lineitem l WHERE ",
              line()));
        } else {
          sql.push_back(absl::StrCat("DELETE FROM tpch.lineitem WHERE ", line()));
        }
        break;
      default:
        if (Chance(rng, 0.1)) {  // rarely: a nation changes region
          sql.push_back(absl::StrCat("UPDATE tpch.nation SET n_regionkey = ", Uniform(rng, 0, 4),
                                     " WHERE n_nationkey = ", Uniform(rng, 0, 24)));
        } else {
          sql.push_back(absl::StrCat("UPDATE tpch.lineitem SET l_receiptdate = l_commitdate + ",
                                     Uniform(rng, -5, 5), " WHERE ", line()));
        }
    }
  }
  for (const auto& s : sql) TRICKLE_RETURN_IF_ERROR(Exec(conn, s));
  return absl::OkStatus();
}

}  // namespace trickle::delta::testing
