// What the PoCo ledger's tests share (poco_test.cc, the consensus and the task lifecycle;
// poco_journal_test.cc, the journal and its replay): the fake clock's units, workers'
// addresses, task requests, and the contribution hashes a worker computes. Header-only, like
// the other test helpers, so both test binaries use it without another library.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "iexec/poco.h"

namespace edgeflow::iexec::testing {

using crypto::keccak256;
using crypto::Packed;
using crypto::sha256;

constexpr int64_t kSec = 1'000'000;
constexpr int64_t kRef = kSec;  // the tasks' time reference: deadlines at 7 s, 10 s, reveal 2 s

inline const Hash32 kAppSha = sha256("the app binary");

inline Address addr(int i) {
  Address a;
  a.bytes[0] = 0xaa;
  a.bytes[19] = uint8_t(i);
  return a;
}
inline const Address kScheduler = addr(200);

inline Hash32 rhash(const Hash32& task, const Hash32& digest) {
  return Packed().add(task).add(digest).keccak();
}
inline Hash32 rseal(const Address& w, const Hash32& task, const Hash32& digest) {
  return Packed().add(w).add(task).add(digest).keccak();
}

inline TaskRequest req(const std::string& id, uint32_t trust, int64_t time_ref = kRef) {
  TaskRequest r;
  r.request_id = keccak256(id);
  r.app = "app";
  r.app_sha256 = kAppSha;
  r.args = {"--n", "3"};
  r.inputs = {{"in.txt", "hello"}, {"bin.dat", std::string("\0\xff\x01", 3)}};
  r.trust = trust;
  r.time_ref_us = time_ref;
  r.requester = "test " + id;
  return r;
}

inline int count(const std::vector<LedgerEvent>& ev, LedgerEvent::Kind k) {
  return int(
      std::count_if(ev.begin(), ev.end(), [&](const LedgerEvent& e) { return e.kind == k; }));
}

}  // namespace edgeflow::iexec::testing
