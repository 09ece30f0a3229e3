#include "rtnl_neigh.h"

#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cstring>
#include <ctime>

#include "nl_socket.h"
#include "os_error.h"

namespace vipfarm {

std::vector<Neighbour> neighbours(const std::string& ifname) {
  const std::string op = "read the neighbour table of " + ifname;
  unsigned idx = if_nametoindex(ifname.c_str());
  if (idx == 0) throwErrno(op);
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  auto* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETNEIGH;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = static_cast<uint32_t>(time(nullptr));
  auto* req = static_cast<struct ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct ndmsg)));
  req->ndm_family = AF_UNSPEC;
  req->ndm_ifindex = static_cast<int>(idx);
  constexpr uint16_t kResolved = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT;
  std::vector<Neighbour> out;
  NlSocket nl(NETLINK_ROUTE, op);
  nl.request(nlh, nlh->nlmsg_len, nlh->nlmsg_seq, [&](const struct nlmsghdr* m) {
    if (m->nlmsg_type != RTM_NEWNEIGH) return;
    auto* nd = static_cast<const struct ndmsg*>(mnl_nlmsg_get_payload(m));
    // old kernels ignore the ifindex filter of a dump
    if (nd->ndm_ifindex != static_cast<int>(idx) || (nd->ndm_state & kResolved) == 0) return;
    if (nd->ndm_family != AF_INET && nd->ndm_family != AF_INET6) return;
    const IpFamily& family = nd->ndm_family == AF_INET6 ? kIPv6 : kIPv4;
    const struct nlattr* tb[NDA_MAX + 1] = {};
    mnl_attr_parse(m, sizeof(struct ndmsg), [](const struct nlattr* a, void* data) -> int {
      uint16_t type = mnl_attr_get_type(a);
      if (type <= NDA_MAX) static_cast<const struct nlattr**>(data)[type] = a;
      return MNL_CB_OK;
    }, tb);
    const struct nlattr* dst = tb[NDA_DST];
    const struct nlattr* ll = tb[NDA_LLADDR];
    if (dst == nullptr || ll == nullptr || mnl_attr_get_payload_len(dst) != family.addrLen || mnl_attr_get_payload_len(ll) != 6) return;
    Neighbour n{IpAddress::fromBytes(family, static_cast<const uint8_t*>(mnl_attr_get_payload(dst))), {}};
    std::memcpy(n.mac.data(), mnl_attr_get_payload(ll), 6);
    out.push_back(n);
  }, op);
  return out;
}

}  // namespace vipfarm
