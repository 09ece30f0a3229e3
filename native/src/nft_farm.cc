#include "nft_farm.h"

#include <arpa/inet.h>
#include <net/if.h>  // before linux/ headers, which redefine IFF_*
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <endian.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <memory>

#include "nft_batch.h"
#include "nl_socket.h"
#include "os_error.h"
#include "packet_socket.h"

namespace vipfarm {

namespace {

// nft's datatype ids (src/datatype.h). The bucket sets are keyed by a plain 32-bit
// host-order integer (what jhash ... mod N yields); see putBucketKeyUdata for how
// `nft list ruleset` learns to print and re-read them.
constexpr uint32_t kTypeInteger = 4;
constexpr uint32_t kTypeIpAddr = 7;
constexpr uint32_t kTypeIp6Addr = 8;
constexpr uint32_t kTypeEtherAddr = 9;
constexpr const char* kChain = "pre";
// before conntrack (-200): foreign SYNs are dropped here, not after a conntrack entry
constexpr const char* kRawChain = "raw";
constexpr const char* kIngress = "ingress";

struct TableDel { void operator()(nftnl_table* p) const { nftnl_table_free(p); } };
struct ChainDel { void operator()(nftnl_chain* p) const { nftnl_chain_free(p); } };
struct RuleDel { void operator()(nftnl_rule* p) const { nftnl_rule_free(p); } };
struct SetDel { void operator()(nftnl_set* p) const { nftnl_set_free(p); } };
struct UdataDel { void operator()(nftnl_udata_buf* p) const { nftnl_udata_buf_free(p); } };
using TablePtr = std::unique_ptr<nftnl_table, TableDel>;
using ChainPtr = std::unique_ptr<nftnl_chain, ChainDel>;
using RulePtr = std::unique_ptr<nftnl_rule, RuleDel>;
using SetPtr = std::unique_ptr<nftnl_set, SetDel>;

template <typename T>
T* checked(T* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

TablePtr makeTable(const std::string& name, uint32_t family) {
  TablePtr t(checked(nftnl_table_alloc()));
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, name.c_str());
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, family);
  return t;
}

// -- rule builder: one method per nft expression, registers as nft itself uses them --
class RuleBuilder {
 public:
  RuleBuilder(const std::string& table, uint32_t family, const char* chain) : r_(checked(nftnl_rule_alloc())) {
    nftnl_rule_set_str(r_.get(), NFTNL_RULE_TABLE, table.c_str());
    nftnl_rule_set_str(r_.get(), NFTNL_RULE_CHAIN, chain);
    nftnl_rule_set_u32(r_.get(), NFTNL_RULE_FAMILY, family);
  }
  RuleBuilder& meta(uint32_t key, uint32_t dreg) {
    auto* e = expr("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
    return add(e);
  }
  RuleBuilder& metaSet(uint32_t key, uint32_t sreg) {
    auto* e = expr("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, sreg);
    return add(e);
  }
  RuleBuilder& payload(uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg) {
    auto* e = expr("payload");
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
    return add(e);
  }
  RuleBuilder& cmp(uint32_t op, const void* data, uint32_t len, uint32_t sreg = NFT_REG_1) {
    auto* e = expr("cmp");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
    nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
    return add(e);
  }
  RuleBuilder& bitwise(const void* mask, const void* xorv, uint32_t len) {
    auto* e = expr("bitwise");
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xorv, len);
    return add(e);
  }
  RuleBuilder& ct(uint32_t key) {
    auto* e = expr("ct");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
    return add(e);
  }
  RuleBuilder& jhash(uint32_t sreg, uint32_t len, uint32_t modulus, uint32_t seed) {
    auto* e = expr("hash");
    nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_TYPE, NFT_HASH_JENKINS);
    nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_SREG, sreg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_DREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_LEN, len);
    nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_MODULUS, modulus);
    nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_SEED, seed);
    nftnl_expr_set_u32(e, NFTNL_EXPR_HASH_OFFSET, 0);
    return add(e);
  }
  RuleBuilder& lookup(const char* set, uint32_t setId) {
    auto* e = expr("lookup");
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, setId);
    return add(e);
  }
  RuleBuilder& lookupNot(const char* set, uint32_t setId) {
    auto* e = expr("lookup");
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, setId);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
    return add(e);
  }
  /** map lookup: key in reg 1, value into dreg; no match ends the rule */
  RuleBuilder& mapLookup(const char* map, uint32_t setId, uint32_t dreg) {
    auto* e = expr("lookup");
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg);
    nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, map);
    nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, setId);
    return add(e);
  }
  RuleBuilder& payloadWrite(uint32_t base, uint32_t offset, uint32_t len, uint32_t sreg) {
    auto* e = expr("payload");
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_SREG, sreg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_CSUM_TYPE, NFT_PAYLOAD_CSUM_NONE);
    return add(e);
  }
  /** transmit on the device whose ifindex is in sreg (netdev ingress/egress only) */
  RuleBuilder& fwd(uint32_t sreg) {
    auto* e = expr("fwd");
    nftnl_expr_set_u32(e, NFTNL_EXPR_FWD_SREG_DEV, sreg);
    return add(e);
  }
  /** a copy of the packet routed to the address in sregAddr (its MAC as the next hop) out
   *  of the device in sregDev; ip family only (the inet family has no dup) */
  RuleBuilder& dup(uint32_t sregAddr, uint32_t sregDev) {
    auto* e = expr("dup");
    nftnl_expr_set_u32(e, NFTNL_EXPR_DUP_SREG_ADDR, sregAddr);
    nftnl_expr_set_u32(e, NFTNL_EXPR_DUP_SREG_DEV, sregDev);
    return add(e);
  }
  RuleBuilder& immediate(const void* data, uint32_t len, uint32_t dreg = NFT_REG_1) {
    auto* e = expr("immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
    nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
    return add(e);
  }
  /** host to network byte order of `len` bytes in reg, in words of `size` bytes */
  RuleBuilder& hton(uint32_t reg, uint32_t len, uint32_t size) {
    auto* e = expr("byteorder");
    nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SREG, reg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_DREG, reg);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_LEN, len);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SIZE, size);
    return add(e);
  }
  RuleBuilder& counter() { return add(expr("counter")); }
  RuleBuilder& verdict(int v) {
    auto* e = expr("immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(v));
    return add(e);
  }
  RuleBuilder& comment(const std::string& text) {
    std::unique_ptr<nftnl_udata_buf, UdataDel> ud(checked(nftnl_udata_buf_alloc(NFTNL_UDATA_COMMENT_MAXLEN + 8)));
    nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_RULE_COMMENT, text.c_str());
    nftnl_rule_set_data(r_.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud.get()), nftnl_udata_buf_len(ud.get()));
    return *this;
  }
  nftnl_rule* get() { return r_.get(); }

 private:
  static nftnl_expr* expr(const char* name) { return checked(nftnl_expr_alloc(name)); }
  RuleBuilder& add(nftnl_expr* e) {
    nftnl_rule_add_expr(r_.get(), e);
    return *this;
  }
  RulePtr r_;
};

const char* protoName(Proto p) { return p == Proto::Tcp ? "tcp" : "udp"; }

// nft numbers registers in 32-bit words from reg 1 and names a word where a 16-byte
// register starts by that register (netlink_put_register), any other by its NFT_REG32_*:
// so the bytecode is the same as `nft -f` writes.
uint32_t regOfWord(uint32_t word) {
  constexpr uint32_t kWordsPerReg = NFT_REG_SIZE / NFT_REG32_SIZE;
  return word % kWordsPerReg == 0 ? NFT_REG_1 + word / kWordsPerReg : NFT_REG32_00 + word;
}

// Where nft puts a jhash's source: the next free register after its result, a whole
// 16-byte one for the result alone (word 4: reg 2), or the word after a concatenation
// the result starts (bucket . meta time: 12 bytes, word 3: reg 11).
constexpr uint32_t kHashSrcAlone = 4, kHashSrcInConcat = 3;

