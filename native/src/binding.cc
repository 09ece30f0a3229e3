// N-API glue only: converts JS values (already validated by native/src/*.ts) into the
// plain C++ calls, and OsError into JS errors with code/errno.
#include <arpa/inet.h>
#include <napi.h>
#include <uv.h>

#include <memory>
#include <cstring>

#include "arp_socket.h"
#include "frame_socket.h"
#include "nd_socket.h"
#include "nft_farm.h"
#include "os_error.h"
#include "rtnl_addr.h"
#include "rtnl_neigh.h"

using namespace vipfarm;

namespace {

Napi::Error toJsError(Napi::Env env, const OsError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("errno", Napi::Number::New(env, e.err()));
  if (*e.code() != '\0') err.Set("code", Napi::String::New(env, e.code()));
  return err;
}

template <typename F>
auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const OsError& e) {
    throw toJsError(env, e);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

IpAddress parseIp(Napi::Env env, const std::string& s) {
  try {
    return IpAddress::parse(s);
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(env, e.what());
  }
}

std::vector<IpAddress> parseIps(Napi::Env env, const Napi::Array& arr) {
  std::vector<IpAddress> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(parseIp(env, arr.Get(i).As<Napi::String>()));
  return out;
}

void parseMac(Napi::Env env, const std::string& s, uint8_t mac[6]) {
  unsigned v[6];
  if (sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
    throw Napi::TypeError::New(env, "invalid MAC " + s);
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(v[i]);
}

std::vector<uint32_t> parseU32s(const Napi::Array& arr) {
  std::vector<uint32_t> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(arr.Get(i).As<Napi::Number>().Uint32Value());
  return out;
}

std::vector<FarmRule> parseRules(const Napi::Array& rules) {
  std::vector<FarmRule> out;
  for (uint32_t i = 0; i < rules.Length(); ++i) {
    Napi::Object r = rules.Get(i).As<Napi::Object>();
    FarmRule fr;
    fr.port = static_cast<uint16_t>(r.Get("port").As<Napi::Number>().Uint32Value());
    fr.proto = r.Get("protocol").As<Napi::String>().Utf8Value() == "udp" ? Proto::Udp : Proto::Tcp;
    fr.affinity = r.Get("affinity").As<Napi::String>().Utf8Value() == "ClientIPAndPort" ? Affinity::ClientIPAndPort
                                                                                         : Affinity::ClientIP;
    out.push_back(fr);
  }
  return out;
}

// nftApply({ name, interface, virtualIPs, virtualMAC, rules: [{port, protocol, affinity}],
//            services: [{ip, rules, ownedSet?, orphanSet?}], bucketCount, hashSeed })
Napi::Value NftApply(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  FarmSpec spec;
  spec.name = o.Get("name").As<Napi::String>();
  spec.iface = o.Get("interface").As<Napi::String>();
  spec.vips = parseIps(env, o.Get("virtualIPs").As<Napi::Array>());
  parseMac(env, o.Get("virtualMAC").As<Napi::String>(), spec.mac);
  spec.rules = parseRules(o.Get("rules").As<Napi::Array>());
  Napi::Value services = o.Get("services");
  if (services.IsArray()) {
    Napi::Array arr = services.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Object a = arr.Get(i).As<Napi::Object>();
      Napi::Array ip = Napi::Array::New(env, 1);
      ip.Set(uint32_t{0}, a.Get("ip"));
      AddressRules ar{parseIps(env, ip).at(0), parseRules(a.Get("rules").As<Napi::Array>()), "", ""};
      if (a.Get("ownedSet").IsString()) {
        ar.ownedSet = a.Get("ownedSet").As<Napi::String>().Utf8Value();
        ar.orphanSet = a.Get("orphanSet").As<Napi::String>().Utf8Value();
      }
      spec.services.push_back(ar);
    }
  }
  spec.buckets = o.Get("bucketCount").As<Napi::Number>().Uint32Value();
  spec.seed = o.Get("hashSeed").As<Napi::Number>().Uint32Value();
  Napi::Value mode = o.Get("mode");
  spec.directed = mode.IsString() && mode.As<Napi::String>().Utf8Value() == "Directed";
  guarded(env, [&] { nftApply(spec); });
  return env.Undefined();
}

// nftSetElems(farm, set, buckets[], leaseMs)
Napi::Value NftSetElems(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string farm = info[0].As<Napi::String>();
  std::string set = info[1].As<Napi::String>();
  auto buckets = parseU32s(info[2].As<Napi::Array>());
  auto lease = static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value());
  guarded(env, [&] { nftSetElems(farm, set, buckets, lease); });
  return env.Undefined();
}

