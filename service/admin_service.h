// The admin RPC service (proto/admin.proto, trickle.admin.v1) and the gRPC
// server that carries it, with server reflection and the standard
// grpc.health.v1 service.
//
// Where each answer comes from:
//  * Create/Alter/Drop/Refresh go through the StreamTableManager (the
//    lifecycle owner); Explain reads its plan.
//  * List/GetStreamTable read the catalog on connections of their own, so a
//    long refresh never blocks them; staleness comes from the change log.
//  * GetHealth reads the StatusCollector (memory only).
// Errors are absl::Status inside; ToGrpcStatus() is the one place they
// become gRPC statuses.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "admin.grpc.pb.h"
#include "common/pg_connection.h"
#include "grpcpp/grpcpp.h"
#include "scheduler/refresh.h"
#include "scheduler/stream_table_manager.h"
#include "service/status_collector.h"
#include "storage/change_log.h"

namespace trickle::service {

// Largest request or response message. Bigger requests get
// RESOURCE_EXHAUSTED before any handler runs.
inline constexpr int kMaxAdminMessageBytes = 4 << 20;

struct AdminServiceOptions {
  // Target database, for catalog reads. No default.
  std::string dsn;
  // Bearer token every call but GetHealth must present; empty = no
  // authentication (then listen on loopback only).
  std::string auth_token;
};

class AdminService final : public admin::v1::TrickleAdmin::Service {
 public:
  // None of the pointers is owned; all must outlive the service.
  AdminService(AdminServiceOptions options, scheduler::StreamTableManager* manager,
               storage::ChangeLog* log, scheduler::FenceFn fence, StatusCollector* status);

  grpc::Status CreateStreamTable(grpc::ServerContext* context, const admin::v1::CreateStreamTableRequest* request,
                                 admin::v1::CreateStreamTableResponse* response) override;
  grpc::Status AlterStreamTable(grpc::ServerContext* context, const admin::v1::AlterStreamTableRequest* request,
                                admin::v1::AlterStreamTableResponse* response) override;
  grpc::Status DropStreamTable(grpc::ServerContext* context, const admin::v1::DropStreamTableRequest* request,
                               admin::v1::DropStreamTableResponse* response) override;
  grpc::Status RefreshStreamTable(grpc::ServerContext* context, const admin::v1::RefreshStreamTableRequest* request,
                                  admin::v1::RefreshStreamTableResponse* response) override;
  grpc::Status ListStreamTables(grpc::ServerContext* context, const admin::v1::ListStreamTablesRequest* request,
                                admin::v1::ListStreamTablesResponse* response) override;
  grpc::Status GetStreamTable(grpc::ServerContext* context, const admin::v1::GetStreamTableRequest* request,
                              admin::v1::GetStreamTableResponse* response) override;
  grpc::Status Explain(grpc::ServerContext* context, const admin::v1::ExplainRequest* request,
                       admin::v1::ExplainResponse* response) override;
  grpc::Status GetHealth(grpc::ServerContext* context, const admin::v1::GetHealthRequest* request,
                         admin::v1::GetHealthResponse* response) override;
  grpc::Status ResetFuse(grpc::ServerContext* context, const admin::v1::ResetFuseRequest* request,
                         admin::v1::ResetFuseResponse* response) override;
  grpc::Status CreatePublication(grpc::ServerContext* context, const admin::v1::CreatePublicationRequest* request,
                                 admin::v1::CreatePublicationResponse* response) override;
  grpc::Status DropPublication(grpc::ServerContext* context, const admin::v1::DropPublicationRequest* request,
                               admin::v1::DropPublicationResponse* response) override;
  grpc::Status ListPublications(grpc::ServerContext* context, const admin::v1::ListPublicationsRequest* request,
                                admin::v1::ListPublicationsResponse* response) override;

 private:
  // A catalog-read connection, returned to the pool when it goes out of scope.
  class Lease;
  absl::StatusOr<Lease> Connection();
  void Return(std::unique_ptr<PgConnection> conn);

  absl::Status Authorize(const grpc::ServerContext& context) const;
  // Stream tables from the catalog: all, or the one named (NotFound);
  // their catalog ids into `ids` when given.
  absl::StatusOr<std::vector<admin::v1::StreamTable>> ReadStreamTables(PgConnection& conn,
                                                                      const std::string* name,
                                                                      std::vector<int64_t>* ids = nullptr);
  absl::StatusOr<admin::v1::StreamTable> ReadStreamTable(const std::string& name);
  // Downstream publications as PostgreSQL has them: all, or the named stream table's.
  absl::StatusOr<std::vector<admin::v1::Publication>> ReadPublications(PgConnection& conn,
                                                                       const std::string* name);

  AdminServiceOptions options_;
  scheduler::StreamTableManager* manager_;  // not owned
  storage::ChangeLog* log_;                 // not owned
  scheduler::FenceFn fence_;
  StatusCollector* status_;                 // not owned

  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<PgConnection>> idle_ ABSL_GUARDED_BY(pool_mu_);
};

// absl::Status -> grpc::Status (the codes share their numbering); the
// message is kept, since it is written for the caller.
grpc::Status ToGrpcStatus(const absl::Status& status);

struct AdminServerOptions {
  // "host:port"; port 0 picks a free one. No default (trickled's
  // --grpc-address has one).
  std::string address;
};

// Builds and starts the gRPC server: the admin service, server reflection
// and grpc.health.v1. `*port` receives the port bound.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartAdminServer(const AdminServerOptions& options,
                                                               AdminService* service, int* port);

// "name" -> ("public", "name"); "schema.name" -> ("schema", "name").
absl::StatusOr<std::pair<std::string, std::string>> SplitStreamTableName(const std::string& name);

}  // namespace trickle::service