// <family> daddr VIP (meta nfproto first, as nft writes it for an inet table)
void matchVip(RuleBuilder& b, const IpAddress& vip) {
  uint8_t nfproto = vip.family().nfproto;
  b.meta(NFT_META_NFPROTO, NFT_REG_1).cmp(NFT_CMP_EQ, &nfproto, 1);
  b.payload(NFT_PAYLOAD_NETWORK_HEADER, vip.family().daddrOffset, vip.len(), NFT_REG_1).cmp(NFT_CMP_EQ, vip.bytes(), vip.len());
}

// <proto> dport PORT
void matchPort(RuleBuilder& b, const FarmRule& rule) {
  uint8_t l4 = rule.proto == Proto::Tcp ? IPPROTO_TCP : IPPROTO_UDP;
  uint16_t port = htons(rule.port);
  b.meta(NFT_META_L4PROTO, NFT_REG_1).cmp(NFT_CMP_EQ, &l4, 1);
  b.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1).cmp(NFT_CMP_EQ, &port, 2);
}

// Common match of every rule of one VIP x port: <ip|ip6> daddr VIP <proto> dport PORT
void matchVipPort(RuleBuilder& b, const IpAddress& vip, const FarmRule& rule) {
  matchVip(b, vip);
  matchPort(b, rule);
}

// jhash over the client address (4 or 16 bytes) or address . sport: the 2-byte port is
// loaded into the register after the address, whose upper bytes the kernel zeroes, so
// the key is 8 (IPv4) or 20 (IPv6) bytes. The result goes to reg 1; the source from
// `srcWord` on (kHashSrcAlone, kHashSrcInConcat).
void bucketHash(RuleBuilder& b, const FarmRule& rule, const FarmSpec& spec, const IpFamily& family,
                uint32_t srcWord = kHashSrcAlone) {
  b.payload(NFT_PAYLOAD_NETWORK_HEADER, family.saddrOffset, family.addrLen, regOfWord(srcWord));
  uint32_t len = family.addrLen;
  if (rule.affinity == Affinity::ClientIPAndPort) {
    b.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, regOfWord(srcWord + family.addrLen / NFT_REG32_SIZE));
    len += NFT_REG32_SIZE;
  }
  b.jhash(regOfWord(srcWord), len, spec.buckets, spec.seed);
}

// `<jhash> . meta time` into reg 1 for a lookup in the hold set (kHoldSet):
// both fields in network byte order, as nft converts them for a concatenated interval
// set (its elements compare as big-endian bytes). Word 0 the bucket, words 1-2 the time.
void bucketAtTime(RuleBuilder& b, const FarmRule& rule, const FarmSpec& spec, const IpFamily& family) {
  bucketHash(b, rule, spec, family, kHashSrcInConcat);
  b.hton(NFT_REG_1, 4, 4);
  b.meta(NFT_META_TIME_NS, regOfWord(1)).hton(regOfWord(1), 8, 8);
}

std::string ruleComment(const IpAddress& vip, const FarmRule& rule, const char* stage) {
  return "vipfarm " + vip.str() + " " + std::to_string(rule.port) + " " + protoName(rule.proto) + " " + stage;
}

// The set's key as nft 1.0.6 itself writes `typeof numgen inc mod N` (src/netlink.c,
// src/numgen.c udata): host byte order, then the typeof expression. nft has no udata for
// a jhash expression (a `typeof jhash` set crashes `nft list`), and a set typed "mark"
// lists but does not reload (its lookups by jhash are integers, not marks). numgen mod N
// is an integer of the same size and range, so `nft list ruleset > f; nft -f f` works.
struct ValueTypeof {
  uint32_t protoDesc, field;  // nft's PROTO_DESC_* and that header's *HDR_* field
};
constexpr ValueTypeof kEtherDaddr{17, 1};  // PROTO_DESC_ETHER, ETHHDR_DADDR
constexpr ValueTypeof kIpDaddr{12, 12};    // PROTO_DESC_IP, IPHDR_DADDR
constexpr ValueTypeof kIp6Daddr{13, 9};    // PROTO_DESC_IP6, IP6HDR_DADDR

void putBucketKeyUdata(nftnl_udata_buf* ud, uint32_t modulus, const ValueTypeof* value = nullptr) {
  constexpr uint8_t kKeyByteorder = 0, kDataByteorder = 1, kKeyTypeof = 3, kDataTypeof = 4, kDataInterval = 6;  // NFTNL_UDATA_SET_*
  constexpr uint8_t kTypeofExpr = 0, kTypeofData = 1;   // NFTNL_UDATA_SET_TYPEOF_*
  constexpr uint32_t kExprNumgen = 23;                  // nft's EXPR_NUMGEN
  constexpr uint8_t kNgType = 0, kNgMod = 1, kNgOffset = 2;
  nftnl_udata_put_u32(ud, kKeyByteorder, 1);  // BYTEORDER_HOST_ENDIAN
  if (value != nullptr) nftnl_udata_put_u32(ud, kDataByteorder, 2);  // BYTEORDER_BIG_ENDIAN
  nftnl_udata* tof = nftnl_udata_nest_start(ud, kKeyTypeof);
  nftnl_udata_put_u32(ud, kTypeofExpr, kExprNumgen);
  nftnl_udata* data = nftnl_udata_nest_start(ud, kTypeofData);
  nftnl_udata_put_u32(ud, kNgType, NFT_NG_INCREMENTAL);
  nftnl_udata_put_u32(ud, kNgMod, modulus);
  nftnl_udata_put_u32(ud, kNgOffset, 0);
  nftnl_udata_nest_end(ud, data);
  nftnl_udata_nest_end(ud, tof);
  if (value == nullptr) return;
  // a map's value: `: ether daddr` or `: ip daddr` (a payload expression)
  constexpr uint32_t kExprPayload = 7;
  nftnl_udata* vof = nftnl_udata_nest_start(ud, kDataTypeof);
  nftnl_udata_put_u32(ud, kTypeofExpr, kExprPayload);
  nftnl_udata* vdata = nftnl_udata_nest_start(ud, kTypeofData);
  nftnl_udata_put_u32(ud, 0, value->protoDesc);
  nftnl_udata_put_u32(ud, 1, value->field);
  nftnl_udata_nest_end(ud, vdata);
  nftnl_udata_nest_end(ud, vof);
  nftnl_udata_put_u32(ud, kDataInterval, 0);
}

SetPtr makeSet(const std::string& table, const char* name, uint32_t id, uint32_t family, uint32_t bucketCount) {
  SetPtr s(checked(nftnl_set_alloc()));
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, family);
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, NFT_SET_TIMEOUT);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, kTypeInteger);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, 4);
  std::unique_ptr<nftnl_udata_buf, UdataDel> ud(checked(nftnl_udata_buf_alloc(64)));
  putBucketKeyUdata(ud.get(), bucketCount);
  nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud.get()), nftnl_udata_buf_len(ud.get()));
  return s;
}

// The timed handoff's set (see nftSetOwnedAndHold): elements `bucket . [from, to]`, an
// interval of the packet's arrival time (meta time, ns since the epoch) in which the
// bucket takes no new flow, so the kernel itself flips a bucket at an instant. Keyed as
// nft 1.0.6 writes `typeof numgen inc mod N . meta time; flags interval,timeout` (a
// concatenation: the pipapo set type), so that `nft list ruleset` prints and reloads it.
constexpr const char* kHoldSet = "hold";
constexpr uint32_t kHoldId = 3;