// nftSetOwnedAndForwarding(farm, owned[], leaseMs, [[bucket, mac], ...], nodeMacs[], [[bucket, ip], ...]: IPv4 and IPv6 entries)
Napi::Value NftSetOwnedAndForwarding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string farm = info[0].As<Napi::String>();
  auto owned = parseU32s(info[1].As<Napi::Array>());
  auto lease = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  Napi::Array fwd = info[3].As<Napi::Array>();
  std::vector<ForwardEntry> forward;
  forward.reserve(fwd.Length());
  for (uint32_t i = 0; i < fwd.Length(); ++i) {
    Napi::Array pair = fwd.Get(i).As<Napi::Array>();
    ForwardEntry fe{};
    fe.bucket = pair.Get(0u).As<Napi::Number>().Uint32Value();
    parseMac(env, pair.Get(1u).As<Napi::String>(), fe.mac);
    forward.push_back(fe);
  }
  Napi::Array nodeArr = info[4].As<Napi::Array>();
  std::vector<std::array<uint8_t, 6>> nodes(nodeArr.Length());
  for (uint32_t i = 0; i < nodeArr.Length(); ++i) parseMac(env, nodeArr.Get(i).As<Napi::String>(), nodes[i].data());
  Napi::Array prevArr = info[5].As<Napi::Array>();
  std::vector<PreviousEntry> previous;
  previous.reserve(prevArr.Length());
  for (uint32_t i = 0; i < prevArr.Length(); ++i) {
    Napi::Array pair = prevArr.Get(i).As<Napi::Array>();
    previous.push_back({pair.Get(0u).As<Napi::Number>().Uint32Value(), parseIp(env, pair.Get(1u).As<Napi::String>())});
  }
  guarded(env, [&] { nftSetOwnedAndForwarding(farm, owned, lease, forward, nodes, previous); });
  return env.Undefined();
}

// nftSetOwnedAndHold(farm, owned[], leaseMs, [[bucket, fromTick, toTick, timeoutMs], ...] | null)
Napi::Value NftSetOwnedAndHold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string farm = info[0].As<Napi::String>();
  auto owned = parseU32s(info[1].As<Napi::Array>());
  auto lease = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  std::vector<HoldElem> holds;
  bool replace = !info[3].IsNull();
  if (replace) {
    Napi::Array arr = info[3].As<Napi::Array>();
    holds.reserve(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Array h = arr.Get(i).As<Napi::Array>();
      auto u64 = [&](uint32_t k) { return static_cast<uint64_t>(h.Get(k).As<Napi::Number>().Int64Value()); };
      holds.push_back({h.Get(0u).As<Napi::Number>().Uint32Value(), u64(1), u64(2), u64(3)});
    }
  }
  guarded(env, [&] { nftSetOwnedAndHold(farm, owned, lease, replace ? &holds : nullptr); });
  return env.Undefined();
}

// nftGetHolds(farm) -> [[bucket, fromTick, toTick], ...]
Napi::Value NftGetHolds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string farm = info[0].As<Napi::String>();
  auto elems = guarded(env, [&] { return nftGetHolds(farm); });
  Napi::Array out = Napi::Array::New(env, elems.size());
  for (size_t i = 0; i < elems.size(); ++i) {
    Napi::Array h = Napi::Array::New(env, 3);
    h.Set(0u, Napi::Number::New(env, elems[i].bucket));
    h.Set(1u, Napi::Number::New(env, static_cast<double>(elems[i].fromTick)));
    h.Set(2u, Napi::Number::New(env, static_cast<double>(elems[i].toTick)));
    out.Set(static_cast<uint32_t>(i), h);
  }
  return out;
}

