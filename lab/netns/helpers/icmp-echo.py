#!/usr/bin/env python3
# ICMP or ICMPv6 echo from a chosen source address (the test beds have no ping binary): sends COUNT
# echo requests to DST from SRC and prints, as JSON, how many replies came back per
# sequence number in WAIT seconds (2 for one sequence = two hosts answered).
import json, os, select, socket, struct, sys, time

def checksum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff

src, dst, count, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
v6 = ':' in dst
# ICMPv6: the kernel fills in the checksum (it covers a pseudo-header only it knows) and
# hands back the message without the IP header; ICMP: we do both
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) if v6 else socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.bind((src, 0))
ident = os.getpid() & 0xffff
request, reply = (128, 129) if v6 else (8, 0)
for seq in range(count):
    body = struct.pack('!BBHHH', request, 0, 0, ident, seq) + b'vipfarm'
    csum = 0 if v6 else checksum(body)
    s.sendto(struct.pack('!BBHHH', request, 0, csum, ident, seq) + b'vipfarm', (dst, 0))
    time.sleep(0.05)
replies = {}
end = time.time() + wait
while time.time() < end:
    r, _, _ = select.select([s], [], [], max(0, end - time.time()))
    if not r: break
    pkt, addr = s.recvfrom(2048)
    ihl = 0 if v6 else (pkt[0] & 0x0f) * 4
    t, _, _, rid, rseq = struct.unpack('!BBHHH', pkt[ihl:ihl + 8])
    to_us = True if v6 else pkt[16:20] == socket.inet_aton(src)
    if t == reply and rid == ident and socket.inet_pton(s.family, addr[0]) == socket.inet_pton(s.family, dst) and to_us:
        replies[rseq] = replies.get(rseq, 0) + 1
print(json.dumps({'sent': count, 'replies': replies}))
