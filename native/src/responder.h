// What the ARP responder (IPv4 VIPs) and the ND responder (IPv6 VIPs) share: their
// counters, and Directed mode's split of requesters over nodes. A requester's slot is a
// hash of its address that every node computes alike (common/src/arp-slot.ts): a node
// answers only the slots the agent gives it, and remembers who asked so that a takeover
// can re-point them (announceTo) without waiting for their caches to expire.
#pragma once
#include <array>
#include <bitset>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ip_family.h"
#include "packet_socket.h"

namespace vipfarm {

struct ResponderStats {
  uint64_t requests = 0;       // who-has / Neighbour Solicitations for one of our VIPs
  uint64_t replies = 0;
  uint64_t gratuitous = 0;     // gratuitous ARP / unsolicited NA to all nodes
  uint64_t sendErrors = 0;
  uint64_t socketErrors = 0;   // e.g. ENETDOWN when the link went down
  uint64_t notMine = 0;        // Directed mode: requests of a slot another node answers
  uint64_t announcements = 0;  // unicast replies sent unasked to known requesters

  ResponderStats& operator+=(const ResponderStats& o);
};

constexpr uint32_t kArpSlots = 256;
/** Knuth's multiplicative hash of a 32-bit value, top 8 bits */
inline uint32_t arpSlotOf(uint32_t hostOrder) { return (hostOrder * 2654435761u) >> 24; }
/** IPv4: the host-order address; IPv6: its four 32-bit words XORed, then as IPv4 */
uint32_t neighbourSlotOf(const IpAddress& requester);

class Requesters {
 public:
  /** nullptr: answer everyone (Flooding); else only requesters of the listed slots */
  void setAnswerSlots(const std::vector<uint32_t>* slots);
  bool answers(const IpAddress& requester) const;
  /** bounded, so a flood of forged requests cannot grow it */
  void remember(const IpAddress& requester, const uint8_t mac[6]);
  /** f(requester, mac) for each remembered requester whose slot is listed */
  void forEachIn(const std::vector<uint32_t>& slots, const std::function<void(const IpAddress&, const uint8_t*)>& f) const;

 private:
  struct Entry {
    IpAddress ip;
    std::array<uint8_t, 6> mac;
  };
  bool filtered_ = false;
  std::bitset<kArpSlots> answer_;
  std::map<std::array<uint8_t, 17>, Entry> seen_;  // key: family byte + address
};

/** One family's neighbour responder on one interface: a packet socket the owner polls.
 *  ArpSocket and NdSocket fill in what their protocol says; the rest is here. */
class Responder {
 public:
  virtual ~Responder() = default;
  int fd() const { return sock_.fd(); }
  /** drains every queued frame, answering the requests for our VIPs */
  virtual void onReadable() = 0;
  /** gratuitous ARP / unsolicited NA for every VIP; throws on failure */
  virtual void sendGratuitous() = 0;
  /** unicast answers, unasked, to every remembered requester of these slots (every node
   *  sees every request: they are broadcast or multicast); returns the count */
  uint64_t announceTo(const std::vector<uint32_t>& slots);
  /** reads and clears the pending socket error, counting it */
  void clearError();
  void setAnswerSlots(const std::vector<uint32_t>* slots) { requesters_.setAnswerSlots(slots); }
  const ResponderStats& stats() const { return stats_; }

 protected:
  /** what names this responder in errors: "ARP responder on eth0" */
  Responder(const std::string& what, std::vector<IpAddress> vips, const uint8_t mac[6], PacketSocket sock);
  /** one answer for vip to a requester that did not just ask; false when it did not leave */
  virtual bool answerUnasked(const uint8_t* toMac, const IpAddress& to, const IpAddress& vip) = 0;

  std::string what_;
  std::vector<IpAddress> vips_;
  uint8_t mac_[6];  // the MAC we answer with: the virtual MAC, or (Directed) our own
  PacketSocket sock_;
  Requesters requesters_;
  ResponderStats stats_;
};

}  // namespace vipfarm
