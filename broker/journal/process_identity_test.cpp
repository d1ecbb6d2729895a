// ProcessIdentity: what a run lease records to tell a live holder from a dead one.
#include "broker/journal/process_identity.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

using tactus::broker::current_process_identity;
using tactus::broker::is_running;
using tactus::broker::ProcessIdentity;

TEST_CASE("process identity: this process is running, altered copies of it are not", "[journal]") {
  const ProcessIdentity me = current_process_identity();
  CHECK(me.pid == ::getpid());
  CHECK(me.start_time > 0);
  CHECK(me.boot_id.size() == 36);  // a UUID
  CHECK(is_running(me));

  ProcessIdentity other_boot = me;
  other_boot.boot_id = "00000000-0000-0000-0000-000000000000";
  CHECK_FALSE(is_running(other_boot));
  ProcessIdentity reused_pid = me;
  reused_pid.start_time = me.start_time + 1;
  CHECK_FALSE(is_running(reused_pid));
  ProcessIdentity unknown_start = me;  // as recorded where /proc could not be read
  unknown_start.start_time = 0;
  CHECK(is_running(unknown_start));
}

TEST_CASE("process identity: a child is running until it exits", "[journal]") {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    char c = 0;
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  // The child's identity as it would have recorded it: the same boot, its pid and start time.
  ProcessIdentity child = current_process_identity();
  child.pid = pid;
  child.start_time = 0;
  CHECK(is_running(child));
  ::kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK_FALSE(is_running(child));
}
