// The kernel's neighbour table (ARP and NDP alike) over rtnetlink, what `ip neigh show
// dev IF` prints: Directed mode forwards to the peers' MACs and learns them here.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ip_family.h"

namespace vipfarm {

struct Neighbour {
  IpAddress ip;
  std::array<uint8_t, 6> mac;
};

/** resolved entries (reachable, stale, delay, probe, permanent) of ifname, both families */
std::vector<Neighbour> neighbours(const std::string& ifname);

}  // namespace vipfarm
