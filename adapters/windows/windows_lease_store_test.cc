#include "adapters/windows/windows_lease_store.h"

#include <string>

#include "adapters/windows/windows_test_util.h"
#include "adapters/windows/windows_text.h"
#include "domain/lease_journal.h"
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
  // Named as the user named it, as on Linux (not "cannot open x.journal.lock").
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("cannot open state file " + path + ": its directory " +
                        path.substr(0, path.size() - 10) + " does not exist"));
}

// The cases of LinuxLeaseStoreOthersFiles (linux_lease_store_test.cc): a
// file that is not the store's to write is refused and kept as it was.

const std::string kPrecious = "precious data\nline 2\n";

void WriteAll(const std::string& path, const std::string& text) {
  ScopedHandle file(CreateFileW(Widen(path).c_str(), GENERIC_WRITE, 0, nullptr,
                                CREATE_ALWAYS, 0, nullptr));
  ASSERT_TRUE(file.valid()) << path;
  DWORD n = 0;
  ASSERT_TRUE(WriteFile(file.get(), text.data(),
                        static_cast<DWORD>(text.size()), &n, nullptr));
  ASSERT_EQ(n, text.size());
}

bool Exists(const std::string& path) {
  return GetFileAttributesW(Widen(path).c_str()) != INVALID_FILE_ATTRIBUTES;
}

absl::StatusOr<std::unique_ptr<WindowsLeaseStore>> OpenJournal(
    const std::string& path, std::string* contents) {
  return WindowsLeaseStore::Open(path, contents, StartsAsJournal);
}

void ExpectRefused(
    const absl::StatusOr<std::unique_ptr<WindowsLeaseStore>>& store,
    const std::string& path, const std::string& why) {
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(why));
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("choose another --portserver_state_file"));
}

TEST(WindowsLeaseStoreOthersFiles, FileThatIsNotAJournalIsRefusedAndKept) {
  std::string path = NewTempDirectory() + "\\precious";
  WriteAll(path, kPrecious);
  std::string contents;
  ExpectRefused(OpenJournal(path, &contents), path, "not a portserver journal");
  EXPECT_EQ(ReadAll(path), kPrecious);
  EXPECT_FALSE(Exists(path + ".lock")) << "a refusal leaves no trace";
}

TEST(WindowsLeaseStoreOthersFiles, EmptyMissingAndJournalsAreTaken) {
  std::string dir = NewTempDirectory();
  std::string contents;
  EXPECT_TRUE(OpenJournal(dir + "\\missing", &contents).ok());
  WriteAll(dir + "\\empty", "");
  EXPECT_TRUE(OpenJournal(dir + "\\empty", &contents).ok());
  WriteAll(dir + "\\journal", JournalHeader() + "garbage\n");
  EXPECT_TRUE(OpenJournal(dir + "\\journal", &contents).ok());
}

TEST(WindowsLeaseStoreOthersFiles, DirectoryIsRefused) {
  std::string dir = NewTempDirectory();
  std::string contents;
  ExpectRefused(OpenJournal(dir, &contents), dir, "is a directory");
  std::string path = NewTempDirectory() + "\\journal";
  ASSERT_TRUE(CreateDirectoryW(Widen(path + ".tmp").c_str(), nullptr));
  ExpectRefused(OpenJournal(path, &contents), path + ".tmp", "is a directory");
  std::string locked = NewTempDirectory() + "\\journal";
  ASSERT_TRUE(CreateDirectoryW(Widen(locked + ".lock").c_str(), nullptr));
  ExpectRefused(OpenJournal(locked, &contents), locked + ".lock",
                "is a directory");
}

// Device names are refused as devices, before anything is opened (a serial
// port would block the server's start; a Windows trial saw COM1 hang it and
// NUL refused only as "cannot lock NUL.lock").
TEST(WindowsLeaseStoreOthersFiles, DevicesAreRefused) {
  std::string contents;
  for (std::string device : {"NUL", "COM1", "CONIN$", "nul"}) {
    ExpectRefused(OpenJournal(device, &contents), device, "is a device");
  }
}

