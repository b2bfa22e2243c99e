// Shared by the iexec.* operators: wallets and paths from options, the MQTT client on the
// pipeline's broker, the CPU slots of a node, and records turned into a task's input file.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "brokers/mqtt/client.h"
#include "crypto/crypto.h"
#include "iexec/app.h"
#include "runtime/operator.h"

namespace edgeflow::iexecop {

// `{node}`, `{stage}` and `{pool}` in a path option, so one stage on several nodes gives each
// its own key file and work folder.
std::string expand(std::string path, Context& ctx, const std::string& pool);

// Creates the folders above `path` (a key file, a journal); OperatorError on failure.
void ensure_parent_dir(const std::string& path);

// Loads the key file; with create, writes a new one first when it is missing (and logs the
// address). Throws OperatorError naming the file and the fix.
crypto::Wallet load_wallet(const std::string& path, bool create, Context& ctx);
iexec::AppRegistry load_registry(const std::string& path);  // OperatorError on failure

// A connected client on `broker` (default: the pipeline's links.mqtt.broker). Persistent
// session under a stable id, so QoS 1 protocol messages wait at the broker while this end is
// away. Throws OperatorError when the broker cannot be reached.
std::unique_ptr<mqtt::Client> connect_client(Context& ctx, const std::string& broker,
                                             const std::string& kind, const std::string& role,
                                             mqtt::MessageHandler handler,
                                             const std::string& will_topic = "",
                                             const std::string& will_payload = "");

// Messages from the network thread to the stage's thread.
class Inbox {
 public:
  void set_waker(std::function<void()> w) { waker_ = std::move(w); }
  void push(mqtt::Received&& r);
  std::deque<mqtt::Received> take();

 private:
  std::mutex mu_;
  std::deque<mqtt::Received> q_;
  std::function<void()> waker_;
};

// The CPU slots of one node, shared by every iexec stage of this process on that node: at
// most one task per free slot (IEXEC.md). The first stage of a node to ask sets the count, so
// give every iexec stage of a node the same `slots`.
class Slots {
 public:
  static Slots& of_node(const std::string& node, int capacity);
  bool try_acquire();
  // Waits for a slot; false when `give_up` turns true first (checked every 50 ms).
  bool acquire(const std::function<bool()>& give_up);
  void release();
  int capacity() const { return capacity_; }
  int free() const;

 private:
  explicit Slots(int capacity) : capacity_(capacity), free_(capacity) {}
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int capacity_, free_;
};

// Records as one CSV file: origin, event_time (ISO 8601), then the scalar fields of the first
// record in their order; numbers printed the same way on every machine.
std::string records_csv(const std::vector<MessagePtr>& records);

int default_slots();  // the CPU count

// Options first_task_uid and task_uids (iexec/task_users.h), for a stage's sandbox.
std::vector<OptionSpec> task_user_options();

}  // namespace edgeflow::iexecop
