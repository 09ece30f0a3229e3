#include "nd_socket.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip6.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "os_error.h"

namespace vipfarm {

namespace {

constexpr size_t kEth = 14, kIp6 = 40;
constexpr size_t kNsMin = 24;           // type, code, checksum, reserved, target
constexpr uint8_t kHopLimit = 255;      // RFC 4861 7.1.1: anything else was forwarded, drop it
constexpr uint8_t kOptSourceLL = 1, kOptTargetLL = 2;
const uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const uint8_t kAllNodesMac[6] = {0x33, 0x33, 0, 0, 0, 1};

// ether proto 0x86dd, next header ICMPv6, ICMPv6 type 135 (Neighbour Solicitation)
std::vector<sock_filter> solicitationFilter() {
  return {
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 5),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, kEth + 6),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMPV6, 0, 3),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, kEth + kIp6),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ND_NEIGHBOR_SOLICIT, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
}

uint16_t sum16(const uint8_t* p, size_t len, uint32_t acc) {
  for (size_t i = 0; i + 1 < len; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (len & 1) acc += static_cast<uint32_t>(p[len - 1] << 8);
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}

// RFC 4443 2.3: over the pseudo-header (source, destination, length, next header) and the message
uint16_t icmp6Checksum(const uint8_t* src, const uint8_t* dst, const uint8_t* msg, size_t len) {
  uint32_t acc = sum16(src, 16, 0);
  acc = sum16(dst, 16, acc);
  acc += static_cast<uint32_t>(len >> 16) + static_cast<uint32_t>(len & 0xffff) + IPPROTO_ICMPV6;
  return static_cast<uint16_t>(~sum16(msg, len, acc));
}

bool isUnspecified(const uint8_t* a) { return std::all_of(a, a + 16, [](uint8_t b) { return b == 0; }); }

/** the solicited-node group of an address: ff02::1:ffXX:XXXX (RFC 4291 2.7.1) */
struct in6_addr solicitedNode(const IpAddress& a) {
  struct in6_addr g {};
  g.s6_addr[0] = 0xff;
  g.s6_addr[1] = 0x02;
  g.s6_addr[11] = 0x01;
  g.s6_addr[12] = 0xff;
  std::memcpy(g.s6_addr + 13, a.bytes() + 13, 3);
  return g;
}

}  // namespace

NdSocket::NdSocket(const std::string& iface, std::vector<IpAddress> vips, const uint8_t mac[6])
    : Responder("ND responder on " + iface, std::move(vips), mac,
                PacketSocket(iface, ETH_P_IPV6, "ND responder on " + iface, solicitationFilter())) {
  groups_ = UniqueFd(socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (groups_.get() < 0) throwErrno("ND responder on " + iface + ": IPv6 socket for the solicited-node groups");
  for (const IpAddress& vip : vips_) {
    struct ipv6_mreq m {};
    m.ipv6mr_multiaddr = solicitedNode(vip);
    m.ipv6mr_interface = static_cast<unsigned>(sock_.ifindex());
    // two VIPs may share a group (same last 24 bits): joined once is enough
    if (setsockopt(groups_.get(), IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof(m)) < 0 && errno != EADDRINUSE)
      throwErrno("ND responder on " + iface + ": join the solicited-node group of " + vip.str());
  }
}

void NdSocket::onReadable() {
  if (!sock_.open()) return;
  uint8_t buf[1514];
  for (ssize_t n; (n = sock_.receive(buf, sizeof(buf))) >= 0;) {
    const size_t len = static_cast<size_t>(n);
    if (len < kEth + kIp6 + kNsMin) continue;
    const uint8_t* ip6 = buf + kEth;
    const uint8_t* ns = ip6 + kIp6;
    const size_t icmpLen = std::min<size_t>(len - kEth - kIp6, static_cast<size_t>(ip6[4] << 8 | ip6[5]));
    if ((ip6[0] >> 4) != 6 || ip6[6] != IPPROTO_ICMPV6 || ip6[7] != kHopLimit || icmpLen < kNsMin) continue;
    if (ns[0] != ND_NEIGHBOR_SOLICIT || ns[1] != 0 || icmp6Checksum(ip6 + 8, ip6 + 24, ns, icmpLen) != 0) continue;
    const IpAddress target = IpAddress::fromBytes(kIPv6, ns + 8);
    if (std::find(vips_.begin(), vips_.end(), target) == vips_.end()) continue;
    // the soliciter's MAC: its source link-layer option, else the frame's source
    const uint8_t* mac = buf + 6;
    for (size_t off = kNsMin; off + 8 <= icmpLen && ns[off + 1] != 0; off += ns[off + 1] * 8u)
      if (ns[off] == kOptSourceLL) mac = ns + off + 2;
    ++stats_.requests;
    const uint8_t* src = ip6 + 8;
    const IpAddress soliciter = IpAddress::fromBytes(kIPv6, src);
    // from :: it is someone's duplicate address detection: defended to all nodes (RFC 4861 7.2.4)
    const bool dad = isUnspecified(src);
    if (!dad) requesters_.remember(soliciter, mac);
    if (!requesters_.answers(soliciter)) {
      ++stats_.notMine;
      continue;
    }
    if (dad ? advertise(kAllNodesMac, kAllNodes, target, false) : advertise(mac, src, target, true)) ++stats_.replies;
  }
}

bool NdSocket::advertise(const uint8_t* toMac, const uint8_t* toIp, const IpAddress& vip, bool solicited) {
  constexpr size_t kNa = 24 + 8;  // header + target, then the target link-layer option
  uint8_t f[kEth + kIp6 + kNa] = {};
  std::memcpy(f, toMac, 6);
  std::memcpy(f + 6, sock_.mac(), 6);
  f[12] = ETH_P_IPV6 >> 8;
  f[13] = ETH_P_IPV6 & 0xff;
  uint8_t* ip6 = f + kEth;
  ip6[0] = 0x60;
  ip6[4] = 0;
  ip6[5] = kNa;
  ip6[6] = IPPROTO_ICMPV6;
  ip6[7] = kHopLimit;
  std::memcpy(ip6 + 8, vip.bytes(), 16);
  std::memcpy(ip6 + 24, toIp, 16);
  uint8_t* na = ip6 + kIp6;
  na[0] = ND_NEIGHBOR_ADVERT;
  // not a router; solicited only in answer to a unicast-addressed soliciter; override: the
  // answer replaces whatever MAC the client had (a dead node's, in Directed mode)
  na[4] = static_cast<uint8_t>((solicited ? 0x40 : 0) | 0x20);
  std::memcpy(na + 8, vip.bytes(), 16);
  na[24] = kOptTargetLL;
  na[25] = 1;
  std::memcpy(na + 26, mac_, 6);
  uint16_t csum = icmp6Checksum(ip6 + 8, ip6 + 24, na, kNa);
  na[2] = static_cast<uint8_t>(csum >> 8);
  na[3] = static_cast<uint8_t>(csum & 0xff);
  if (sock_.send(f, sizeof(f))) return true;
  ++stats_.sendErrors;
  return false;
}

void NdSocket::sendGratuitous() {
  if (!sock_.open()) throw OsError("unsolicited neighbour advertisement of the " + what_, EBADF);
  for (const IpAddress& vip : vips_) {
    if (!advertise(kAllNodesMac, kAllNodes, vip, false)) throwErrno("unsolicited neighbour advertisement for " + vip.str() + " of the " + what_);
    ++stats_.gratuitous;
  }
}

}  // namespace vipfarm
