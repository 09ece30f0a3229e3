#include "arp_socket.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <net/if_arp.h>

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
  uint8_t spa[4];
  uint8_t tha[6];
  uint8_t tpa[4];
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

ArpSocket::ArpSocket(const std::string& iface, std::vector<IpAddress> vips, const uint8_t mac[6])
    : Responder("ARP responder on " + iface, std::move(vips), mac, PacketSocket(iface, ETH_P_ARP, "ARP responder on " + iface)) {}

void ArpSocket::onReadable() {
  if (!sock_.open()) return;
  uint8_t buf[256];
  for (ssize_t n; (n = sock_.receive(buf, sizeof(buf))) >= 0;) {
    if (static_cast<size_t>(n) < sizeof(ArpFrame)) continue;
    ArpFrame req;
    std::memcpy(&req, buf, sizeof(req));
    if (ntohs(req.htype) != ARPHRD_ETHER || ntohs(req.ptype) != ETH_P_IP || req.hlen != 6 || req.plen != 4 ||
        ntohs(req.op) != ARPOP_REQUEST)
      continue;
    // A request whose sender is the target is someone's gratuitous ARP: not a question.
    if (std::memcmp(req.spa, req.tpa, 4) == 0) continue;
    const IpAddress target = IpAddress::fromBytes(kIPv4, req.tpa);
    if (std::find(vips_.begin(), vips_.end(), target) == vips_.end()) continue;
    ++stats_.requests;
    const IpAddress sender = IpAddress::fromBytes(kIPv4, req.spa);
    const uint8_t zero[4] = {0, 0, 0, 0};
    if (std::memcmp(req.spa, zero, 4) != 0) requesters_.remember(sender, req.sha);
    if (!requesters_.answers(sender)) {
      ++stats_.notMine;
      continue;
    }
    if (reply(req.sha, req.spa, req.tpa)) ++stats_.replies;
  }
}

bool ArpSocket::reply(const uint8_t* toMac, const uint8_t* toIp, const uint8_t* vip) {
  ArpFrame rep{};
  std::memcpy(rep.dst, toMac, 6);
  std::memcpy(rep.src, sock_.mac(), 6);
  fillHeader(rep, ARPOP_REPLY);
  std::memcpy(rep.sha, mac_, 6);
  std::memcpy(rep.spa, vip, 4);
  std::memcpy(rep.tha, toMac, 6);
  std::memcpy(rep.tpa, toIp, 4);
  if (sock_.send(reinterpret_cast<const uint8_t*>(&rep), sizeof(rep))) return true;
  ++stats_.sendErrors;
  return false;
}

void ArpSocket::sendGratuitous() {
  if (!sock_.open()) throw OsError("gratuitous ARP of the " + what_, EBADF);
  for (const IpAddress& vip : vips_) {
    ArpFrame g{};
    std::memset(g.dst, 0xff, 6);
    std::memcpy(g.src, sock_.mac(), 6);
    fillHeader(g, ARPOP_REQUEST);
    std::memcpy(g.sha, mac_, 6);
    std::memcpy(g.spa, vip.bytes(), 4);
    std::memcpy(g.tpa, vip.bytes(), 4);
    if (!sock_.send(reinterpret_cast<const uint8_t*>(&g), sizeof(g))) {
      ++stats_.sendErrors;
      throwErrno("gratuitous ARP of the " + what_);
    }
    ++stats_.gratuitous;
  }
}

}  // namespace vipfarm
