#include "brokers/codec.h"

#include <msgpack.hpp>
#include <vector>

namespace edgeflow {
namespace {

constexpr int kFormat = 1;
// msgpack-c allocates room for every element a header announces before reading them, so a
// chain of nested headers can allocate (depth x announced x 16-32 bytes). Shallow nesting and
// per-header limits below the input size keep that to a small multiple of the input.
constexpr size_t kMaxDepth = 16;

struct StringBuffer {
  std::string& out;
  void write(const char* data, size_t size) { out.append(data, size); }
};

using Packer = msgpack::packer<StringBuffer>;

void pack_value(Packer& pk, const Value& v);

void pack_fields(Packer& pk, const Fields& fields) {
  pk.pack_map(static_cast<uint32_t>(fields.size()));
  for (const Field& f : fields) {
    pk.pack_str(static_cast<uint32_t>(f.key.size()));
    pk.pack_str_body(f.key.data(), static_cast<uint32_t>(f.key.size()));
    pack_value(pk, f.value);
  }
}

void pack_value(Packer& pk, const Value& v) {
  switch (v.v.index()) {
    case 0:
      pk.pack_nil();
      break;
    case 1:
      std::get<bool>(v.v) ? pk.pack_true() : pk.pack_false();
      break;
    case 2:
      pk.pack_int64(std::get<int64_t>(v.v));
      break;
    case 3:
      pk.pack_double(std::get<double>(v.v));
      break;
    case 4: {
      const std::string& s = std::get<std::string>(v.v);
      pk.pack_str(static_cast<uint32_t>(s.size()));
      pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
      break;
    }
    case 5: {
      const Array& a = std::get<Array>(v.v);
      pk.pack_array(static_cast<uint32_t>(a.size()));
      for (const Value& item : a) pack_value(pk, item);
      break;
    }
    case 6:
      pack_fields(pk, std::get<Fields>(v.v));
      break;
  }
}

// Limits derived from the input length: every element takes at least one byte, so no
// header may announce more than the bytes that remain. check_sizes() below is stricter;
// these stay as a second line of defence inside msgpack-c.
msgpack::unpack_limit limits_for(size_t size) {
  size_t n = std::min<size_t>(size, 0xffffffff);
  // A floor of 16 lets small messages through (a message is an array of 8): at most a few
  // hundred bytes reserved, whatever the input.
  return msgpack::unpack_limit(std::max<size_t>(n / 4 + 1, 16), std::max<size_t>(n / 8 + 1, 16), n,
                               n, n, kMaxDepth);
}

uint64_t read_be(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// Walks the msgpack object at the front of the input without decoding it. msgpack-c reserves
// a container's elements as soon as it reads the header, so per-header limits alone still let
// a chain of nested 5-byte headers reserve (depth x limit) elements. Here every announced
// element, together with those the enclosing containers still expect, must fit in the bytes
// that remain (each takes at least one): msgpack-c then reserves at most one element per input
// byte. Strings, bins and exts must be present in full.
bool check_sizes(const char* data, size_t size, std::string& error) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  size_t pos = 0;
  uint64_t pending = 1;        // elements still to read, at every level
  std::vector<uint64_t> open;  // elements still to read, per open container
  while (pending > 0) {
    if (pos >= size) {
      error = "truncated msgpack: the input ends (" + std::to_string(size) + " bytes) with " +
              std::to_string(pending) + " elements still to read";
      return false;
    }
    const size_t at = pos;
    const unsigned char b = p[pos++];
    --pending;
    if (!open.empty()) --open.back();
    int len_bytes = 0;  // bytes of the big-endian length after the type byte
    uint64_t skip = 0;  // payload bytes after that
    uint64_t children = 0;
    bool map = false;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
      // fixint, nil, bool: the type byte is all
    } else if (b <= 0x8f) {
      children = 2 * uint64_t{b & 0x0fu};
      map = true;
    } else if (b <= 0x9f) {
      children = b & 0x0fu;
    } else if (b <= 0xbf) {
      skip = b & 0x1fu;  // fixstr
    } else if (b >= 0xc4 && b <= 0xc6) {
      len_bytes = 1 << (b - 0xc4);  // bin 8/16/32
    } else if (b >= 0xc7 && b <= 0xc9) {
      len_bytes = 1 << (b - 0xc7);  // ext 8/16/32: length, type byte, data
      skip = 1;
    } else if (b == 0xca || b == 0xcb) {
      skip = b == 0xca ? 4 : 8;  // float 32/64
    } else if (b >= 0xcc && b <= 0xd3) {
      skip = uint64_t{1} << ((b - 0xcc) % 4);  // uint, int 8..64
    } else if (b >= 0xd4 && b <= 0xd8) {
      skip = 1 + (uint64_t{1} << (b - 0xd4));  // fixext: type byte, 1..16 bytes
    } else if (b >= 0xd9 && b <= 0xdb) {
      len_bytes = 1 << (b - 0xd9);  // str 8/16/32
    } else if (b >= 0xdc) {
      len_bytes = (b == 0xdc || b == 0xde) ? 2 : 4;  // array, map 16/32
      map = b >= 0xde;
    } else {
      error = "malformed msgpack: byte 0xc1 (never used) at offset " + std::to_string(at);
      return false;
    }
    if (len_bytes > 0) {
      if (size - pos < static_cast<size_t>(len_bytes)) {
        error = "truncated msgpack: a length cut short at offset " + std::to_string(at);
        return false;
      }
      const uint64_t n = read_be(p + pos, len_bytes);
      pos += len_bytes;
      if (b >= 0xdc)
        children = map ? 2 * n : n;
      else
        skip += n;
    }
    if (skip > size - pos) {
      error = "truncated msgpack: " + std::to_string(skip) + " bytes announced at offset " +
              std::to_string(at) + " but " + std::to_string(size - pos) + " remain";
      return false;
    }
    pos += skip;
    if (children == 0) {
      // A container closes once its last element is read, and maybe its parents with it.
      while (!open.empty() && open.back() == 0) open.pop_back();
      continue;
    }
    // pending never exceeds the input size, so the sum cannot overflow.
    if (pending + children > size - pos) {
      error = std::string("msgpack ") + (map ? "map" : "array") + " at offset " +
              std::to_string(at) + " announces " + std::to_string(map ? children / 2 : children) +
              (map ? " entries" : " elements") + " but only " + std::to_string(size - pos) +
              " bytes remain";
      return false;
    }
    if (open.size() >= kMaxDepth) {
      error = "msgpack nested deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    pending += children;
    open.push_back(children);
  }
  return true;
}

bool to_value(const msgpack::object& o, Value& out, std::string& error, size_t depth);

bool to_fields(const msgpack::object& o, Fields& out, std::string& error, size_t depth) {
  if (o.type != msgpack::type::MAP) {
    error = "expected a map of fields";
    return false;
  }
  out.clear();
  out.reserve(o.via.map.size);
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const msgpack::object_kv& kv = o.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) {
      error = "field names must be strings";
      return false;
    }
    Field f;
    f.key.assign(kv.key.via.str.ptr, kv.key.via.str.size);
    if (!to_value(kv.val, f.value, error, depth + 1)) return false;
    out.push_back(std::move(f));
  }
  return true;
}

