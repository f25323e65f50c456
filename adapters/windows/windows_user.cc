#include "adapters/windows/windows_user.h"

#include <sddl.h>

#include <vector>

namespace portserver {
namespace {

// GetTokenInformation into a buffer of the size it asks for.
std::vector<unsigned char> TokenInformation(HANDLE token,
                                            TOKEN_INFORMATION_CLASS what) {
  DWORD size = 0;
  GetTokenInformation(token, what, nullptr, 0, &size);
  if (size == 0) return {};
  std::vector<unsigned char> buffer(size);
  if (!GetTokenInformation(token, what, buffer.data(), size, &size)) return {};
  return buffer;
}

bool IsAdministrator(HANDLE token) {
  std::vector<unsigned char> user = TokenInformation(token, TokenUser);
  if (user.empty()) return false;
  PSID user_sid = reinterpret_cast<TOKEN_USER*>(user.data())->User.Sid;
  if (IsWellKnownSid(user_sid, WinLocalSystemSid)) return true;
  std::vector<unsigned char> groups = TokenInformation(token, TokenGroups);
  if (groups.empty()) return false;
  const TOKEN_GROUPS* list = reinterpret_cast<TOKEN_GROUPS*>(groups.data());
  for (DWORD i = 0; i < list->GroupCount; ++i) {
    const SID_AND_ATTRIBUTES& group = list->Groups[i];
    // A filtered UAC token has the group as deny-only, not enabled.
    if ((group.Attributes & SE_GROUP_ENABLED) != 0 &&
        (group.Attributes & SE_GROUP_USE_FOR_DENY_ONLY) == 0 &&
        IsWellKnownSid(group.Sid, WinBuiltinAdministratorsSid)) {
      return true;
    }
  }
  return false;
}

}  // namespace

uint32_t UserIdOfSid(PSID sid) {
  uint32_t hash = 2166136261u;
  const unsigned char* bytes = static_cast<const unsigned char*>(sid);
  DWORD length = GetLengthSid(sid);
  for (DWORD i = 0; i < length; ++i) {
    hash ^= bytes[i];
    hash *= 16777619u;
  }
  return hash == 0 ? 1 : hash;
}

std::optional<uint32_t> TokenUserId(HANDLE token) {
  std::vector<unsigned char> user = TokenInformation(token, TokenUser);
  if (user.empty()) return std::nullopt;
  PSID sid = reinterpret_cast<TOKEN_USER*>(user.data())->User.Sid;
  if (!IsValidSid(sid)) return std::nullopt;
  return UserIdOfSid(sid);
}

std::optional<uint32_t> CallerUserId(HANDLE token) {
  if (IsAdministrator(token)) return 0;
  return TokenUserId(token);
}

std::string TokenUserSidString(HANDLE token) {
  std::vector<unsigned char> user = TokenInformation(token, TokenUser);
  if (user.empty()) return "";
  char* text = nullptr;
  if (!ConvertSidToStringSidA(
          reinterpret_cast<TOKEN_USER*>(user.data())->User.Sid, &text)) {
    return "";
  }
  std::string result(text);
  LocalFree(text);
  return result;
}

}  // namespace portserver
