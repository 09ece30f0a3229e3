#include "rtnl_addr.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <cerrno>
#include <ctime>
#include <vector>

#include "nl_socket.h"
#include "os_error.h"

namespace vipfarm {

namespace {

std::string describe(const char* verb, const std::string& ifname, const IpAddress& addr, uint8_t prefix) {
  return std::string(verb) + " address " + addr.str() + "/" + std::to_string(prefix) + " on " + ifname;
}

void addrRequest(uint16_t type, uint16_t flags, const std::string& ifname, const IpAddress& addr, uint8_t prefix,
                 const std::string& op) {
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) throwErrno(op);
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  auto* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  nlh->nlmsg_seq = static_cast<uint32_t>(time(nullptr));
  auto* ifa = static_cast<struct ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifaddrmsg)));
  ifa->ifa_family = static_cast<uint8_t>(addr.family().af);
  ifa->ifa_prefixlen = prefix;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = idx;
  if (addr.isV6() && type == RTM_NEWADDR) {
    ifa->ifa_flags = IFA_F_NODAD;
    mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
  }
  // IPv6 takes the address in IFA_ADDRESS alone (IFA_LOCAL would make it a peer address)
  if (!addr.isV6()) mnl_attr_put(nlh, IFA_LOCAL, addr.len(), addr.bytes());
  mnl_attr_put(nlh, IFA_ADDRESS, addr.len(), addr.bytes());
  NlSocket nl(NETLINK_ROUTE, op);
  nl.request(nlh, nlh->nlmsg_len, nlh->nlmsg_seq, [](const struct nlmsghdr*) {}, op);
}

}  // namespace

void addrAdd(const std::string& ifname, const IpAddress& addr, uint8_t prefix) {
  // NLM_F_REPLACE: adding an address that is already there succeeds
  addrRequest(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifname, addr, prefix, describe("add", ifname, addr, prefix));
}

void addrDel(const std::string& ifname, const IpAddress& addr, uint8_t prefix) {
  try {
    addrRequest(RTM_DELADDR, 0, ifname, addr, prefix, describe("delete", ifname, addr, prefix));
  } catch (const OsError& e) {
    if (e.err() != EADDRNOTAVAIL) throw;
  }
}

}  // namespace vipfarm