SetPtr makeHoldSet(const std::string& table, const char* name, uint32_t id, uint32_t bucketCount) {
  constexpr uint32_t kTypeTime = 43;   // nft's TYPE_TIME (meta time)
  constexpr uint32_t kTypeBits = 6;    // nft's TYPE_BITS: a concatenation's type, field by field
  SetPtr s(checked(nftnl_set_alloc()));
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, NFT_SET_INTERVAL | NFT_SET_TIMEOUT | NFT_SET_CONCAT);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, (kTypeInteger << kTypeBits) | kTypeTime);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, 12);
  const uint8_t fields[] = {4, 8};
  nftnl_set_set_data(s.get(), NFTNL_SET_DESC_CONCAT, fields, sizeof(fields));
  // udata as nft writes it: key byte order 0 (a concatenation's), typeof concat(numgen, meta time)
  constexpr uint8_t kKeyByteorder = 0, kKeyTypeof = 3, kTypeofExpr = 0, kTypeofData = 1;
  constexpr uint32_t kExprConcat = 13, kExprNumgen = 23, kExprMeta = 9;
  std::unique_ptr<nftnl_udata_buf, UdataDel> ud(checked(nftnl_udata_buf_alloc(128)));
  nftnl_udata_put_u32(ud.get(), kKeyByteorder, 0);
  nftnl_udata* tof = nftnl_udata_nest_start(ud.get(), kKeyTypeof);
  nftnl_udata_put_u32(ud.get(), kTypeofExpr, kExprConcat);
  nftnl_udata* fieldsNest = nftnl_udata_nest_start(ud.get(), kTypeofData);
  nftnl_udata* f0 = nftnl_udata_nest_start(ud.get(), 0);
  nftnl_udata_put_u32(ud.get(), kTypeofExpr, kExprNumgen);
  nftnl_udata* ng = nftnl_udata_nest_start(ud.get(), kTypeofData);
  nftnl_udata_put_u32(ud.get(), 0, NFT_NG_INCREMENTAL);
  nftnl_udata_put_u32(ud.get(), 1, bucketCount);
  nftnl_udata_put_u32(ud.get(), 2, 0);
  nftnl_udata_nest_end(ud.get(), ng);
  nftnl_udata_nest_end(ud.get(), f0);
  nftnl_udata* f1 = nftnl_udata_nest_start(ud.get(), 1);
  nftnl_udata_put_u32(ud.get(), kTypeofExpr, kExprMeta);
  nftnl_udata* meta = nftnl_udata_nest_start(ud.get(), kTypeofData);
  nftnl_udata_put_u32(ud.get(), 0, NFT_META_TIME_NS);
  nftnl_udata_nest_end(ud.get(), meta);
  nftnl_udata_nest_end(ud.get(), f1);
  nftnl_udata_nest_end(ud.get(), fieldsNest);
  nftnl_udata_nest_end(ud.get(), tof);
  nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud.get()), nftnl_udata_buf_len(ud.get()));
  return s;
}

// "add table" creates the table when absent, so the "delete" after it never fails:
// together they clear any previous version inside the same transaction.
void queueDeleteTable(NftBatch& batch, const std::string& name, uint32_t family) {
  auto t = makeTable(name, family);
  batch.add(NFT_MSG_NEWTABLE, family, NLM_F_CREATE, t.get(), "add table " + name);
  batch.add(NFT_MSG_DELTABLE, family, 0, t.get(), "delete table " + name);
}

// Every virtual IP with the farm's rules, then every Service IP with its own.
std::vector<std::pair<IpAddress, FarmRule>> vipRulePairs(const FarmSpec& spec) {
  std::vector<std::pair<IpAddress, FarmRule>> pairs;
  for (const IpAddress& vip : spec.vips)
    for (const FarmRule& rule : spec.rules) pairs.emplace_back(vip, rule);
  for (const AddressRules& a : spec.services)
    for (const FarmRule& rule : a.rules) pairs.emplace_back(a.vip, rule);
  return pairs;
}

constexpr uint32_t kForwardId = 11, kNodesId = 12;
constexpr const char* kForwardMap = "forward";
constexpr const char* kNodesSet = "nodes";

SetPtr makeMacKeyedSet(const std::string& table, const char* name, uint32_t id, bool isMap, uint32_t bucketCount) {
  SetPtr s(checked(nftnl_set_alloc()));
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_NETDEV);
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
  std::unique_ptr<nftnl_udata_buf, UdataDel> ud(checked(nftnl_udata_buf_alloc(64)));
  if (isMap) {
    // bucket (an integer, like the owned set) -> owner's ether address, with the lease
    nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, NFT_SET_MAP | NFT_SET_TIMEOUT);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, kTypeInteger);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, 4);
    nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, kTypeEtherAddr);
    nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_LEN, 6);
    putBucketKeyUdata(ud.get(), bucketCount, &kEtherDaddr);
  } else {
    nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, 0);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, kTypeEtherAddr);
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, 6);
  }
  nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud.get()), nftnl_udata_buf_len(ud.get()));
  return s;
}

// Directed mode, per VIP x rule, in netdev ingress (before conntrack and the IP stack):
//   meta iiftype ether  ether saddr != @nodes  ip daddr VIP  <proto> dport PORT
//   ether daddr set <bucket hash> map @forward  ether saddr set <own MAC>  counter  fwd to <iface>
// Buckets this node owns (or that nobody owns) have no map entry: the rule stops at the
// lookup and the frame goes up to the inet table as usual. The source MAC becomes ours so
// the switch never learns the client's MAC on our port. Frames from another farm node
// were forwarded once already and are never forwarded again: nodes that briefly disagree
// about an owner cannot bounce a frame between them forever (L2 has no TTL).
void queueForwardingRules(NftBatch& batch, const FarmSpec& spec, const std::string& table) {
  std::string op = "apply " + inetTableName(spec.name);
  uint8_t ownMac[6];
  readIfaceMac(spec.iface, op, ownMac);
  auto forward = makeMacKeyedSet(table, kForwardMap, kForwardId, true, spec.buckets);
  auto nodes = makeMacKeyedSet(table, kNodesSet, kNodesId, false, spec.buckets);
  batch.addSet(NFT_MSG_NEWSET, NFPROTO_NETDEV, NLM_F_CREATE, forward.get(), "add map forward");
  batch.addSet(NFT_MSG_NEWSET, NFPROTO_NETDEV, NLM_F_CREATE, nodes.get(), "add set nodes");

  uint32_t ifindex = if_nametoindex(spec.iface.c_str());
  uint16_t ether = ARPHRD_ETHER;
  // `match` selects the packets after the VIP; `hash` is the rule whose bucket they go by
  auto forwardRule = [&](const IpAddress& vip, const FarmRule& hash, const std::function<void(RuleBuilder&)>& match, const std::string& what) {
    RuleBuilder b(table, NFPROTO_NETDEV, kIngress);
    const IpFamily& family = vip.family();
    uint16_t ethertype = htons(family.ethertype);
    b.meta(NFT_META_IIFTYPE, NFT_REG_1).cmp(NFT_CMP_EQ, &ether, 2);
    b.meta(NFT_META_PROTOCOL, NFT_REG_1).cmp(NFT_CMP_EQ, &ethertype, 2);
    b.payload(NFT_PAYLOAD_NETWORK_HEADER, family.daddrOffset, vip.len(), NFT_REG_1).cmp(NFT_CMP_EQ, vip.bytes(), vip.len());
    match(b);
    b.payload(NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG_1).lookupNot(kNodesSet, kNodesId);
    bucketHash(b, hash, spec, family);
    b.mapLookup(kForwardMap, kForwardId, NFT_REG_2).payloadWrite(NFT_PAYLOAD_LL_HEADER, 0, 6, NFT_REG_2);
    b.immediate(ownMac, 6, NFT_REG_3).payloadWrite(NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG_3);
    b.counter().immediate(&ifindex, 4, NFT_REG_1).fwd(NFT_REG_1);
    b.comment(what);
    batch.add(NFT_MSG_NEWRULE, NFPROTO_NETDEV, NLM_F_CREATE | NLM_F_APPEND, b.get(), "add " + what);
  };
  for (const auto& [vip, rule] : vipRulePairs(spec)) {
    forwardRule(vip, rule, [&](RuleBuilder& b) { matchPort(b, rule); }, ruleComment(vip, rule, "forward"));
  }
  // Echo requests go to the owner of the client's ClientIP bucket, the one node whose
  // inet echo rule answers them (queueVipCatchAll): ping VIP gets one reply here too.
  const FarmRule byClientIp{0, Proto::Tcp, Affinity::ClientIP};
  std::vector<IpAddress> seen;
  for (const auto& [vip, rule] : vipRulePairs(spec)) {
    if (std::find(seen.begin(), seen.end(), vip) != seen.end()) continue;
    seen.push_back(vip);
    const IpFamily& family = vip.family();
    forwardRule(vip, byClientIp, [&](RuleBuilder& b) {
      b.meta(NFT_META_L4PROTO, NFT_REG_1).cmp(NFT_CMP_EQ, &family.icmpProto, 1);
      b.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1).cmp(NFT_CMP_EQ, &family.echoRequest, 1);
    }, "vipfarm " + vip.str() + " echo forward");
  }
}

