#include "adapters/linux/linux_lease_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "domain/lease_journal.h"
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
  std::string dir = Unique("no-such-dir");
  auto store = LinuxLeaseStore::Open(dir + "/journal", &contents);
  ASSERT_FALSE(store.ok());
  // Named as the user named it (not "cannot lock .../journal.lock").
  EXPECT_EQ(std::string(store.status().message())
                .rfind("cannot open state file " + dir +
                           "/journal: its directory " + dir + " does not exist",
                       0),
            0u)
      << store.status();
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

// `: > journal` while the server runs: what was written is gone, and the
// records appended after it would make a journal without its header.
TEST(LinuxLeaseStoreFaults, TruncatedJournalIsNoticed) {
  std::string path = Unique("journal");
  std::string contents;
  auto store = LinuxLeaseStore::Open(path, &contents);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Replace("header\n").ok);
  ASSERT_TRUE((*store)->Append("a\n").ok);
  EXPECT_TRUE((*store)->Intact());
  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  EXPECT_FALSE((*store)->Intact());
  ASSERT_TRUE((*store)->Replace("header\nsnapshot\n").ok);
  EXPECT_TRUE((*store)->Intact());
  ASSERT_TRUE((*store)->Append("b\n").ok);
  EXPECT_TRUE((*store)->Intact());
  EXPECT_EQ(ReadFile(path), "header\nsnapshot\nb\n");
  // Cut shorter than what was written, not emptied: noticed too.
  ASSERT_EQ(truncate(path.c_str(), 5), 0);
  EXPECT_FALSE((*store)->Intact());
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

