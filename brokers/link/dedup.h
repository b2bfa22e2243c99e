// Which frames of a link to deliver: each sender numbers the frames of a session (one run of
// the sending process) from 1. A frame at or below the highest delivered number of its
// session is a redelivery, unless its number was skipped and is still awaited. Sessions are
// remembered per sender, so frames of an old session arriving after a restart's first frames are
// still recognised.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <utility>

namespace edgeflow {

class FrameDedup {
 public:
  // kLate: a frame below the highest delivered that had not come yet (a redelivery after an
  // acknowledgement timeout, NATS JetStream's ack wait, arrives after newer frames): delivered.
  enum Verdict { kNext, kGap, kNewSession, kDuplicate, kLate };

  Verdict accept(const std::string& sender, uint64_t session, uint64_t sequence) {
    auto [it, fresh] = last_.try_emplace({sender, session});
    Session& s = it->second;
    if (fresh) {
      // Numbers below the first one this process sees may come late (a frame delivered
      // again): they are taken when they come, but nobody waits for them, since an earlier
      // run of this receiver may have had them.
      note_missing(s, 1, sequence);
      s.highest = s.first = sequence;
      // Bounded memory: a sender keeps at most a few sessions.
      if (++sessions_[sender] > kMaxSessions) forget_oldest(sender, session);
      return kNewSession;
    }
    if (sequence <= s.highest) return s.missing.erase(sequence) ? kLate : kDuplicate;
    const bool gap = sequence != s.highest + 1;
    note_missing(s, s.highest + 1, sequence);
    s.highest = sequence;
    return gap ? kGap : kNext;
  }

  // Numbers of the session skipped after the first one seen here, and still awaited.
  size_t awaiting(const std::string& sender, uint64_t session) const {
    auto it = last_.find({sender, session});
    if (it == last_.end()) return 0;
    const auto& m = it->second.missing;
    return static_cast<size_t>(std::distance(m.upper_bound(it->second.first), m.end()));
  }

 private:
  static constexpr int kMaxSessions = 8;
  // Numbers skipped and still awaited, per session: at most this many (the latest), so a lost
  // stretch (QoS 0) costs bounded memory (~50 KB a session, kMaxSessions a sender); one older
  // than them counts as a duplicate.
  static constexpr uint64_t kMaxMissing = 1024;
  struct Session {
    uint64_t highest = 0;
    uint64_t first = 0;  // the first number this process saw
    std::set<uint64_t> missing;
  };
  static void note_missing(Session& s, uint64_t from, uint64_t to) {  // [from, to)
    if (to > kMaxMissing) from = std::max(from, to - kMaxMissing);
    for (uint64_t n = from; n < to; ++n) s.missing.insert(n);
    while (s.missing.size() > kMaxMissing) s.missing.erase(s.missing.begin());
  }
  void forget_oldest(const std::string& sender, uint64_t keep) {
    for (auto it = last_.lower_bound({sender, 0}); it != last_.end() && it->first.first == sender;
         ++it) {
      if (it->first.second != keep) {
        last_.erase(it);
        --sessions_[sender];
        return;
      }
    }
  }
  std::map<std::pair<std::string, uint64_t>, Session> last_;  // (sender, session)
  std::map<std::string, int> sessions_;
};

}  // namespace edgeflow
