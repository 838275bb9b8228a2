// A build context made into the tar archive POST /build takes.
#include <archive.h>
#include <archive_entry.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/containers/build_context.h"
#include "tests/support/temp_dir.h"

namespace orchestrator::containers {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;

struct Entry {
  char type = '?';      // 'f' file, 'd' directory, 'l' symlink
  std::string content;  // a file's bytes, a symlink's target
  int mode = 0;
  int64_t uid = -1;
};

// The archive's entries by path, in archive order (`order`).
std::map<std::string, Entry> ReadTar(const std::string& tar, std::vector<std::string>* order) {
  std::map<std::string, Entry> entries;
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  struct archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Entry entry;
    std::string path = archive_entry_pathname(e);
    if (!path.empty() && path.back() == '/') path.pop_back();  // how tar names directories
    entry.mode = archive_entry_perm(e);
    entry.uid = archive_entry_uid(e);
    switch (archive_entry_filetype(e)) {
      case AE_IFREG: {
        entry.type = 'f';
        std::string content(static_cast<size_t>(archive_entry_size(e)), '\0');
        archive_read_data(a, content.data(), content.size());
        entry.content = content;
        break;
      }
      case AE_IFDIR:
        entry.type = 'd';
        break;
      case AE_IFLNK:
        entry.type = 'l';
        entry.content = archive_entry_symlink(e);
        break;
    }
    if (order != nullptr) order->push_back(path);
    entries[path] = entry;
  }
  archive_read_free(a);
  return entries;
}

TEST(TarBuildContext, HoldsTheTreeInNameOrderOwnedByRoot) {
  TempDir dir;
  dir.Write("Containerfile", "FROM base\nCOPY . /srv\n");
  dir.Write("src/app.py", "print('hi')\n");
  dir.Write("src/b/deep.txt", "deep");
  dir.Write("a.txt", "A");
  chmod(dir.Path("src/app.py").c_str(), 0755);
  auto tar = TarBuildContext(dir.path(), 1 << 20);
  ASSERT_TRUE(tar.ok()) << tar.status();
  std::vector<std::string> order;
  auto entries = ReadTar(*tar, &order);
  EXPECT_THAT(
      order, ElementsAre("Containerfile", "a.txt", "src", "src/app.py", "src/b", "src/b/deep.txt"));
  EXPECT_EQ(entries["Containerfile"].content, "FROM base\nCOPY . /srv\n");
  EXPECT_EQ(entries["src"].type, 'd');
  EXPECT_EQ(entries["src/app.py"].mode, 0755);
  EXPECT_EQ(entries["src/b/deep.txt"].content, "deep");
  for (const auto& [path, entry] : entries) EXPECT_EQ(entry.uid, 0) << path;
}

TEST(TarBuildContext, SymlinksStayLinksAndAreNotFollowed) {
  TempDir outside;
  outside.Write("secret.txt", "do not ship");
  outside.Write("tree/inner.txt", "nor this");
  TempDir dir;
  dir.Write("Containerfile", "FROM base\n");
  dir.Write("real.txt", "real");
  ASSERT_EQ(symlink("real.txt", dir.Path("alias.txt").c_str()), 0);
  ASSERT_EQ(symlink(outside.Path("secret.txt").c_str(), dir.Path("escape.txt").c_str()), 0);
  ASSERT_EQ(symlink(outside.Path("tree").c_str(), dir.Path("escape-dir").c_str()), 0);
  ASSERT_EQ(symlink("missing", dir.Path("dangling").c_str()), 0);
  auto tar = TarBuildContext(dir.path(), 1 << 20);
  ASSERT_TRUE(tar.ok()) << tar.status();
  std::vector<std::string> order;
  auto entries = ReadTar(*tar, &order);
  EXPECT_THAT(order, ElementsAre("Containerfile", "alias.txt", "dangling", "escape-dir",
                                 "escape.txt", "real.txt"));
  EXPECT_EQ(entries["alias.txt"].type, 'l');
  EXPECT_EQ(entries["alias.txt"].content, "real.txt");
  EXPECT_EQ(entries["escape.txt"].type, 'l');
  EXPECT_EQ(entries["escape.txt"].content, outside.Path("secret.txt"));
  EXPECT_EQ(entries["escape-dir"].type, 'l');
  EXPECT_EQ(entries["dangling"].content, "missing");
  EXPECT_THAT(*tar, ::testing::Not(HasSubstr("do not ship")));
  EXPECT_THAT(*tar, ::testing::Not(HasSubstr("nor this")));
}

TEST(TarBuildContext, LeavesOutGitAndWhatCannotBeCopied) {
  TempDir dir;
  dir.Write("Containerfile", "FROM base\n");
  dir.Write(".git/HEAD", "ref: refs/heads/main\n");
  dir.Write(".git/objects/ab/cdef", "object");
  dir.Write("vendor/lib/.git", "gitdir: ../../.git/modules/lib\n");
  dir.Write("vendor/lib/lib.c", "int x;\n");
  dir.Write(".gitignore", "build/\n");
  ASSERT_EQ(mkfifo(dir.Path("fifo").c_str(), 0600), 0);
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, dir.Path("app.sock").c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  auto tar = TarBuildContext(dir.path(), 1 << 20);
  close(fd);
  ASSERT_TRUE(tar.ok()) << tar.status();
  std::vector<std::string> order;
  ReadTar(*tar, &order);
  EXPECT_THAT(order, ElementsAre(".gitignore", "Containerfile", "vendor", "vendor/lib",
                                 "vendor/lib/lib.c"));
}

TEST(TarBuildContext, ALargerContextThanTheBoundIsRefusedNamingIt) {
  TempDir dir;
  dir.Write("Containerfile", "FROM base\n");
  dir.Write("data/blob.bin", std::string(300 << 10, 'b'));
  auto tar = TarBuildContext(dir.path(), 256 << 10);
  EXPECT_EQ(tar.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(tar.status().message(), HasSubstr(dir.path()));
  EXPECT_THAT(tar.status().message(), HasSubstr("262144 bytes"));
  // Many small files count too (their headers).
  TempDir many;
  for (int i = 0; i < 200; ++i) many.Write("f" + std::to_string(i), "x");
  auto small = TarBuildContext(many.path(), 64 << 10);
  EXPECT_EQ(small.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(TarBuildContext(many.path(), 1 << 20).ok());
}

TEST(TarBuildContext, ADirectoryThatIsNotThereIsAFailedPrecondition) {
  TempDir dir;
  auto tar = TarBuildContext(dir.Path("absent"), 1 << 20);
  EXPECT_EQ(tar.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(tar.status().message(), HasSubstr("context_dir"));
}

}  // namespace
}  // namespace orchestrator::containers
