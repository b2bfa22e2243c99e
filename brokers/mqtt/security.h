// From the pipeline's (or a service's) MQTT security settings to a client's options: one place,
// so every MQTT connection of edgeflow reads tls: and credentials: the same way.
#pragma once

#include "brokers/mqtt/client.h"
#include "runtime/link_settings.h"

namespace edgeflow::mqtt {

// Sets o.tls from `s`, and o.username / o.password from its credentials file (read now, so a
// file changed on disk is read again at the next start). Throws MqttError naming the file.
void apply_security(const MqttSecurity& s, ClientOptions& o);

// Writes `text` to `path` with mode 0600: a password or credentials file. `exclusive`: the
// file must not exist yet (O_EXCL), else it is truncated. Throws MqttError naming the file.
void write_private_file(const std::string& path, const std::string& text, bool exclusive = false);

}  // namespace edgeflow::mqtt
