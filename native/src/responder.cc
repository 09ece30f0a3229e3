#include "responder.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>

#include "os_error.h"

namespace vipfarm {

ResponderStats& ResponderStats::operator+=(const ResponderStats& o) {
  requests += o.requests;
  replies += o.replies;
  gratuitous += o.gratuitous;
  sendErrors += o.sendErrors;
  socketErrors += o.socketErrors;
  notMine += o.notMine;
  announcements += o.announcements;
  return *this;
}

uint32_t neighbourSlotOf(const IpAddress& requester) {
  uint32_t folded = 0;
  for (uint32_t i = 0; i < requester.len(); i += 4) {
    uint32_t word;
    std::memcpy(&word, requester.bytes() + i, 4);
    folded ^= ntohl(word);
  }
  return arpSlotOf(folded);
}

void Requesters::setAnswerSlots(const std::vector<uint32_t>* slots) {
  filtered_ = slots != nullptr;
  answer_.reset();
  if (slots != nullptr)
    for (uint32_t s : *slots) answer_.set(s % kArpSlots);
}

bool Requesters::answers(const IpAddress& requester) const { return !filtered_ || answer_.test(neighbourSlotOf(requester)); }

void Requesters::remember(const IpAddress& requester, const uint8_t mac[6]) {
  constexpr size_t kMax = 65536;
  std::array<uint8_t, 17> key{};
  key[0] = requester.isV6() ? 6 : 4;
  std::memcpy(key.data() + 1, requester.bytes(), requester.len());
  auto it = seen_.find(key);
  if (it == seen_.end()) {
    if (seen_.size() >= kMax) return;
    it = seen_.emplace(key, Entry{requester, {}}).first;
  }
  std::memcpy(it->second.mac.data(), mac, 6);
}

void Requesters::forEachIn(const std::vector<uint32_t>& slots, const std::function<void(const IpAddress&, const uint8_t*)>& f) const {
  std::bitset<kArpSlots> want;
  for (uint32_t s : slots) want.set(s % kArpSlots);
  for (const auto& [key, e] : seen_)
    if (want.test(neighbourSlotOf(e.ip))) f(e.ip, e.mac.data());
}

Responder::Responder(const std::string& what, std::vector<IpAddress> vips, const uint8_t mac[6], PacketSocket sock)
    : what_(what), vips_(std::move(vips)), sock_(std::move(sock)) {
  std::memcpy(mac_, mac, 6);
}

uint64_t Responder::announceTo(const std::vector<uint32_t>& slots) {
  if (!sock_.open()) throw OsError("announcement of the " + what_, EBADF);
  uint64_t sent = 0;
  requesters_.forEachIn(slots, [&](const IpAddress& ip, const uint8_t* mac) {
    for (const IpAddress& vip : vips_)
      if (answerUnasked(mac, ip, vip)) ++sent;
  });
  stats_.announcements += sent;
  return sent;
}

void Responder::clearError() {
  if (!sock_.open()) return;
  sock_.clearError();
  ++stats_.socketErrors;
}

}  // namespace vipfarm
