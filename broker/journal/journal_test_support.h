// Helpers for the journal's tests (broker/journal/*_test.cpp): a temporary directory, a forked
// child that talks to the test over pipes, direct SQLite access to inspect or damage a file,
// and a Journal opened or the test failed.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include "broker/journal/journal.h"
#include "runtime/unique_fd.h"

namespace tactus::journal_test {

// A fresh directory under /tmp, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tactus-journal-test.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A child forked at construction that runs body(from_parent_fd, to_parent_fd) and exits with
// its return value. It never returns into Catch2. Fork children BEFORE the test opens the
// journal: an SQLite connection (and SQLite's per-process lock bookkeeping) must not cross a
// fork. Killed and reaped at destruction if the test has not done so.
class Child {
 public:
  explicit Child(const std::function<int(int in, int out)>& body) {
    int down[2], up[2];
    if (::pipe2(down, O_CLOEXEC) != 0 || ::pipe2(up, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2 failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::close(down[1]);
      ::close(up[0]);
      int code = 99;  // the body threw
      try {
        code = body(down[0], up[1]);
      } catch (...) {
      }
      ::_exit(code);
    }
    ::close(down[0]);
    ::close(up[1]);
    to_child_.reset(down[1]);
    from_child_.reset(up[0]);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      reap();
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void send(const std::string& line) {
    const std::string data = line + "\n";
    if (::write(to_child_.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()))
      throw std::runtime_error("write to child failed");
  }
  // The child's next line, "" at end of file or after timeout_ms without one.
  std::string receive(int timeout_ms = 10000) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      const auto nl = pending_.find('\n');
      if (nl != std::string::npos) {
        line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{from_child_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(from_child_.get(), buf, sizeof buf);
      if (n <= 0) return "";
      pending_.append(buf, static_cast<std::size_t>(n));
    }
  }
  // Everything the child wrote and the test has not read, up to end of file (call after the
  // child is dead).
  std::string rest() {
    std::string all = pending_;
    pending_.clear();
    char buf[4096];
    ssize_t n;
    while ((n = ::read(from_child_.get(), buf, sizeof buf)) > 0)
      all.append(buf, static_cast<std::size_t>(n));
    return all;
  }
  void kill_now() { ::kill(pid_, SIGKILL); }
  // Waits for the child; its exit code, or 128 + signal.
  int reap() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  UniqueFd to_child_, from_child_;
  std::string pending_;
};

// For a child's body: the next line from the parent ("" at end of file).
inline std::string child_receive(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  return line;
}

inline void child_send(int fd, const std::string& line) {
  const std::string data = line + "\n";
  if (::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) ::_exit(90);
}

// A direct SQLite connection to a journal file, for what the Journal API does not offer:
// reading pragmas, holding locks, editing the schema version.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
      throw std::runtime_error("cannot open " + path + ": " + sqlite3_errmsg(db_));
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // Runs sql; SQLite's result code.
  int exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  // The first column of the first row of sql, as text ("" if none).
  std::string value(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr)
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

// The journal at path, opened; the test fails (with why) if it cannot be.
inline std::unique_ptr<broker::Journal> open_ok(const std::string& path) {
  std::string error;
  auto j = broker::Journal::open(path, error);
  INFO(error);
  REQUIRE(j != nullptr);
  return j;
}

}  // namespace tactus::journal_test
