// ARP responder of one interface for the IPv4 VIPs: answers "who-has VIP" with the
// virtual MAC (or, Directed, this node's own MAC) and sends gratuitous ARP. Frames leave
// with the interface's own MAC as Ethernet source, so switches never learn the virtual
// MAC and keep flooding it to every node.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "packet_socket.h"
#include "responder.h"

namespace vipfarm {

class ArpSocket : public Responder {
 public:
  /** IPv4 vips; throws OsError (ENODEV unknown iface, EPERM without NET_RAW) */
  ArpSocket(const std::string& iface, std::vector<IpAddress> vips, const uint8_t mac[6]);

  void onReadable() override;
  /** one gratuitous ARP request per VIP, broadcast */
  void sendGratuitous() override;

 private:
  /** unasked: a unicast "VIP is-at <mac>" */
  bool answerUnasked(const uint8_t* toMac, const IpAddress& to, const IpAddress& vip) override {
    return reply(toMac, to.bytes(), vip.bytes());
  }
  bool reply(const uint8_t* toMac, const uint8_t* toIp, const uint8_t* vip);
};

}  // namespace vipfarm
