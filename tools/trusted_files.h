// Trusted files: what no file tool may write, and (under .tactus/) not even read, whichever
// mount, path, symlink or hard link reaches them.
//
// The sidecars decide what a run may reach, so a procedure that could rewrite one would choose
// its own policy for the next run. Decided by the file actually opened, not by the path given:
//  - by inode (device and inode number): the configuration layers, the journal (with its -wal,
//    -shm and -journal files), the audit log, and every file and directory under each .tactus
//    directory the run knows of, as they were at the run's first file tool call (before any
//    tool could change one);
//  - by name, on the host path of the opened file (/proc/self/fd), without case: a component
//    named .tactus (read and write); a last component ending in .tac.yml, .tac.yaml, .tac or .lua
//    (code and its policy: write), or named X.yml or X.yaml beside an existing file X (the
//    sidecar `tactus run X` would read), so a sidecar or code created during the run, or one not
//    known when it began, is caught;
//  - by (directory, name) for configured trusted paths that do not exist yet (an audit log the
//    first run will create);
//  - by directory inode, every MCP server's install dir: nothing below it is written (the
//    procedure would otherwise change the code a server runs with its secrets);
//  - an append to a file with more than one hard link is refused: the link may be a trusted
//    file's. A replacing write renames a new file over the name, so it never reaches the inode.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tactus::tools {

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId& o) const { return dev == o.dev && ino == o.ino; }
};

struct TrustedFiles {
  std::vector<FileId> files;   // written by no tool
  std::vector<FileId> hidden;  // read by no tool either: .tactus contents, journal, audit log
  std::vector<FileId> dirs;    // .tactus directories: nothing below them is read or written
  // MCP servers' install dirs (their code, run with their secrets): nothing below is written.
  std::vector<FileId> code_dirs;
  // Trusted paths by (directory, name), and as the host names them: a journal or log that is
  // created during the run is caught although its inode was not known when the set was collected.
  struct Name {
    FileId dir;
    std::string name;
    bool hidden = false;  // not read either
  };
  std::vector<Name> names;
  std::vector<std::string> hidden_paths;  // absolute, lexically normal
};

// The trusted set: files no tool writes, hidden ones no tool reads either (each may be
// missing), and .tactus directories (each scanned, up to a bounded number of entries; all they
// hold is hidden). Relative paths are taken as they are.
TrustedFiles collect_trusted_files(const std::vector<std::string>& files,
                                   const std::vector<std::string>& hidden,
                                   const std::vector<std::string>& tactus_dirs,
                                   const std::vector<std::string>& code_dirs = {});

// Why a file or directory named name (its last component alone) is trusted by name: a
// .tactus, *.tac, *.tac.yml, *.tac.yaml or *.lua, without case; or nothing. The rule beside it,
// X.yml beside X, needs the directory (refuse_write).
std::optional<std::string> trusted_by_name(std::string_view name);

// Why fd (an open file or directory a tool is about to read) is trusted, or nothing.
std::optional<std::string> refuse_read(const TrustedFiles& t, int fd);

// Why writing name in the directory parent_fd is refused, or nothing. The existing file at that
// name (not followed if a symlink) is checked too.
std::optional<std::string> refuse_write(const TrustedFiles& t, int parent_fd,
                                        const std::string& name);

// Why the open regular file fd may not be changed in place (an append): trusted, or a file with
// more than one hard link (one may be trusted; the check is on the inode actually opened).
std::optional<std::string> refuse_modify(const TrustedFiles& t, int fd);

}  // namespace tactus::tools
