#!/usr/bin/env python3
"""Play the master to one real phx-agent, for launch authentication tests:
fake_master.py PORT MUNGE_SOCKET TASKS_FILE.

First connection: REGISTERED without a session key; the agent must close it
(prints "DROPPED WITHOUT KEY").  Second connection: REGISTERED with a session
key sealed for the agent's uid (munge -u), as the master does, then one
LAUNCH per line of TASKS_FILE ("MODE TASK_JSON"), MODE one of good, nomac,
wrongkey, replay (that of the last good one again), tampered (signed, then
the task changed: its argv).  Prints every STATUS as "STATUS task state
reason" (acknowledged) until each task has a terminal one or 20 s pass."""
import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import sys
import time

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST"}


class Conn:
    def __init__(self, s):
        self.s, self.buf = s, b""

    def send(self, hdr):
        data = json.dumps(hdr).encode()
        self.s.sendall(struct.pack("!II", len(data), 0) + data)

    def recv(self, timeout):
        """The next frame's header, None on close or timeout."""
        end = time.time() + timeout
        while True:
            if len(self.buf) >= 8:
                hlen, alen = struct.unpack("!II", self.buf[:8])
                if len(self.buf) >= 8 + hlen + alen:
                    hdr = json.loads(self.buf[8 : 8 + hlen])
                    self.buf = self.buf[8 + hlen + alen :]
                    if hdr.get("type") == "HEARTBEAT":
                        self.send({"type": "HEARTBEAT_ACK"})
                        continue
                    return hdr
            left = end - time.time()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                return None
            if not chunk:
                return None
            self.buf += chunk


def accept_register(listener):
    s, _ = listener.accept()
    c = Conn(s)
    reg = c.recv(10)
    assert reg and reg["type"] == "REGISTER", reg
    return c, reg


def canon(task):
    return json.dumps(task, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def main():
    port, sock, tasks_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ls = socket.create_server(("127.0.0.1", port))
    registered = {"type": "REGISTERED", "agent_id": 1, "heartbeat_interval": 1.0,
                  "heartbeat_missed": 5}

    c, _ = accept_register(ls)
    c.send(registered)
    if c.recv(5) is None:
        print("DROPPED WITHOUT KEY", flush=True)
    c.s.close()

    c, reg = accept_register(ls)
    key = os.urandom(32)
    payload = "phx-session %s %s %s" % (reg["name"], reg["nonce"], key.hex())
    cred = subprocess.run(["munge", "-S", sock, "-u", str(os.geteuid()), "-c", "aes128",
                           "-s", payload], check=True, capture_output=True,
                          text=True).stdout.strip()
    c.send(dict(registered, session=cred))

    seq, last_good, pending = 0, 0, set()
    for line in open(tasks_file):
        mode, text = line.split(" ", 1)
        task = json.loads(text)
        pending.add(task["task_id"])
        signed = dict(task)
        if mode == "replay":
            n = last_good  # accepted already
        else:
            seq += 1
            n = seq
        if mode == "good":
            last_good = n
        k = os.urandom(32) if mode == "wrongkey" else key
        if mode == "tampered":
            task["argv"] = ["/bin/sh", "-c", "touch %s.tampered" % task["env"]["MARK"]]
        mac = hmac.new(k, b"phx-launch %d\n" % n + canon(signed).encode(),
                       hashlib.sha256).hexdigest()
        hdr = {"type": "LAUNCH", "task": task}
        if mode != "nomac":
            hdr.update(seq=n, mac=mac)
        c.send(hdr)

    end = time.time() + 20
    while pending and time.time() < end:
        h = c.recv(end - time.time())
        if h is None:
            break
        if h.get("type") != "STATUS":
            continue
        c.send({"type": "STATUS_ACK", "task_id": h["task_id"], "uuid": h["uuid"],
                "framework_id": h["framework_id"]})
        print("STATUS %s %s %s" % (h["task_id"], h["state"], h.get("reason") or "-"),
              flush=True)
        if h["state"] in TERMINAL:
            pending.discard(h["task_id"])
    print("PENDING %s" % " ".join(sorted(pending)) if pending else "ALL DONE", flush=True)


if __name__ == "__main__":
    main()
