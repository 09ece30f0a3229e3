// AF_PACKET socket of one interface for the farm's L2 heartbeats: Ethernet frames of one
// (local experimental) EtherType to one destination, the virtual MAC by default. A frame
// to the virtual MAC reaches exactly the nodes that clients' frames to the VIP reach, so a
// peer heard this way is alive where it matters. Frames leave with the interface's own MAC
// as source (a switch must never learn the virtual MAC). Non-blocking; the caller polls
// fd() and calls drain().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "packet_socket.h"

namespace vipfarm {

struct FrameStats {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t sendErrors = 0;
  uint64_t socketErrors = 0;  // e.g. ENETDOWN when the link went down
};

class FrameSocket {
 public:
  static constexpr size_t kHeader = 14;
  static constexpr size_t kMaxPayload = 1500;

  /** throws OsError (ENODEV unknown iface, EPERM without NET_RAW) */
  FrameSocket(const std::string& iface, uint16_t ethertype, const uint8_t dst[6]);
  int fd() const { return sock_.fd(); }
  /** one frame to the destination; no allocation (the header is built once). false on a
   *  send error (counted); throws OsError(EMSGSIZE) for a payload over kMaxPayload */
  bool send(const uint8_t* payload, size_t len);
  /** reads every queued frame to our destination; onFrame(payload, len, source MAC, the
   *  kernel's CLOCK_REALTIME receive time in ns or 0). The receive time is when the frame
   *  arrived, not when this loop got round to it: a peer's heartbeat delay measured with it
   *  leaves out our own read latency (the timed handoff's clock bound, membership.ts). */
  void drain(const std::function<void(const uint8_t*, size_t, const uint8_t*, int64_t)>& onFrame);
  /** reads and clears the pending socket error (SO_ERROR), counting it */
  void clearError();
  const FrameStats& stats() const { return stats_; }

 private:
  std::string iface_;
  uint8_t dst_[6];
  PacketSocket sock_;
  uint8_t tx_[kHeader + kMaxPayload];
  uint8_t rx_[kHeader + kMaxPayload + 4];
  FrameStats stats_;
};

}  // namespace vipfarm
