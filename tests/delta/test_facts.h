// Catalog facts for the unit and golden tests: a small shop schema, a keyless
// table and a table with hostile names, as the catalog adapter would report.
#pragma once

#include "delta/delta_engine.h"

namespace trickle::delta::testing {

inline CatalogFacts ShopFacts() {
  CatalogFacts f;
  f.search_path = {"src"};
  f.relations.push_back({"src",
                         "orders",
                         1001,
                         {{"id", "integer", true},
                          {"cust_id", "integer", false},
                          {"amount", "integer", false},
                          {"status", "text", true},
                          {"qty", "integer", true},
                          {"price", "numeric(8,2)", false},
                          {"weight", "double precision", false}},
                         {"id"}});
  f.relations.push_back({"src",
                         "customers",
                         1002,
                         {{"id", "integer", true},
                          {"name", "text", true},
                          {"region", "text", false},
                          {"tier", "integer", false}},
                         {"id"}});
  f.relations.push_back(
      {"src", "events", 1003, {{"k", "integer", false}, {"v", "text", false}}, {}});
  f.relations.push_back({"Odd Schema",
                         "we\"ird",
                         1004,
                         {{"select", "integer", true},
                          {"a\"b", "text", false},
                          {"Group", "integer", false},
                          {"MixedCase", "text", false}},
                         {"select"}});
  return f;
}

}  // namespace trickle::delta::testing
