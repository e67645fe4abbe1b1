#!/usr/bin/env python3
"""Speak the agent wire by hand, for tests that send what a real agent never
would: [WIRE_HALF_CLOSE=1] [WIRE_GAP=S] wire.py PORT FILE... sends each file's bytes as given (raw) or, for a
file ending in .json, as one frame with that JSON header (WIRE_GAP: S seconds apart), (then, with WIRE_HALF_CLOSE, shuts down its sending side), then prints every
frame received (one JSON header per line; a SEALED frame's with its inner
frame's header as "inner") until the peer closes or 3 s pass."""
import json
import os
import socket
import struct
import sys
import time


def frame(header: bytes, attach: bytes = b"") -> bytes:
    return struct.pack("!II", len(header), len(attach)) + header + attach


def main() -> int:
    port = int(sys.argv[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    gap = float(os.environ.get("WIRE_GAP", "0"))
    for i, path in enumerate(sys.argv[2:]):
        if i and gap:
            time.sleep(gap)
        data = open(path, "rb").read()
        s.sendall(frame(data) if path.endswith(".json") else data)
    if os.environ.get("WIRE_HALF_CLOSE"):
        s.shutdown(socket.SHUT_WR)
    buf = b""
    deadline = time.time() + 3
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 8:
            hlen, alen = struct.unpack("!II", buf[:8])
            if len(buf) < 8 + hlen + alen:
                break
            hdr = json.loads(buf[8 : 8 + hlen])
            if hdr.get("type") == "SEALED" and alen >= 8:
                # After REGISTERED the master seals every frame (doc/agent.md,
                # "Channel authentication"): show the inner header too; its
                # MAC is not checked (we have no key).
                inner = buf[8 + hlen : 8 + hlen + alen]
                ilen = struct.unpack("!I", inner[:4])[0]
                hdr["inner"] = json.loads(inner[8 : 8 + ilen])
            print(json.dumps(hdr), flush=True)
            buf = buf[8 + hlen + alen :]
    print("CLOSED" if time.time() < deadline else "OPEN", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
