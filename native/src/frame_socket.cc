#include "frame_socket.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "os_error.h"

namespace vipfarm {

FrameSocket::FrameSocket(const std::string& iface, uint16_t ethertype, const uint8_t dst[6])
    : iface_(iface), ethertype_(ethertype) {
  std::memcpy(dst_, dst, 6);
  std::string op = "L2 heartbeat socket on " + iface;
  int ifindex = static_cast<int>(if_nametoindex(iface.c_str()));
  if (ifindex == 0) throwErrno(op + ": interface");
  fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ethertype_));
  if (fd_ < 0) throwErrno(op + ": packet socket");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd_, SIOCGIFHWADDR, &ifr) < 0) {
    int err = errno;
    close();
    throw OsError(op + ": read MAC address", err);
  }
  struct sockaddr_ll sll {};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ethertype_);
  sll.sll_ifindex = ifindex;
  if (bind(fd_, reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll)) < 0) {
    int err = errno;
    close();
    throw OsError(op + ": bind", err);
  }
  std::memcpy(tx_, dst_, 6);
  std::memcpy(tx_ + 6, ifr.ifr_hwaddr.sa_data, 6);
  uint16_t et = htons(ethertype_);
  std::memcpy(tx_ + 12, &et, 2);
  to_.sll_family = AF_PACKET;
  to_.sll_ifindex = ifindex;
  to_.sll_halen = 6;
  std::memcpy(to_.sll_addr, dst_, 6);
}

FrameSocket::~FrameSocket() { close(); }

void FrameSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool FrameSocket::send(const uint8_t* payload, size_t len) {
  if (len > kMaxPayload) throw OsError("L2 heartbeat on " + iface_ + ": " + std::to_string(len) + " bytes", EMSGSIZE);
  if (fd_ < 0) throw OsError("L2 heartbeat on " + iface_, EBADF);
  std::memcpy(tx_ + kHeader, payload, len);
  if (sendto(fd_, tx_, kHeader + len, 0, reinterpret_cast<const struct sockaddr*>(&to_), sizeof(to_)) < 0) {
    ++stats_.sendErrors;
    return false;
  }
  ++stats_.sent;
  return true;
}

void FrameSocket::drain(const std::function<void(const uint8_t*, size_t, const uint8_t*)>& onFrame) {
  while (fd_ >= 0) {
    struct sockaddr_ll from {};
    socklen_t fromlen = sizeof(from);
    ssize_t n = recvfrom(fd_, rx_, sizeof(rx_), 0, reinterpret_cast<struct sockaddr*>(&from), &fromlen);
    if (n < 0) return;  // EAGAIN: drained; other errors: retry on the next wakeup
    if (from.sll_pkttype == PACKET_OUTGOING || static_cast<size_t>(n) <= kHeader) continue;
    // Flooded frames to other farms' virtual MACs reach this socket too: only ours count.
    if (std::memcmp(rx_, dst_, 6) != 0) continue;
    ++stats_.received;
    onFrame(rx_ + kHeader, static_cast<size_t>(n) - kHeader, rx_ + 6);
  }
}

void FrameSocket::clearError() {
  if (fd_ < 0) return;
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  ++stats_.socketErrors;
}

}  // namespace vipfarm
