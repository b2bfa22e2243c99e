#include "iexec/protocol.h"

#include <stdexcept>

namespace edgeflow::iexec {

using nlohmann::json;

Topics::Topics(const std::string& pipeline, const std::string& pool)
    : base("edgeflow/" + pipeline + "/iexec/" + pool) {}

json bin(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  return json::binary(std::vector<uint8_t>(p, p + size));
}

namespace {

std::string envelope(const std::vector<uint8_t>& body, const crypto::Signature* sig) {
  json env = json::object();
  env["b"] = json::binary(body);
  if (sig) env["s"] = bin(*sig);
  std::vector<uint8_t> out = json::to_msgpack(env);
  return std::string(out.begin(), out.end());
}

const json& field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end()) throw std::runtime_error(std::string("missing field '") + name + "'");
  return *it;
}

template <size_t N>
crypto::FixedBytes<N> get_fixed(const json& body, const char* name) {
  std::string b = get_bytes(body, name);
  if (b.size() != N)
    throw std::runtime_error(std::string("field '") + name + "' has " + std::to_string(b.size()) +
                             " bytes, expected " + std::to_string(N));
  crypto::FixedBytes<N> out;
  std::copy(b.begin(), b.end(), out.bytes.begin());
  return out;
}

// nlohmann's msgpack reader recurses once per nesting level, so a payload of nested arrays
// could exhaust the stack before any signature is checked: walk it first, without recursion.
bool msgpack_shallow(const uint8_t* p, size_t n, int max_depth, std::string* why) {
  std::vector<uint64_t> left;  // items still to read at each open level
  size_t i = 0;
  auto need = [&](size_t k) { return i + k <= n; };
  auto be = [&](size_t k) {
    uint64_t v = 0;
    for (size_t j = 0; j < k; ++j) v = v << 8 | p[i + j];
    return v;
  };
  uint64_t items = 1;  // the top-level value
  while (items > 0 || !left.empty()) {
    if (items == 0) {
      items = left.back();
      left.pop_back();
      continue;
    }
    --items;
    if (!need(1)) return *why = "truncated msgpack", false;
    const uint8_t t = p[i++];
    uint64_t skip = 0, open = 0;
    bool container = false;
    if (t <= 0x7f || t >= 0xe0 || (t >= 0xc0 && t <= 0xc3)) {
    } else if ((t & 0xf0) == 0x80 || (t & 0xf0) == 0x90) {
      open = (t & 0x0f) * ((t & 0xf0) == 0x80 ? 2 : 1);
      container = true;
    } else if ((t & 0xe0) == 0xa0) {
      skip = t & 0x1f;
    } else {
      switch (t) {
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xce:
        case 0xd2:
        case 0xca:
          skip = 4;
          break;
        case 0xcf:
        case 0xd3:
        case 0xcb:
          skip = 8;
          break;
        case 0xd4:
          skip = 2;
          break;
        case 0xd5:
          skip = 3;
          break;
        case 0xd6:
          skip = 5;
          break;
        case 0xd7:
          skip = 9;
          break;
        case 0xd8:
          skip = 17;
          break;
        case 0xc4:
        case 0xd9:
        case 0xc7: {
          if (!need(1)) return *why = "truncated msgpack", false;
          skip = be(1) + 1 + (t == 0xc7);
          break;
        }
        case 0xc5:
        case 0xda:
        case 0xc8: {
          if (!need(2)) return *why = "truncated msgpack", false;
          skip = be(2) + 2 + (t == 0xc8);
          break;
        }
        case 0xc6:
        case 0xdb:
        case 0xc9: {
          if (!need(4)) return *why = "truncated msgpack", false;
          skip = be(4) + 4 + (t == 0xc9);
          break;
        }
        case 0xdc:
        case 0xde:
          if (!need(2)) return *why = "truncated msgpack", false;
          open = be(2) * (t == 0xde ? 2 : 1);
          i += 2;
          container = true;
          break;
        case 0xdd:
        case 0xdf:
          if (!need(4)) return *why = "truncated msgpack", false;
          open = be(4) * (t == 0xdf ? 2 : 1);
          i += 4;
          container = true;
          break;
        default:
          return *why = "not msgpack (byte 0xc1)", false;
      }
    }
    if (skip > n - i) return *why = "truncated msgpack", false;
    i += skip;
    if (container && open > 0) {
      if (open > n - i) return *why = "msgpack container larger than the payload", false;
      if (static_cast<int>(left.size()) + 1 > max_depth)
        return *why = "msgpack nested deeper than " + std::to_string(max_depth) + " levels", false;
      left.push_back(items);
      items = open;
    }
  }
  return true;
}

bool valid_utf8_text(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (extra < 0 || i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += 1 + extra;
  }
  return true;
}

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v =
        uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8;
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

}  // namespace

