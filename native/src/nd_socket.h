// Neighbour Discovery responder of one interface for the IPv6 VIPs, the IPv6 counterpart
// of ArpSocket: answers Neighbour Solicitations whose target is a VIP with a solicited
// Neighbour Advertisement carrying the virtual MAC (or, Directed, this node's own MAC) as
// target link-layer address, and sends unsolicited advertisements to all nodes (ff02::1).
// Frames leave with the interface's own MAC as Ethernet source (a switch must never learn
// the virtual MAC). The socket receives only Neighbour Solicitations (a BPF filter), and
// holds the VIPs' solicited-node multicast groups on the interface: the NIC's filter lets
// the solicitations in and an MLD-snooping switch sends them our way. The kernel sees
// them too and, the VIP being on lo, does not answer (see vip-binding.ts).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "packet_socket.h"
#include "responder.h"

namespace vipfarm {

class NdSocket : public Responder {
 public:
  /** IPv6 vips; throws OsError (ENODEV unknown iface, EPERM without NET_RAW, EADDRNOTAVAIL
   *  and the like when the interface has IPv6 disabled) */
  NdSocket(const std::string& iface, std::vector<IpAddress> vips, const uint8_t mac[6]);

  void onReadable() override;
  /** one unsolicited NA (override, not solicited) per VIP to all nodes */
  void sendGratuitous() override;

 private:
  /** unasked: an unsolicited NA, unicast to a remembered soliciter */
  bool answerUnasked(const uint8_t* toMac, const IpAddress& to, const IpAddress& vip) override {
    return advertise(toMac, to.bytes(), vip, false);
  }
  /** one NA for vip to (toIp, toMac); solicited sets the S flag */
  bool advertise(const uint8_t* toMac, const uint8_t* toIp, const IpAddress& vip, bool solicited);

  UniqueFd groups_;  // an IPv6 socket holding the solicited-node groups (left when closed)
};

}  // namespace vipfarm
