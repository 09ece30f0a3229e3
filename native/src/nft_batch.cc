#include "nft_batch.h"

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>


#include "nl_socket.h"
#include "os_error.h"

namespace vipfarm {

namespace {
// Room for one message header plus its attributes; set elements are sized by the caller.
constexpr size_t kMsgRoom = 16384;
}  // namespace

NftBatch::NftBatch(std::string op, uint32_t seq0) : op_(std::move(op)), seq0_(seq0) {
  buf_.resize(kMsgRoom);
  len_ = 0;
  auto* nlh = nftnl_batch_begin(buf_.data(), seq0_);
  len_ += NLMSG_ALIGN(nlh->nlmsg_len);
}

nlmsghdr* NftBatch::begin(uint16_t type, uint16_t family, uint16_t flags, size_t room, const std::string& what) {
  if (buf_.size() < len_ + room) buf_.resize(len_ + room);
  what_.push_back(what);
  uint32_t seq = seq0_ + static_cast<uint32_t>(what_.size());
  return nftnl_nlmsg_build_hdr(buf_.data() + len_, type, family, flags, seq);
}

void NftBatch::end(nlmsghdr* nlh) { len_ += NLMSG_ALIGN(nlh->nlmsg_len); }

void NftBatch::add(uint16_t type, uint16_t family, uint16_t flags, nftnl_table* t, const std::string& what) {
  auto* nlh = begin(type, family, flags, kMsgRoom, what);
  nftnl_table_nlmsg_build_payload(nlh, t);
  end(nlh);
}

void NftBatch::add(uint16_t type, uint16_t family, uint16_t flags, nftnl_chain* c, const std::string& what) {
  auto* nlh = begin(type, family, flags, kMsgRoom, what);
  nftnl_chain_nlmsg_build_payload(nlh, c);
  end(nlh);
}

void NftBatch::add(uint16_t type, uint16_t family, uint16_t flags, nftnl_rule* r, const std::string& what) {
  auto* nlh = begin(type, family, flags, kMsgRoom, what);
  nftnl_rule_nlmsg_build_payload(nlh, r);
  end(nlh);
}

void NftBatch::addSet(uint16_t type, uint16_t family, uint16_t flags, nftnl_set* s, const std::string& what) {
  auto* nlh = begin(type, family, flags, kMsgRoom, what);
  nftnl_set_nlmsg_build_payload(nlh, s);
  end(nlh);
}

void NftBatch::addSetElems(uint16_t type, uint16_t family, uint16_t flags, nftnl_set* s, const std::string& what) {
  // An element with key + timeout + flags is well under 64 bytes of attributes.
  size_t count = 0;
  auto* it = nftnl_set_elems_iter_create(s);
  if (it != nullptr) {
    while (nftnl_set_elems_iter_next(it) != nullptr) ++count;
    nftnl_set_elems_iter_destroy(it);
  }
  auto* nlh = begin(type, family, flags, kMsgRoom + 64 * count, what);
  nftnl_set_elems_nlmsg_build_payload(nlh, s);
  end(nlh);
}

void NftBatch::commit(NlSocket& nl) {
  uint32_t endSeq = seq0_ + static_cast<uint32_t>(what_.size()) + 1;
  if (buf_.size() < len_ + 64) buf_.resize(len_ + 64);
  auto* nlh = nftnl_batch_end(buf_.data() + len_, endSeq);
  size_t total = len_ + NLMSG_ALIGN(nlh->nlmsg_len);
  nl.skipSeq(static_cast<uint32_t>(what_.size()) + 1);
  uint32_t errSeq = 0;
  int err = nl.sendCollectError(buf_.data(), total, &errSeq, op_);
  if (err == 0) return;
  std::string what;
  if (errSeq > seq0_ && errSeq - seq0_ - 1 < what_.size()) what = what_[errSeq - seq0_ - 1];
  throw OsError(what.empty() ? op_ : op_ + ": " + what, err);
}

}  // namespace vipfarm
