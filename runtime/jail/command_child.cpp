#include "runtime/jail/command_child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "runtime/protocol/exit_codes.h"
#include "runtime/protocol/message.h"
#include "runtime/protocol/methods.h"
#include "runtime/vm/host_channel.h"

namespace tactus::jail {
namespace {

using protocol::Json;

bool strings(const Json& j, std::vector<std::string>& out) {
  if (!j.is_array()) return false;
  for (const auto& s : j) {
    if (!s.is_string()) return false;
    auto text = s.get<std::string>();
    if (text.find('\0') != std::string::npos) return false;
    out.push_back(std::move(text));
  }
  return true;
}

std::vector<char*> pointers(std::vector<std::string>& v) {
  std::vector<char*> p;
  for (auto& s : v) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

}  // namespace

int command_child_main(int fd, const SpawnRequest& request) {
  vm::HostChannel channel(
      fd, request.message_limit ? request.message_limit : protocol::kDefaultMessageLimit);
  std::string reason;
  const auto m = channel.receive(reason);
  std::vector<std::string> argv, env;
  const auto failed = [&](int err) {
    channel.send(protocol::make_notification(protocol::method::exec_failed, Json{{"errno", err}}),
                 reason);
    return protocol::kExitCannotExec;
  };
  if (!m || m->kind != protocol::MessageKind::notification || m->method != protocol::method::exec ||
      !m->params.is_object() || !strings(m->params.value("argv", Json()), argv) ||
      !strings(m->params.value("env", Json()), env) || argv.empty())
    return failed(EPROTO);
  // An MCP server starts in its configured directory (inside the jail).
  if (const auto cwd = m->params.value("cwd", Json()); cwd.is_string()) {
    const auto& dir = cwd.get_ref<const std::string&>();
    if (dir.find('\0') != std::string::npos) return failed(EINVAL);
    if (::chdir(dir.c_str()) != 0) return failed(errno);
  }
  // The channel closes on a successful exec; signals start as a fresh program expects them.
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return failed(errno);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  auto args = pointers(argv);
  auto envp = pointers(env);
  // An MCP server's memory: its data segment (V8 reserves gigabytes of address space it never
  // touches, so RLIMIT_AS cannot bound it). Last, so nothing of ours runs under it but execve.
  if (request.job == Job::mcp_server && request.data_limit) {
    const rlimit data{request.data_limit, request.data_limit};
    if (::setrlimit(RLIMIT_DATA, &data) != 0) return failed(errno);
  }
  ::execve(args[0], args.data(), envp.data());
  return failed(errno);
}

}  // namespace tactus::jail