TEST(WindowsLeaseStoreOthersFiles, LockThatIsNotALockFileIsRefusedAndKept) {
  std::string contents;
  std::string path = NewTempDirectory() + "\\journal";
  WriteAll(path + ".lock", kPrecious);
  ExpectRefused(OpenJournal(path, &contents), path + ".lock", "is not empty");
  EXPECT_EQ(ReadAll(path + ".lock"), kPrecious);
  EXPECT_FALSE(Exists(path)) << "a refusal leaves no trace";
  // An empty lock file is one a server left (killed): taken.
  std::string left = NewTempDirectory() + "\\journal";
  WriteAll(left + ".lock", "");
  EXPECT_TRUE(OpenJournal(left, &contents).ok());
}

TEST(WindowsLeaseStoreOthersFiles, TmpThatIsNotAJournalIsRefusedAndKept) {
  std::string contents;
  std::string path = NewTempDirectory() + "\\journal";
  WriteAll(path + ".tmp", kPrecious);
  ExpectRefused(OpenJournal(path, &contents), path + ".tmp",
                "not a portserver journal");
  EXPECT_EQ(ReadAll(path + ".tmp"), kPrecious);

  std::string nuls_first = NewTempDirectory() + "\\journal";
  WriteAll(nuls_first + ".tmp", std::string(4096, '\0') + kPrecious);
  ExpectRefused(OpenJournal(nuls_first, &contents), nuls_first + ".tmp",
                "not a portserver journal");

  // One a crash left during a compaction is written over.
  for (std::string left :
       {JournalHeader(), std::string(), std::string(10000, '\0')}) {
    std::string crashed = NewTempDirectory() + "\\journal";
    WriteAll(crashed + ".tmp", left);
    auto store = OpenJournal(crashed, &contents);
    ASSERT_TRUE(store.ok()) << store.status();
    StoreResult replaced = (*store)->Replace(JournalHeader());
    ASSERT_TRUE(replaced.ok) << replaced.error;
    EXPECT_FALSE(Exists(crashed + ".tmp"));
  }
}

TEST(WindowsLeaseStoreOthersFiles, TmpThatAppearsLaterIsNotWrittenOver) {
  std::string contents;
  std::string path = NewTempDirectory() + "\\journal";
  auto store = OpenJournal(path, &contents);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Append(JournalHeader()).ok);
  WriteAll(path + ".tmp", kPrecious);
  StoreResult replaced = (*store)->Replace(JournalHeader());
  EXPECT_FALSE(replaced.ok);
  EXPECT_THAT(replaced.error, HasSubstr("not a portserver journal"));
  EXPECT_EQ(ReadAll(path + ".tmp"), kPrecious);
  EXPECT_EQ(ReadAll(path), JournalHeader());
}

// Also where the profile folder's name has characters outside the ANSI
// code page (getenv() turned them into '?', a folder that is not there).
TEST(WindowsLeaseStore, DefaultDirectoryIsUnderLocalAppData) {
  for (const std::string name :
       {"plain", "\xC5\x81ukasz-\xE5\xBC\xA0\xE4\xBC\x9F"}) {
    SCOPED_TRACE(name);
    std::string dir = NewTempDirectory() + "\\" + name;
    ASSERT_TRUE(CreateDirectoryW(Widen(dir).c_str(), nullptr));
    wchar_t saved[1024];
    DWORD had = GetEnvironmentVariableW(L"LOCALAPPDATA", saved, 1024);
    SetEnvironmentVariableW(L"LOCALAPPDATA", Widen(dir).c_str());
    absl::StatusOr<std::string> got = WindowsLeaseStore::DefaultDirectory();
    SetEnvironmentVariableW(L"LOCALAPPDATA",
                            had > 0 && had < 1024 ? saved : nullptr);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, dir + "\\portserver");
    DWORD attributes = GetFileAttributesW(Widen(*got).c_str());
    ASSERT_NE(attributes, INVALID_FILE_ATTRIBUTES);
    EXPECT_NE(attributes & FILE_ATTRIBUTE_DIRECTORY, 0u);
  }
}

}  // namespace
}  // namespace portserver
