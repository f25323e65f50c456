#include "adapters/linux/linux_lease_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace portserver {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

std::string Unique(const std::string& name) {
  static int counter = 0;
  return TempDir() + "/" + name + "-" + std::to_string(getpid()) + "-" +
         std::to_string(counter++);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(LinuxLeaseStore, NewFileIsEmptyPrivateAndAppendable) {
  std::string path = Unique("journal");
  std::string contents = "junk";
  auto store = LinuxLeaseStore::Open(path, &contents);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(contents, "");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE((*store)->Append("a\n").ok);
  EXPECT_TRUE((*store)->Append("b\n").ok);
  EXPECT_EQ(ReadFile(path), "a\nb\n");
}

TEST(LinuxLeaseStore, ReopeningReadsWhatWasWritten) {
  std::string path = Unique("journal");
  std::string contents;
  {
    auto store = LinuxLeaseStore::Open(path, &contents);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Append("one\n").ok);
  }
  auto again = LinuxLeaseStore::Open(path, &contents);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(contents, "one\n");
}

TEST(LinuxLeaseStore, ReplaceSwapsTheWholeFileAndAppendsFollowIt) {
  std::string path = Unique("journal");
  std::string contents;
  auto store = LinuxLeaseStore::Open(path, &contents);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Append("old\n").ok);
  ASSERT_TRUE((*store)->Replace("snapshot\n").ok);
  ASSERT_TRUE((*store)->Append("new\n").ok);
  EXPECT_EQ(ReadFile(path), "snapshot\nnew\n");
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0) << "tmp file left";
}

TEST(LinuxLeaseStore, SecondOpenOfTheSameJournalFails) {
  std::string path = Unique("journal");
  std::string contents;
  auto first = LinuxLeaseStore::Open(path, &contents);
  ASSERT_TRUE(first.ok());
  auto second = LinuxLeaseStore::Open(path, &contents);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(std::string(second.status().message()).find("in use"),
            std::string::npos);
  first->reset();
  EXPECT_TRUE(LinuxLeaseStore::Open(path, &contents).ok()) << "lock released";
}

TEST(LinuxLeaseStore, MissingDirectoryIsAnError) {
  std::string contents;
  auto store =
      LinuxLeaseStore::Open(Unique("no-such-dir") + "/journal", &contents);
  EXPECT_FALSE(store.ok());
}

TEST(LinuxLeaseStore, PrivateDirectoryIsCreatedAndChecked) {
  std::string dir = Unique("state");
  ASSERT_TRUE(LinuxLeaseStore::MakePrivateDirectory(dir).ok());
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(LinuxLeaseStore::MakePrivateDirectory(dir).ok()) << "exists: ok";

  std::string open_dir = Unique("open");
  ASSERT_EQ(mkdir(open_dir.c_str(), 0777), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
  EXPECT_FALSE(LinuxLeaseStore::MakePrivateDirectory(open_dir).ok());

  std::string link = Unique("link");
  ASSERT_EQ(symlink(dir.c_str(), link.c_str()), 0);
  EXPECT_FALSE(LinuxLeaseStore::MakePrivateDirectory(link).ok());
}

}  // namespace
}  // namespace portserver

namespace portserver {
namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

TEST(LinuxLeaseStoreFaults, DeletedJournalIsNoticedAndReplacedWithItsLock) {
  std::string path = Unique("journal");
  std::string contents;
  auto store = LinuxLeaseStore::Open(path, &contents);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Append("a\n").ok);
  EXPECT_TRUE((*store)->Intact());
  // A /tmp cleaner removes both files.
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(unlink((path + ".lock").c_str()), 0);
  EXPECT_FALSE((*store)->Intact());
  // Meanwhile a second server could take the journal...
  ASSERT_TRUE((*store)->Replace("snapshot\n").ok);
  EXPECT_TRUE((*store)->Intact());
  EXPECT_EQ(ReadFile(path), "snapshot\n");
  ASSERT_TRUE((*store)->Append("b\n").ok);
  EXPECT_EQ(ReadFile(path), "snapshot\nb\n");
  // ...but not once the lock is back.
  std::string other;
  auto second = LinuxLeaseStore::Open(path, &other);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists)
      << second.status();
}

TEST(LinuxLeaseStoreFaults, DeletedLockAloneIsNoticed) {
  std::string path = Unique("journal");
  std::string contents;
  auto store = LinuxLeaseStore::Open(path, &contents);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ(unlink((path + ".lock").c_str()), 0);
  EXPECT_FALSE((*store)->Intact());
  ASSERT_TRUE((*store)->Replace("x\n").ok);
  EXPECT_TRUE((*store)->Intact());
  std::string other;
  EXPECT_FALSE(LinuxLeaseStore::Open(path, &other).ok());
}

TEST(LinuxLeaseStoreFaults, DeletedDefaultDirectoryIsMadeAgain) {
  std::string dir = Unique("state");
  ASSERT_TRUE(LinuxLeaseStore::MakePrivateDirectory(dir).ok());
  std::string path = dir + "/x.journal";
  std::string contents;
  auto store =
      LinuxLeaseStore::Open(path, &contents, /*remove_directory=*/true);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(unlink((path + ".lock").c_str()), 0);
  ASSERT_EQ(rmdir(dir.c_str()), 0);
  EXPECT_FALSE((*store)->Intact());
  ASSERT_TRUE((*store)->Replace("snapshot\n").ok);
  EXPECT_TRUE((*store)->Intact());
  EXPECT_EQ(ReadFile(path), "snapshot\n");
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(LinuxLeaseStoreFaults, RemoveLeavesNothingBehind) {
  std::string dir = Unique("state");
  ASSERT_TRUE(LinuxLeaseStore::MakePrivateDirectory(dir).ok());
  std::string path = dir + "/x.journal";
  std::string contents;
  {
    auto store = LinuxLeaseStore::Open(path, &contents,
                                       /*remove_directory=*/true);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Append("a\n").ok);
    (*store)->Remove();
  }
  EXPECT_FALSE(Exists(path));
  EXPECT_FALSE(Exists(path + ".lock"));
  EXPECT_FALSE(Exists(dir));
}

TEST(LinuxLeaseStoreFaults, RemoveKeepsADirectoryThatIsNotEmpty) {
  std::string dir = Unique("state");
  ASSERT_TRUE(LinuxLeaseStore::MakePrivateDirectory(dir).ok());
  std::ofstream(dir + "/other.journal") << "";
  std::string contents;
  auto store = LinuxLeaseStore::Open(dir + "/x.journal", &contents, true);
  ASSERT_TRUE(store.ok()) << store.status();
  (*store)->Remove();
  EXPECT_FALSE(Exists(dir + "/x.journal"));
  EXPECT_TRUE(Exists(dir + "/other.journal"));
}

}  // namespace
}  // namespace portserver
