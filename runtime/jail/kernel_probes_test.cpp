// The kernel's facts as typed values: what this machine reports, and what the facts say about
// a jail that failed at each kind of step.
#include <catch2/catch.hpp>

#include <unistd.h>

#include "runtime/jail/kernel_probes.h"

using namespace tactus::jail;

TEST_CASE("kernel probes: this machine's facts are read and typed", "[jail][sandbox]") {
  const KernelSupport k = probe_kernel();
  CHECK_FALSE(k.release.empty());
  CHECK_FALSE(k.machine.empty());
  CHECK(k.uid == ::geteuid());
  CHECK(k.user_ns.root == (::geteuid() == 0));
  // The jail runs here (the tests' own jailed runs depend on it), so the facts say so.
  CHECK(k.user_ns.available());
  CHECK(k.seccomp.supported());
  CHECK((k.cgroups.version == "v2" || k.cgroups.version == "v1" || k.cgroups.version == "absent"));
  for (const Abi* a : {&k.ia32, &k.x32})
    CHECK((a->available == "yes" || a->available == "no" || a->available == "unknown" ||
           a->available == "n/a"));
}

TEST_CASE("kernel probes: a failed step is explained by the facts that cause it",
          "[jail][sandbox]") {
  Seccomp usable;
  usable.prctl_mode = 0;
  usable.status_mode = "0";
  usable.trap = usable.kill_process = true;
  REQUIRE(usable.supported());

  UserNs none;  // no user.max_user_namespaces at all
  CHECK(setup_failure_hint("userns", none, usable) == "this kernel has no user namespaces");
  UserNs off;
  off.max = 0;
  CHECK(setup_failure_hint("clone3", off, usable) ==
        "user namespaces are off (user.max_user_namespaces = 0)");
  UserNs unprivileged_off;
  unprivileged_off.max = 1000;
  unprivileged_off.unprivileged = 0;
  CHECK(setup_failure_hint("uid_map", unprivileged_off, usable) ==
        "unprivileged user namespaces are off (kernel.unprivileged_userns_clone = 0)");
  unprivileged_off.root = true;  // root needs no unprivileged user namespaces
  CHECK(setup_failure_hint("uid_map", unprivileged_off, usable).empty());
  UserNs apparmor;
  apparmor.max = 1000;
  apparmor.apparmor = 1;
  CHECK(setup_failure_hint("userns", apparmor, usable).find("AppArmor restricts") == 0);

  Seccomp missing;  // prctl failed, no status line
  CHECK(setup_failure_hint("seccomp", apparmor, missing) ==
        "this kernel has no usable seccomp filters");
  // A step the facts do not cover, or facts that do not explain it: nothing is said.
  CHECK(setup_failure_hint("rlimits", off, missing).empty());
  UserNs fine;
  fine.max = 1000;
  CHECK(setup_failure_hint("userns", fine, usable).empty());
}
