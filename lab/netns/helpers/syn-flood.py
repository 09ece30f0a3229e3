#!/usr/bin/env python3
# A paced SYN flood for the data-plane bench: COUNT TCP SYNs to DST:PORT at RATE per second,
# from FLOWS different (source address, source port) pairs in 10.<NET>.0.0/16 (spoofed:
# raw socket, IP_HDRINCL; the node routes its SYN-ACKs back to the client, which drops
# them). Cycling over a bounded set of flows keeps the node's conntrack table small.
# Prints {"sent": n, "seconds": s} as JSON.
import json, socket, struct, sys, time

def checksum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff

dst, port, count, rate, flows, net = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
daddr = socket.inet_aton(dst)
packets = []
for i in range(flows):
    saddr = socket.inet_aton('10.%d.%d.%d' % (net, (i >> 8) & 255, (i & 255) or 1))
    sport = 1024 + (i * 7919) % 60000
    tcp = struct.pack('!HHIIBBHHH', sport, port, i * 2654435761 & 0xffffffff, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = saddr + daddr + struct.pack('!BBH', 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack('!H', checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), i & 0xffff, 0, 64, socket.IPPROTO_TCP, 0, saddr, daddr)
    packets.append(ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:] + tcp)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
target = (dst, 0)
start = time.perf_counter()
sent = 0
burst = 32
while sent < count:
    for k in range(min(burst, count - sent)):
        s.sendto(packets[(sent + k) % flows], target)
    sent += min(burst, count - sent)
    ahead = sent / rate - (time.perf_counter() - start)
    if ahead > 0: time.sleep(ahead)
print(json.dumps({'sent': sent, 'seconds': time.perf_counter() - start}))
