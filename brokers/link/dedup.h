// Which frames of a link to deliver: each sender numbers the frames of a session (one run of
// the sending process) from 1. A frame at or below the highest delivered number of its
// session is a redelivery. Sessions are remembered per sender, so frames of an old session
// arriving after a restart's first frames are still recognised.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace edgeflow {

class FrameDedup {
 public:
  enum Verdict { kNext, kGap, kNewSession, kDuplicate };

  Verdict accept(const std::string& sender, uint64_t session, uint64_t sequence) {
    auto [it, fresh] = last_.try_emplace({sender, session}, 0);
    if (sequence <= it->second) return kDuplicate;
    const bool gap = !fresh && sequence != it->second + 1;
    it->second = sequence;
    if (fresh) {
      // Bounded memory: a sender keeps at most a few sessions.
      if (++sessions_[sender] > kMaxSessions) forget_oldest(sender, session);
      return kNewSession;
    }
    return gap ? kGap : kNext;
  }

 private:
  static constexpr int kMaxSessions = 8;
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
  std::map<std::pair<std::string, uint64_t>, uint64_t> last_;  // (sender, session) -> highest
  std::map<std::string, int> sessions_;
};

}  // namespace edgeflow