bool to_value(const msgpack::object& o, Value& out, std::string& error, size_t depth) {
  if (depth > kMaxDepth) {
    error = "nested deeper than " + std::to_string(kMaxDepth);
    return false;
  }
  switch (o.type) {
    case msgpack::type::NIL:
      out = Value();
      return true;
    case msgpack::type::BOOLEAN:
      out = Value(o.via.boolean);
      return true;
    case msgpack::type::POSITIVE_INTEGER:
      out = Value(static_cast<int64_t>(o.via.u64));
      return true;
    case msgpack::type::NEGATIVE_INTEGER:
      out = Value(o.via.i64);
      return true;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      out = Value(o.via.f64);
      return true;
    case msgpack::type::STR:
      out = Value(std::string(o.via.str.ptr, o.via.str.size));
      return true;
    case msgpack::type::BIN:
      out = Value(std::string(o.via.bin.ptr, o.via.bin.size));
      return true;
    case msgpack::type::ARRAY: {
      Array a;
      a.reserve(o.via.array.size);
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        Value item;
        if (!to_value(o.via.array.ptr[i], item, error, depth + 1)) return false;
        a.push_back(std::move(item));
      }
      out = Value(std::move(a));
      return true;
    }
    case msgpack::type::MAP: {
      Fields f;
      if (!to_fields(o, f, error, depth)) return false;
      out = Value(std::move(f));
      return true;
    }
    default:
      error = "unsupported msgpack type (ext)";
      return false;
  }
}

