#include "service/http_server.h"

#include <atomic>
#include <optional>
#include <thread>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace trickle::service {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr size_t kMaxHeaderBytes = 8 * 1024;
constexpr size_t kMaxBodyBytes = 4 * 1024;
}  // namespace

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address,
                                                          const std::string& flag) {
  std::string host;
  std::string port_text;
  if (!address.empty() && address[0] == '[') {
    size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, "=", address, " is not host:port (IPv6 as [::1]:7434)"));
    }
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, "=", address, " is not host:port, e.g. 127.0.0.1:7434"));
    }
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
  }
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "=", address, ": \"", port_text, "\" is not a port (0-65535)"));
  }
  if (host.empty()) host = "0.0.0.0";
  return std::make_pair(host, port);
}

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, std::map<std::string, HttpHandler> routes)
      : options_(std::move(options)), routes_(std::move(routes)), acceptor_(asio::make_strand(ioc_)) {}

  absl::Status Listen() {
    auto split = SplitHostPort(options_.address, "--http-address");
    if (!split.ok()) return split.status();
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(split->first, std::to_string(split->second),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--http-address=", options_.address,
                                                     ": cannot resolve \"", split->first,
                                                     "\": ", ec.message()));
    }
    tcp::endpoint endpoint = results.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", options_.address, ": ",
                                                 ec.message(),
                                                 "; choose another --http-address"));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] {
      // Handlers are ours and do not throw; anything Beast throws is a bug
      // worth a log line, not a dead endpoint.
      while (!ioc_.stopped()) {
        try {
          ioc_.run();
        } catch (const std::exception& e) {
          spdlog::error("http server: {}", e.what());
        }
      }
    });
    return absl::OkStatus();
  }

  void Stop() {
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
    });
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const { return port_; }

  HttpResponse Dispatch(const http::request<http::string_body>& req) {
    if (req.version() != 10 && req.version() != 11) {
      return {400, "text/plain; charset=utf-8", "only HTTP/1.0 and HTTP/1.1\n"};
    }
    std::string target(req.target());
    if (target.empty() || target[0] != '/') {
      return {400, "text/plain; charset=utf-8", "bad request target\n"};
    }
    if (size_t q = target.find('?'); q != std::string::npos) target.resize(q);
    auto it = routes_.find(target);
    if (it == routes_.end()) return {404, "text/plain; charset=utf-8", "not found\n"};
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      return {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
    }
    return it->second();
  }

  const HttpServerOptions& options() const { return options_; }
  std::atomic<int>& connections() { return connections_; }

 private:
  void Accept();

  HttpServerOptions options_;
  std::map<std::string, HttpHandler> routes_;
  // Declared before the io_context: sessions still queued in it when it is
  // destroyed touch the counter in their destructors.
  std::atomic<int> connections_{0};
  asio::io_context ioc_{1};
  // Keeps run() going while nothing is queued; only Stop() ends it.
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  tcp::acceptor acceptor_;
  std::thread thread_;
  int port_ = 0;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl* server)
      : stream_(std::move(socket)), server_(server) {
    server_->connections()++;
  }
  ~Session() { server_->connections()--; }

  void Start() {
    asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::Read, shared_from_this()));
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(kMaxBodyBytes);
    stream_.expires_after(std::chrono::microseconds(
        absl::ToInt64Microseconds(server_->options().idle_timeout)));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      return Close();
    }
    if (ec) {
      int status = 400;
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) status = 431;
      if (ec == http::error::body_limit) status = 413;
      // The rest of a bad request may still be arriving: read it away
      // after the reply, or closing would reset the connection and the
      // client might never see the status.
      drain_ = true;
      return Reply(status, "text/plain; charset=utf-8", ec.message() + "\n", /*keep_alive=*/false,
                   /*head=*/false, 11);
    }
    const http::request<http::string_body>& req = parser_->get();
    HttpResponse r = server_->Dispatch(req);
    Reply(r.status, r.content_type, std::move(r.body), req.keep_alive(),
          req.method() == http::verb::head, req.version());
  }

  void Reply(int status, const std::string& content_type, std::string body, bool keep_alive, bool head,
             unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(status), version == 10 ? 10 : 11);
    res->set(http::field::server, "trickled");
    res->set(http::field::content_type, content_type);
    res->set(http::field::cache_control, "no-store");
    if (status == 405) res->set(http::field::allow, "GET, HEAD");
    res->keep_alive(keep_alive);
    size_t length = body.size();
    if (!head) res->body() = std::move(body);
    res->prepare_payload();
    if (head) res->content_length(length);
    response_ = res;
    http::async_write(stream_, *res,
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this(), keep_alive));
  }

  void OnWrite(bool keep_alive, beast::error_code ec, size_t) {
    response_.reset();
    if (!ec && drain_) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream_.expires_after(std::chrono::seconds(1));
      return Drain();
    }
    if (ec || !keep_alive) return Close();
    Read();
  }

  // Reads and discards until the client closes, 1 s pass or 1 MiB came.
  void Drain() {
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > (1 << 20)) return self->Close();
                              self->Drain();
                            });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{kMaxHeaderBytes + kMaxBodyBytes};
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<void> response_;  // alive until written
  bool drain_ = false;              // a bad request: read the rest away before closing
  size_t drained_ = 0;
  char scratch_[4096];
  HttpServer::Impl* server_;        // not owned; outlives every session
};

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      if (connections_.load() >= options_.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(std::move(socket), this)->Start();
      }
    }
    Accept();
  });
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                             std::map<std::string, HttpHandler> routes) {
  auto impl = std::make_unique<Impl>(std::move(options), std::move(routes));
  if (absl::Status s = impl->Listen(); !s.ok()) return s;
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { impl_->Stop(); }

int HttpServer::port() const { return impl_->port(); }

}  // namespace trickle::service
