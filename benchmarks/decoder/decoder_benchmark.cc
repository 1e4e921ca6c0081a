// pgoutput decoder throughput on realistic messages. Each benchmark decodes
// the same encoded message(s) in a loop into a handler that touches every
// column, and reports messages/s (items) and MB/s of wire bytes.
//
// BM_CopyBaseline copies the same bytes as the Insert benchmark, so the
// decoder's speed can be read as a ratio against a memcpy measured in the
// same run (the project measures speed as ratios, not absolute times).
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "benchmark/benchmark.h"
#include "pgoutput/decoder.h"
#include "pgoutput/relation_cache.h"
#include "pgoutput/tuple_fill.h"
#include "tests/pgoutput/message_builder.h"

namespace trickle::pgoutput {
namespace {

using testing::Encode;
using testing::Null;
using testing::Text;

// Touches what a real consumer reads (every column's kind and size), so the
// work is not optimized away.
class SinkHandler : public MessageHandler {
 public:
  absl::Status OnBegin(const BeginMessage& m) override { return Sink(m.xid); }
  absl::Status OnCommit(const CommitMessage& m) override { return Sink(m.commit_lsn); }
  absl::Status OnInsert(const InsertMessage& m) override { return Sink(Sum(m.new_tuple)); }
  absl::Status OnUpdate(const UpdateMessage& m) override {
    return Sink(Sum(m.old_tuple) + Sum(m.new_tuple));
  }
  absl::Status OnDelete(const DeleteMessage& m) override { return Sink(Sum(m.old_tuple)); }
  absl::Status OnRelation(const RelationMessage& m) override { return Sink(m.columns.size()); }

