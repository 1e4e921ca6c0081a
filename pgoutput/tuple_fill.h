// Filling unchanged TOAST columns of an UPDATE's new tuple.
//
// When an UPDATE leaves a TOASTed (out-of-line) value untouched, pgoutput
// does not resend it: the new tuple carries 'u' for that column. Trickle
// stores UPDATE as delete(old) + insert(new), so the insert needs the value.
// With REPLICA IDENTITY FULL the Update carries the whole old row ('O'), whose
// column holds exactly the unchanged value.
#pragma once

#include "absl/status/status.h"
#include "pgoutput/messages.h"
#include "pgoutput/relation_cache.h"

namespace trickle::pgoutput {

// Replaces every unchanged-TOAST ('u') column of `update->new_tuple` with the
// same column of the full old tuple. `schema` is the relation's schema the
// Update was decoded under; it names the relation and column in errors.
// An Update without 'u' columns is left as is.
//
// Errors (the tuple is left untouched on error):
//  - FailedPrecondition when a 'u' column cannot be filled because the Update
//    carries no full old row (no old tuple, or only the key): the relation
//    needs REPLICA IDENTITY FULL; also when the old row has that column
//    unchanged too.
//  - InvalidArgument when the Update does not match `schema` (other relation
//    OID, or tuples whose column count differs from the schema's).
absl::Status FillUnchangedToast(const RelationSchema& schema, UpdateMessage* update);

}  // namespace trickle::pgoutput