bool unpack(const char* data, size_t size, msgpack::object_handle& handle, size_t& offset,
            std::string& error) {
  if (!check_sizes(data, size, error)) return false;
  try {
    msgpack::unpack(handle, data, size, offset, nullptr, nullptr, limits_for(size));
    return true;
  } catch (const msgpack::insufficient_bytes&) {
    error = "truncated msgpack (" + std::to_string(size) + " bytes)";
  } catch (const msgpack::depth_size_overflow&) {
    error = "msgpack nested too deep";
  } catch (const msgpack::size_overflow& e) {
    error = std::string("msgpack size larger than the data: ") + e.what();
  } catch (const std::exception& e) {
    error = std::string("malformed msgpack: ") + e.what();
  }
  return false;
}

}  // namespace

void encode_message(const Message& m, std::string& out) {
  StringBuffer buf{out};
  Packer pk(buf);
  pk.pack_array(8);
  pk.pack_int(kFormat);
  pk.pack_str(static_cast<uint32_t>(m.stream.size()));
  pk.pack_str_body(m.stream.data(), static_cast<uint32_t>(m.stream.size()));
  pk.pack_int64(m.event_time_us);
  pk.pack_uint64(m.seq);
  pk.pack_str(static_cast<uint32_t>(m.origin.size()));
  pk.pack_str_body(m.origin.data(), static_cast<uint32_t>(m.origin.size()));
  pack_fields(pk, m.fields);
  if (m.blob.empty() || !m.blob.bytes) {
    pk.pack_nil();
    pk.pack_nil();
  } else {
    pk.pack_str(static_cast<uint32_t>(m.blob.type.size()));
    pk.pack_str_body(m.blob.type.data(), static_cast<uint32_t>(m.blob.type.size()));
    pk.pack_bin(static_cast<uint32_t>(m.blob.bytes->size()));
    pk.pack_bin_body(m.blob.bytes->data(), static_cast<uint32_t>(m.blob.bytes->size()));
  }
}

DecodeResult decode_message(const char* data, size_t size) {
  DecodeResult r;
  msgpack::object_handle handle;
  size_t offset = 0;
  if (!unpack(data, size, handle, offset, r.error)) return r;
  const msgpack::object& o = handle.get();
  auto fail = [&](const std::string& what) {
    r.error = "not an edgeflow message: " + what;
    return r;
  };
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 8)
    return fail("expected an array of 8");
  const msgpack::object* a = o.via.array.ptr;
  if (a[0].type != msgpack::type::POSITIVE_INTEGER || a[0].via.u64 != kFormat)
    return fail("unknown format version");
  auto is_int = [](const msgpack::object& x) {
    return x.type == msgpack::type::POSITIVE_INTEGER || x.type == msgpack::type::NEGATIVE_INTEGER;
  };
  if (a[1].type != msgpack::type::STR || !is_int(a[2]) ||
      a[3].type != msgpack::type::POSITIVE_INTEGER || a[4].type != msgpack::type::STR)
    return fail("bad header fields");
  auto m = std::make_shared<Message>();
  m->stream.assign(a[1].via.str.ptr, a[1].via.str.size);
  m->event_time_us = a[2].type == msgpack::type::POSITIVE_INTEGER
                         ? static_cast<int64_t>(a[2].via.u64)
                         : a[2].via.i64;
  m->seq = a[3].via.u64;
  m->origin.assign(a[4].via.str.ptr, a[4].via.str.size);
  if (!to_fields(a[5], m->fields, r.error, 1)) return r;
  if (a[6].type == msgpack::type::STR && a[7].type == msgpack::type::BIN) {
    m->blob.type.assign(a[6].via.str.ptr, a[6].via.str.size);
    m->blob.bytes = std::make_shared<const std::string>(a[7].via.bin.ptr, a[7].via.bin.size);
  } else if (a[6].type != msgpack::type::NIL || a[7].type != msgpack::type::NIL) {
    return fail("bad blob");
  }
  r.message = std::move(m);
  r.consumed = offset;
  return r;
}

void encode_fields(const Fields& fields, std::string& out) {
  StringBuffer buf{out};
  Packer pk(buf);
  pack_fields(pk, fields);
}

bool decode_fields(const char* data, size_t size, Fields& out, std::string& error) {
  msgpack::object_handle handle;
  size_t offset = 0;
  if (!unpack(data, size, handle, offset, error)) return false;
  if (offset != size) {
    error = "trailing bytes after the msgpack map";
    return false;
  }
  return to_fields(handle.get(), out, error, 1);
}

}  // namespace edgeflow
