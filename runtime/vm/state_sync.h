// The procedure's state table in a journaled run (docs/durability.md): sent to the broker when
// it changed, before each brokered request and as the run ends; put back when the broker
// answers a finished checkpoint from the journal. Internal to runtime/vm.
#pragma once

#include "runtime/protocol/message.h"

struct lua_State;

namespace tactus::vm {

// Sends the global `state` if it changed since it was last sent (a notification, no answer).
// Whether it changed is decided by a fingerprint of its contents, so an unchanged state costs
// a walk of the table, not its JSON encoding. Raises "invalid_args: state.KEY: ..." when it
// holds a value JSON cannot carry, or "invalid_args: state message of N bytes exceeds ..."
// over the message limit. Does nothing unless the run is journaled.
void sync_state(lua_State* L);

// Replaces the contents of the global `state` with state (in place, as the procedure may hold
// the table), and takes it as sent.
void restore_state(lua_State* L, const protocol::Json& state);

}  // namespace tactus::vm
