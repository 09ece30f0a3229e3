#!/usr/bin/env python3
# ICMP echo from a chosen source address (the test beds have no ping binary): sends COUNT
# echo requests to DST from SRC and prints, as JSON, how many replies came back per
# sequence number in WAIT seconds (2 for one sequence = two hosts answered).
import json, os, select, socket, struct, sys, time

def checksum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff

src, dst, count, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.bind((src, 0))
ident = os.getpid() & 0xffff
for seq in range(count):
    body = struct.pack('!BBHHH', 8, 0, 0, ident, seq) + b'vipfarm'
    s.sendto(struct.pack('!BBHHH', 8, 0, checksum(body), ident, seq) + b'vipfarm', (dst, 0))
    time.sleep(0.05)
replies = {}
end = time.time() + wait
while time.time() < end:
    r, _, _ = select.select([s], [], [], max(0, end - time.time()))
    if not r: break
    pkt, addr = s.recvfrom(2048)
    ihl = (pkt[0] & 0x0f) * 4
    t, _, _, rid, rseq = struct.unpack('!BBHHH', pkt[ihl:ihl + 8])
    if t == 0 and rid == ident and addr[0] == dst and pkt[16:20] == socket.inet_aton(src):
        replies[rseq] = replies.get(rseq, 0) + 1
print(json.dumps({'sent': count, 'replies': replies}))