// $XDG_RUNTIME_DIR/portserver removed with $XDG_RUNTIME_DIR (logind at the
// last logout): the journal could not be made again, every lease it held
// was lost, and a restart leased live owners' ports again (a new user's
// trial). With a fallback directory it moves there, whole, with its lock.
TEST(LinuxLeaseStoreFaults, JournalMovesToTheFallbackWhenItsParentIsGone) {
  const std::string runtime = Unique("runtime");
  ASSERT_EQ(mkdir(runtime.c_str(), 0700), 0);
  const std::string dir = runtime + "/portserver";
  ASSERT_TRUE(LinuxLeaseStore::MakePrivateDirectory(dir).ok());
  const std::string fallback = Unique("fallback");
  const std::string path = dir + "/x.journal";
  std::string contents;
  auto store = LinuxLeaseStore::Open(path, &contents, /*remove_directory=*/true,
                                     nullptr, fallback);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Append("lease\n").ok);
  EXPECT_EQ((*store)->Location(), path);
  for (const std::string& gone : {path, path + ".lock"}) {
    ASSERT_EQ(unlink(gone.c_str()), 0);
  }
  ASSERT_EQ(rmdir(dir.c_str()), 0);
  ASSERT_EQ(rmdir(runtime.c_str()), 0);
  EXPECT_FALSE((*store)->Intact());
  ASSERT_TRUE((*store)->Replace("snapshot\n").ok);
  const std::string moved = fallback + "/x.journal";
  EXPECT_EQ((*store)->Location(), moved);
  EXPECT_TRUE((*store)->Intact());
  EXPECT_EQ(ReadFile(moved), "snapshot\n");
  ASSERT_TRUE((*store)->Append("more\n").ok);
  EXPECT_EQ(ReadFile(moved), "snapshot\nmore\n");
  struct stat st {};
  ASSERT_EQ(stat(fallback.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // Its lock moved too: a second server on it is refused.
  std::string other;
  auto second = LinuxLeaseStore::Open(moved, &other);
  EXPECT_TRUE(absl::IsAlreadyExists(second.status())) << second.status();
  // Without a fallback it stays where it was, unwritten (as before).
  ASSERT_EQ(mkdir(runtime.c_str(), 0700), 0);
  ASSERT_TRUE(LinuxLeaseStore::MakePrivateDirectory(dir).ok());
  auto stays = LinuxLeaseStore::Open(path, &contents, true);
  ASSERT_TRUE(stays.ok()) << stays.status();
  for (const std::string& gone : {path, path + ".lock"}) {
    ASSERT_EQ(unlink(gone.c_str()), 0);
  }
  ASSERT_EQ(rmdir(dir.c_str()), 0);
  ASSERT_EQ(rmdir(runtime.c_str()), 0);
  EXPECT_FALSE((*stays)->Replace("snapshot\n").ok);
  EXPECT_EQ((*stays)->Location(), path);
}

// The move never writes over a file already at the fallback (another
// journal of the address, whose leases would be lost), and changes nothing
// when the lock there cannot be had (a reviewer: the names changed first,
// so a failed move was logged as one, and a clean stop could remove
// another server's .tmp).
TEST(LinuxLeaseStoreFaults, JournalMovesOverNothingAndOnlyLocked) {
  const std::string fallback = Unique("fallback");
  ASSERT_TRUE(LinuxLeaseStore::MakePrivateDirectory(fallback).ok());
  for (bool journal_there : {true, false}) {
    SCOPED_TRACE(journal_there);
    const std::string runtime = Unique("runtime");
    ASSERT_EQ(mkdir(runtime.c_str(), 0700), 0);
    const std::string dir = runtime + "/portserver";
    ASSERT_TRUE(LinuxLeaseStore::MakePrivateDirectory(dir).ok());
    const std::string name = journal_there ? "/kept.journal" : "/held.journal";
    const std::string path = dir + name;
    const std::string there = fallback + name;
    std::string contents;
    int held_lock = -1;  // Another server's lock there, without a journal.
    if (journal_there) {
      std::ofstream(there) << "portserver-journal 1\nsomeone's\n";
    } else {
      held_lock =
          open((there + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
      ASSERT_GE(held_lock, 0);
      ASSERT_EQ(flock(held_lock, LOCK_EX | LOCK_NB), 0);
    }
    auto store =
        LinuxLeaseStore::Open(path, &contents, true, nullptr, fallback);
    ASSERT_TRUE(store.ok()) << store.status();
    for (const std::string& gone : {path, path + ".lock"}) {
      ASSERT_EQ(unlink(gone.c_str()), 0);
    }
    ASSERT_EQ(rmdir(dir.c_str()), 0);
    ASSERT_EQ(rmdir(runtime.c_str()), 0);
    EXPECT_FALSE((*store)->Replace("snapshot\n").ok);
    EXPECT_EQ((*store)->Location(), path);
    if (journal_there) {
      EXPECT_EQ(ReadFile(there), "portserver-journal 1\nsomeone's\n");
    } else {
      struct stat st {};
      EXPECT_NE(lstat(there.c_str(), &st), 0) << "written without its lock";
      close(held_lock);
    }
  }
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

namespace portserver {
namespace {

// Someone else's files, named by mistake as the journal or found beside it,
// are refused and kept as they were: never overwritten nor deleted.

const std::string kPrecious = "precious data\nline 2\n";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

absl::StatusOr<std::unique_ptr<LinuxLeaseStore>> OpenJournal(
    const std::string& path, std::string* contents) {
  return LinuxLeaseStore::Open(path, contents, false, StartsAsJournal);
}

void ExpectRefused(
    const absl::StatusOr<std::unique_ptr<LinuxLeaseStore>>& store,
    const std::string& names, const std::string& says) {
  ASSERT_FALSE(store.ok()) << names;
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition)
      << store.status();
  std::string message(store.status().message());
  EXPECT_NE(message.find(names), std::string::npos) << message;
  EXPECT_NE(message.find(says), std::string::npos) << message;
  EXPECT_NE(message.find("remove it or choose another "
                         "--portserver_state_file"),
            std::string::npos)
      << message;
}

TEST(LinuxLeaseStoreOthersFiles, FileThatIsNotAJournalIsRefusedAndKept) {
  std::string path = Unique("precious");
  WriteFile(path, kPrecious);
  std::string contents;
  ExpectRefused(OpenJournal(path, &contents), path, "not a portserver journal");
  EXPECT_EQ(ReadFile(path), kPrecious);
  EXPECT_FALSE(Exists(path + ".lock")) << "a refusal leaves no trace";
  EXPECT_FALSE(Exists(path + ".tmp"));
}

TEST(LinuxLeaseStoreOthersFiles, EmptyMissingAndDamagedJournalsAreTaken) {
  std::string contents;
  std::string missing = Unique("journal");
  EXPECT_TRUE(OpenJournal(missing, &contents).ok());
  std::string empty = Unique("journal");
  WriteFile(empty, "");
  EXPECT_TRUE(OpenJournal(empty, &contents).ok());
  // Damaged after its header: restored as far as it goes (ParseJournal).
  std::string damaged = Unique("journal");
  std::string text = JournalHeader() + "garbage\nL 1 2\n";
  WriteFile(damaged, text);
  auto store = OpenJournal(damaged, &contents);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(contents, text);
}

TEST(LinuxLeaseStoreOthersFiles, StateFileThatIsNotARegularFileIsRefused) {
  std::string contents;
  std::string dir = Unique("dir");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ExpectRefused(OpenJournal(dir, &contents), dir, "is a directory");
  EXPECT_FALSE(Exists(dir + ".lock"));

  std::string fifo = Unique("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ExpectRefused(OpenJournal(fifo, &contents), fifo, "is a FIFO");
  EXPECT_FALSE(Exists(fifo + ".lock"));

  // Renamed over, the link would go; a link to a journal is refused too.
  std::string journal = Unique("journal");
  WriteFile(journal, JournalHeader());
  std::string link = Unique("link");
  ASSERT_EQ(symlink(journal.c_str(), link.c_str()), 0);
  ExpectRefused(OpenJournal(link, &contents), link, "is a symbolic link");
  std::string dangling = Unique("dangling");
  ASSERT_EQ(symlink(Unique("nowhere").c_str(), dangling.c_str()), 0);
  ExpectRefused(OpenJournal(dangling, &contents), dangling,
                "is a symbolic link");

  // Refused before anything is created: /dev/null.lock is never made.
  ExpectRefused(OpenJournal("/dev/null", &contents), "/dev/null",
                "is a character device");
  // Whatever the contents test.
  ExpectRefused(LinuxLeaseStore::Open(fifo, &contents), fifo, "is a FIFO");
}

TEST(LinuxLeaseStoreOthersFiles, LockThatIsNotALockFileIsRefusedAndKept) {
  std::string contents;
  std::string path = Unique("journal");
  WriteFile(path + ".lock", kPrecious);
  ExpectRefused(LinuxLeaseStore::Open(path, &contents), path + ".lock",
                "is not empty");
  EXPECT_EQ(ReadFile(path + ".lock"), kPrecious);
  EXPECT_FALSE(Exists(path)) << "a refusal leaves no trace";

  std::string fifo = Unique("journal");
  ASSERT_EQ(mkfifo((fifo + ".lock").c_str(), 0600), 0);
  ExpectRefused(LinuxLeaseStore::Open(fifo, &contents), fifo + ".lock",
                "is a FIFO");

  std::string linked = Unique("journal");
  std::string target = Unique("target");
  WriteFile(target, "");
  ASSERT_EQ(symlink(target.c_str(), (linked + ".lock").c_str()), 0);
  ExpectRefused(LinuxLeaseStore::Open(linked, &contents), linked + ".lock",
                "is a symbolic link");

  // An empty lock file is one a server left (kill -9): taken.
  std::string left = Unique("journal");
  WriteFile(left + ".lock", "");
  EXPECT_TRUE(LinuxLeaseStore::Open(left, &contents).ok());
}

TEST(LinuxLeaseStoreOthersFiles, TmpThatIsNotAJournalIsRefusedAndKept) {
  std::string contents;
  std::string path = Unique("journal");
  WriteFile(path + ".tmp", kPrecious);
  ExpectRefused(OpenJournal(path, &contents), path + ".tmp",
                "not a portserver journal");
  EXPECT_EQ(ReadFile(path + ".tmp"), kPrecious);

  // NULs then data: someone else's file (a reviewer's case), kept.
  std::string nuls_first = Unique("journal");
  WriteFile(nuls_first + ".tmp", std::string(4096, '\0') + kPrecious);
  ExpectRefused(OpenJournal(nuls_first, &contents), nuls_first + ".tmp",
                "not a portserver journal");
  EXPECT_EQ(ReadFile(nuls_first + ".tmp"), std::string(4096, '\0') + kPrecious);

  // One a crash left during a compaction (a journal, still empty, or NULs
  // only where a power loss cut it before its blocks were written) is
  // written over.
  for (std::string left :
       {JournalHeader(), std::string(), std::string(10000, '\0')}) {
    std::string crashed = Unique("journal");
    WriteFile(crashed + ".tmp", left);
    auto store = OpenJournal(crashed, &contents);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Replace(JournalHeader()).ok);
    EXPECT_FALSE(Exists(crashed + ".tmp"));
  }
}

TEST(LinuxLeaseStoreOthersFiles,
     FilesThatAppearLaterAreNeitherWrittenNorDeleted) {
  std::string contents;
  std::string path = Unique("journal");
  auto store = OpenJournal(path, &contents);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Replace(JournalHeader()).ok);

  // A file put as the .tmp is not truncated by a compaction.
  WriteFile(path + ".tmp", kPrecious);
  StoreResult replaced = (*store)->Replace(JournalHeader());
  EXPECT_FALSE(replaced.ok);
  EXPECT_NE(replaced.error.find(path + ".tmp"), std::string::npos)
      << replaced.error;
  EXPECT_EQ(ReadFile(path + ".tmp"), kPrecious);
  ASSERT_EQ(unlink((path + ".tmp").c_str()), 0);

  // One that took the place of the deleted journal is not renamed over.
  ASSERT_EQ(unlink(path.c_str()), 0);
  WriteFile(path, kPrecious);
  EXPECT_FALSE((*store)->Intact());
  replaced = (*store)->Replace(JournalHeader());
  EXPECT_FALSE(replaced.ok);
  EXPECT_NE(replaced.error.find("not a portserver journal"), std::string::npos)
      << replaced.error;
  EXPECT_EQ(ReadFile(path), kPrecious);

  // Nor deleted at a clean stop, with a .tmp that is not ours.
  WriteFile(path + ".tmp", kPrecious);
  (*store)->Remove();
  EXPECT_EQ(ReadFile(path), kPrecious);
  EXPECT_EQ(ReadFile(path + ".tmp"), kPrecious);
  EXPECT_FALSE(Exists(path + ".lock"));
}

TEST(LinuxLeaseStoreOthersFiles, LockReplacedByAnotherFileIsNotTaken) {
  std::string contents;
  std::string path = Unique("journal");
  auto store = OpenJournal(path, &contents);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_EQ(unlink((path + ".lock").c_str()), 0);
  WriteFile(path + ".lock", kPrecious);
  StoreResult replaced = (*store)->Replace(JournalHeader());
  EXPECT_FALSE(replaced.ok);
  EXPECT_NE(replaced.error.find("is not empty"), std::string::npos)
      << replaced.error;
  (*store)->Remove();
  EXPECT_EQ(ReadFile(path + ".lock"), kPrecious);
}

}  // namespace
}  // namespace portserver