 private:
  static size_t Sum(const Tuple& t) {
    size_t n = 0;
    for (const ColumnValue& c : t) n += c.data.size() + static_cast<size_t>(c.kind);
    return n;
  }
  absl::Status Sink(uint64_t v) {
    benchmark::DoNotOptimize(v);
    return absl::OkStatus();
  }
};

// A row of a typical orders table: int4, text, numeric, text, timestamptz,
// in pgoutput's text format.
Tuple OrderRow(int id) {
  return {Text(std::to_string(100000 + id)), Text("customer-" + std::to_string(4200 + id)),
          Text("1234.56"), Text("deliver to the back door, ring twice please"),
          Text("2024-05-01 10:00:00.123456+00")};
}

void DecodeLoop(benchmark::State& state, int version, const std::vector<std::string>& messages) {
  Decoder decoder(version);
  SinkHandler handler;
  size_t bytes = 0;
  for (const std::string& m : messages) bytes += m.size();
  for (auto _ : state) {
    for (const std::string& m : messages) {
      absl::Status status = decoder.Decode(m, &handler);
      if (!status.ok()) {
        state.SkipWithError(std::string(status.message()).c_str());
        return;
      }
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * messages.size()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["bytes_per_msg"] = static_cast<double>(bytes) / messages.size();
}

void BM_DecodeBegin(benchmark::State& state) {
  DecodeLoop(state, 1, {Encode(BeginMessage{0x16B374D848, 768468000123456, 735})});
}
BENCHMARK(BM_DecodeBegin);

void BM_DecodeCommit(benchmark::State& state) {
  DecodeLoop(state, 1, {Encode(CommitMessage{0, 0x16B374D848, 0x16B374D878, 768468000123456})});
}
BENCHMARK(BM_DecodeCommit);

void BM_DecodeInsert5Columns(benchmark::State& state) {
  DecodeLoop(state, 1, {Encode(InsertMessage{0, 16391, OrderRow(1)})});
}
BENCHMARK(BM_DecodeInsert5Columns);

void BM_DecodeUpdateFullOldTuple5Columns(benchmark::State& state) {
  Tuple new_row = OrderRow(1);
  new_row[2] = Text("1299.99");
  DecodeLoop(state, 1,
             {Encode(UpdateMessage{0, 16391, OldTupleKind::kFull, OrderRow(1), new_row})});
}
BENCHMARK(BM_DecodeUpdateFullOldTuple5Columns);

void BM_DecodeDeleteFullOldTuple5Columns(benchmark::State& state) {
  DecodeLoop(state, 1, {Encode(DeleteMessage{0, 16391, OldTupleKind::kFull, OrderRow(1)})});
}
BENCHMARK(BM_DecodeDeleteFullOldTuple5Columns);

// A realistic transaction: Begin, 8 inserts, 3 updates (full old row),
// 1 delete, Commit.
void BM_DecodeTransaction(benchmark::State& state) {
  std::vector<std::string> messages;
  messages.push_back(Encode(BeginMessage{0x16B374D848, 768468000123456, 735}));
  for (int i = 0; i < 8; ++i) messages.push_back(Encode(InsertMessage{0, 16391, OrderRow(i)}));
  for (int i = 0; i < 3; ++i) {
    Tuple new_row = OrderRow(i);
    new_row[2] = Text("99.00");
    messages.push_back(Encode(UpdateMessage{0, 16391, OldTupleKind::kFull, OrderRow(i), new_row}));
  }
  messages.push_back(Encode(DeleteMessage{0, 16391, OldTupleKind::kFull, OrderRow(7)}));
  messages.push_back(Encode(CommitMessage{0, 0x16B374D848, 0x16B374D878, 768468000123456}));
  DecodeLoop(state, 1, messages);
}
BENCHMARK(BM_DecodeTransaction);

// The same Insert inside a v2 streamed block (an extra xid per message).
void BM_DecodeStreamedInsert5Columns(benchmark::State& state) {
  Decoder decoder(2);
  SinkHandler handler;
  if (!decoder.Decode(Encode(StreamStartMessage{735, true}), &handler).ok()) {
    state.SkipWithError("stream start");
    return;
  }
  const std::string m = Encode(InsertMessage{736, 16391, OrderRow(1)}, /*streamed=*/true);
  for (auto _ : state) {
    benchmark::DoNotOptimize(decoder.Decode(m, &handler));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.size()));
}
BENCHMARK(BM_DecodeStreamedInsert5Columns);

// Value size sweep: 5 columns of N bytes each (MB/s as values grow).
void BM_DecodeInsertValueSize(benchmark::State& state) {
  const std::string value(static_cast<size_t>(state.range(0)), 'v');
  DecodeLoop(state, 1,
             {Encode(InsertMessage{
                 0, 16391, {Text("1"), Text(value), Text(value), Text(value), Null()}})});
}
BENCHMARK(BM_DecodeInsertValueSize)->Arg(16)->Arg(128)->Arg(1024)->Arg(8192);

// Decode + unchanged-TOAST fill of an Update, as the capture path does it.
void BM_DecodeUpdateAndFillToast(benchmark::State& state) {
  RelationCache cache;
  cache.Apply(RelationMessage{0,
                              16391,
                              "public",
                              "orders",
                              'f',
                              {{true, "id", 23, -1},
                               {true, "customer", 25, -1},
                               {true, "amount", 1700, 655366},
                               {true, "note", 25, -1},
                               {true, "created", 1184, -1}}});
  const RelationSchema* schema = *cache.Current(16391);
  Tuple old_row = OrderRow(1);
  old_row[3] = Text(std::string(4000, 'n'));  // a TOASTed note
  Tuple new_row = OrderRow(1);
  new_row[3] = testing::Unchanged();
  const std::string m = Encode(UpdateMessage{0, 16391, OldTupleKind::kFull, old_row, new_row});

  class FillHandler : public MessageHandler {
   public:
    explicit FillHandler(const RelationSchema* schema) : schema_(schema) {}
    absl::Status OnUpdate(const UpdateMessage& m) override {
      filled_ = m;
      return FillUnchangedToast(*schema_, &filled_);
    }

   private:
    const RelationSchema* schema_;
    UpdateMessage filled_;
  } handler(schema);
  Decoder decoder(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(decoder.Decode(m, &handler));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.size()));
}
BENCHMARK(BM_DecodeUpdateAndFillToast);

// Baseline: copy the bytes of the 5-column Insert into a reused buffer.
void BM_CopyBaseline(benchmark::State& state) {
  const std::string m = Encode(InsertMessage{0, 16391, OrderRow(1)});
  std::string out;
  out.reserve(m.size());
  for (auto _ : state) {
    out.assign(m.data(), m.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.size()));
}
BENCHMARK(BM_CopyBaseline);

}  // namespace
}  // namespace trickle::pgoutput

BENCHMARK_MAIN();
