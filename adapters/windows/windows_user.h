// Windows users as the domain's numeric uids. The domain compares a
// caller's uid with the uid of the process it names, and treats uid 0 as
// the superuser (domain/port_service.h). Windows names users by SID, so:
//   - a process's uid is UserIdOfSid(the user SID of its token), never 0;
//   - a caller's uid is 0 if its token is an administrator's (LocalSystem,
//     or BUILTIN\Administrators enabled, i.e. elevated under UAC), else the
//     uid of its user SID.
// UserIdOfSid is a 32-bit FNV-1a hash of the SID's bytes: stable across
// runs and processes, stateless; two SIDs of one host share a value only
// by a 2^-32 accident (then the caller could name the other user's pids).
//
// Example:
//   ScopedHandle token;
//   OpenProcessToken(process, TOKEN_QUERY, ...);
//   std::optional<uint32_t> uid = ProcessUserId(token.get());
//
// Thread-safe (no state).
#ifndef PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_USER_H_
#define PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_USER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "adapters/windows/windows_error.h"

namespace portserver {

// Never 0 (0 is the superuser).
uint32_t UserIdOfSid(PSID sid);

// The uid of the user of `token` (needs TOKEN_QUERY); nullopt if it cannot
// be read.
std::optional<uint32_t> TokenUserId(HANDLE token);

// The uid the domain should see for a caller with `token`: 0 for an
// administrator (see above), else TokenUserId. nullopt if unreadable.
std::optional<uint32_t> CallerUserId(HANDLE token);

// The user SID of `token` as text ("S-1-5-21-..."), for logs; "" if unknown.
std::string TokenUserSidString(HANDLE token);

}  // namespace portserver

#endif  // PORTSERVER_ADAPTERS_WINDOWS_WINDOWS_USER_H_
