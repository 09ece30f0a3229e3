#include "packet_socket.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "os_error.h"

namespace vipfarm {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void UniqueFd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void readIfaceMac(const std::string& iface, const std::string& op, uint8_t mac[6], int fd) {
  UniqueFd own;
  if (fd < 0) {
    own = UniqueFd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (own.get() < 0) throwErrno(op + ": socket for SIOCGIFHWADDR");
    fd = own.get();
  }
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) throwErrno(op + ": read MAC address of " + iface);
  std::memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
}

PacketSocket::PacketSocket(const std::string& iface, uint16_t ethertype, const std::string& op,
                           const std::vector<sock_filter>& filter) {
  ifindex_ = static_cast<int>(if_nametoindex(iface.c_str()));
  if (ifindex_ == 0) throwErrno(op + ": interface");
  // protocol 0: nothing is queued until bind() names the EtherType, after the filter
  fd_ = UniqueFd(socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd_.get() < 0) throwErrno(op + ": packet socket");
  readIfaceMac(iface, op, mac_, fd_.get());
  if (!filter.empty()) {
    struct sock_fprog prog {};
    prog.len = static_cast<unsigned short>(filter.size());
    prog.filter = const_cast<sock_filter*>(filter.data());
    if (setsockopt(fd_.get(), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) throwErrno(op + ": attach filter");
  }
  struct sockaddr_ll sll {};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ethertype);
  sll.sll_ifindex = ifindex_;
  if (bind(fd_.get(), reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll)) < 0) throwErrno(op + ": bind");
}

bool PacketSocket::send(const uint8_t* frame, size_t len) {
  struct sockaddr_ll to {};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex_;
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, frame, 6);
  return sendto(fd_.get(), frame, len, 0, reinterpret_cast<struct sockaddr*>(&to), sizeof(to)) >= 0;
}

ssize_t PacketSocket::receive(uint8_t* buf, size_t len) {
  for (;;) {
    struct sockaddr_ll from {};
    socklen_t fromlen = sizeof(from);
    ssize_t n = recvfrom(fd_.get(), buf, len, 0, reinterpret_cast<struct sockaddr*>(&from), &fromlen);
    if (n < 0) return -1;  // EAGAIN: drained; other errors: retry on the next wakeup
    if (from.sll_pkttype != PACKET_OUTGOING) return n;
  }
}

void PacketSocket::clearError() {
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
}

}  // namespace vipfarm
