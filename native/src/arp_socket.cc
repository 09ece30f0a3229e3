#include "arp_socket.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "os_error.h"

namespace vipfarm {

namespace {

#pragma pack(push, 1)
struct ArpFrame {
  uint8_t dst[6];
  uint8_t src[6];
  uint16_t ethertype;
  uint16_t htype;
  uint16_t ptype;
  uint8_t hlen;
  uint8_t plen;
  uint16_t op;
  uint8_t sha[6];
  uint32_t spa;
  uint8_t tha[6];
  uint32_t tpa;
};
#pragma pack(pop)
static_assert(sizeof(ArpFrame) == 42, "ARP over Ethernet is 42 bytes");

void fillHeader(ArpFrame& f, uint16_t op) {
  f.ethertype = htons(ETH_P_ARP);
  f.htype = htons(ARPHRD_ETHER);
  f.ptype = htons(ETH_P_IP);
  f.hlen = 6;
  f.plen = 4;
  f.op = htons(op);
}

}  // namespace

ArpSocket::ArpSocket(const std::string& iface, std::vector<uint32_t> vips, const uint8_t vmac[6])
    : iface_(iface), vips_(std::move(vips)) {
  std::memcpy(vmac_, vmac, 6);
  std::string op = "ARP responder on " + iface;
  ifindex_ = static_cast<int>(if_nametoindex(iface.c_str()));
  if (ifindex_ == 0) throwErrno(op + ": interface");
  fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP));
  if (fd_ < 0) throwErrno(op + ": packet socket");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd_, SIOCGIFHWADDR, &ifr) < 0) {
    int err = errno;
    close();
    throw OsError(op + ": read MAC address", err);
  }
  std::memcpy(ifmac_, ifr.ifr_hwaddr.sa_data, 6);
  struct sockaddr_ll sll {};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ARP);
  sll.sll_ifindex = ifindex_;
  if (bind(fd_, reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll)) < 0) {
    int err = errno;
    close();
    throw OsError(op + ": bind", err);
  }
}

ArpSocket::~ArpSocket() { close(); }

void ArpSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool ArpSocket::send(const uint8_t* frame, size_t len) {
  struct sockaddr_ll to {};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex_;
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, frame, 6);
  if (sendto(fd_, frame, len, 0, reinterpret_cast<struct sockaddr*>(&to), sizeof(to)) < 0) {
    ++stats_.sendErrors;
    return false;
  }
  return true;
}

void ArpSocket::onReadable() {
  if (fd_ < 0) return;
  uint8_t buf[256];
  for (;;) {
    struct sockaddr_ll from {};
    socklen_t fromlen = sizeof(from);
    ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<struct sockaddr*>(&from), &fromlen);
    if (n < 0) return;  // EAGAIN: drained; other errors: retry on the next wakeup
    if (from.sll_pkttype == PACKET_OUTGOING || static_cast<size_t>(n) < sizeof(ArpFrame)) continue;
    ArpFrame req;
    std::memcpy(&req, buf, sizeof(req));
    if (ntohs(req.htype) != ARPHRD_ETHER || ntohs(req.ptype) != ETH_P_IP || req.hlen != 6 || req.plen != 4 ||
        ntohs(req.op) != ARPOP_REQUEST)
      continue;
    // A request whose sender is the target is someone's gratuitous ARP: not a question.
    if (req.spa == req.tpa) continue;
    if (std::find(vips_.begin(), vips_.end(), req.tpa) == vips_.end()) continue;
    ++stats_.requests;
    constexpr size_t kMaxRequesters = 65536;
    if (req.spa != 0 && (requesters_.size() < kMaxRequesters || requesters_.count(req.spa) != 0)) {
      std::array<uint8_t, 6> mac;
      std::memcpy(mac.data(), req.sha, 6);
      requesters_[req.spa] = mac;
    }
    if (filtered_ && !answer_.test(arpSlotOf(ntohl(req.spa)))) {
      ++stats_.notMine;
      continue;
    }
    if (reply(req.sha, req.spa, req.tpa)) ++stats_.replies;
  }
}

bool ArpSocket::reply(const uint8_t* toMac, uint32_t toIp, uint32_t vip) {
  ArpFrame rep{};
  std::memcpy(rep.dst, toMac, 6);
  std::memcpy(rep.src, ifmac_, 6);
  fillHeader(rep, ARPOP_REPLY);
  std::memcpy(rep.sha, vmac_, 6);
  rep.spa = vip;
  std::memcpy(rep.tha, toMac, 6);
  rep.tpa = toIp;
  return send(reinterpret_cast<const uint8_t*>(&rep), sizeof(rep));
}

void ArpSocket::setAnswerSlots(const std::vector<uint32_t>* slots) {
  filtered_ = slots != nullptr;
  answer_.reset();
  if (slots != nullptr)
    for (uint32_t s : *slots) answer_.set(s % kArpSlots);
}

uint64_t ArpSocket::announceTo(const std::vector<uint32_t>& slots) {
  if (fd_ < 0) throw OsError("ARP announcement on " + iface_, EBADF);
  std::bitset<kArpSlots> want;
  for (uint32_t s : slots) want.set(s % kArpSlots);
  uint64_t sent = 0;
  for (const auto& [ip, mac] : requesters_) {
    if (!want.test(arpSlotOf(ntohl(ip)))) continue;
    for (uint32_t vip : vips_) {
      if (reply(mac.data(), ip, vip)) ++sent;
    }
  }
  stats_.announcements += sent;
  return sent;
}

void ArpSocket::clearError() {
  if (fd_ < 0) return;
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  ++stats_.socketErrors;
}

void ArpSocket::sendGratuitous() {
  if (fd_ < 0) throw OsError("gratuitous ARP on " + iface_, EBADF);
  for (uint32_t vip : vips_) {
    ArpFrame g{};
    std::memset(g.dst, 0xff, 6);
    std::memcpy(g.src, ifmac_, 6);
    fillHeader(g, ARPOP_REQUEST);
    std::memcpy(g.sha, vmac_, 6);
    g.spa = vip;
    g.tpa = vip;
    if (!send(reinterpret_cast<const uint8_t*>(&g), sizeof(g))) throwErrno("gratuitous ARP on " + iface_);
    ++stats_.gratuitous;
  }
}

}  // namespace vipfarm