constexpr uint32_t kPreviousId = 21;
constexpr const char* kPreviousMap = "previous";

// The families Directed mode's second chance has a table for (nft's ip and ip6, the same
// name in each): `dup` exists in neither inet nor netdev, so one table per family.
constexpr const IpFamily* kPreviousFamilies[] = {&kIPv4, &kIPv6};

// Directed mode's second chance (GitHub GLB's idea), in table ip / ip6 vipfarm_<farm>_prev:
// when a bucket moved to this node, the connections it had stay on its previous holder,
// but the receiving node now forwards their frames here. Every TCP packet of such a
// bucket that is not a SYN and that conntrack does not know here goes on to that holder:
//   ip daddr VIP tcp dport P  tcp flags != syn / syn,ack  ct state ! established,related
//   counter  dup to <bucket hash> map @previous device <iface>  drop
// After conntrack (-200), before the inet table's filter (-150). `dup` routes the copy
// to the previous holder's address as next hop (its MAC, the IP header unchanged; for
// IPv6 the kernel's FLOWI_FLAG_KNOWN_NH makes the map's address the neighbour looked up).
// Only buckets this node holds have entries, and two nodes never hold one bucket, so a
// packet takes this path once. Both tables exist in Directed mode whatever the VIPs'
// families (a family without VIPs has an empty chain), so the per-refresh batch can
// flush both maps without knowing the spec.
void queuePreviousTable(NftBatch& batch, const FarmSpec& spec, const IpFamily& family) {
  std::string table = previousTableName(spec.name);
  const uint32_t nfproto = family.nfproto;
  const std::string what = std::string(family.nftAddr) + " " + table;
  auto t = makeTable(table, nfproto);
  batch.add(NFT_MSG_NEWTABLE, nfproto, NLM_F_CREATE, t.get(), "add table " + what);

  SetPtr m(checked(nftnl_set_alloc()));
  nftnl_set_set_str(m.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(m.get(), NFTNL_SET_NAME, kPreviousMap);
  nftnl_set_set_u32(m.get(), NFTNL_SET_FAMILY, nfproto);
  nftnl_set_set_u32(m.get(), NFTNL_SET_ID, kPreviousId);
  nftnl_set_set_u32(m.get(), NFTNL_SET_FLAGS, NFT_SET_MAP | NFT_SET_TIMEOUT);
  nftnl_set_set_u32(m.get(), NFTNL_SET_KEY_TYPE, kTypeInteger);
  nftnl_set_set_u32(m.get(), NFTNL_SET_KEY_LEN, 4);
  nftnl_set_set_u32(m.get(), NFTNL_SET_DATA_TYPE, &family == &kIPv6 ? kTypeIp6Addr : kTypeIpAddr);
  nftnl_set_set_u32(m.get(), NFTNL_SET_DATA_LEN, family.addrLen);
  std::unique_ptr<nftnl_udata_buf, UdataDel> ud(checked(nftnl_udata_buf_alloc(64)));
  putBucketKeyUdata(ud.get(), spec.buckets, &family == &kIPv6 ? &kIp6Daddr : &kIpDaddr);
  nftnl_set_set_data(m.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud.get()), nftnl_udata_buf_len(ud.get()));
  batch.addSet(NFT_MSG_NEWSET, nfproto, NLM_F_CREATE, m.get(), "add map previous of " + what);

  ChainPtr c(checked(nftnl_chain_alloc()));
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, kChain);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, nfproto);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, "filter");
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
  nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, -160);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
  batch.add(NFT_MSG_NEWCHAIN, nfproto, NLM_F_CREATE, c.get(), "add chain pre of " + what);

  uint32_t ifindex = if_nametoindex(spec.iface.c_str());
  for (const auto& [vip, rule] : vipRulePairs(spec)) {
    if (rule.proto != Proto::Tcp) continue;  // UDP has no SYN: a new owner takes its flows
    if (&vip.family() != &family) continue;  // the other family's table
    RuleBuilder b(table, nfproto, kChain);
    // no `meta nfproto` as in the inet table: an ip (ip6) table sees its family only
    b.payload(NFT_PAYLOAD_NETWORK_HEADER, family.daddrOffset, vip.len(), NFT_REG_1).cmp(NFT_CMP_EQ, vip.bytes(), vip.len());
    matchPort(b, rule);
    uint8_t synAck = 0x12, syn = 0x02, zero8 = 0;
    b.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1).bitwise(&synAck, &zero8, 1).cmp(NFT_CMP_NEQ, &syn, 1);
    uint32_t stateMask = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED), zero = 0;
    b.ct(NFT_CT_STATE).bitwise(&stateMask, &zero, 4).cmp(NFT_CMP_EQ, &zero, 4);
    bucketHash(b, rule, spec, family);
    b.mapLookup(kPreviousMap, kPreviousId, NFT_REG_1).counter();
    b.immediate(&ifindex, 4, NFT_REG_2).dup(NFT_REG_1, NFT_REG_2).verdict(NF_DROP);
    b.comment(ruleComment(vip, rule, "previous"));
    batch.add(NFT_MSG_NEWRULE, nfproto, NLM_F_CREATE | NLM_F_APPEND, b.get(),
              "add second-chance rule " + vip.str() + " tcp/" + std::to_string(rule.port));
  }
}

void queueNetdevTable(NftBatch& batch, const FarmSpec& spec) {
  std::string table = netdevTableName(spec.name);
  auto t = makeTable(table, NFPROTO_NETDEV);
  batch.add(NFT_MSG_NEWTABLE, NFPROTO_NETDEV, NLM_F_CREATE, t.get(), "add table " + table);

  ChainPtr c(checked(nftnl_chain_alloc()));
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, kIngress);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, NFPROTO_NETDEV);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, "filter");
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, NF_NETDEV_INGRESS);
  nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, -500);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_DEV, spec.iface.c_str());
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
  batch.add(NFT_MSG_NEWCHAIN, NFPROTO_NETDEV, NLM_F_CREATE, c.get(), "add ingress chain on device " + spec.iface);

  if (spec.directed) {
    queueForwardingRules(batch, spec, table);
    return;
  }
  // ether daddr VMAC meta pkttype set host counter
  RuleBuilder b(table, NFPROTO_NETDEV, kIngress);
  uint16_t ether = ARPHRD_ETHER;
  uint8_t host = 0;  // PACKET_HOST
  b.meta(NFT_META_IIFTYPE, NFT_REG_1).cmp(NFT_CMP_EQ, &ether, 2);
  b.payload(NFT_PAYLOAD_LL_HEADER, 0, 6, NFT_REG_1).cmp(NFT_CMP_EQ, spec.mac, 6);
  b.immediate(&host, 1).metaSet(NFT_META_PKTTYPE, NFT_REG_1).counter();
  b.comment("vipfarm virtual-mac");
  batch.add(NFT_MSG_NEWRULE, NFPROTO_NETDEV, NLM_F_CREATE | NLM_F_APPEND, b.get(), "add virtual MAC rule");
}

