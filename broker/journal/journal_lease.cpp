// Journal::claim and Journal::release: at most one live process runs a run.
#include <unistd.h>

#include "broker/journal/journal.h"
#include "broker/journal/journal_impl.h"

namespace tactus::broker {

using journal_sql::Query;

bool Journal::claim(const std::string& run_id, std::string& error) {
  const auto lock = impl_->lock();
  Impl& j = *impl_;
  journal_sql::WriteTransaction tx(j.db.get(), j.path, j.in_batch);
  if (!tx.begin(error)) return false;
  {
    Query q(j.lease_holder.get());
    q.bind(run_id);
    const int rc = q.step();
    if (rc == SQLITE_DONE) {
      error = "run '" + run_id + "' not found";
      return false;
    }
    if (rc != SQLITE_ROW) {
      error = j.db_error(rc);
      return false;
    }
    if (!q.is_null(0)) {
      ProcessIdentity holder;
      holder.pid = q.int64(0);
      holder.start_time = static_cast<std::uint64_t>(q.int64(1));
      holder.boot_id = q.text(2);
      if (is_running(holder)) {
        error = "run '" + run_id + "' is being run by process " + std::to_string(holder.pid);
        if (holder.pid == ::getpid()) error += " (this process)";
        return false;
      }
      // The holder is gone (died, or ran before a reboot): its lease is stale, taken over below.
    }
  }
  {
    Query q(j.lease_take.get());
    q.bind(run_id)
        .bind(j.self.pid)
        .bind(static_cast<std::int64_t>(j.self.start_time))
        .bind(j.self.boot_id)
        .bind(j.token)
        .bind(unix_now());
    const int rc = q.step();
    if (rc != SQLITE_DONE) {
      error = j.db_error(rc);
      return false;
    }
  }
  if (!tx.commit(error)) return false;
  j.held.insert(run_id);
  return true;
}

void Journal::release(const std::string& run_id) {
  const auto lock = impl_->lock();
  Impl& j = *impl_;
  {
    Query q(j.lease_drop.get());
    q.bind(run_id).bind(j.token);
    // A failure (the journal locked past the busy timeout) leaves the row behind; it names
    // this process, and becomes stale, and is taken over, once this process has exited.
    q.step();
  }
  j.held.erase(run_id);
}

}  // namespace tactus::broker
