#!/usr/bin/env python3
"""Connect to a PMIx server as a PMIx 4 client would, by hand, to send what
libpmix never would.

pmix_hello.py PORT NSPACE RANK [KEY=VALUE...] sends the connect message of a
plain client (kind 0) of NSPACE's RANK; KEY is psec (native), uid and gid
(the caller's: the native credential), bfrops (v41), gds (hash), kind, or
silent=S: send nothing and hold the connection for S seconds.  Prints
"answered STATUS" (the server's first 32-bit reply), "closed" (the server
hung up) or "open" (nothing within 5 s, or within S)."""
import os
import socket
import struct
import sys


def main() -> int:
    port, nspace, rank = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    o = dict(psec="native", uid=str(os.geteuid()), gid=str(os.getegid()),
             bfrops="v41", gds="hash", kind="0", silent="")
    for kv in sys.argv[4:]:
        k, v = kv.split("=", 1)
        o[k] = v
    s = socket.create_connection(("127.0.0.1", port))
    wait = 5.0
    if o["silent"]:
        wait = float(o["silent"])
    else:
        cred = struct.pack("=II", int(o["uid"]), int(o["gid"]))
        msg = (o["psec"].encode() + b"\0" + struct.pack("!I", len(cred)) + cred +
               bytes([int(o["kind"])]) + nspace.encode() + b"\0" + struct.pack("!I", rank) +
               b"4.2.2rc2\0" + o["bfrops"].encode() + b"\0" + bytes([1]) +
               o["gds"].encode() + b"\0" + b"\0")
        s.sendall(struct.pack("=iIQ", -1, 0xFFFFFFFF, len(msg)) + msg)
    s.settimeout(wait)
    try:
        got = s.recv(4)
    except socket.timeout:
        print("open")
        return 0
    except ConnectionResetError:
        got = b""
    if len(got) < 4:
        print("closed")
    else:
        print("answered %d" % struct.unpack("!i", got)[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
