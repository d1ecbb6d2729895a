// The file tools against a real directory tree: what they may reach inside the mounts, and every
// way out of them they must refuse ('..', absolute paths, symlinks, planted symlinks).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tools/file_tools.h"
#include "tools/registry.h"

using namespace tactus;
using protocol::Json;
using tools::FileLimits;
using tools::Mount;
using tools::ToolOutcome;
namespace fs = std::filesystem;

namespace {

void put(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

std::string get(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// root/ws (the workspace, at /workspace), root/data (read-only, at /data) and root/outside
// (mounted nowhere, holding a secret).
struct Tree {
  fs::path root, ws, data, outside;
  std::vector<Mount> mounts;
  FileLimits limits;
  tools::TrustedFiles trusted;
  mutable tools::DiskQuota quota;

  Tree() {
    char tmpl[] = "/tmp/tactus-file-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
    ws = root / "ws";
    data = root / "data";
    outside = root / "outside";
    for (const auto& d : {ws, data, outside, ws / "sub"}) fs::create_directories(d);
    put(ws / "hello.txt", "hello");
    put(ws / "sub" / "inner.txt", "inner");
    put(data / "table.csv", "a,b\n1,2\n");
    put(outside / "secret.txt", "secret");
    mounts = {{"/workspace", ws.string(), false}, {"/data", data.string(), true}};
  }
  ~Tree() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  ToolOutcome read(const Json& args) const {
    return tools::file_read(mounts, limits, trusted, args);
  }
  ToolOutcome write(const Json& args) const {
    return tools::file_write(mounts, limits, trusted, quota, args);
  }
  ToolOutcome list(const Json& args) const {
    return tools::file_list(mounts, limits, trusted, args);
  }
  ToolOutcome exists(const Json& args) const {
    return tools::file_exists(mounts, limits, trusted, args);
  }
  ToolOutcome read(const std::string& path) const { return read(Json{{"path", path}}); }
  ToolOutcome exists(const std::string& path) const { return exists(Json{{"path", path}}); }
  ToolOutcome list(const std::string& path) const { return list(Json{{"path", path}}); }
  ToolOutcome read(const char* path) const { return read(std::string(path)); }
  ToolOutcome exists(const char* path) const { return exists(std::string(path)); }
  ToolOutcome list(const char* path) const { return list(std::string(path)); }
  ToolOutcome write(const std::string& path, const std::string& content) const {
    return write(Json{{"path", path}, {"content", content}});
  }
};

std::string describe(const ToolOutcome& r) {
  return r.ok ? "ok " + r.result.dump() : std::string(to_string(r.code)) + ": " + r.message;
}

void require_ok(const ToolOutcome& r) {
  INFO(describe(r));
  REQUIRE(r.ok);
}

void require_error(const ToolOutcome& r, const std::string& code, const std::string& part = "") {
  INFO(describe(r));
  REQUIRE_FALSE(r.ok);
  REQUIRE(r.code == code);
  if (!part.empty()) REQUIRE_THAT(r.message, Catch::Contains(part));
}

std::vector<std::string> names(const ToolOutcome& r) {
  std::vector<std::string> out;
  for (const auto& e : r.result["entries"]) out.push_back(e["name"].get<std::string>());
  return out;
}

const Json* entry(const ToolOutcome& r, const std::string& name) {
  for (const auto& e : r.result["entries"])
    if (e["name"] == name) return &e;
  return nullptr;
}

}  // namespace

TEST_CASE("file: read, write, list and exists on the workspace, relative and absolute",
          "[file][tools]") {
  Tree t;
  auto r = t.read("hello.txt");
  require_ok(r);
  REQUIRE(r.result["content"] == "hello");
  REQUIRE(r.result["size"] == 5);
  REQUIRE(t.read("/workspace/sub/inner.txt").result["content"] == "inner");
  REQUIRE(t.read("./sub//inner.txt").result["content"] == "inner");
  REQUIRE(t.read("sub/../hello.txt").result["content"] == "hello");  // '..' that stays inside

  r = t.write("new.txt", "fresh");
  require_ok(r);
  REQUIRE(r.result["bytes"] == 5);
  REQUIRE(get(t.ws / "new.txt") == "fresh");
  struct stat st;
  REQUIRE(::stat((t.ws / "new.txt").c_str(), &st) == 0);
  REQUIRE((st.st_mode & 0777 & ~0644) == 0);
  require_ok(t.write("/workspace/sub/abs.txt", "abs"));
  REQUIRE(get(t.ws / "sub" / "abs.txt") == "abs");

  r = t.write(Json{{"path", "new.txt"}, {"content", "+more"}, {"append", true}});
  require_ok(r);
  REQUIRE(r.result["bytes"] == 5);
  REQUIRE(get(t.ws / "new.txt") == "fresh+more");
  require_ok(t.write(Json{{"path", "log.txt"}, {"content", "line"}, {"append", true}}));
  REQUIRE(get(t.ws / "log.txt") == "line");

  r = t.list(Json::object());
  require_ok(r);
  REQUIRE(names(r) == std::vector<std::string>{"hello.txt", "log.txt", "new.txt", "sub"});
  REQUIRE(*entry(r, "hello.txt") == Json{{"name", "hello.txt"}, {"type", "file"}, {"size", 5}});
  REQUIRE((*entry(r, "sub"))["type"] == "dir");
  REQUIRE_FALSE(r.result.contains("truncated"));
  REQUIRE(names(t.list("/workspace/sub")) == std::vector<std::string>{"abs.txt", "inner.txt"});
  REQUIRE(names(t.list("sub/")) == std::vector<std::string>{"abs.txt", "inner.txt"});

  REQUIRE(t.exists("hello.txt").result == Json{{"exists", true}, {"type", "file"}});
  REQUIRE(t.exists("/workspace/sub").result == Json{{"exists", true}, {"type", "dir"}});
  REQUIRE(t.exists("/workspace").result == Json{{"exists", true}, {"type", "dir"}});
  REQUIRE(t.exists("nope.txt").result == Json{{"exists", false}});
  REQUIRE(t.exists("nope/deeper.txt").result == Json{{"exists", false}});
  REQUIRE(t.exists("hello.txt/x").result == Json{{"exists", false}});

  require_error(t.read("nope.txt"), "not_found", "'nope.txt'");
  require_error(t.list("nope"), "not_found");
  require_error(t.read("sub"), "invalid_args", "directory");
  require_error(t.list("hello.txt"), "invalid_args", "not a directory");
  require_error(t.write("sub", "x"), "invalid_args", "directory");
  require_error(t.write("/workspace", "x"), "invalid_args", "directory");
  require_error(t.write("newdir/", "x"), "invalid_args", "directory");
  REQUIRE_FALSE(fs::exists(t.ws / "newdir"));
}

TEST_CASE("file: the read-only /data mount is read and listed, never written", "[file][tools]") {
  Tree t;
  auto r = t.read("/data/table.csv");
  require_ok(r);
  REQUIRE(r.result["content"] == "a,b\n1,2\n");
  REQUIRE(names(t.list("/data")) == std::vector<std::string>{"table.csv"});
  REQUIRE(t.exists("/data/table.csv").result["exists"] == true);

  require_error(t.write("/data/table.csv", "overwritten"), "denied",
                "'/data' is mounted read-only");
  require_error(t.write(Json{{"path", "/data/table.csv"}, {"content", "x"}, {"append", true}}),
                "denied", "'/data' is mounted read-only");
  require_error(t.write("/data/new.txt", "x"), "denied", "read-only");
  require_error(t.write("/data/missing/new.txt", "x"), "denied", "read-only");
  REQUIRE(get(t.data / "table.csv") == "a,b\n1,2\n");
  REQUIRE_FALSE(fs::exists(t.data / "new.txt"));
  REQUIRE(std::distance(fs::directory_iterator(t.data), fs::directory_iterator()) == 1);
}

TEST_CASE("file: '..' that would leave the mount is denied", "[file][tools]") {
  Tree t;
  fs::create_directories(t.ws / "a");
  for (const std::string p : {"../../etc/passwd", "a/../../x", "..", "../outside/secret.txt",
                              "/workspace/../outside/secret.txt", "sub/../../outside/secret.txt",
                              "/data/../ws/hello.txt"}) {
    INFO(p);
    require_error(t.read(p), "denied", "path escapes its mount");
    require_error(t.exists(p), "denied", "path escapes its mount");
    require_error(t.list(p), "denied", "path escapes its mount");
  }
  require_error(t.write("../escaped.txt", "x"), "denied", "path escapes its mount");
  require_error(t.write("a/../../escaped.txt", "x"), "denied", "path escapes its mount");
  require_error(t.write("sub/..", "x"), "invalid_args");
  REQUIRE_FALSE(fs::exists(t.root / "escaped.txt"));
}

TEST_CASE("file: absolute paths outside every mount are denied", "[file][tools]") {
  Tree t;
  for (const std::string& p : std::vector<std::string>{"/etc/passwd", "/", "/workspacex/hello.txt",
                                                       "/work", (t.outside / "secret.txt").string(),
                                                       (t.ws / "hello.txt").string()}) {
    INFO(p);
    require_error(t.read(p), "denied", "outside every mount");
    require_error(t.exists(p), "denied", "outside every mount");
    require_error(t.list(p), "denied", "outside every mount");
    require_error(t.write(p, "x"), "denied", "outside every mount");
  }
  // The message names the virtual mounts, never a host path.
  const auto r = t.read("/etc/passwd");
  REQUIRE_THAT(r.message, Catch::Contains("/workspace, /data"));
  REQUIRE_THAT(r.message, !Catch::Contains(t.root.string()));
}

TEST_CASE("file: a mount matches at a component boundary only", "[file][tools]") {
  Tree t;
  fs::create_directories(t.data / "bases");
  put(t.data / "bases" / "x", "in data");
  require_error(t.read("/databases/x"), "denied", "outside every mount");
  require_error(t.exists("/database"), "denied", "outside every mount");
  REQUIRE(t.read("/data/bases/x").result["content"] == "in data");
  REQUIRE(t.read("//data/./bases/x").result["content"] == "in data");
  // The longest matching mount wins.
  fs::create_directories(t.root / "nested");
  put(t.root / "nested" / "n.txt", "nested");
  t.mounts.push_back({"/data/bases", (t.root / "nested").string(), false});
  REQUIRE(t.read("/data/bases/n.txt").result["content"] == "nested");
  require_error(t.read("/data/bases/x"), "not_found");
}

TEST_CASE("file: symlinks that lead out of the mount are denied", "[file][tools]") {
  Tree t;
  fs::create_symlink("/etc/passwd", t.ws / "passwd");
  fs::create_symlink(t.outside / "secret.txt", t.ws / "abs_secret");
  fs::create_symlink("../outside/secret.txt", t.ws / "rel_secret");
  fs::create_symlink("../../outside", t.ws / "sub" / "outdir");
  fs::create_symlink(t.outside, t.ws / "absdir");
  for (const std::string p : {"passwd", "abs_secret", "rel_secret", "sub/outdir/secret.txt",
                              "absdir/secret.txt", "/workspace/absdir/secret.txt"}) {
    INFO(p);
    require_error(t.read(p), "denied", "path escapes its mount");
    require_error(t.exists(p), "denied", "path escapes its mount");
  }
  require_error(t.list("absdir"), "denied", "path escapes its mount");
  require_error(t.list("sub/outdir"), "denied", "path escapes its mount");
  require_error(t.write("absdir/planted.txt", "x"), "denied", "path escapes its mount");
  require_error(t.write("sub/outdir/planted.txt", "x"), "denied", "path escapes its mount");
  REQUIRE_FALSE(fs::exists(t.outside / "planted.txt"));
  // Writing over the link itself neither follows it nor replaces it.
  require_error(t.write("abs_secret", "pwned"), "invalid_args", "symlink");
  require_error(t.write(Json{{"path", "abs_secret"}, {"content", "x"}, {"append", true}}),
                "invalid_args", "symlink");
  REQUIRE(get(t.outside / "secret.txt") == "secret");
  REQUIRE(fs::is_symlink(t.ws / "abs_secret"));
  // A listing shows such links as "other", without their target's type or size.
  const auto r = t.list(Json::object());
  require_ok(r);
  REQUIRE(*entry(r, "abs_secret") == Json{{"name", "abs_secret"}, {"type", "other"}, {"size", 0}});
  REQUIRE((*entry(r, "absdir"))["type"] == "other");
}

TEST_CASE("file: a symlink planted after the first call is denied", "[file][tools]") {
  Tree t;
  fs::create_directories(t.ws / "reports");
  put(t.ws / "reports" / "secret.txt", "mine");
  REQUIRE(t.read("reports/secret.txt").result["content"] == "mine");
  REQUIRE(t.exists("reports/secret.txt").result["exists"] == true);
  // Something swaps the directory for a link out of the mount during the run.
  fs::remove_all(t.ws / "reports");
  fs::create_symlink(t.outside, t.ws / "reports");
  require_error(t.read("reports/secret.txt"), "denied", "path escapes its mount");
  require_error(t.exists("reports/secret.txt"), "denied", "path escapes its mount");
  require_error(t.list("reports"), "denied", "path escapes its mount");
  require_error(t.write("reports/secret.txt", "x"), "denied", "path escapes its mount");
  REQUIRE(get(t.outside / "secret.txt") == "secret");
}

TEST_CASE("file: the mount's directory is opened afresh on each call", "[file][tools]") {
  Tree t;
  REQUIRE(t.read("hello.txt").result["content"] == "hello");
  fs::rename(t.ws, t.root / "old_ws");
  fs::create_directories(t.ws);
  put(t.ws / "hello.txt", "swapped in");
  REQUIRE(t.read("hello.txt").result["content"] == "swapped in");
  fs::remove_all(t.ws);
  require_error(t.read("hello.txt"), "failed", "mount '/workspace'");
}

TEST_CASE("file: a symlink that stays inside the mount is followed", "[file][tools]") {
  Tree t;
  fs::create_symlink("sub/inner.txt", t.ws / "link.txt");
  fs::create_symlink("sub", t.ws / "linkdir");
  fs::create_symlink("../hello.txt", t.ws / "sub" / "up.txt");
  fs::create_symlink(t.ws / "hello.txt", t.ws / "abs_inside");  // absolute: refused all the same
  REQUIRE(t.read("link.txt").result["content"] == "inner");
  REQUIRE(t.read("linkdir/inner.txt").result["content"] == "inner");
  REQUIRE(t.read("sub/up.txt").result["content"] == "hello");
  REQUIRE(t.exists("link.txt").result == Json{{"exists", true}, {"type", "file"}});
  REQUIRE(t.exists("linkdir").result == Json{{"exists", true}, {"type", "dir"}});
  REQUIRE(names(t.list("linkdir")) == std::vector<std::string>{"inner.txt", "up.txt"});
  require_error(t.read("abs_inside"), "denied", "path escapes its mount");
  const auto r = t.list(Json::object());
  REQUIRE(*entry(r, "link.txt") == Json{{"name", "link.txt"}, {"type", "file"}, {"size", 5}});
  REQUIRE((*entry(r, "linkdir"))["type"] == "dir");
  require_ok(t.write("linkdir/via_link.txt", "ok"));  // a linked directory is fine
  REQUIRE(get(t.ws / "sub" / "via_link.txt") == "ok");
  // A dangling link inside is just a missing file.
  fs::create_symlink("missing.txt", t.ws / "dangling");
  REQUIRE(t.exists("dangling").result == Json{{"exists", false}});
  require_error(t.read("dangling"), "not_found");
}

TEST_CASE("file: reads and writes over the size limits are refused", "[file][tools]") {
  Tree t;
  t.limits.max_read = 10;
  t.limits.max_write = 8;
  put(t.ws / "ten.txt", std::string(10, 'x'));
  put(t.ws / "big.txt", std::string(11, 'x'));
  REQUIRE(t.read("ten.txt").result["size"] == 10);
  require_error(t.read("big.txt"), "invalid_args", "11 bytes, over the read limit of 10 bytes");
  require_ok(t.write("eight.txt", std::string(8, 'y')));
  require_error(t.write("nine.txt", std::string(9, 'y')), "invalid_args",
                "9 bytes, over the write limit of 8 bytes");
  require_error(t.write("hello.txt", std::string(9, 'y')), "invalid_args", "write limit");
  REQUIRE_FALSE(fs::exists(t.ws / "nine.txt"));
  REQUIRE(get(t.ws / "hello.txt") == "hello");
}

TEST_CASE("file: write does not create missing parent directories", "[file][tools]") {
  Tree t;
  require_error(t.write("no/such/dir/f.txt", "x"), "not_found", "does not create directories");
  require_error(t.write("hello.txt/f.txt", "x"), "not_found");
  REQUIRE_FALSE(fs::exists(t.ws / "no"));
}

TEST_CASE("file: FIFOs and other non-regular files are refused without blocking", "[file][tools]") {
  Tree t;
  REQUIRE(::mkfifo((t.ws / "pipe").c_str(), 0644) == 0);
  require_error(t.read("pipe"), "invalid_args", "not a regular file");
  require_error(t.write("pipe", "x"), "invalid_args", "not a regular file");
  require_error(t.write(Json{{"path", "pipe"}, {"content", "x"}, {"append", true}}), "invalid_args",
                "not a regular file");
  REQUIRE(t.exists("pipe").result == Json{{"exists", true}, {"type", "other"}});
  REQUIRE((*entry(t.list(Json::object()), "pipe"))["type"] == "other");
  REQUIRE(fs::is_fifo(t.ws / "pipe"));
  // A device, mounted by a careless configuration.
  t.mounts.push_back({"/dev", "/dev", false});
  require_error(t.read("/dev/null"), "invalid_args", "not a regular file");
  require_error(t.write("/dev/null", "x"), "invalid_args", "not a regular file");
}

TEST_CASE("file: list is sorted and truncated at max_entries", "[file][tools]") {
  Tree t;
  fs::create_directories(t.ws / "many");
  for (int i = 99; i >= 0; --i) put(t.ws / "many" / ("f" + std::to_string(1000 + i)), "x");
  t.limits.max_entries = 100;
  auto r = t.list("many");
  require_ok(r);
  REQUIRE(r.result["entries"].size() == 100);
  REQUIRE_FALSE(r.result.contains("truncated"));
  t.limits.max_entries = 7;
  r = t.list("many");
  REQUIRE(names(r) ==
          std::vector<std::string>{"f1000", "f1001", "f1002", "f1003", "f1004", "f1005", "f1006"});
  REQUIRE(r.result["truncated"] == true);
  t.limits.max_entries = 0;
  r = t.list("many");
  REQUIRE(r.result["entries"].empty());
  REQUIRE(r.result["truncated"] == true);
}

TEST_CASE("file: bad arguments are invalid_args", "[file][tools]") {
  Tree t;
  const std::string nul("hello.txt\0/../../etc/passwd", 27);
  require_error(t.read(nul), "invalid_args", "NUL");
  require_error(t.exists(nul), "invalid_args", "NUL");
  require_error(t.list(nul), "invalid_args", "NUL");
  require_error(t.write(nul, "x"), "invalid_args", "NUL");
  require_error(t.read(""), "invalid_args", "empty");
  require_error(t.read(Json{{"path", 42}}), "invalid_args", "must be a string");
  require_error(t.exists(Json{{"path", Json::array({"a"})}}), "invalid_args", "must be a string");
  require_error(t.list(Json{{"path", true}}), "invalid_args", "must be a string");
  require_error(t.read(Json::object()), "invalid_args", "needs {path");
  require_error(t.read(Json()), "invalid_args", "needs {path");
  require_error(t.read(Json("hello.txt")), "invalid_args", "needs {path");
  require_error(t.write(Json{{"path", 1}, {"content", "x"}}), "invalid_args", "must be a string");
  require_error(t.write(Json{{"path", "x.txt"}}), "invalid_args", "content must be a string");
  require_error(t.write(Json{{"path", "x.txt"}, {"content", 5}}), "invalid_args", "content");
  require_error(t.write(Json{{"path", "x.txt"}, {"content", "x"}, {"append", "yes"}}),
                "invalid_args", "append");
  REQUIRE_FALSE(fs::exists(t.ws / "x.txt"));
  REQUIRE(t.list(Json()).ok);  // file.list's path is optional
}

TEST_CASE("file: relative paths are denied when no workspace is mounted", "[file][tools]") {
  Tree t;
  t.mounts = {{"/data", t.data.string(), true}};
  require_error(t.read("hello.txt"), "denied", "no workspace is mounted");
  require_error(t.exists("hello.txt"), "denied", "no workspace is mounted");
  require_error(t.list(Json::object()), "denied", "no workspace is mounted");
  require_error(t.write("hello.txt", "x"), "denied", "no workspace is mounted");
  require_error(t.read("/workspace/hello.txt"), "denied", "outside every mount");
  REQUIRE(t.read("/data/table.csv").ok);
  t.mounts.clear();
  require_error(t.read("/data/table.csv"), "denied", "nothing is mounted");
}

TEST_CASE("file: write replaces the content atomically", "[file][tools]") {
  Tree t;
  put(t.ws / "doc.txt", std::string(100000, 'o'));
  REQUIRE(::chmod((t.ws / "doc.txt").c_str(), 04600) == 0);
  struct stat before, after;
  REQUIRE(::stat((t.ws / "doc.txt").c_str(), &before) == 0);
  require_ok(t.write("doc.txt", "short"));
  REQUIRE(get(t.ws / "doc.txt") == "short");  // fully replaced, no tail of the old content
  REQUIRE(::stat((t.ws / "doc.txt").c_str(), &after) == 0);
  REQUIRE(after.st_ino != before.st_ino);    // a new file renamed over the old one
  REQUIRE((after.st_mode & 07777) == 0600);  // its permissions kept, its set-id bit not
  REQUIRE(std::distance(fs::directory_iterator(t.ws), fs::directory_iterator()) == 3);  // no temp

  // A reader in another thread sees the old content or the new, never a mix or a short file.
  const std::string a(1 << 20, 'a'), b(1 << 20, 'b');
  put(t.ws / "doc.txt", a);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, torn{0};
  std::thread reader([&] {
    while (!done) {
      const std::string s = get(t.ws / "doc.txt");
      ++reads;
      if (s != a && s != b) ++torn;
    }
  });
  for (int i = 0; i < 40; ++i) REQUIRE(t.write("doc.txt", i % 2 ? a : b).ok);
  done = true;
  reader.join();
  INFO(reads << " reads");
  REQUIRE(torn == 0);
  REQUIRE(get(t.ws / "doc.txt") == a);
}

TEST_CASE("file: a read-only mount nested in the workspace is not written through a side door",
          "[file][tools]") {
  Tree t;
  fs::create_directories(t.ws / "ro");
  put(t.ws / "ro" / "keep.txt", "keep");
  fs::create_symlink("ro", t.ws / "ro_link");
  t.mounts.push_back({"/workspace/ro", (t.ws / "ro").string(), true});
  require_error(t.write("ro/keep.txt", "x"), "denied", "'/workspace/ro' is mounted read-only");
  require_error(t.write("sub/../ro/keep.txt", "x"), "denied", "mounted read-only");
  require_error(t.write("ro_link/keep.txt", "x"), "denied", "mounted read-only");
  require_error(t.write("ro_link/new.txt", "x"), "denied", "mounted read-only");
  REQUIRE(get(t.ws / "ro" / "keep.txt") == "keep");
  REQUIRE_FALSE(fs::exists(t.ws / "ro" / "new.txt"));
  REQUIRE(t.read("ro_link/keep.txt").result["content"] == "keep");  // reading is fine
  require_ok(t.write("sub/still_writable.txt", "x"));
}

TEST_CASE("file: the registry dispatches the file tools", "[file][tools]") {
  Tree t;
  tools::ToolContext ctx;
  ctx.mounts = t.mounts;
  const tools::ToolRegistry reg(ctx);
  for (const char* name : {"file.read", "file.write", "file.list", "file.exists"})
    REQUIRE(reg.has(name));
  REQUIRE_FALSE(reg.has("file.delete"));
  REQUIRE(reg.call("file.read", Json{{"path", "hello.txt"}}).result["content"] == "hello");
  REQUIRE(reg.call("file.write", Json{{"path", "r.txt"}, {"content", "via registry"}}).ok);
  REQUIRE(get(t.ws / "r.txt") == "via registry");
  REQUIRE(reg.call("file.exists", Json{{"path", "r.txt"}}).result["exists"] == true);
  REQUIRE(reg.call("file.list", Json()).result["entries"].size() == 3);
  require_error(reg.call("file.read", Json{{"path", "/etc/passwd"}}), "denied");
}
