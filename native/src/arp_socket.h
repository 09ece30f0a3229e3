// AF_PACKET ARP socket of one interface: answers "who-has VIP" with the virtual MAC
// and sends gratuitous ARP. Frames leave with the interface's own MAC as Ethernet
// source, so switches never learn the virtual MAC and keep flooding it to every node.
// Non-blocking; the caller polls fd() (libuv in the binding) and calls onReadable().
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vipfarm {

struct ArpStats {
  uint64_t requests = 0;    // who-has for one of our VIPs
  uint64_t replies = 0;
  uint64_t gratuitous = 0;
  uint64_t sendErrors = 0;
  uint64_t socketErrors = 0;  // e.g. ENETDOWN when the link went down
};

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
  /** reads and clears the pending socket error (SO_ERROR), counting it */
  void clearError();
  void close();
  const ArpStats& stats() const { return stats_; }

 private:
  bool send(const uint8_t* frame, size_t len);

  std::string iface_;
  std::vector<uint32_t> vips_;
  uint8_t vmac_[6];
  uint8_t ifmac_[6];
  int ifindex_ = 0;
  int fd_ = -1;
  ArpStats stats_;
};

}  // namespace vipfarm
