#include "runtime/message.h"

#include <atomic>

namespace edgeflow {

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