Napi::Value RealtimeUs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(realtimeUs()));
}

Napi::Value NftGetElems(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string farm = info[0].As<Napi::String>();
  std::string set = info[1].As<Napi::String>();
  auto elems = guarded(env, [&] { return nftGetElems(farm, set); });
  Napi::Array out = Napi::Array::New(env, elems.size());
  for (size_t i = 0; i < elems.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, elems[i]));
  return out;
}

Napi::Value NftCounters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string farm = info[0].As<Napi::String>();
  auto counters = guarded(env, [&] { return nftCounters(farm); });
  Napi::Array out = Napi::Array::New(env, counters.size());
  for (size_t i = 0; i < counters.size(); ++i) {
    Napi::Object c = Napi::Object::New(env);
    c.Set("comment", counters[i].comment);
    c.Set("packets", Napi::Number::New(env, static_cast<double>(counters[i].packets)));
    c.Set("bytes", Napi::Number::New(env, static_cast<double>(counters[i].bytes)));
    out.Set(static_cast<uint32_t>(i), c);
  }
  return out;
}

Napi::Value NftRuleCounts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string farm = info[0].As<Napi::String>();
  auto counts = guarded(env, [&] { return nftRuleCounts(farm); });
  Napi::Object o = Napi::Object::New(env);
  o.Set("inet", Napi::Number::New(env, static_cast<double>(counts.inet)));
  o.Set("netdev", Napi::Number::New(env, static_cast<double>(counts.netdev)));
  return o;
}

Napi::Value NftRemove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string farm = info[0].As<Napi::String>();
  guarded(env, [&] { nftRemove(farm); });
  return env.Undefined();
}

// addrAdd(ifname, ip, prefix) / addrDel(ifname, ip, prefix)
Napi::Value AddrAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = info[0].As<Napi::String>();
  IpAddress ip = parseIp(env, info[1].As<Napi::String>());
  auto prefix = static_cast<uint8_t>(info[2].As<Napi::Number>().Uint32Value());
  guarded(env, [&] { addrAdd(ifname, ip, prefix); });
  return env.Undefined();
}

Napi::Value AddrDel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = info[0].As<Napi::String>();
  IpAddress ip = parseIp(env, info[1].As<Napi::String>());
  auto prefix = static_cast<uint8_t>(info[2].As<Napi::Number>().Uint32Value());
  guarded(env, [&] { addrDel(ifname, ip, prefix); });
  return env.Undefined();
}

