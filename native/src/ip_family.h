// The address family as a parameter: everything that differs between IPv4 and IPv6 in
// the farm's kernel objects (nft header offsets and protocol numbers, address sizes,
// rtnetlink family, host prefix) sits in one IpFamily constant per family, and an
// IpAddress carries its family. The code that builds rules, binds addresses or answers
// neighbours is written once against this interface.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace vipfarm {

struct IpFamily {
  const char* name;        // "ipv4" / "ipv6", for messages
  int af;                  // AF_INET / AF_INET6 (rtnetlink, inet_pton)
  uint8_t nfproto;         // meta nfproto value: NFPROTO_IPV4 / NFPROTO_IPV6
  uint16_t ethertype;      // ETH_P_IP / ETH_P_IPV6 (meta protocol, netdev rules)
  uint32_t addrLen;        // 4 / 16
  uint32_t saddrOffset;    // source address in the network header: 12 / 8
  uint32_t daddrOffset;    // destination: 16 / 24
  uint8_t icmpProto;       // IPPROTO_ICMP / IPPROTO_ICMPV6
  uint8_t echoRequest;     // 8 / 128
  uint8_t hostPrefix;      // 32 / 128
  // ICMPv6 types the node's own neighbour discovery needs (RS, RA, NS, NA, redirect:
  // 133..137); an IPv4 farm has none (ARP is not IP). Zero, zero: none.
  uint8_t ndFirst, ndLast;
  const char* nftAddr;     // "ip" / "ip6": the nft payload protocol, for comments and docs
};

extern const IpFamily kIPv4;
extern const IpFamily kIPv6;

class IpAddress {
 public:
  /** "10.0.0.1" or "fd00::1"; throws std::invalid_argument for anything else */
  static IpAddress parse(const std::string& text);
  static IpAddress fromBytes(const IpFamily& family, const uint8_t* bytes);

  const IpFamily& family() const { return *family_; }
  bool isV6() const { return family_ == &kIPv6; }
  /** network byte order, family().addrLen bytes */
  const uint8_t* bytes() const { return bytes_.data(); }
  uint32_t len() const { return family_->addrLen; }
  std::string str() const;
  bool operator==(const IpAddress& o) const { return family_ == o.family_ && bytes_ == o.bytes_; }
  bool operator!=(const IpAddress& o) const { return !(*this == o); }

 private:
  IpAddress(const IpFamily* f, const std::array<uint8_t, 16>& b) : family_(f), bytes_(b) {}
  const IpFamily* family_;
  std::array<uint8_t, 16> bytes_;
};

}  // namespace vipfarm
