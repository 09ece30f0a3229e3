#include "packet_socket.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
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
                           const std::vector<sock_filter>& filter, bool timestamps) {
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
  int on = 1;
  if (timestamps && setsockopt(fd_.get(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) < 0) throwErrno(op + ": SO_TIMESTAMPNS");
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

ssize_t PacketSocket::receive(uint8_t* buf, size_t len, int64_t* rxRealtimeNs) {
  for (;;) {
    struct sockaddr_ll from {};
    struct iovec iov {buf, len};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct timespec))];
    struct msghdr msg {};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_.get(), &msg, 0);
    if (n < 0) return -1;  // EAGAIN: drained; other errors: retry on the next wakeup
    if (from.sll_pkttype == PACKET_OUTGOING) continue;
    if (rxRealtimeNs != nullptr) {
      *rxRealtimeNs = 0;
      for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
        struct timespec ts {};
        std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
        *rxRealtimeNs = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
      }
    }
    return n;
  }
}

void PacketSocket::clearError() {
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
}

}  // namespace vipfarm
