// The farm's kernel objects: a netdev table that makes frames to the virtual MAC
// "for this host", and an inet table whose rules accept only the owned hash buckets.
// Plain C++ (no N-API): the wrapper validated every field before we get here.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "ip_family.h"

namespace vipfarm {

enum class Proto { Tcp, Udp };
enum class Affinity { ClientIP, ClientIPAndPort };

struct FarmRule {
  uint16_t port;
  Proto proto;
  Affinity affinity;
};

// A Service IP of the farm with its own ports (the virtualIPs share spec.rules).
struct AddressRules {
  IpAddress vip;
  std::vector<FarmRule> rules;
  // externalTrafficPolicy Local: the IP's own bucket sets (its own assignment among the
  // nodes with an endpoint); empty: the farm's "owned" and "orphan".
  std::string ownedSet, orphanSet;
};

struct FarmSpec {
  std::string name;             // DNS label; tables vipfarm_<name>, vipfarm_<name>_in
  std::string iface;
  std::vector<IpAddress> vips;  // either family, mixed: the rules of each follow its family
  uint8_t mac[6];
  std::vector<FarmRule> rules;
  std::vector<AddressRules> services;
  uint32_t buckets;
  uint32_t seed;
  // Directed mode: no virtual MAC; the netdev table forwards frames of buckets owned by
  // another node to that node's MAC (map "forward", set "nodes"), see nftSetForwarding.
  bool directed = false;
};

/** one bucket owned by another node: frames of it go to that node's MAC */
struct ForwardEntry {
  uint32_t bucket;
  uint8_t mac[6];
};

/** Directed mode: a bucket this node took over, and an address of the node that held it
 *  before: packets of connections it still serves go on there. One entry per family the
 *  farm's VIPs have (the ip table takes the IPv4 ones, the ip6 table the IPv6 ones). */
struct PreviousEntry {
  uint32_t bucket;
  IpAddress ip;
};

struct RuleCounter {
  std::string comment;  // "vipfarm <vip> <port> <proto> <stage>"
  uint64_t packets;
  uint64_t bytes;
};

std::string inetTableName(const std::string& farm);
std::string netdevTableName(const std::string& farm);
std::string previousTableName(const std::string& farm);

/** create or atomically replace both tables (one batch) */
void nftApply(const FarmSpec& spec);
/** set = "owned" | "orphan": flush + add every bucket with timeout leaseMs (one batch) */
void nftSetElems(const std::string& farm, const std::string& set, const std::vector<uint32_t>& buckets,
                 uint64_t leaseMs);
/** Directed mode: the owned set (as nftSetElems) plus the forwarding map and the set of
 *  farm node MACs, all three replaced in one batch so ownership and forwarding agree */
void nftSetOwnedAndForwarding(const std::string& farm, const std::vector<uint32_t>& owned, uint64_t leaseMs,
                              const std::vector<ForwardEntry>& forward, const std::vector<std::array<uint8_t, 6>>& nodes,
                              const std::vector<PreviousEntry>& previous);
/** an element of the hold set: the bucket takes no new flow from tick fromTick to tick
 *  toTick (inclusive; ticks of kHoldTickNs since the epoch on CLOCK_REALTIME, what `meta
 *  time` reads), for timeoutMs (remaining, when read; 0: none) */
struct HoldElem {
  uint32_t bucket;
  uint64_t fromTick, toTick, timeoutMs;
};
constexpr uint64_t kHoldTickNs = 1024;
/** Timed handoff: the owned set (as nftSetElems) and, unless holds is null, the hold set
 *  replaced by holds in the same batch */
void nftSetOwnedAndHold(const std::string& farm, const std::vector<uint32_t>& owned, uint64_t leaseMs,
                        const std::vector<HoldElem>* holds);
/** live elements of the hold set */
std::vector<HoldElem> nftGetHolds(const std::string& farm);
/** CLOCK_REALTIME in microseconds: the clock the handoff sets' instants are on */
uint64_t realtimeUs();
/** live elements of the set */
std::vector<uint32_t> nftGetElems(const std::string& farm, const std::string& set);
/** every rule of the farm's chain that carries a counter and a comment */
std::vector<RuleCounter> nftCounters(const std::string& farm);
/** delete both tables; no error when absent */
/** rules in the farm's inet and netdev chains, -1 for a chain (or table) that is absent;
 *  read-only, so an agent can see cheaply that its state was removed under it */
struct RuleCounts {
  int64_t inet;
  int64_t netdev;
};
RuleCounts nftRuleCounts(const std::string& farm);
void nftRemove(const std::string& farm);

}  // namespace vipfarm
