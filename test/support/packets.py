#!/usr/bin/env python3
"""Raw Ethernet frames for the firewall tests, without scapy.

    packets.py tap IFNAME    be the guest: attach to the tap (TUNSETIFF)
    packets.py wire IFNAME   be the far side: an AF_PACKET socket on IFNAME

Both read one JSON frame spec per line on stdin and send it; every frame that
arrives is printed as one JSON line on stdout. The first line out is
{"ready": true}. A spec: {"kind": "udp"|"tcp"|"arp"|"raw", "src_mac",
"dst_mac", "src_ip", "dst_ip", "sport", "dport", "flags" (tcp: "S", "SA", ...),
"payload" (text), "op"/"sha"/"spa"/"tha"/"tpa" (arp), "ethertype" (raw),
"vlan" (optional 802.1Q id)}.
"""

import fcntl
import ipaddress
import json
import os
import socket
import struct
import sys
import threading

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def mac_bytes(mac):
    return bytes(int(h, 16) for h in mac.split(":"))


def mac_text(b):
    return ":".join(f"{x:02x}" for x in b)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_packet(spec, proto, l4):
    src = ipaddress.ip_address(spec["src_ip"])
    dst = ipaddress.ip_address(spec["dst_ip"])
    if src.version == 4:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, proto, len(l4))
        l4 = fill_l4_checksum(proto, l4, pseudo)
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0x1234, 0x4000, 64, proto, 0, src.packed, dst.packed)
        hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
        return 0x0800, hdr + l4
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(l4), proto)
    l4 = fill_l4_checksum(proto, l4, pseudo)
    hdr = struct.pack("!IHBB16s16s", 0x60000000, len(l4), proto, 64, src.packed, dst.packed)
    return 0x86DD, hdr + l4


def fill_l4_checksum(proto, l4, pseudo):
    offset = {6: 16, 17: 6}[proto]
    csum = checksum(pseudo + l4) or 0xFFFF
    return l4[:offset] + struct.pack("!H", csum) + l4[offset + 2 :]


TCP_FLAGS = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}


def build(spec):
    payload = spec.get("payload", "").encode()
    kind = spec["kind"]
    if kind == "udp":
        l4 = struct.pack("!HHHH", spec["sport"], spec["dport"], 8 + len(payload), 0) + payload
        ethertype, body = ip_packet(spec, 17, l4)
    elif kind == "tcp":
        flags = sum(TCP_FLAGS[f] for f in spec.get("flags", "S"))
        l4 = struct.pack("!HHIIBBHHH", spec["sport"], spec["dport"], spec.get("seq", 1000), spec.get("ack", 0), 5 << 4, flags, 65535, 0, 0) + payload
        ethertype, body = ip_packet(spec, 6, l4)
    elif kind == "arp":
        body = struct.pack(
            "!HHBBH6s4s6s4s",
            1, 0x0800, 6, 4, spec.get("op", 1),
            mac_bytes(spec["sha"]), ipaddress.ip_address(spec["spa"]).packed,
            mac_bytes(spec.get("tha", "00:00:00:00:00:00")), ipaddress.ip_address(spec["tpa"]).packed,
        )
        ethertype = 0x0806
    elif kind == "raw":
        ethertype, body = spec["ethertype"], payload
    else:
        raise ValueError(f"unknown kind {kind}")
    tag = b"" if spec.get("vlan") is None else struct.pack("!HH", 0x8100, spec["vlan"])
    frame = mac_bytes(spec["dst_mac"]) + mac_bytes(spec["src_mac"]) + tag + struct.pack("!H", ethertype) + body
    return frame + b"\0" * max(0, 60 - len(frame))


def summary(frame):
    out = {"dst_mac": mac_text(frame[0:6]), "src_mac": mac_text(frame[6:12])}
    ethertype = struct.unpack("!H", frame[12:14])[0]
    rest = frame[14:]
    if ethertype == 0x8100:
        out["vlan"] = struct.unpack("!H", rest[0:2])[0] & 0xFFF
        ethertype = struct.unpack("!H", rest[2:4])[0]
        rest = rest[4:]
    out["ethertype"] = ethertype
    l4 = None
    if ethertype == 0x0800 and len(rest) >= 20:
        ihl = (rest[0] & 0xF) * 4
        total = struct.unpack("!H", rest[2:4])[0]
        out.update(proto=rest[9], src_ip=str(ipaddress.ip_address(rest[12:16])), dst_ip=str(ipaddress.ip_address(rest[16:20])))
        l4 = rest[ihl:total]
    elif ethertype == 0x86DD and len(rest) >= 40:
        plen = struct.unpack("!H", rest[4:6])[0]
        out.update(proto=rest[6], src_ip=str(ipaddress.ip_address(rest[8:24])), dst_ip=str(ipaddress.ip_address(rest[24:40])))
        l4 = rest[40 : 40 + plen]
    elif ethertype == 0x0806 and len(rest) >= 28:
        out.update(
            op=struct.unpack("!H", rest[6:8])[0],
            sha=mac_text(rest[8:14]), spa=str(ipaddress.ip_address(rest[14:18])),
            tpa=str(ipaddress.ip_address(rest[24:28])),
        )
    else:
        out["payload"] = rest.rstrip(b"\0").decode("latin-1")
    if l4 is not None and out["proto"] in (6, 17) and len(l4) >= 8:
        out["sport"], out["dport"] = struct.unpack("!HH", l4[0:4])
        data = l4[8:] if out["proto"] == 17 else l4[(l4[12] >> 4) * 4 :]
        if out["proto"] == 6:
            out["flags"] = "".join(f for f, bit in TCP_FLAGS.items() if l4[13] & bit)
        out["payload"] = data.decode("latin-1")
    return out


def emit(obj, lock=threading.Lock()):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def main():
    mode, ifname = sys.argv[1], sys.argv[2]
    if mode == "tap":
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TAP | IFF_NO_PI))

        def receive():
            return os.read(fd, 65536)

        def send(frame):
            os.write(fd, frame)

    elif mode == "wire":
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((ifname, 0))

        def receive():
            while True:
                frame, addr = sock.recvfrom(65536)
                if addr[2] != PACKET_OUTGOING:
                    return frame

        def send(frame):
            sock.send(frame)

    else:
        raise SystemExit(__doc__)

    def reader():
        while True:
            emit({"rx": summary(receive())})

    threading.Thread(target=reader, daemon=True).start()
    emit({"ready": True})
    for line in sys.stdin:
        if line.strip():
            send(build(json.loads(line)))
            emit({"sent": True})


if __name__ == "__main__":
    main()
