// AF_PACKET ARP socket of one interface: answers "who-has VIP" with the virtual MAC
// and sends gratuitous ARP. Frames leave with the interface's own MAC as Ethernet
// source, so switches never learn the virtual MAC and keep flooding it to every node.
// Non-blocking; the caller polls fd() (libuv in the binding) and calls onReadable().
#pragma once
#include <array>
#include <bitset>
#include <cstdint>
#include <unordered_map>
#include <string>
#include <vector>

namespace vipfarm {

struct ArpStats {
  uint64_t requests = 0;    // who-has for one of our VIPs
  uint64_t replies = 0;
  uint64_t gratuitous = 0;
  uint64_t sendErrors = 0;
  uint64_t socketErrors = 0;  // e.g. ENETDOWN when the link went down
  uint64_t notMine = 0;       // Directed mode: requests of a slot another node answers
  uint64_t announcements = 0; // unicast replies sent unasked to known requesters
};

/** Directed mode spreads requesters over nodes by slot; every node computes the same one.
 *  Knuth's multiplicative hash of the host-order IPv4, top 8 bits: common/src/arp-slot.ts. */
constexpr uint32_t kArpSlots = 256;
inline uint32_t arpSlotOf(uint32_t ipHostOrder) { return (ipHostOrder * 2654435761u) >> 24; }

class ArpSocket {
 public:
  /** vips in network byte order; throws OsError (ENODEV unknown iface, EPERM without NET_RAW) */
  ArpSocket(const std::string& iface, std::vector<uint32_t> vips, const uint8_t vmac[6]);
  ~ArpSocket();
  ArpSocket(const ArpSocket&) = delete;
  ArpSocket& operator=(const ArpSocket&) = delete;

  int fd() const { return fd_; }
  /** drains every queued frame, answering requests for our VIPs */
  void onReadable();
  /** one gratuitous ARP request per VIP; throws on failure */
  void sendGratuitous();
  /** Directed mode: answer only requesters whose slot is listed; nullptr: answer all */
  void setAnswerSlots(const std::vector<uint32_t>* slots);
  /** unicast "VIP is-at <mac>" to every requester seen (by anyone's request: they are
   *  broadcast) whose slot is listed; returns how many replies went out */
  uint64_t announceTo(const std::vector<uint32_t>& slots);
  /** reads and clears the pending socket error (SO_ERROR), counting it */
  void clearError();
  void close();
  const ArpStats& stats() const { return stats_; }

 private:
  bool send(const uint8_t* frame, size_t len);
  bool reply(const uint8_t* toMac, uint32_t toIp, uint32_t vip);

  std::string iface_;
  std::vector<uint32_t> vips_;
  uint8_t vmac_[6];
  uint8_t ifmac_[6];
  int ifindex_ = 0;
  int fd_ = -1;
  ArpStats stats_;
  bool filtered_ = false;
  std::bitset<kArpSlots> answer_;
  // requester IP (network order) -> its MAC; bounded so a flood of forged requests cannot grow it
  std::unordered_map<uint32_t, std::array<uint8_t, 6>> requesters_;
};

}  // namespace vipfarm
