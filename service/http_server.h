// The HTTP endpoints (/metrics, /healthz, /readyz): a small Boost.Beast
// server on one thread of its own, so a slow scrape never waits on a
// refresh and a refresh never waits on a scrape.
//
// Hostile input is bounded, never fatal: request headers over 8 KiB get 431,
// a body over 4 KiB 413, anything that does not parse 400 (then the
// connection closes); methods other than GET and HEAD get 405, unknown paths
// 404. A connection idle for `idle_timeout` is closed, and beyond
// `max_connections` new connections are closed at once.
//
// Handlers run on the server's thread: they must be quick and must not
// block (read in-memory state only).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace trickle::service {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse()>;

struct HttpServerOptions {
  // "host:port" to listen on ("[::1]:7434" for IPv6; port 0 picks a free
  // one). No default here; trickled's --http-address has one.
  std::string address;
  // Connections served at once; more are closed on accept. Default 64.
  int max_connections = 64;
  // A connection with no complete request for this long is closed. Default 10 s.
  absl::Duration idle_timeout = absl::Seconds(10);
};

class HttpServer {
 public:
  // Binds, listens and starts serving `routes` (exact paths; a query string
  // is ignored). Fails with the address when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                           std::map<std::string, HttpHandler> routes);
  ~HttpServer();  // stops serving and joins the thread

  // The port actually bound (useful with port 0).
  int port() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Splits "host:port" or "[v6]:port". InvalidArgument naming `flag` when malformed.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address,
                                                          const std::string& flag);

}  // namespace trickle::service
