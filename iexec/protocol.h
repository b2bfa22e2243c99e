// The messages the scheduler, its workers and requesters exchange, and where they travel.
// Every message is a msgpack map (the body) inside an envelope {b: body bytes, s: signature};
// the signature is EIP-191 over keccak256(body bytes) by the key of the body's `from`, so any
// Ethereum tool can check it. Topics live under edgeflow/<pipeline>/iexec/<pool>/:
//   scheduler        workers -> scheduler: hello, ping, status, contribute, reveal, upload
//   requests         requesters -> scheduler: request (signature optional)
//   workers/<addr>   scheduler -> one worker: task, reveal_request, abort
//   workers/<addr>/online  retained "true"/"false" (the worker's MQTT last will)
//   announce         retained JSON {"scheduler": "0x..", "pool": ..}: who signs the tasks
//   results/<taskid> retained JSON: the finalized (or failed) task, for people and `jq`
//   events           JSON ledger events as they happen
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "crypto/crypto.h"

namespace edgeflow::iexec {

struct Topics {
  Topics(const std::string& pipeline, const std::string& pool);
  std::string base;  // edgeflow/<pipeline>/iexec/<pool>
  std::string scheduler() const { return base + "/scheduler"; }
  std::string requests() const { return base + "/requests"; }
  std::string announce() const { return base + "/announce"; }
  std::string events() const { return base + "/events"; }
  std::string worker(const crypto::Address& a) const { return base + "/workers/" + a.hex(); }
  std::string worker_online(const crypto::Address& a) const { return worker(a) + "/online"; }
  std::string result(const crypto::Hash32& taskid) const {
    return base + "/results/" + taskid.hex();
  }
};

// Sets body["from"] to the wallet's address, encodes the body as msgpack and signs it.
std::string seal_message(const crypto::Wallet& wallet, nlohmann::json body);
// An unsigned envelope (a requester without a key): body["from"] is the zero address.
std::string seal_unsigned(nlohmann::json body);

// A signed request names the requests topic it is sent to ("to": pipeline and pool), so that
// nobody can replay it to another pool, where the same requester may be listed and would pay
// again. "" when `body` is for `requests_topic`, else the cause.
std::string request_target_error(const nlohmann::json& body, const std::string& requests_topic);

struct Opened {
  nlohmann::json body;
  crypto::Address from;  // the signer, checked; zero for an unsigned envelope
  bool signed_ = false;
};
// Decodes an envelope. Payloads nested deeper than 16 levels are refused before parsing (the
// parser recurses per level). Refuses (nullopt, *error set) a malformed payload, a body without a
// string `type`, and a signature that does not recover to the body's `from`. An unsigned
// envelope is returned with signed_ false; the caller decides whether it accepts one.
std::optional<Opened> open_message(const std::string& payload, std::string* error);

// Body field helpers: bytes travel as msgpack bin. Each throws std::runtime_error naming the
// field when it is missing or has the wrong type or size, so a malformed message is refused
// with a reason.
nlohmann::json bin(const void* data, size_t size);
inline nlohmann::json bin(const std::string& s) { return bin(s.data(), s.size()); }
template <size_t N>
nlohmann::json bin(const crypto::FixedBytes<N>& b) {
  return bin(b.data(), N);
}
std::string get_bytes(const nlohmann::json& body, const char* field);
crypto::Hash32 get_hash(const nlohmann::json& body, const char* field);
crypto::Address get_address(const nlohmann::json& body, const char* field);
crypto::Signature get_signature(const nlohmann::json& body, const char* field);
std::string get_string(const nlohmann::json& body, const char* field);
int64_t get_int(const nlohmann::json& body, const char* field);

// What the scheduler signs to let one worker run one task (IEXEC.md): EIP-191 over
// keccak256(worker || taskid || enclave), enclave = address(0) outside a TEE.
crypto::Hash32 authorization_hash(const crypto::Address& worker, const crypto::Hash32& taskid,
                                  const crypto::Address& enclave = {});
// resultHash = keccak256(taskid || resultDigest); resultSeal = keccak256(worker || taskid ||
// resultDigest).
crypto::Hash32 result_hash(const crypto::Hash32& taskid, const crypto::Hash32& digest);
crypto::Hash32 result_seal(const crypto::Address& worker, const crypto::Hash32& taskid,
                           const crypto::Hash32& digest);

// Bytes for people: the text itself when it is valid UTF-8 without NULs, else base64.
nlohmann::json printable(const std::string& bytes);
// JSON text for topics and logs: invalid UTF-8 from a peer becomes U+FFFD instead of throwing.
std::string dump_json(const nlohmann::json& j);

}  // namespace edgeflow::iexec
