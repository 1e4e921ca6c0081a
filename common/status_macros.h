// Status propagation helpers. Debian's Abseil (20220623) ships no
// RETURN_IF_ERROR, so the project keeps these two and nothing else.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TRICKLE_CONCAT_INNER_(a, b) a##b
#define TRICKLE_CONCAT_(a, b) TRICKLE_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the caller when not OK.
#define TRICKLE_RETURN_IF_ERROR(expr)                    \
  do {                                                   \
    ::absl::Status trickle_status_ = (expr);             \
    if (!trickle_status_.ok()) return trickle_status_;   \
  } while (0)

// `TRICKLE_ASSIGN_OR_RETURN(auto x, F())`: unwraps an absl::StatusOr or
// returns its error from the caller.
#define TRICKLE_ASSIGN_OR_RETURN(lhs, expr) \
  TRICKLE_ASSIGN_OR_RETURN_IMPL_(TRICKLE_CONCAT_(trickle_statusor_, __LINE__), lhs, expr)
#define TRICKLE_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                                   \
  if (!var.ok()) return std::move(var).status();       \
  lhs = std::move(var).value()
