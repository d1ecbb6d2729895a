#include "broker/mcp_setup.h"

#include <unistd.h>

#include <filesystem>
#include <vector>

#include "broker/run_setup.h"
#include "tools/mcp/workspace_shield.h"

namespace tactus::broker {
namespace {

namespace fs = std::filesystem;

// The jailed environment's PATH; a bare command word is found on it (the jail sees the
// host's /usr, so the host's copy is the jail's).
constexpr const char* kJailPath = "/usr/local/bin:/usr/bin:/bin";

std::string find_program(const std::string& word) {
  if (word.find('/') != std::string::npos) return word;
  for (const char* dir : {"/usr/local/bin/", "/usr/bin/", "/bin/"}) {
    const std::string p = dir + word;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// The directory an MCP server is installed in: the outermost node_modules above its entry
// file (the first absolute word naming a file outside /usr), else the file's own directory.
std::string install_dir_of(const std::vector<std::string>& argv) {
  std::error_code ec;
  for (const auto& word : argv) {
    if (word.empty() || word[0] != '/' || word.rfind("/usr/", 0) == 0) continue;
    const fs::path p = fs::path(word).lexically_normal();
    if (!fs::is_regular_file(p, ec)) continue;
    fs::path found;
    for (fs::path d = p.parent_path(); !d.empty() && d != d.parent_path(); d = d.parent_path())
      if (d.filename() == "node_modules") found = d;
    return (found.empty() ? p.parent_path() : found).string();
  }
  return "";
}

bool beneath(const fs::path& p, const fs::path& dir) {
  const auto rel = p.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != "..";
}

// A path the install dir must not hold: a trusted file or directory, or the workspace.
std::string trusted_inside(const fs::path& install, const TrustedPaths& t, const fs::path& ws) {
  const auto holds = [&](const std::string& p) {
    if (p.empty()) return false;
    const fs::path q = fs::path(p).lexically_normal();
    return q == install || beneath(q, install);
  };
  for (const auto* list : {&t.files, &t.hidden, &t.dirs})
    for (const auto& p : *list)
      if (holds(p)) return p;
  return holds(ws.string()) ? ws.string() : "";
}

}  // namespace

std::string mcp_install_dir(const sidecars::McpServer& m) {
  std::vector<std::string> argv = m.command;
  if (!argv.empty()) argv[0] = find_program(argv[0]);
  return install_dir_of(argv);
}

tools::McpServerSpec mcp_spec(const std::string& name, const sidecars::McpServer& m,
                              const RunSetup& setup) {
  const sidecars::Config& config = setup.config;
  tools::McpServerSpec spec;
  spec.name = name;
  spec.argv = m.command;
  spec.argv[0] = find_program(m.command[0]);
  const std::string where = " (mcp_servers." + name + " at " + m.origin.text() + ")";
  if (spec.argv[0].empty())
    spec.config_error =
        "cannot start: '" + m.command[0] + "' is not a program in " + kJailPath + where;
  spec.env = {std::string("PATH=") + kJailPath, "HOME=/home", "LANG=C.UTF-8"};
  for (const auto& [var, value] : m.env) spec.env.push_back(var + "=" + value);
  for (const auto& s : m.secrets) spec.env.push_back(s + "=" + setup.secrets.at(s));
  spec.timeout_seconds = m.timeout;
  spec.startup_timeout_seconds = m.startup_timeout;
  spec.media = m.media;
  spec.jail.server = true;
  spec.jail.danger_host_network = m.network;
  spec.jail.memory = m.memory;
  spec.jail.message_limit = config.message.value;
  std::error_code ec;
  // As the command names it (where the jail shows it), and resolved: a link to a directory binds
  // where it points, and that is what the trusted paths are checked against.
  const fs::path install = install_dir_of(spec.argv);
  const fs::path install_real = install.empty() ? install : fs::weakly_canonical(install, ec);
  const fs::path workspace = setup.req.procedure_dir;  // compose_run's, absolute and normal
  if (!install.empty() && spec.config_error.empty()) {
    const std::string held = trusted_inside(install_real, trusted_paths(config, setup.procedure),
                                            fs::weakly_canonical(workspace, ec));
    if (!held.empty())
      spec.config_error = "cannot start: its install dir " + install.string() + " holds " + held +
                          ", which its jail would show; install the server in a directory of "
                          "its own (npm install --prefix DIR)" +
                          where;
  }
  if (!install.empty())
    spec.jail.binds.push_back(
        {install.string(), install.string(), tools::JailBind::Kind::read_only});
  const bool has_workspace = m.workspace != "off" && config.mount_current_dir.value;
  if (has_workspace)
    spec.jail.binds.push_back(
        {workspace.string(), "/workspace",
         m.workspace == "rw" ? tools::JailBind::Kind::writable : tools::JailBind::Kind::read_only});
  spec.cwd = has_workspace ? "/workspace" : "/home";
  if (has_workspace) {
    spec.workspace_host = workspace.string();
    spec.workspace_rw = m.workspace == "rw";
    // The install dir, when it lies in the workspace, is read-only there too.
    const std::string code_dir =
        !install.empty() && beneath(install, workspace) ? install.string() : std::string();
    // setup outlives the run's tools; looked at on each start, as the workspace then is.
    spec.trusted = [&config, file = setup.procedure] { return trusted_files(config, file); };
    spec.shield = [trusted = spec.trusted, workspace, rw = spec.workspace_rw,
                   code_dir](std::string& error) {
      std::vector<tools::JailBind> binds;
      if (!tools::workspace_shield(workspace.string(), rw, trusted(), code_dir, binds, error))
        binds.clear();
      return binds;
    };
  }
  if (!m.cwd.empty()) {
    const fs::path cwd = fs::path(m.cwd).lexically_normal();
    if (has_workspace && (cwd == workspace || beneath(cwd, workspace)))
      spec.cwd =
          (fs::path("/workspace") / cwd.lexically_relative(workspace)).lexically_normal().string();
    else if (!install.empty() && (cwd == install || beneath(cwd, install)))
      spec.cwd = cwd.string();
    else if (spec.config_error.empty())
      spec.config_error = "cannot start: cwd " + m.cwd +
                          " is neither in the workspace nor in the server's install dir " +
                          (install.empty() ? std::string("(none)") : install.string()) + where;
  }
  return spec;
}

}  // namespace tactus::broker
