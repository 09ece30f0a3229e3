#include "frame_socket.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>

#include "os_error.h"

namespace vipfarm {

FrameSocket::FrameSocket(const std::string& iface, uint16_t ethertype, const uint8_t dst[6])
    : iface_(iface), sock_(iface, ethertype, "L2 heartbeat socket on " + iface, {}, true) {
  std::memcpy(dst_, dst, 6);
  std::memcpy(tx_, dst_, 6);
  std::memcpy(tx_ + 6, sock_.mac(), 6);
  uint16_t et = htons(ethertype);
  std::memcpy(tx_ + 12, &et, 2);
}

bool FrameSocket::send(const uint8_t* payload, size_t len) {
  if (len > kMaxPayload) throw OsError("L2 heartbeat on " + iface_ + ": " + std::to_string(len) + " bytes", EMSGSIZE);
  if (!sock_.open()) throw OsError("L2 heartbeat on " + iface_, EBADF);
  std::memcpy(tx_ + kHeader, payload, len);
  if (!sock_.send(tx_, kHeader + len)) {
    ++stats_.sendErrors;
    return false;
  }
  ++stats_.sent;
  return true;
}

void FrameSocket::drain(const std::function<void(const uint8_t*, size_t, const uint8_t*, int64_t)>& onFrame) {
  if (!sock_.open()) return;
  int64_t rxNs = 0;
  for (ssize_t n; (n = sock_.receive(rx_, sizeof(rx_), &rxNs)) >= 0;) {
    if (static_cast<size_t>(n) <= kHeader) continue;
    // Flooded frames to other farms' virtual MACs reach this socket too: only ours count.
    if (std::memcmp(rx_, dst_, 6) != 0) continue;
    ++stats_.received;
    onFrame(rx_ + kHeader, static_cast<size_t>(n) - kHeader, rx_ + 6, rxNs);
  }
}

void FrameSocket::clearError() {
  if (!sock_.open()) return;
  sock_.clearError();
  ++stats_.socketErrors;
}

}  // namespace vipfarm