// neighbours(ifname) -> [{ ip, mac }]: resolved entries of both families
Napi::Value Neighbours(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = info[0].As<Napi::String>();
  auto list = guarded(env, [&] { return neighbours(ifname); });
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    char mac[18];
    const auto& m = list[i].mac;
    snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    Napi::Object o = Napi::Object::New(env);
    o.Set("ip", list[i].ip.str());
    o.Set("mac", std::string(mac));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// ArpResponder(iface, vips[], mac): the neighbour responder of the farm's VIPs — ARP for
// the IPv4 ones (ArpSocket), Neighbour Discovery for the IPv6 ones (NdSocket), one
// Responder per family present. Each socket is watched by a uv_poll_t on the JS thread's
// loop, so answers go out from the poll callback without blocking JS.
class ArpResponderWrap : public Napi::ObjectWrap<ArpResponderWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "ArpResponder",
                       {InstanceMethod("start", &ArpResponderWrap::Start),
                        InstanceMethod("sendGratuitous", &ArpResponderWrap::SendGratuitous),
                        InstanceMethod("stop", &ArpResponderWrap::Stop),
                        InstanceMethod("setAnswerSlots", &ArpResponderWrap::SetAnswerSlots),
                        InstanceMethod("announce", &ArpResponderWrap::Announce),
                        InstanceMethod("stats", &ArpResponderWrap::Stats)});
  }

  explicit ArpResponderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ArpResponderWrap>(info) {
    Napi::Env env = info.Env();
    iface_ = info[0].As<Napi::String>();
    for (const IpAddress& ip : parseIps(env, info[1].As<Napi::Array>())) (ip.isV6() ? v6_ : v4_).push_back(ip);
    parseMac(env, info[2].As<Napi::String>(), mac_);
  }

  ~ArpResponderWrap() override { stopPolling(); }

 private:
  struct PollHandle {
    uv_poll_t poll;
    std::unique_ptr<Responder> sock;
  };

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!handles_.empty()) return env.Undefined();
    try {
      if (!v4_.empty()) watch(env, guarded(env, [&] { return std::unique_ptr<Responder>(new ArpSocket(iface_, v4_, mac_)); }));
      if (!v6_.empty()) watch(env, guarded(env, [&] { return std::unique_ptr<Responder>(new NdSocket(iface_, v6_, mac_)); }));
      for (PollHandle* h : handles_) h->sock->setAnswerSlots(filtered_ ? &slots_ : nullptr);
      // Directed: a gratuitous ARP / unsolicited NA to all naming this node would pull
      // every client here; the agent announces to its own slots' requesters instead.
      if (!filtered_) guarded(env, [&] { forEach([](Responder& r) { r.sendGratuitous(); }); });
    } catch (...) {
      stopPolling();  // nothing half-started: either every family answers or none
      throw;
    }
    return env.Undefined();
  }

  void watch(Napi::Env env, std::unique_ptr<Responder> sock) {
    auto h = std::make_unique<PollHandle>();
    h->sock = std::move(sock);
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "neighbour responder: no event loop");
    int rc = uv_poll_init(loop, &h->poll, h->sock->fd());
    if (rc != 0) throw Napi::Error::New(env, std::string("neighbour responder: uv_poll_init: ") + uv_strerror(rc));
    h->poll.data = h.get();
    rc = uv_poll_start(&h->poll, UV_READABLE, OnPoll);
    if (rc != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&h.release()->poll), OnClosed);
      throw Napi::Error::New(env, std::string("neighbour responder: uv_poll_start: ") + uv_strerror(rc));
    }
    handles_.push_back(h.release());
  }

  template <typename F>
  void forEach(F&& f) {
    for (PollHandle* h : handles_) f(*h->sock);
  }

  void requireStarted(Napi::Env env) {
    if (handles_.empty()) throw Napi::Error::New(env, "ARP/ND responder on " + iface_ + " is not started");
  }

  Napi::Value SendGratuitous(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireStarted(env);
    guarded(env, [&] { forEach([](Responder& r) { r.sendGratuitous(); }); });
    return env.Undefined();
  }

  // setAnswerSlots(null | slots[]): kept across stop/start
  Napi::Value SetAnswerSlots(const Napi::CallbackInfo& info) {
    filtered_ = info[0].IsArray();
    slots_ = filtered_ ? parseU32s(info[0].As<Napi::Array>()) : std::vector<uint32_t>{};
    forEach([&](Responder& r) { r.setAnswerSlots(filtered_ ? &slots_ : nullptr); });
    return info.Env().Undefined();
  }

  Napi::Value Announce(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireStarted(env);
    auto slots = parseU32s(info[0].As<Napi::Array>());
    uint64_t sent = 0;
    guarded(env, [&] { forEach([&](Responder& r) { sent += r.announceTo(slots); }); });
    return Napi::Number::New(env, static_cast<double>(sent));
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    stopPolling();
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ResponderStats s;
    if (handles_.empty()) s = last_;
    forEach([&](Responder& r) { s += r.stats(); });
    Napi::Object o = Napi::Object::New(env);
    o.Set("requests", Napi::Number::New(env, static_cast<double>(s.requests)));
    o.Set("replies", Napi::Number::New(env, static_cast<double>(s.replies)));
    o.Set("gratuitous", Napi::Number::New(env, static_cast<double>(s.gratuitous)));
    o.Set("sendErrors", Napi::Number::New(env, static_cast<double>(s.sendErrors)));
    o.Set("socketErrors", Napi::Number::New(env, static_cast<double>(s.socketErrors)));
    o.Set("notMine", Napi::Number::New(env, static_cast<double>(s.notMine)));
    o.Set("announcements", Napi::Number::New(env, static_cast<double>(s.announcements)));
    return o;
  }

  // The sockets must stay open until libuv has stopped watching them: each is closed in
  // the uv_close callback, never here.
  void stopPolling() {
    if (handles_.empty()) return;
    last_ = ResponderStats{};
    for (PollHandle* h : handles_) {
      last_ += h->sock->stats();
      uv_poll_stop(&h->poll);
      uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnClosed);
    }
    handles_.clear();
  }

  // A link going down sets a socket error (ENETDOWN); libuv then stops the poll handle.
  // The packet socket itself re-attaches when the link comes back, so clear the error
  // and keep watching: a flapping link must not silence the responder for good.
  static void OnPoll(uv_poll_t* p, int status, int events) {
    auto* h = static_cast<PollHandle*>(p->data);
    if (status == 0) {
      h->sock->onReadable();
      return;
    }
    h->sock->clearError();
    uv_poll_start(p, UV_READABLE, OnPoll);
  }

  static void OnClosed(uv_handle_t* h) { delete static_cast<PollHandle*>(reinterpret_cast<uv_poll_t*>(h)->data); }

  std::string iface_;
  std::vector<IpAddress> v4_, v6_;
  uint8_t mac_[6];
  std::vector<PollHandle*> handles_;
  ResponderStats last_;
  bool filtered_ = false;
  std::vector<uint32_t> slots_;
};