// What no rule covers, after the rules of one VIP. Every node holds the VIP, so without
// these anything listening on the wildcard address (the agent's /metrics too) would answer
// through it from every node at once. Echo requests are answered by exactly one node: the
// owner of the client address's bucket as a ClientIP rule hashes it (jhash of the source
// address, same bucketCount and seed), so `ping VIP` gets one reply, from the node a
// ClientIP service would send that client to. Established/related (ICMP errors such as
// "fragmentation needed" / "packet too big" for our flows) stay accepted; the node's own
// traffic over lo is left alone. IPv6: neighbour discovery to the VIP (unicast NUD
// probes, redirects) is never dropped; the kernel decides about it as without the farm.
void queueVipCatchAll(NftBatch& batch, const std::string& table, const IpAddress& vip, const FarmSpec& spec, uint32_t ownedId) {
  const uint16_t flags = NLM_F_CREATE | NLM_F_APPEND;
  const IpFamily& family = vip.family();
  const std::string at = vip.str();
  auto matchIcmp = [&](RuleBuilder& b) {
    matchVip(b, vip);
    b.meta(NFT_META_L4PROTO, NFT_REG_1).cmp(NFT_CMP_EQ, &family.icmpProto, 1);
    b.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
  };

  RuleBuilder local(table, NFPROTO_INET, kChain);
  uint16_t loopback = ARPHRD_LOOPBACK;
  matchVip(local, vip);
  local.meta(NFT_META_IIFTYPE, NFT_REG_1).cmp(NFT_CMP_EQ, &loopback, 2);
  local.counter().verdict(NF_ACCEPT).comment("vipfarm " + at + " local accept");
  batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, local.get(), "add local rule " + at);

  if (family.ndLast != 0) {
    RuleBuilder nd(table, NFPROTO_INET, kChain);
    matchIcmp(nd);
    // a range as nft 1.0.6 writes `icmpv6 type 133-137`: two comparisons
    nd.cmp(NFT_CMP_GTE, &family.ndFirst, 1).cmp(NFT_CMP_LTE, &family.ndLast, 1);
    nd.counter().verdict(NF_ACCEPT).comment("vipfarm " + at + " neighbour discovery");
    batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, nd.get(), "add neighbour discovery rule " + at);
  }

  const FarmRule byClientIp{0, Proto::Tcp, Affinity::ClientIP};
  RuleBuilder echo(table, NFPROTO_INET, kChain);
  matchIcmp(echo);
  echo.cmp(NFT_CMP_EQ, &family.echoRequest, 1);
  bucketHash(echo, byClientIp, spec, family);
  echo.lookup("owned", ownedId).counter().verdict(NF_ACCEPT).comment("vipfarm " + at + " echo owned");
  batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, echo.get(), "add echo rule " + at);

  // before the established rule: a bucket that moved must not leave two nodes answering
  // one ping session (conntrack calls its later requests established)
  RuleBuilder echoDrop(table, NFPROTO_INET, kChain);
  matchIcmp(echoDrop);
  echoDrop.cmp(NFT_CMP_EQ, &family.echoRequest, 1);
  echoDrop.counter().verdict(NF_DROP).comment("vipfarm " + at + " echo drop");
  batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, echoDrop.get(), "add echo drop rule " + at);

  RuleBuilder est(table, NFPROTO_INET, kChain);
  matchVip(est, vip);
  uint32_t stateMask = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED), zero = 0;
  est.ct(NFT_CT_STATE).bitwise(&stateMask, &zero, 4).cmp(NFT_CMP_NEQ, &zero, 4);
  est.counter().verdict(NF_ACCEPT).comment("vipfarm " + at + " other established");
  batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, est.get(), "add established rule " + at);

  RuleBuilder drop(table, NFPROTO_INET, kChain);
  matchVip(drop, vip);
  drop.counter().verdict(NF_DROP).comment("vipfarm " + at + " other drop");
  batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, drop.get(), "add catch-all drop rule " + at);
}

// Every node receives every frame, so most SYNs a node sees are for other nodes' buckets.
// Dropping them in `pre` (after conntrack) made conntrack allocate and free an entry for
// each; a chain at raw priority, before conntrack, drops them first (bench dataplane:
// CPU per foreign SYN). Only TCP SYNs (syn set, ack clear) are judged here: they are
// never part of an established flow's packets, whereas a UDP datagram of a foreign bucket
// may belong to a flow this node accepted while it owned the bucket, which only conntrack
// knows. Orphan buckets are a subset of owned, so their SYNs pass; their mid-stream
// packets are not SYNs. Per TCP VIP x rule:
//   ip daddr VIP tcp dport PORT tcp flags & (syn|ack) == syn jhash(...) != @owned counter drop
// Which sets an address's owned and orphan rules look up (name, id in the batch): the
// farm's, or a Service IP's own (externalTrafficPolicy Local), by address text.
struct BucketSets {
  std::string owned, orphan;
  uint32_t ownedId, orphanId;
};
std::map<std::string, BucketSets> bucketSetsOf(const FarmSpec& spec) {
  std::map<std::string, BucketSets> out;
  uint32_t nextId = 100;
  for (const AddressRules& a : spec.services) {
    if (a.ownedSet.empty()) continue;
    out[a.vip.str()] = BucketSets{a.ownedSet, a.orphanSet, nextId, nextId + 1};
    nextId += 2;
  }
  return out;
}

void queueForeignSynDrop(NftBatch& batch, const FarmSpec& spec, const std::string& table, uint32_t ownedId) {
  const auto setsOf = bucketSetsOf(spec);
  ChainPtr c(checked(nftnl_chain_alloc()));
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, kRawChain);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, "filter");
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
  nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, -300);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
  batch.add(NFT_MSG_NEWCHAIN, NFPROTO_INET, NLM_F_CREATE, c.get(), "add chain raw");
  for (const auto& [vip, rule] : vipRulePairs(spec)) {
    if (rule.proto != Proto::Tcp) continue;
    uint8_t synAck = 0x12, syn = 0x02, zero8 = 0;
    auto found = setsOf.find(vip.str());
    RuleBuilder b(table, NFPROTO_INET, kRawChain);
    matchVipPort(b, vip, rule);
    b.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1).bitwise(&synAck, &zero8, 1).cmp(NFT_CMP_EQ, &syn, 1);
    bucketHash(b, rule, spec, vip.family());
    if (found == setsOf.end()) b.lookupNot("owned", ownedId);
    else b.lookupNot(found->second.owned.c_str(), found->second.ownedId);
    b.counter().verdict(NF_DROP).comment(ruleComment(vip, rule, "foreign"));
    batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, NLM_F_CREATE | NLM_F_APPEND, b.get(),
              "add foreign SYN rule " + vip.str() + " tcp/" + std::to_string(rule.port));
  }
}

