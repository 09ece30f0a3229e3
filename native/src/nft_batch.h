// Buffer, then commit: messages are queued into one nfnetlink batch and sent with a
// single sendmsg, so the kernel applies all of them or none. Each message remembers
// what it was for, and the first error names that operation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

struct nlmsghdr;
struct nftnl_table;
struct nftnl_chain;
struct nftnl_rule;
struct nftnl_set;

namespace vipfarm {

class NlSocket;

class NftBatch {
 public:
  /** op prefixes every error message, e.g. "apply vipfarm_web"; seq0 from NlSocket::nextSeq
   *  (the batch uses seq0 .. seq0 + messages + 1) */
  NftBatch(std::string op, uint32_t seq0);

  /** type = NFT_MSG_NEW*, NFT_MSG_DEL*; flags = NLM_F_CREATE ... (REQUEST is added).
   *  The object is serialized immediately; the caller keeps ownership. */
  void add(uint16_t type, uint16_t family, uint16_t flags, nftnl_table* t, const std::string& what);
  void add(uint16_t type, uint16_t family, uint16_t flags, nftnl_chain* c, const std::string& what);
  void add(uint16_t type, uint16_t family, uint16_t flags, nftnl_rule* r, const std::string& what);
  /** NEWSET/DELSET (set itself) */
  void addSet(uint16_t type, uint16_t family, uint16_t flags, nftnl_set* s, const std::string& what);
  /** NEWSETELEM/DELSETELEM with the elements attached to s (none = flush for DEL) */
  void addSetElems(uint16_t type, uint16_t family, uint16_t flags, nftnl_set* s, const std::string& what);

  size_t messages() const { return what_.size(); }

  /** sends the batch; throws OsError("<op>: <what>", errno) on the first failure */
  void commit(NlSocket& nl);

 private:
  nlmsghdr* begin(uint16_t type, uint16_t family, uint16_t flags, size_t room, const std::string& what);
  void end(nlmsghdr* nlh);

  std::string op_;
  std::vector<char> buf_;
  size_t len_ = 0;
  uint32_t seq0_;
  std::vector<std::string> what_;  // index = seq - seq0_ - 1
};

}  // namespace vipfarm