std::string seal_message(const crypto::Wallet& wallet, json body) {
  body["from"] = bin(wallet.address());
  std::vector<uint8_t> b = json::to_msgpack(body);
  const crypto::Signature sig = wallet.sign_eip191(crypto::keccak256(b.data(), b.size()));
  return envelope(b, &sig);
}

std::string seal_unsigned(json body) {
  body["from"] = bin(crypto::Address{});
  return envelope(json::to_msgpack(body), nullptr);
}

std::string request_target_error(const json& body, const std::string& requests_topic) {
  const json* to = body.contains("to") ? &body["to"] : nullptr;
  if (!to || !to->is_string()) {
    return "a signed request must name the requests topic it is for (to), so that it cannot be "
           "replayed to another pool; send it with this version's edgeflow task submit or "
           "iexec.request, which set it";
  }
  if (to->get<std::string>() != requests_topic) {
    return "the request was signed for " + to->get<std::string>() + ", not for this pool's " +
           requests_topic + " (a replay, or a requester with the wrong pipeline or pool)";
  }
  return "";
}

std::optional<Opened> open_message(const std::string& payload, std::string* error) {
  try {
    constexpr int kMaxDepth = 16;
    std::string why;
    if (!msgpack_shallow(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(),
                         kMaxDepth, &why))
      throw std::runtime_error(why);
    json env = json::from_msgpack(payload);
    if (!env.is_object() || !env.contains("b") || !env["b"].is_binary())
      throw std::runtime_error("not an edgeflow iexec envelope (expected a map with 'b')");
    const auto& b = env["b"].get_binary();
    if (!msgpack_shallow(b.data(), b.size(), kMaxDepth, &why)) throw std::runtime_error(why);
    Opened o;
    o.body = json::from_msgpack(b);
    if (!o.body.is_object() || !o.body.contains("type") || !o.body["type"].is_string())
      throw std::runtime_error("the body has no string 'type'");
    const crypto::Address claimed = get_address(o.body, "from");
    if (env.contains("s")) {
      const crypto::Signature sig = get_signature(env, "s");
      auto signer = crypto::recover_eip191(crypto::keccak256(b.data(), b.size()), sig);
      if (!signer)
        throw std::runtime_error("the signature is malformed (not 65 bytes of r, low s, v 27/28)");
      if (*signer != claimed)
        throw std::runtime_error("the signature recovers to " + signer->hex() + ", not to " +
                                 claimed.hex() + " named in 'from'");
      o.signed_ = true;
    } else if (!claimed.is_zero()) {
      throw std::runtime_error("unsigned message claims to come from " + claimed.hex());
    }
    o.from = claimed;
    return o;
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return std::nullopt;
  }
}

std::string get_bytes(const json& body, const char* name) {
  const json& v = field(body, name);
  if (!v.is_binary()) throw std::runtime_error(std::string("field '") + name + "' is not bytes");
  const auto& b = v.get_binary();
  return std::string(b.begin(), b.end());
}
crypto::Hash32 get_hash(const json& body, const char* name) { return get_fixed<32>(body, name); }
crypto::Address get_address(const json& body, const char* name) {
  return get_fixed<20>(body, name);
}
crypto::Signature get_signature(const json& body, const char* name) {
  return get_fixed<65>(body, name);
}
std::string get_string(const json& body, const char* name) {
  const json& v = field(body, name);
  if (!v.is_string()) throw std::runtime_error(std::string("field '") + name + "' is not text");
  return v.get<std::string>();
}
int64_t get_int(const json& body, const char* name) {
  const json& v = field(body, name);
  if (!v.is_number_integer())
    throw std::runtime_error(std::string("field '") + name + "' is not an integer");
  return v.get<int64_t>();
}

crypto::Hash32 authorization_hash(const crypto::Address& worker, const crypto::Hash32& taskid,
                                  const crypto::Address& enclave) {
  return crypto::Packed().add(worker).add(taskid).add(enclave).keccak();
}
crypto::Hash32 result_hash(const crypto::Hash32& taskid, const crypto::Hash32& digest) {
  return crypto::Packed().add(taskid).add(digest).keccak();
}
crypto::Hash32 result_seal(const crypto::Address& worker, const crypto::Hash32& taskid,
                           const crypto::Hash32& digest) {
  return crypto::Packed().add(worker).add(taskid).add(digest).keccak();
}

json printable(const std::string& bytes) {
  if (valid_utf8_text(bytes)) {
    try {
      (void)json(bytes).dump();  // nlohmann's own UTF-8 check, the one dump() applies later
      return bytes;
    } catch (const json::type_error&) {
    }
  }
  return json{{"base64", base64(bytes)}};
}

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace edgeflow::iexec