// FrameSocket(iface, ethertype, dstMac, onFrame(payload: Buffer, srcMac: string, rxAtMs?: number)): the L2
// heartbeat socket, watched by a uv_poll_t on the JS thread's loop like the ARP responder;
// each received frame is handed to onFrame through MakeCallback (so the microtasks it
// queues run). send() copies into the socket's prebuilt frame: nothing is allocated.
class FrameSocketWrap : public Napi::ObjectWrap<FrameSocketWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "FrameSocket",
                       {InstanceMethod("start", &FrameSocketWrap::Start),
                        InstanceMethod("send", &FrameSocketWrap::Send),
                        InstanceMethod("stop", &FrameSocketWrap::Stop),
                        InstanceMethod("stats", &FrameSocketWrap::Stats)});
  }

  explicit FrameSocketWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FrameSocketWrap>(info) {
    Napi::Env env = info.Env();
    iface_ = info[0].As<Napi::String>();
    ethertype_ = static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value());
    parseMac(env, info[2].As<Napi::String>(), dst_);
    onFrame_ = Napi::Persistent(info[3].As<Napi::Function>());
  }

  ~FrameSocketWrap() override { stopPolling(); }

 private:
  struct PollHandle {
    uv_poll_t poll;
    std::unique_ptr<FrameSocket> sock;
    FrameSocketWrap* owner;
  };

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (handle_ != nullptr) return env.Undefined();
    auto h = std::make_unique<PollHandle>();
    h->owner = this;
    h->sock = guarded(env, [&] { return std::make_unique<FrameSocket>(iface_, ethertype_, dst_); });
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "L2 heartbeat socket: no event loop");
    int rc = uv_poll_init(loop, &h->poll, h->sock->fd());
    if (rc != 0) throw Napi::Error::New(env, std::string("L2 heartbeat socket: uv_poll_init: ") + uv_strerror(rc));
    h->poll.data = h.get();
    rc = uv_poll_start(&h->poll, UV_READABLE, OnPoll);
    if (rc != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&h.release()->poll), OnClosed);
      throw Napi::Error::New(env, std::string("L2 heartbeat socket: uv_poll_start: ") + uv_strerror(rc));
    }
    if (!context_) context_ = std::make_unique<Napi::AsyncContext>(env, "vipfarm.l2heartbeat");
    handle_ = h.release();
    return env.Undefined();
  }

  /** send(buf): true when the frame left, false on a send error (counted in stats) */
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (handle_ == nullptr) throw Napi::Error::New(env, "L2 heartbeat socket on " + iface_ + " is not started");
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    return Napi::Boolean::New(env, guarded(env, [&] { return handle_->sock->send(buf.Data(), buf.Length()); }));
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    stopPolling();
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const FrameStats& s = handle_ != nullptr ? handle_->sock->stats() : last_;
    Napi::Object o = Napi::Object::New(env);
    o.Set("sent", Napi::Number::New(env, static_cast<double>(s.sent)));
    o.Set("received", Napi::Number::New(env, static_cast<double>(s.received)));
    o.Set("sendErrors", Napi::Number::New(env, static_cast<double>(s.sendErrors)));
    o.Set("socketErrors", Napi::Number::New(env, static_cast<double>(s.socketErrors)));
    return o;
  }

  void stopPolling() {
    if (handle_ == nullptr) return;
    last_ = handle_->sock->stats();
    handle_->owner = nullptr;
    uv_poll_stop(&handle_->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&handle_->poll), OnClosed);
    handle_ = nullptr;
  }

  void deliver(const uint8_t* payload, size_t len, const uint8_t* src, int64_t rxNs) {
    Napi::Env env = onFrame_.Env();
    Napi::HandleScope scope(env);
    char mac[18];
    snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", src[0], src[1], src[2], src[3], src[4], src[5]);
    try {
      // the receive time as realtime ms with a µs fraction (a double holds that exactly
      // enough), undefined when the kernel gave none
      Napi::Value rx = rxNs > 0 ? Napi::Number::New(env, static_cast<double>(rxNs / 1000) / 1000.0) : env.Undefined();
      onFrame_.MakeCallback(Value(), {Napi::Buffer<uint8_t>::Copy(env, payload, len), Napi::String::New(env, mac), rx}, *context_);
    } catch (const Napi::Error&) {
      // the JS side catches its own errors; one that escapes must not stop the drain
    }
  }

  // As for the ARP responder: a link going down sets a socket error and libuv stops the
  // handle; clear it and keep watching, the socket re-attaches when the link comes back.
  static void OnPoll(uv_poll_t* p, int status, int events) {
    auto* h = static_cast<PollHandle*>(p->data);
    if (status == 0) {
      if (h->owner == nullptr) return;
      FrameSocketWrap* w = h->owner;
      h->sock->drain([w](const uint8_t* payload, size_t len, const uint8_t* src, int64_t rxNs) { w->deliver(payload, len, src, rxNs); });
      return;
    }
    h->sock->clearError();
    uv_poll_start(p, UV_READABLE, OnPoll);
  }

  static void OnClosed(uv_handle_t* h) { delete static_cast<PollHandle*>(reinterpret_cast<uv_poll_t*>(h)->data); }

  std::string iface_;
  uint16_t ethertype_ = 0;
  uint8_t dst_[6];
  Napi::FunctionReference onFrame_;
  std::unique_ptr<Napi::AsyncContext> context_;
  PollHandle* handle_ = nullptr;
  FrameStats last_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("nftApply", Napi::Function::New(env, NftApply));
  exports.Set("nftSetElems", Napi::Function::New(env, NftSetElems));
  exports.Set("nftSetOwnedAndForwarding", Napi::Function::New(env, NftSetOwnedAndForwarding));
  exports.Set("nftSetOwnedAndHold", Napi::Function::New(env, NftSetOwnedAndHold));
  exports.Set("nftGetHolds", Napi::Function::New(env, NftGetHolds));
  exports.Set("realtimeUs", Napi::Function::New(env, RealtimeUs));
  exports.Set("nftGetElems", Napi::Function::New(env, NftGetElems));
  exports.Set("nftCounters", Napi::Function::New(env, NftCounters));
  exports.Set("nftRuleCounts", Napi::Function::New(env, NftRuleCounts));
  exports.Set("nftRemove", Napi::Function::New(env, NftRemove));
  exports.Set("addrAdd", Napi::Function::New(env, AddrAdd));
  exports.Set("addrDel", Napi::Function::New(env, AddrDel));
  exports.Set("neighbours", Napi::Function::New(env, Neighbours));
  exports.Set("ArpResponder", ArpResponderWrap::Init(env));
  exports.Set("FrameSocket", FrameSocketWrap::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(vipfarm_native, Init)
