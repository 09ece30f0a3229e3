#include "nl_socket.h"

#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <ctime>
#include <memory>
#include <vector>

#include "os_error.h"

namespace vipfarm {

NlSocket::NlSocket(int bus, const std::string& op) {
  nl_ = mnl_socket_open(bus);
  if (nl_ == nullptr) throwErrno(op + ": netlink socket");
  if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(nl_);
    throw OsError(op + ": netlink bind", err);
  }
  portid_ = mnl_socket_get_portid(nl_);
  seq_ = static_cast<uint32_t>(time(nullptr)) << 8;
  // Large batches (4096 set elements) are one sendmsg; dumps of big sets one recv burst.
  int size = 4 << 20;
  setsockopt(mnl_socket_get_fd(nl_), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  setsockopt(mnl_socket_get_fd(nl_), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  int one = 1;
  // extended ACKs would be nice but are not needed; keep error messages short
  setsockopt(mnl_socket_get_fd(nl_), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
}

NlSocket::~NlSocket() { mnl_socket_close(nl_); }

void NlSocket::drain() {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  while (recv(mnl_socket_get_fd(nl_), buf, sizeof(buf), MSG_DONTWAIT) > 0) {
  }
}

NlSocket& nftSocket(const std::string& op) {
  static std::unique_ptr<NlSocket> sock;
  if (!sock) sock = std::make_unique<NlSocket>(NETLINK_NETFILTER, op);
  return *sock;
}

int NlSocket::sendCollectError(const void* buf, size_t len, uint32_t* errSeq, const std::string& op) {
  drain();
  if (mnl_socket_sendto(nl_, buf, len) < 0) throwErrno(op + ": netlink send");
  std::vector<char> rbuf(MNL_SOCKET_BUFFER_SIZE * 4);
  int first = 0;
  for (;;) {
    ssize_t n = recv(mnl_socket_get_fd(nl_), rbuf.data(), rbuf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      throwErrno(op + ": netlink receive");
    }
    int remaining = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const struct nlmsghdr*>(rbuf.data()); mnl_nlmsg_ok(nlh, remaining);
         nlh = mnl_nlmsg_next(nlh, &remaining)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;
      auto* e = static_cast<const struct nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      if (e->error != 0 && first == 0) {
        first = -e->error;
        *errSeq = nlh->nlmsg_seq;
      }
    }
  }
  return first;
}

void NlSocket::request(const void* buf, size_t len, uint32_t seq,
                       const std::function<void(const struct nlmsghdr*)>& cb, const std::string& op) {
  drain();
  if (mnl_socket_sendto(nl_, buf, len) < 0) throwErrno(op + ": netlink send");
  std::vector<char> rbuf(MNL_SOCKET_BUFFER_SIZE * 4);
  struct Ctx {
    const std::function<void(const struct nlmsghdr*)>* cb;
  } ctx{&cb};
  auto trampoline = [](const struct nlmsghdr* nlh, void* data) -> int {
    (*static_cast<Ctx*>(data)->cb)(nlh);
    return MNL_CB_OK;
  };
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl_, rbuf.data(), rbuf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throwErrno(op + ": netlink receive");
    }
    int ret = mnl_cb_run(rbuf.data(), n, seq, portid_, trampoline, &ctx);
    if (ret < 0) throwErrno(op);
    if (ret == MNL_CB_STOP) return;
  }
}

}  // namespace vipfarm
