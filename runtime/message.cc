#include "runtime/message.h"

#include <atomic>

namespace edgeflow {

namespace {

size_t value_bytes(const Value& v);

size_t fields_bytes(const Fields& fields) {
  size_t n = 0;
  for (const Field& f : fields) n += sizeof(Field) + f.key.size() + value_bytes(f.value);
  return n;
}

size_t value_bytes(const Value& v) {
  if (const auto* s = v.string()) return s->size();
  if (const auto* a = v.array()) {
    size_t n = 0;
    for (const Value& e : *a) n += sizeof(Value) + value_bytes(e);
    return n;
  }
  if (const auto* f = v.map()) return fields_bytes(*f);
  return 0;
}

}  // namespace

size_t approx_bytes(const Message& m) {
  size_t n = sizeof(Message) + m.stream.size() + m.origin.size() + fields_bytes(m.fields);
  if (m.blob.bytes) n += m.blob.bytes->size();
  return n + m.blob.native_bytes;
}

std::shared_ptr<Message> make_mutable(MessagePtr&& message) {
  if (message.use_count() == 1) {
    // Sole owner: nobody else can observe the change, so editing in place is safe. The
    // fence pairs with the release of the last other owner (use_count is a relaxed read).
    std::atomic_thread_fence(std::memory_order_acquire);
    return std::const_pointer_cast<Message>(std::move(message));
  }
  return std::make_shared<Message>(*message);
}

std::shared_ptr<Message> make_error_record(const std::string& stage, const std::string& node,
                                           const Message* about, const std::string& what,
                                           int64_t now_us) {
  auto record = std::make_shared<Message>();
  record->stream = stage;
  record->origin = about ? about->origin : node;
  record->event_time_us = about ? about->event_time_us : now_us;
  record->fields.push_back({"error", what});
  record->fields.push_back({"stage", stage});
  if (about) {
    record->fields.push_back({"about_stream", about->stream});
    record->fields.push_back({"about_seq", static_cast<int64_t>(about->seq)});
  }
  return record;
}

}  // namespace edgeflow
