#include "broker/journal/exchange_journal.h"

#include <algorithm>
#include <iterator>

#include "broker/journal/journal_secrets.h"
#include "broker/secrets.h"
#include "runtime/protocol/methods.h"

namespace tactus::broker {
namespace {

using protocol::Json;

// The host tools without an outside effect: their answers are deferred (docs/durability.md).
constexpr std::string_view kEffectFreeTools[] = {"host.ping", "file.read", "file.list",
                                                 "file.exists"};

// The answer as journaled: {"result": ...} or {"error": ...}, without the request's id (a
// resumed VM numbers its requests the same way, but the journal does not rely on it).
std::string strip_id(const std::string& payload) {
  // The common case, make_result's own layout: {"id":N,"result":...}.
  if (payload.rfind("{\"id\":", 0) == 0) {
    const auto comma = payload.find(",\"result\":");
    if (comma != std::string::npos && payload.find_first_not_of("-0123456789", 6) == comma)
      return "{" + payload.substr(comma + 1);
  }
  Json j = Json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return payload;
  j.erase("id");
  j.erase("jsonrpc");
  return protocol::dump_json(j);
}

std::string with_id(const std::string& stored, std::int64_t id, const SecretSeal* seal) {
  Json j = Json::parse(stored, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return stored;
  if (seal) seal->unseal(j);  // the answer exactly as the first run saw it
  if (j.contains("result")) return protocol::make_result(id, j["result"]);
  const Json e = j.value("error", Json::object());
  return protocol::make_error(id, e.value("code", "failed"), e.value("message", ""));
}

// An excerpt for a message: the text is masked already; the cut drops the redactor's margin.
std::string shorten(const std::string& s, const Redactor* redactor) {
  return tools::excerpt_head(s, 300, redactor);
}

}  // namespace

ExchangeJournal::ExchangeJournal(Journal* journal, std::string run_id,
                                 std::vector<JournalEntry> replay, const Redactor* redactor,
                                 bool state_journaled)
    : journal_(journal),
      run_id_(std::move(run_id)),
      replay_(std::move(replay)),
      redactor_(redactor),
      state_journaled_(state_journaled) {
  for (const auto& e : replay_) bytes_ += e.request_json.size() + e.response_json.size();
}

void ExchangeJournal::limit_bytes(std::uint64_t max, std::string setting) {
  max_bytes_ = max;
  max_setting_ = std::move(setting);
}

bool ExchangeJournal::count_bytes(std::size_t n, std::int64_t seq, const std::string& what,
                                  std::string& error) {
  bytes_ += n;
  if (max_bytes_ == 0 || bytes_ <= max_bytes_) return true;
  error = "run " + run_id_ + " has journaled more than " + max_setting_ + " allows (entry " +
          std::to_string(seq) + ", " + what + "); the entries before it are kept";
  return false;
}

bool ExchangeJournal::defer(JournalEntry entry, std::string& error) {
  if (!count_bytes(entry.request_json.size() + entry.response_json.size(), entry.seq, entry.method,
                   error)) {
    std::string ignored;
    flush(ignored);  // what came before it is kept
    return false;
  }
  deferred_.push_back(std::move(entry));
  return true;
}

ExchangeJournal::ExchangeJournal(std::function<Journal*(std::string&)> open, std::string run_id,
                                 const Redactor* redactor)
    : journal_(nullptr), open_(std::move(open)), run_id_(std::move(run_id)), redactor_(redactor) {}

Journal* ExchangeJournal::journal(std::string& error) {
  if (!journal_ && open_) {
    journal_ = open_(open_error_);
    open_ = nullptr;
  }
  if (!journal_) error = open_error_.empty() ? "no journal" : open_error_;
  return journal_;
}

// Params and state as journaled and compared: secrets' raw values sealed as placeholders, the
// rest of what the redactor knows masked (the journal is on disk like any log). Copied only
// when there is something to mask: this is on every request's path.
std::string ExchangeJournal::masked_text(const Json& value) const {
  if (!seal_ || seal_->empty()) {
    std::string text = protocol::dump_json(value);
    // Without a secret, sealing only doubles "\x01" (dumped as \u0001): rare, so looked for.
    const bool escape = seal_ && text.find("\\u0001") != std::string::npos;
    if (!escape && (!redactor_ || redactor_->empty())) return text;
  }
  Json masked = value;
  if (seal_) seal_->seal(masked);
  if (redactor_) redactor_->redact_in_place(masked);
  return protocol::dump_json(masked);
}

// An answer as journaled: without its id, and sealed like params (a human's answer can hold a
// secret's value; a tool's was masked before it was sent).
std::string ExchangeJournal::sealed_answer(const std::string& payload) const {
  const std::string stripped = strip_id(payload);
  if (!seal_ || (seal_->empty() && stripped.find("\\u0001") == std::string::npos)) return stripped;
  Json j = Json::parse(stripped, nullptr, false);
  if (j.is_discarded()) return stripped;
  return masked_text(j);
}

ExchangeJournal::Next ExchangeJournal::state(const Json& state, std::string& error) {
  Next out;
  ++seq_;
  const std::string text = masked_text(state);
  if (journal_ && seq_ <= static_cast<std::int64_t>(replay_.size())) {
    const JournalEntry& e = replay_[static_cast<std::size_t>(seq_ - 1)];
    if (e.method != protocol::method::state || e.request_json != text) {
      out.step = Step::diverged;
      out.message = "the resumed run diverged from its journal at entry " + std::to_string(seq_) +
                    ": the journal has " + e.method + " " + shorten(e.request_json, redactor_) +
                    ", the procedure's state is now " + shorten(text, redactor_);
    } else {
      out.step = Step::replayed;
    }
    return out;
  }
  if (!active()) return out;
  JournalEntry e;
  e.seq = seq_;
  e.method = protocol::method::state;
  e.request_json = text;
  e.response_json = "{\"result\":{}}";
  if (defer(std::move(e), error) && deferred_.size() >= kMaxDeferred) flush(error);
  return out;
}

ExchangeJournal::Next ExchangeJournal::next(const protocol::Message& request) {
  Next out;
  ++seq_;
  if (!journal_ || seq_ > static_cast<std::int64_t>(replay_.size())) return out;
  const JournalEntry& e = replay_[static_cast<std::size_t>(seq_ - 1)];
  const std::string params = masked_text(request.params);
  if (e.method != request.method || e.request_json != params) {
    out.step = Step::diverged;
    out.message = "the resumed run diverged from its journal at request " + std::to_string(seq_) +
                  ": the journal has " + e.method + " " + shorten(e.request_json, redactor_) +
                  ", the procedure now asks " + request.method + " " + shorten(params, redactor_);
    return out;
  }
  if (e.response_json.empty() && protocol::is_human(e.method)) {
    out.step = Step::pending;
    pending_at_ = e.at;
    return out;
  }
  if (e.response_json.empty()) {  // in flight when the host died: sent again, live
    in_flight_ = seq_;
    repeating_ = true;
    return out;
  }
  // A checkpoint whose function finished: its result is the next entry's request, or the one
  // after a state entry, which is the state the function left (given back with the result).
  if (e.method == protocol::method::checkpoint) {
    const auto at = [this](std::int64_t i) -> const JournalEntry* {
      return i < static_cast<std::int64_t>(replay_.size()) ? &replay_[static_cast<std::size_t>(i)]
                                                           : nullptr;
    };
    const JournalEntry* state =
        at(seq_) && at(seq_)->method == protocol::method::state ? at(seq_) : nullptr;
    const JournalEntry* done = at(state ? seq_ + 1 : seq_);
    if (done && done->method == protocol::method::checkpoint_result) {
      Json result = Json::parse(done->request_json, nullptr, false);
      if (seal_ && !result.is_discarded()) seal_->unseal(result);
      Json answer = {{"replayed", true},
                     {"value", result.is_object() ? result.value("value", Json()) : Json()}};
      if (state) {
        Json s = Json::parse(state->request_json, nullptr, false);
        if (seal_ && !s.is_discarded()) seal_->unseal(s);
        if (!s.is_discarded()) answer["state"] = std::move(s);
      }
      seq_ += state ? 2 : 1;
      out.step = Step::replayed;
      out.payload = protocol::make_result(request.id, answer);
      return out;
    }
  }
  out.step = Step::replayed;
  out.payload = with_id(e.response_json, request.id, seal_);
  return out;
}

bool ExchangeJournal::deferrable(const protocol::Message& request) {
  const protocol::MethodSpec* spec = protocol::find_method(request.method);
  if (!spec) return false;
  if (spec->journal == protocol::Journaling::deferred) return true;
  if (spec->journal != protocol::Journaling::by_tool || !request.params.is_object()) return false;
  const Json name = request.params.value("name", Json());
  if (!name.is_string()) return true;  // refused without running anything
  const std::string& n = name.get_ref<const std::string&>();
  return std::find(std::begin(kEffectFreeTools), std::end(kEffectFreeTools), n) !=
         std::end(kEffectFreeTools);
}

bool ExchangeJournal::flush(std::string& error) {
  if (!active()) return true;
  Journal* j = journal(error);  // opened here, before the effect that needs it runs
  if (!j) return false;
  if (deferred_.empty()) return true;
  if (!j->append_batch(run_id_, deferred_, error)) return false;
  deferred_.clear();
  return true;
}

bool ExchangeJournal::flush_if_open(std::string& error) {
  if (!journal_) return true;
  return flush(error);
}

bool ExchangeJournal::begin_effect(const protocol::Message& request, std::string& error) {
  if (!active()) return true;
  if (repeating_ && in_flight_ == seq_) {
    repeating_ = false;
    Journal* j = journal(error);
    return j && j->note_repeated(run_id_, error);
  }
  JournalEntry e;
  e.seq = seq_;
  e.method = request.method;
  e.request_json = masked_text(request.params);
  if (!defer(std::move(e), error) || !flush(error)) return false;
  in_flight_ = seq_;
  return true;
}

bool ExchangeJournal::record(const protocol::Message& request, const std::string& payload,
                             std::string& error) {
  if (!active()) return true;
  if (in_flight_ != 0 && in_flight_ == seq_) {
    in_flight_ = 0;
    const std::string answer = sealed_answer(payload);
    if (!count_bytes(answer.size(), seq_, request.method + "'s answer", error)) return false;
    Journal* j = journal(error);
    return j && flush(error) && j->answer(run_id_, seq_, answer, error);
  }
  JournalEntry e;
  e.seq = seq_;
  e.method = request.method;
  e.request_json = masked_text(request.params);
  e.response_json = sealed_answer(payload);
  if (!defer(std::move(e), error)) return false;
  if (deferrable(request) && deferred_.size() < kMaxDeferred) return true;
  return flush(error);
}

bool ExchangeJournal::record_pending(const protocol::Message& request, std::string& error) {
  if (!active()) {
    error = "no journal";
    return false;
  }
  JournalEntry e;
  e.seq = seq_;
  e.method = request.method;
  e.request_json = masked_text(request.params);
  return defer(std::move(e), error) && flush(error);
}

bool ExchangeJournal::answer_pending(const protocol::Message&, const std::string& payload,
                                     std::string& error) {
  if (!active()) return true;
  if (!flush(error)) return false;
  Journal* j = journal(error);
  return j && j->answer(run_id_, seq_, sealed_answer(payload), error);
}

}  // namespace tactus::broker