void queueInetTable(NftBatch& batch, const FarmSpec& spec) {
  std::string table = inetTableName(spec.name);
  auto t = makeTable(table, NFPROTO_INET);
  batch.add(NFT_MSG_NEWTABLE, NFPROTO_INET, NLM_F_CREATE, t.get(), "add table " + table);

  constexpr uint32_t kOwnedId = 1, kOrphanId = 2;
  auto owned = makeSet(table, "owned", kOwnedId, NFPROTO_INET, spec.buckets);
  auto orphan = makeSet(table, "orphan", kOrphanId, NFPROTO_INET, spec.buckets);
  batch.addSet(NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE, owned.get(), "add set owned");
  batch.addSet(NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE, orphan.get(), "add set orphan");
  auto hold = makeHoldSet(table, kHoldSet, kHoldId, spec.buckets);
  batch.addSet(NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE, hold.get(), "add set hold");
  const auto setsOf = bucketSetsOf(spec);
  for (const auto& [ip, s] : setsOf) {
    auto o = makeSet(table, s.owned.c_str(), s.ownedId, NFPROTO_INET, spec.buckets);
    auto r = makeSet(table, s.orphan.c_str(), s.orphanId, NFPROTO_INET, spec.buckets);
    batch.addSet(NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE, o.get(), "add set " + s.owned);
    batch.addSet(NFT_MSG_NEWSET, NFPROTO_INET, NLM_F_CREATE, r.get(), "add set " + s.orphan);
  }
  const BucketSets farmSets{"owned", "orphan", kOwnedId, kOrphanId};

  ChainPtr c(checked(nftnl_chain_alloc()));
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, kChain);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, NFPROTO_INET);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, "filter");
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
  nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, -150);
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
  batch.add(NFT_MSG_NEWCHAIN, NFPROTO_INET, NLM_F_CREATE, c.get(), "add chain pre");

  const uint16_t flags = NLM_F_CREATE | NLM_F_APPEND;
  const auto pairs = vipRulePairs(spec);
  {
    for (const auto& [vip, rule] : pairs) {
      std::string where = vip.str() + " " + protoName(rule.proto) + "/" + std::to_string(rule.port);
      auto found = setsOf.find(vip.str());
      const BucketSets& sets = found == setsOf.end() ? farmSets : found->second;

      // Established and related flows stay where conntrack put them.
      RuleBuilder est(table, NFPROTO_INET, kChain);
      matchVipPort(est, vip, rule);
      uint32_t stateMask = NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED), zero = 0;
      est.ct(NFT_CT_STATE).bitwise(&stateMask, &zero, 4).cmp(NFT_CMP_NEQ, &zero, 4);
      est.counter().verdict(NF_ACCEPT).comment(ruleComment(vip, rule, "established"));
      batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, est.get(), "add established rule " + where);

      auto matchNew = [&](RuleBuilder& b) {
        matchVipPort(b, vip, rule);
        if (rule.proto == Proto::Tcp) {
          uint8_t synAck = 0x12, syn = 0x02, zero8 = 0;
          b.payload(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1).bitwise(&synAck, &zero8, 1).cmp(NFT_CMP_EQ, &syn, 1);
        }
      };
      // Timed handoff (farm sets only): an owned bucket takes no new flow while held, from
      // the instant it is given away on, or until the one it is taken over (established
      // flows stay, above).
      if (found == setsOf.end()) {
        RuleBuilder hold(table, NFPROTO_INET, kChain);
        matchNew(hold);
        bucketAtTime(hold, rule, spec, vip.family());
        hold.lookup(kHoldSet, kHoldId).counter().verdict(NF_DROP).comment(ruleComment(vip, rule, "hold"));
        batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, hold.get(), "add hold rule " + where);
      }

      // New flows by bucket; TCP only judges the SYN so a moved bucket keeps its flows.
      RuleBuilder own(table, NFPROTO_INET, kChain);
      matchNew(own);
      bucketHash(own, rule, spec, vip.family());
      own.lookup(sets.owned.c_str(), sets.ownedId).counter().verdict(NF_ACCEPT).comment(ruleComment(vip, rule, "owned"));
      batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, own.get(), "add owned rule " + where);

      // A dead node's buckets: every packet, so our stack answers its flows with RST.
      RuleBuilder orph(table, NFPROTO_INET, kChain);
      matchVipPort(orph, vip, rule);
      bucketHash(orph, rule, spec, vip.family());
      orph.lookup(sets.orphan.c_str(), sets.orphanId).counter().verdict(NF_ACCEPT).comment(ruleComment(vip, rule, "orphan"));
      batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, orph.get(), "add orphan rule " + where);

      RuleBuilder drop(table, NFPROTO_INET, kChain);
      matchVipPort(drop, vip, rule);
      drop.counter().verdict(NF_DROP).comment(ruleComment(vip, rule, "drop"));
      batch.add(NFT_MSG_NEWRULE, NFPROTO_INET, flags, drop.get(), "add drop rule " + where);
    }
  }
  for (const IpAddress& vip : spec.vips) queueVipCatchAll(batch, table, vip, spec, kOwnedId);
  queueForeignSynDrop(batch, spec, table, kOwnedId);
}

struct LiveElem {
  uint32_t key;
  uint64_t expiresInMs;  // 0: no timeout
};

/** calls cb for every element of a set of the farm's inet table; throws OsError */
void forEachElem(const std::string& table, const std::string& set, const std::string& op,
                 const std::function<void(nftnl_set_elem*)>& cb) {
  SetPtr s(checked(nftnl_set_alloc()));
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  NlSocket& nl = nftSocket(op);
  uint32_t seq = nl.nextSeq();
  auto* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, seq);
  nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
  nl.request(nlh, nlh->nlmsg_len, seq, [&](const struct nlmsghdr* msg) {
    SetPtr got(checked(nftnl_set_alloc()));
    if (nftnl_set_elems_nlmsg_parse(msg, got.get()) < 0) return;
    auto* it = nftnl_set_elems_iter_create(got.get());
    if (it == nullptr) return;
    for (auto* e = nftnl_set_elems_iter_next(it); e != nullptr; e = nftnl_set_elems_iter_next(it)) cb(e);
    nftnl_set_elems_iter_destroy(it);
  }, op);
}

/** the element's remaining time, 0 without a timeout */
uint64_t remainingMs(nftnl_set_elem* e) {
  return nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION) ? nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION) : 0;
}

std::vector<LiveElem> dumpElems(const std::string& table, const std::string& set, const std::string& op) {
  std::vector<LiveElem> out;
  forEachElem(table, set, op, [&](nftnl_set_elem* e) {
    uint32_t len = 0;
    const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
    if (key == nullptr || len != 4) return;
    LiveElem le{0, remainingMs(e)};
    std::memcpy(&le.key, key, 4);
    out.push_back(le);
  });
  return out;
}

/** every rule of a chain of the farm (the inet one by default); throws OsError (ENOENT
 *  when the table or chain is absent) */
void dumpRules(const std::string& table, const std::string& op, const std::function<void(nftnl_rule*)>& cb,
               uint32_t family = NFPROTO_INET, const char* chain = kChain) {
  RulePtr r(checked(nftnl_rule_alloc()));
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain);
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  NlSocket& nl = nftSocket(op);
  uint32_t seq = nl.nextSeq();
  auto* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, family, NLM_F_DUMP, seq);
  nftnl_rule_nlmsg_build_payload(nlh, r.get());
  nl.request(nlh, nlh->nlmsg_len, seq, [&](const struct nlmsghdr* msg) {
    RulePtr got(checked(nftnl_rule_alloc()));
    if (nftnl_rule_nlmsg_parse(msg, got.get()) < 0) return;
    const char* t = nftnl_rule_get_str(got.get(), NFTNL_RULE_TABLE);
    if (t == nullptr || table != t) return;  // old kernels ignore the table filter of a dump
    cb(got.get());
  }, op);
}

/** true when the farm's table exists and hashes into the same buckets as spec */
bool sameBucketLayout(const FarmSpec& spec, const std::string& op) {
  bool found = false, same = false;
  try {
    dumpRules(inetTableName(spec.name), op, [&](nftnl_rule* rule) {
      if (found) return;
      struct Hash {
        bool found;
        uint32_t modulus, seed;
      } h{false, 0, 0};
      nftnl_expr_foreach(rule, [](nftnl_expr* e, void* data) -> int {
        if (std::strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "hash") == 0) {
          auto* hp = static_cast<Hash*>(data);
          hp->found = true;
          hp->modulus = nftnl_expr_get_u32(e, NFTNL_EXPR_HASH_MODULUS);
          hp->seed = nftnl_expr_get_u32(e, NFTNL_EXPR_HASH_SEED);
        }
        return 0;
      }, &h);
      if (!h.found) return;
      found = true;
      same = h.modulus == spec.buckets && h.seed == spec.seed;
    });
  } catch (const OsError& e) {
    if (e.err() == ENOENT) return false;
    throw;
  }
  return found && same;
}

void queueElems(NftBatch& batch, const std::string& table, const std::string& set, const std::vector<LiveElem>& elems) {
  constexpr size_t kPerMessage = 1024;
  for (size_t i = 0; i < elems.size(); i += kPerMessage) {
    SetPtr s(checked(nftnl_set_alloc()));
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
    for (size_t j = i; j < elems.size() && j < i + kPerMessage; ++j) {
      nftnl_set_elem* e = checked(nftnl_set_elem_alloc());
      uint32_t key = elems[j].key;  // host order, like the hash expression's result
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &key, sizeof(key));
      nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, elems[j].expiresInMs);
      nftnl_set_elem_add(s.get(), e);
    }
    batch.addSetElems(NFT_MSG_NEWSETELEM, NFPROTO_INET, NLM_F_CREATE, s.get(), "add elements to " + set);
  }
}

