// One AF_PACKET socket bound to one interface and one EtherType: what the ARP responder,
// the ND responder and the L2 heartbeat socket each open. RAII: the descriptor closes with
// the object. Non-blocking; the owner polls fd() (libuv in the binding).
#pragma once
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vipfarm {

/** a file descriptor that closes itself */
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  void reset();

 private:
  int fd_;
};

/** the interface's own MAC (SIOCGIFHWADDR) into mac; fd: any socket, or -1 for a
 *  short-lived one of its own. Throws OsError naming op and the interface. */
void readIfaceMac(const std::string& iface, const std::string& op, uint8_t mac[6], int fd = -1);

class PacketSocket {
 public:
  /** op names the user in errors ("ARP responder on eth0"); filter: a classic BPF program
   *  attached before the socket is bound, so no frame it refuses is ever queued.
   *  timestamps: every received frame carries the kernel's receive time (SO_TIMESTAMPNS).
   *  Throws OsError (ENODEV unknown iface, EPERM without NET_RAW). */
  PacketSocket(const std::string& iface, uint16_t ethertype, const std::string& op,
               const std::vector<sock_filter>& filter = {}, bool timestamps = false);

  PacketSocket(PacketSocket&&) = default;
  PacketSocket& operator=(PacketSocket&&) = default;

  int fd() const { return fd_.get(); }
  bool open() const { return fd_.get() >= 0; }
  int ifindex() const { return ifindex_; }
  /** the interface's own MAC: the source of every frame we send */
  const uint8_t* mac() const { return mac_; }
  /** sends a whole Ethernet frame to the destination in its first 6 bytes; false on error */
  bool send(const uint8_t* frame, size_t len);
  /** one queued frame into buf: its length, or -1 when none is left (EAGAIN) or on error.
   *  Frames we sent ourselves (PACKET_OUTGOING) are skipped. rxRealtimeNs (if given): the
   *  kernel's CLOCK_REALTIME receive time of the frame in ns, or 0 when it gave none. */
  ssize_t receive(uint8_t* buf, size_t len, int64_t* rxRealtimeNs = nullptr);
  /** reads and clears the pending socket error (SO_ERROR, e.g. ENETDOWN) */
  void clearError();
  void close() { fd_.reset(); }

 private:
  UniqueFd fd_;
  int ifindex_ = 0;
  uint8_t mac_[6];
};

}  // namespace vipfarm
