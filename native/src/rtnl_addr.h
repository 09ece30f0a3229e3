// IPv4 addresses over rtnetlink (what `ip addr add/del` does), without a shell-out.
#pragma once
#include <cstdint>
#include <string>

namespace vipfarm {

/** add (or keep) addr/prefix on ifname; addr in network byte order. Idempotent. */
void addrAdd(const std::string& ifname, uint32_t addr, uint8_t prefix);
/** delete addr/prefix from ifname; no error when it is not there. */
void addrDel(const std::string& ifname, uint32_t addr, uint8_t prefix);

}  // namespace vipfarm