// bucket . [from, to] per element (ticks of kHoldTickNs: from its first ns to its last),
// network byte order as the rules' byteorder expressions make the packet's key
void addHoldElems(NftBatch& batch, const std::string& table, const char* name, const std::vector<HoldElem>& elems) {
  constexpr size_t kPerMessage = 256;
  for (size_t i = 0; i < elems.size(); i += kPerMessage) {
    SetPtr s(checked(nftnl_set_alloc()));
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name);
    for (size_t j = i; j < elems.size() && j < i + kPerMessage; ++j) {
      uint8_t key[12], end[12];
      uint32_t bucket = htonl(elems[j].bucket);
      uint64_t from = htobe64(elems[j].fromTick * kHoldTickNs), last = htobe64(elems[j].toTick * kHoldTickNs + kHoldTickNs - 1);
      std::memcpy(key, &bucket, 4);
      std::memcpy(key + 4, &from, 8);
      std::memcpy(end, &bucket, 4);
      std::memcpy(end + 4, &last, 8);
      nftnl_set_elem* e = checked(nftnl_set_elem_alloc());
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, sizeof(key));
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY_END, end, sizeof(end));
      nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, elems[j].timeoutMs);
      nftnl_set_elem_add(s.get(), e);
    }
    batch.addSetElems(NFT_MSG_NEWSETELEM, NFPROTO_INET, NLM_F_CREATE, s.get(), std::string("add elements to ") + name);
  }
}

/** the live elements of the hold set, with their remaining time; throws OsError */
std::vector<HoldElem> dumpHolds(const std::string& table, const std::string& op) {
  std::vector<HoldElem> out;
  forEachElem(table, kHoldSet, op, [&](nftnl_set_elem* e) {
    uint32_t len = 0, endLen = 0;
    const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
    const void* end = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &endLen);
    if (key == nullptr || len != 12 || end == nullptr || endLen != 12) return;
    uint32_t bucket;
    uint64_t from, to;
    std::memcpy(&bucket, key, 4);
    std::memcpy(&from, static_cast<const uint8_t*>(key) + 4, 8);
    std::memcpy(&to, static_cast<const uint8_t*>(end) + 4, 8);
    out.push_back(HoldElem{ntohl(bucket), be64toh(from) / kHoldTickNs, be64toh(to) / kHoldTickNs, remainingMs(e)});
  });
  return out;
}

}  // namespace

std::string inetTableName(const std::string& farm) { return "vipfarm_" + farm; }
std::string netdevTableName(const std::string& farm) { return "vipfarm_" + farm + "_in"; }
std::string previousTableName(const std::string& farm) { return "vipfarm_" + farm + "_prev"; }

void nftApply(const FarmSpec& spec) {
  // Kernels since 6.10 accept a netdev chain for a device that does not exist (it
  // attaches when the device appears); a typo must fail here instead.
  if (if_nametoindex(spec.iface.c_str()) == 0) throwErrno("apply " + inetTableName(spec.name) + ": interface " + spec.iface);
  std::string op = "apply " + inetTableName(spec.name);
  // Same buckets as before: carry the live leases over, so replacing the rules does
  // not turn new connections away until the agent's next refresh.
  // Every bucket set of the new spec, with what it holds now (if the table has it).
  std::vector<std::pair<std::string, std::vector<LiveElem>>> carried{{"owned", {}}, {"orphan", {}}};
  for (const AddressRules& a : spec.services) {
    if (a.ownedSet.empty()) continue;
    carried.push_back({a.ownedSet, {}});
    carried.push_back({a.orphanSet, {}});
  }
  // and the timed handoff's holds: one dropped by a re-apply would let this node take
  // new flows of a bucket it is giving away after its instant, while the taker takes them
  std::vector<HoldElem> holds;
  if (sameBucketLayout(spec, op + ": read current rules")) {
    try {
      holds = dumpHolds(inetTableName(spec.name), op + ": read hold buckets");
    } catch (const OsError& e) {
      if (e.err() != ENOENT) throw;  // a table from before the hold set
    }
    // a timeout of 0 would make an element permanent
    holds.erase(std::remove_if(holds.begin(), holds.end(), [](const HoldElem& e) { return e.timeoutMs == 0; }), holds.end());
    // a timeout of 0 would make an element permanent: drop the ones about to lapse
    auto lapsing = [](const LiveElem& e) { return e.expiresInMs == 0; };
    for (auto& [set, elems] : carried) {
      try {
        elems = dumpElems(inetTableName(spec.name), set, op + ": read " + set + " buckets");
      } catch (const OsError& e) {
        if (e.err() != ENOENT) throw;  // a Service IP new in this spec: no set yet
      }
      elems.erase(std::remove_if(elems.begin(), elems.end(), lapsing), elems.end());
    }
  }
  NlSocket& nl = nftSocket(op);
  NftBatch batch(op, nl.nextSeq());
  queueDeleteTable(batch, netdevTableName(spec.name), NFPROTO_NETDEV);
  queueDeleteTable(batch, inetTableName(spec.name), NFPROTO_INET);
  for (const IpFamily* f : kPreviousFamilies) queueDeleteTable(batch, previousTableName(spec.name), f->nfproto);
  queueNetdevTable(batch, spec);
  queueInetTable(batch, spec);
  if (spec.directed) {
    for (const IpFamily* f : kPreviousFamilies) queuePreviousTable(batch, spec, *f);
  }
  for (const auto& [set, elems] : carried) queueElems(batch, inetTableName(spec.name), set, elems);
  addHoldElems(batch, inetTableName(spec.name), kHoldSet, holds);
  batch.commit(nl);
}

