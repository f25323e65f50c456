#include "adapters/windows/windows_lease_store.h"

#include <string>

#include "adapters/windows/windows_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace portserver {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  ScopedHandle file(
      CreateFileW(Widen(path).c_str(), GENERIC_READ,
                  FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                  nullptr, OPEN_EXISTING, 0, nullptr));
  std::string text;
  char buffer[4096];
  DWORD n = 0;
  while (file.valid() &&
         ReadFile(file.get(), buffer, sizeof(buffer), &n, nullptr) && n > 0) {
    text.append(buffer, n);
  }
  return text;
}

TEST(WindowsLeaseStore, AppendsSurviveAndAreReadBack) {
  std::string path = NewTempDirectory() + "\\x.journal";
  {
    std::string contents = "junk";
    auto store = WindowsLeaseStore::Open(path, &contents);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ(contents, "");
    ASSERT_TRUE((*store)->Append("a 1\n").ok);
    ASSERT_TRUE((*store)->Append("b 2\n").ok);
    EXPECT_EQ(ReadAll(path), "a 1\nb 2\n");  // On disk before close.
  }
  std::string contents;
  auto store = WindowsLeaseStore::Open(path, &contents);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(contents, "a 1\nb 2\n");
}

TEST(WindowsLeaseStore, ReplaceSwapsTheWholeFileAndAppendsFollow) {
  std::string path = NewTempDirectory() + "\\x.journal";
  std::string contents;
  auto store = WindowsLeaseStore::Open(path, &contents);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Append("old 1\nold 2\n").ok);
  StoreResult replaced = (*store)->Replace("new\n");
  ASSERT_TRUE(replaced.ok) << replaced.error;
  ASSERT_TRUE((*store)->Append("after\n").ok);
  EXPECT_EQ(ReadAll(path), "new\nafter\n");
  EXPECT_EQ(GetFileAttributesW(Widen(path + ".tmp").c_str()),
            INVALID_FILE_ATTRIBUTES);
}

TEST(WindowsLeaseStore, SecondServerCannotOpenTheSameJournal) {
  std::string path = NewTempDirectory() + "\\x.journal";
  std::string contents;
  auto first = WindowsLeaseStore::Open(path, &contents);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = WindowsLeaseStore::Open(path, &contents);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("in use by another port server"));
  first->reset();
  EXPECT_TRUE(WindowsLeaseStore::Open(path, &contents).ok());
}

TEST(WindowsLeaseStore, MissingDirectoryIsNamed) {
  std::string path = NewTempDirectory() + "\\no\\such\\x.journal";
  std::string contents;
  auto store = WindowsLeaseStore::Open(path, &contents);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
}

TEST(WindowsLeaseStore, DefaultDirectoryIsUnderLocalAppData) {
  std::string dir = NewTempDirectory();
  std::string saved;
  if (const char* old = std::getenv("LOCALAPPDATA")) saved = old;
  SetEnvironmentVariableA("LOCALAPPDATA", dir.c_str());
  _putenv_s("LOCALAPPDATA", dir.c_str());
  absl::StatusOr<std::string> got = WindowsLeaseStore::DefaultDirectory();
  _putenv_s("LOCALAPPDATA", saved.c_str());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, dir + "\\portserver");
  DWORD attributes = GetFileAttributesW(Widen(*got).c_str());
  ASSERT_NE(attributes, INVALID_FILE_ATTRIBUTES);
  EXPECT_NE(attributes & FILE_ATTRIBUTE_DIRECTORY, 0u);
}

}  // namespace
}  // namespace portserver
