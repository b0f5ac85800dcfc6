// parallel_for when the system refuses new threads (issue 12, item 7): the work is still done, by
// the threads that could be started and the caller, instead of std::terminate on the joinable
// threads left behind by the failed std::thread constructor.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "host/common/parallel.hpp"

namespace omicsd {
namespace {

TEST(ParallelFor, ThreadCreationFailureDegradesInsteadOfTerminating) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child: a thread that is already running (so a later failure leaves a joinable one
    // behind), then no room for more thread stacks.
    bool made_one = false;
    std::atomic<int> started{0};
    {
      std::thread probe([&] { ++started; });
      probe.join();
      made_one = started == 1;
    }
    rlimit as{};
    ::getrlimit(RLIMIT_AS, &as);
    // Current size plus a little: enough for the heap, not for 64 more 8 MB stacks.
    long pages = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    const rlim_t now = rlim_t(pages) * rlim_t(::sysconf(_SC_PAGESIZE));
    as.rlim_cur = now + (rlim_t(24) << 20);
    if (!made_one || pages == 0 || ::setrlimit(RLIMIT_AS, &as) != 0) ::_exit(3);
    std::vector<uint64_t> out(100000, 0);
    parallel_for(out.size(), 64, 100, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) out[i] = i * 2;
    });
    uint64_t sum = 0;
    for (uint64_t v : out) sum += v;
    ::_exit(sum == uint64_t(100000) * 99999 ? 0 : 4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status) << " (terminate?)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: setup failed, 4: wrong result";
}

}  // namespace
}  // namespace omicsd