namespace {

// flush + re-add in one transaction: re-adding an element that exists does not move its
// timeout on this kernel; flushing first does, without a gap for packets.
void queueReplaceElems(NftBatch& batch, const std::string& table, const std::string& set,
                       const std::vector<uint32_t>& buckets, uint64_t leaseMs) {
  SetPtr flush(checked(nftnl_set_alloc()));
  nftnl_set_set_str(flush.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(flush.get(), NFTNL_SET_NAME, set.c_str());
  batch.addSetElems(NFT_MSG_DELSETELEM, NFPROTO_INET, 0, flush.get(), "flush set " + set);
  std::vector<LiveElem> elems;
  elems.reserve(buckets.size());
  for (uint32_t b : buckets) elems.push_back({b, leaseMs});
  queueElems(batch, table, set, elems);
}

void queueFlushNetdev(NftBatch& batch, const std::string& table, const char* set) {
  SetPtr flush(checked(nftnl_set_alloc()));
  nftnl_set_set_str(flush.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(flush.get(), NFTNL_SET_NAME, set);
  batch.addSetElems(NFT_MSG_DELSETELEM, NFPROTO_NETDEV, 0, flush.get(), std::string("flush ") + set);
}

}  // namespace

void nftSetElems(const std::string& farm, const std::string& set, const std::vector<uint32_t>& buckets,
                 uint64_t leaseMs) {
  std::string table = inetTableName(farm);
  std::string op = "set " + set + " buckets of " + table;
  NlSocket& nl = nftSocket(op);
  NftBatch batch(op, nl.nextSeq());
  queueReplaceElems(batch, table, set, buckets, leaseMs);
  batch.commit(nl);
}

void nftSetOwnedAndForwarding(const std::string& farm, const std::vector<uint32_t>& owned, uint64_t leaseMs,
                              const std::vector<ForwardEntry>& forward, const std::vector<std::array<uint8_t, 6>>& nodes,
                              const std::vector<PreviousEntry>& previous) {
  std::string op = "set owned buckets and forwarding of " + inetTableName(farm);
  std::string netdev = netdevTableName(farm);
  NlSocket& nl = nftSocket(op);
  NftBatch batch(op, nl.nextSeq());
  queueReplaceElems(batch, inetTableName(farm), "owned", owned, leaseMs);
  queueFlushNetdev(batch, netdev, kForwardMap);
  queueFlushNetdev(batch, netdev, kNodesSet);
  constexpr size_t kPerMessage = 512;
  for (size_t i = 0; i < forward.size(); i += kPerMessage) {
    SetPtr s(checked(nftnl_set_alloc()));
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, netdev.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, kForwardMap);
    for (size_t j = i; j < forward.size() && j < i + kPerMessage; ++j) {
      nftnl_set_elem* e = checked(nftnl_set_elem_alloc());
      uint32_t key = forward[j].bucket;
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &key, sizeof(key));
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, forward[j].mac, 6);
      nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, leaseMs);
      nftnl_set_elem_add(s.get(), e);
    }
    batch.addSetElems(NFT_MSG_NEWSETELEM, NFPROTO_NETDEV, NLM_F_CREATE, s.get(), "add elements to map forward");
  }
  if (!nodes.empty()) {
    SetPtr s(checked(nftnl_set_alloc()));
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, netdev.c_str());
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, kNodesSet);
    for (const auto& mac : nodes) {
      nftnl_set_elem* e = checked(nftnl_set_elem_alloc());
      nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, mac.data(), 6);
      nftnl_set_elem_add(s.get(), e);
    }
    batch.addSetElems(NFT_MSG_NEWSETELEM, NFPROTO_NETDEV, NLM_F_CREATE, s.get(), "add elements to set nodes");
  }
  std::string prev = previousTableName(farm);
  for (const IpFamily* f : kPreviousFamilies) {
    const uint32_t nfproto = f->nfproto;
    const std::string what = std::string(" of ") + f->nftAddr + " " + prev;
    SetPtr flushPrev(checked(nftnl_set_alloc()));
    nftnl_set_set_str(flushPrev.get(), NFTNL_SET_TABLE, prev.c_str());
    nftnl_set_set_str(flushPrev.get(), NFTNL_SET_NAME, kPreviousMap);
    batch.addSetElems(NFT_MSG_DELSETELEM, nfproto, 0, flushPrev.get(), "flush map previous" + what);
    std::vector<const PreviousEntry*> mine;
    for (const PreviousEntry& p : previous) if (&p.ip.family() == f) mine.push_back(&p);
    for (size_t i = 0; i < mine.size(); i += kPerMessage) {
      SetPtr s(checked(nftnl_set_alloc()));
      nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, prev.c_str());
      nftnl_set_set_str(s.get(), NFTNL_SET_NAME, kPreviousMap);
      for (size_t j = i; j < mine.size() && j < i + kPerMessage; ++j) {
        nftnl_set_elem* e = checked(nftnl_set_elem_alloc());
        uint32_t key = mine[j]->bucket;
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &key, sizeof(key));
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, mine[j]->ip.bytes(), mine[j]->ip.len());
        nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, leaseMs);
        nftnl_set_elem_add(s.get(), e);
      }
      batch.addSetElems(NFT_MSG_NEWSETELEM, nfproto, NLM_F_CREATE, s.get(), "add elements to map previous" + what);
    }
  }
  batch.commit(nl);
}

namespace {

}  // namespace

void nftSetOwnedAndHold(const std::string& farm, const std::vector<uint32_t>& owned, uint64_t leaseMs,
                        const std::vector<HoldElem>* holds) {
  std::string table = inetTableName(farm);
  std::string op = "set owned buckets and holds of " + table;
  NlSocket& nl = nftSocket(op);
  NftBatch batch(op, nl.nextSeq());
  queueReplaceElems(batch, table, "owned", owned, leaseMs);
  if (holds != nullptr) {
    // flush + re-add, in the same batch as owned: a bucket is never owned without its hold
    SetPtr flush(checked(nftnl_set_alloc()));
    nftnl_set_set_str(flush.get(), NFTNL_SET_TABLE, table.c_str());
    nftnl_set_set_str(flush.get(), NFTNL_SET_NAME, kHoldSet);
    batch.addSetElems(NFT_MSG_DELSETELEM, NFPROTO_INET, 0, flush.get(), std::string("flush set ") + kHoldSet);
    addHoldElems(batch, table, kHoldSet, *holds);
  }
  batch.commit(nl);
}

std::vector<HoldElem> nftGetHolds(const std::string& farm) {
  std::string table = inetTableName(farm);
  std::vector<HoldElem> out;
  for (const HoldElem& e : dumpHolds(table, "get holds of " + table)) out.push_back(e);
  return out;
}

uint64_t realtimeUs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

std::vector<uint32_t> nftGetElems(const std::string& farm, const std::string& set) {
  std::vector<uint32_t> out;
  for (const LiveElem& e : dumpElems(inetTableName(farm), set, "get " + set + " buckets of " + inetTableName(farm))) {
    out.push_back(e.key);
  }
  return out;
}

std::vector<RuleCounter> nftCounters(const std::string& farm) {
  std::string table = inetTableName(farm);
  std::vector<RuleCounter> out;
  auto read = [&](nftnl_rule* rule) {
    uint32_t udlen = 0;
    const void* ud = nftnl_rule_get_data(rule, NFTNL_RULE_USERDATA, &udlen);
    if (ud == nullptr) return;
    RuleCounter rc{"", 0, 0};
    nftnl_udata_parse(ud, udlen, [](const struct nftnl_udata* attr, void* data) -> int {
      if (nftnl_udata_type(attr) == NFTNL_UDATA_RULE_COMMENT) {
        const char* text = static_cast<const char*>(nftnl_udata_get(attr));
        static_cast<RuleCounter*>(data)->comment.assign(text, strnlen(text, nftnl_udata_len(attr)));
      }
      return MNL_CB_OK;
    }, &rc);
    nftnl_expr_foreach(rule, [](nftnl_expr* e, void* data) -> int {
      if (std::strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0) {
        static_cast<RuleCounter*>(data)->packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
        static_cast<RuleCounter*>(data)->bytes = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
      }
      return 0;
    }, &rc);
    if (!rc.comment.empty()) out.push_back(rc);
  };
  dumpRules(table, "read counters of " + table, read);
  dumpRules(table, "read counters of " + table + " raw", read, NFPROTO_INET, kRawChain);
  // Directed mode's forwarding (netdev) and second chance (ip, ip6) rules; absent otherwise
  auto readIfThere = [&](const std::string& t, uint32_t family, const char* chain) {
    try {
      dumpRules(t, "read counters of " + t, read, family, chain);
    } catch (const OsError& e) {
      if (e.err() != ENOENT) throw;
    }
  };
  readIfThere(netdevTableName(farm), NFPROTO_NETDEV, kIngress);
  for (const IpFamily* f : kPreviousFamilies) readIfThere(previousTableName(farm), f->nfproto, kChain);
  return out;
}

RuleCounts nftRuleCounts(const std::string& farm) {
  auto count = [](const std::string& table, uint32_t family, const char* chain) -> int64_t {
    int64_t n = 0;
    try {
      dumpRules(table, "count rules of " + table, [&](nftnl_rule*) { ++n; }, family, chain);
    } catch (const OsError& e) {
      if (e.err() == ENOENT) return -1;
      throw;
    }
    return n;
  };
  int64_t pre = count(inetTableName(farm), NFPROTO_INET, kChain);
  int64_t raw = pre < 0 ? 0 : count(inetTableName(farm), NFPROTO_INET, kRawChain);
  return {pre < 0 || raw < 0 ? -1 : pre + raw, count(netdevTableName(farm), NFPROTO_NETDEV, kIngress)};
}

void nftRemove(const std::string& farm) {
  NlSocket& nl = nftSocket("remove " + inetTableName(farm));
  NftBatch batch("remove " + inetTableName(farm), nl.nextSeq());
  queueDeleteTable(batch, netdevTableName(farm), NFPROTO_NETDEV);
  queueDeleteTable(batch, inetTableName(farm), NFPROTO_INET);
  for (const IpFamily* f : kPreviousFamilies) queueDeleteTable(batch, previousTableName(farm), f->nfproto);
  batch.commit(nl);
}

}  // namespace vipfarm
