// Addresses of either family over rtnetlink (what `ip addr add/del` does), without a shell-out.
#pragma once
#include <cstdint>
#include <string>

#include "ip_family.h"

namespace vipfarm {

/** add (or keep) addr/prefix on ifname. Idempotent. IPv6 addresses are added with
 *  IFA_F_NODAD: usable at once (no tentative second), and never a DAD probe on the wire. */
void addrAdd(const std::string& ifname, const IpAddress& addr, uint8_t prefix);
/** delete addr/prefix from ifname; no error when it is not there. */
void addrDel(const std::string& ifname, const IpAddress& addr, uint8_t prefix);

}  // namespace vipfarm
