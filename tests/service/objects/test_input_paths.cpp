// open_within_roots (service/objects/object_store.hpp): client-named files are opened beneath their allowed
// root by the kernel, so a swap for a symlink out of the root between check and open is refused.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "host/common/error.hpp"
#include "service/objects/object_store.hpp"
#include "tests/support/test_support.hpp"

namespace omicsd {
namespace {

namespace fs = std::filesystem;

std::string read_fd_path(const RootedFile& f) { return test::read_file(f.path()); }

std::string refusal(const fs::path& p, const std::vector<fs::path>& roots) {
  try {
    RootedFile f = open_within_roots(p, roots, p.string());
    return "opened: " + read_fd_path(f);
  } catch (const InputError& e) {
    return e.what();
  }
}

struct RootedFileTest : ::testing::Test {
  test::TempDir dir;
  fs::path in, out;
  void SetUp() override {
    in = dir.path / "in";
    out = dir.path / "out";
    fs::create_directories(in / "sub");
    fs::create_directories(out / "sub");
    test::write_file(in / "sub" / "data.txt", "inside");
    test::write_file(out / "secret.txt", "SECRET");
    test::write_file(out / "sub" / "data.txt", "SECRET");
  }
};

TEST_F(RootedFileTest, OpensFilesAndInRootLinksAndReadsThroughProcPath) {
  RootedFile f = open_within_roots(in / "sub" / "data.txt", {in}, "data");
  EXPECT_GE(f.fd(), 0);
  EXPECT_EQ(read_fd_path(f), "inside");
  fs::create_symlink("sub/data.txt", in / "rel-link.txt");
  EXPECT_EQ(read_fd_path(open_within_roots(in / "rel-link.txt", {in}, "l")), "inside");
  fs::create_directory_symlink("sub", in / "alias");
  EXPECT_EQ(read_fd_path(open_within_roots(in / "alias" / "data.txt", {in}, "l")), "inside");
  // The second of two roots; a root given with a trailing slash or through "..".
  EXPECT_EQ(read_fd_path(open_within_roots(in / "sub" / "data.txt", {out, in / ""}, "d")), "inside");
  EXPECT_EQ(read_fd_path(open_within_roots(in / "sub" / "data.txt", {in / "sub" / ".."}, "d")), "inside");
  // The fd keeps the checked file even when its name is swapped afterwards.
  RootedFile held = open_within_roots(in / "sub" / "data.txt", {in}, "d");
  fs::remove(in / "sub" / "data.txt");
  fs::create_symlink(out / "secret.txt", in / "sub" / "data.txt");
  EXPECT_EQ(read_fd_path(held), "inside");
}

TEST_F(RootedFileTest, LinksOutOfTheRootAreRefusedWhereverTheyAre) {
  const fs::path p = in / "sub" / "data.txt";
  fs::remove(p);
  fs::create_symlink(out / "secret.txt", p);  // absolute link out
  EXPECT_NE(refusal(p, {in}).find("leads out of the allowed input root"), std::string::npos)
      << refusal(p, {in});
  fs::remove(p);
  fs::create_symlink("../../out/secret.txt", p);  // relative link climbing out
  EXPECT_NE(refusal(p, {in}).find("leads out of"), std::string::npos) << refusal(p, {in});
  fs::remove_all(in / "sub");
  fs::create_directory_symlink(out / "sub", in / "sub");  // a directory above the file
  EXPECT_NE(refusal(p, {in}).find("leads out of"), std::string::npos) << refusal(p, {in});
  // Outside every root, lexically.
  EXPECT_NE(refusal(out / "secret.txt", {in}).find("outside the allowed input roots"), std::string::npos);
  EXPECT_NE(refusal(in / ".." / "out" / "secret.txt", {in}).find("outside"), std::string::npos);
  EXPECT_NE(refusal(fs::path("relative.txt"), {in}).find("absolute"), std::string::npos);
}

TEST_F(RootedFileTest, OnlyRegularFilesAndNoHangOnAFifo) {
  EXPECT_NE(refusal(in / "sub", {in}).find("not a regular file"), std::string::npos)
      << refusal(in / "sub", {in});
  ASSERT_EQ(::mkfifo((in / "fifo").c_str(), 0600), 0);
  EXPECT_NE(refusal(in / "fifo", {in}).find("not a regular file"),
            std::string::npos);  // would block without O_NONBLOCK
  EXPECT_NE(refusal(in / "missing.txt", {in}).find("cannot open"), std::string::npos);
}

// Issue 12, item 6: upload spools and temp objects a crash left in <data>/tmp are swept at start.
TEST(ObjectStoreStart, SweepsStaleTempFilesOnly) {
  test::TempDir dir;
  { ObjectStore first(dir.path); }
  test::write_file(dir.path / "tmp" / "put-cut-off", "x");
  test::write_file(dir.path / "tmp" / "put-live", "x");
  fs::last_write_time(dir.path / "tmp" / "put-cut-off",
                      fs::file_time_type::clock::now() - std::chrono::hours(25));
  ObjectStore again(dir.path);
  EXPECT_FALSE(fs::exists(dir.path / "tmp" / "put-cut-off"));
  EXPECT_TRUE(fs::exists(dir.path / "tmp" / "put-live"));
}

}  // namespace
}  // namespace omicsd
