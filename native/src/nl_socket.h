// RAII netlink socket (libmnl) with the two exchanges vipfarm needs: a fire-and-check
// batch (errors only) and a dump (request, then messages until NLMSG_DONE).
#pragma once
#include <libmnl/libmnl.h>

#include <cstdint>
#include <functional>
#include <string>

namespace vipfarm {

class NlSocket {
 public:
  /** bus: NETLINK_NETFILTER or NETLINK_ROUTE */
  NlSocket(int bus, const std::string& op);
  ~NlSocket();
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;

  uint32_t portid() const { return portid_; }

  /** a fresh sequence number for the next request on this socket */
  uint32_t nextSeq() { return ++seq_; }
  /** a batch used n more sequence numbers after nextSeq() */
  void skipSeq(uint32_t n) { seq_ += n; }

  /** Sends len bytes; the kernel processes a netlink request synchronously inside
   *  sendmsg, so every error it produced is already queued when send returns. Returns
   *  the first error (errno value, >0) and the sequence number it answers, or 0. */
  int sendCollectError(const void* buf, size_t len, uint32_t* errSeq, const std::string& op);

  /** Sends one request and feeds every reply message to cb until NLMSG_DONE (dump)
   *  or the ACK (non-dump request with NLM_F_ACK). Throws OsError(op, errno). */
  void request(const void* buf, size_t len, uint32_t seq,
               const std::function<void(const struct nlmsghdr*)>& cb, const std::string& op);

 private:
  /** drops replies a failed earlier exchange may have left queued */
  void drain();

  struct mnl_socket* nl_;
  uint32_t portid_;
  uint32_t seq_;
};

/** The process's nf_tables socket, opened on first use and never closed: closing a
 *  socket that committed deletions makes the kernel wait for the deferred destroy work
 *  (an RCU grace period, ~16 ms here) inside close(). Owned by the JS thread. */
NlSocket& nftSocket(const std::string& op);

}  // namespace vipfarm
