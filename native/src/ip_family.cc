#include "ip_family.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <netinet/in.h>

#include <cstring>
#include <stdexcept>

namespace vipfarm {

const IpFamily kIPv4{"ipv4", AF_INET, NFPROTO_IPV4, ETH_P_IP, 4, 12, 16, IPPROTO_ICMP, 8, 32, 0, 0, "ip"};
const IpFamily kIPv6{"ipv6", AF_INET6, NFPROTO_IPV6, ETH_P_IPV6, 16, 8, 24, IPPROTO_ICMPV6, 128, 128, 133, 137, "ip6"};

IpAddress IpAddress::parse(const std::string& text) {
  std::array<uint8_t, 16> b{};
  if (inet_pton(AF_INET, text.c_str(), b.data()) == 1) return IpAddress(&kIPv4, b);
  if (inet_pton(AF_INET6, text.c_str(), b.data()) == 1) return IpAddress(&kIPv6, b);
  throw std::invalid_argument("invalid IP address " + text);
}

IpAddress IpAddress::fromBytes(const IpFamily& family, const uint8_t* bytes) {
  std::array<uint8_t, 16> b{};
  std::memcpy(b.data(), bytes, family.addrLen);
  return IpAddress(&family, b);
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family_->af, bytes_.data(), buf, sizeof(buf));
  return buf;
}

}  // namespace vipfarm
