#!/usr/bin/env python3
"""Play the master to one real phx-agent, for launch and channel
authentication tests: fake_master.py PORT MUNGE_SOCKET TASKS_FILE.

First connection: REGISTERED without a session key; the agent must close it
(prints "DROPPED WITHOUT KEY").  Second connection: REGISTERED with a session
key sealed for the agent's uid (munge -u), as the master does; from then on
every frame either way is sealed (doc/agent.md, "Channel authentication"):
we seal what we send and check what the agent sends (printing "UNSEALED
FROM AGENT type" or "BAD FRAME FROM AGENT why" if it is not).

Then one action per line of TASKS_FILE ("MODE TASK_JSON"):
  good, nomac, wrongkey, replay (the last good one's LAUNCH number again),
  tampered (signed, then the task changed: its argv): one sealed LAUNCH of
  the task, its LAUNCH MAC made as the mode says;
  unsealed-step: an unsealed STEP_LAUNCH in the task's job, whose rank
  would touch the task's MARK;
  unsealed-kill: an unsealed KILL of the task (launched before);
  badmac: a sealed LAUNCH of the task whose frame MAC is wrong;
  oldseq: a sealed LAUNCH of the task, correctly MACed but numbered as the
  previous frame (a replay of the number);
  replayframe: the bytes of the last sealed frame sent, again.
Each of the last five must make the agent close the connection: prints
"DROPPED mode task" (or "NOT DROPPED mode task"), then takes the agent's
new connection and registers it with a fresh key ("REREGISTERED").

Prints every STATUS as "STATUS task state reason" (acknowledged) until each
task launched with a plain mode has a terminal one or 30 s pass."""
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
ATTACKS = {"unsealed-step", "unsealed-kill", "badmac", "oldseq", "replayframe"}


def frame(hdr, attach=b""):
    data = json.dumps(hdr).encode()
    return struct.pack("!II", len(data), len(attach)) + data + attach


def frame_mac(key, direction, seq, inner):
    return hmac.new(key, b"phx-frame %s %d\n" % (direction.encode(), seq) + inner,
                    hashlib.sha256).hexdigest()


class Conn:
    def __init__(self, s):
        self.s, self.buf = s, b""
        self.key, self.sent, self.received = None, 0, 0
        self.last_sealed = None
        self.closed = False

    def raw(self, data):
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True  # the agent dropped us: recv says so

    def sealed(self, hdr, seq=None, bad_mac=False):
        """hdr's frame sealed with our key as number seq (next by default)."""
        inner = frame(hdr)
        n = self.sent + 1 if seq is None else seq
        mac = frame_mac(self.key, "m2a", n, inner)
        if bad_mac:
            mac = ("0" if mac[0] != "0" else "1") + mac[1:]
        return frame({"type": "SEALED", "seq": n, "mac": mac}, inner)

    def send(self, hdr):
        if self.key is None:
            self.raw(frame(hdr))
            return
        data = self.sealed(hdr)
        self.raw(data)
        self.sent += 1
        self.last_sealed = data

    def open_frame(self, hdr, attach):
        """The agent's frame, unsealed once it has the key; None if refused."""
        if self.key is None:
            return hdr
        if hdr.get("type") != "SEALED":
            print("UNSEALED FROM AGENT %s" % hdr.get("type"), flush=True)
            return None
        seq = hdr.get("seq")
        if seq != self.received + 1:
            print("BAD FRAME FROM AGENT seq %s after %d" % (seq, self.received),
                  flush=True)
            return None
        if not hmac.compare_digest(frame_mac(self.key, "a2m", seq, attach),
                                   str(hdr.get("mac"))):
            print("BAD FRAME FROM AGENT mac", flush=True)
            return None
        self.received = seq
        hlen, alen = struct.unpack("!II", attach[:8])
        assert len(attach) == 8 + hlen + alen
        return json.loads(attach[8 : 8 + hlen])

    def recv(self, timeout):
        """The next frame's header, None on close or timeout (closed says)."""
        end = time.time() + timeout
        while True:
            if len(self.buf) >= 8:
                hlen, alen = struct.unpack("!II", self.buf[:8])
                if len(self.buf) >= 8 + hlen + alen:
                    hdr = json.loads(self.buf[8 : 8 + hlen])
                    attach = self.buf[8 + hlen : 8 + hlen + alen]
                    self.buf = self.buf[8 + hlen + alen :]
                    hdr = self.open_frame(hdr, attach)
                    if hdr is None:
                        continue
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
            except socket.timeout:
                return None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk


REGISTERED = {"type": "REGISTERED", "agent_id": 1, "heartbeat_interval": 1.0,
              "heartbeat_missed": 5}


def accept_register(listener):
    s, _ = listener.accept()
    c = Conn(s)
    reg = c.recv(10)
    assert reg and reg["type"] == "REGISTER", reg
    return c, reg


def register_with_key(listener, sock):
    c, reg = accept_register(listener)
    key = os.urandom(32)
    payload = "phx-session %s %s %s" % (reg["name"], reg["nonce"], key.hex())
    cred = subprocess.run(["munge", "-S", sock, "-u", str(os.geteuid()), "-c", "aes128",
                           "-s", payload], check=True, capture_output=True,
                          text=True).stdout.strip()
    c.send(dict(REGISTERED, session=cred))
    c.key = key  # every frame after REGISTERED is sealed
    return c


def canon(task):
    return json.dumps(task, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def on_status(c, h, pending):
    c.send({"type": "STATUS_ACK", "task_id": h["task_id"], "uuid": h["uuid"],
            "framework_id": h["framework_id"]})
    print("STATUS %s %s %s" % (h["task_id"], h["state"], h.get("reason") or "-"),
          flush=True)
    if h["state"] in TERMINAL:
        pending.discard(h["task_id"])


def step_launch(task):
    return {"type": "STEP_LAUNCH", "step": 99, "number": 0, "nspace": "phx.99",
            "origin": "n1", "framework_id": task["framework_id"],
            "task_id": task["task_id"], "nodes": ["n1"], "ranks": [[0]], "node": 0,
            "size": 1, "argv": ["/bin/sh", "-c", "touch %s.step" % task["env"]["MARK"]],
            "env": {}, "cwd": "/tmp", "cores": ["0"]}


def attack(c, mode, task):
    if mode == "unsealed-step":
        c.raw(frame(step_launch(task)))
    elif mode == "unsealed-kill":
        c.raw(frame({"type": "KILL", "framework_id": task["framework_id"],
                     "task_id": task["task_id"], "grace": 0}))
    else:
        hdr = {"type": "LAUNCH", "task": task}
        if mode == "badmac":
            c.raw(c.sealed(hdr, bad_mac=True))
        elif mode == "oldseq":
            c.raw(c.sealed(hdr, seq=c.sent))
        else:
            c.raw(c.last_sealed)


def main():
    port, sock, tasks_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ls = socket.create_server(("127.0.0.1", port))

    c, _ = accept_register(ls)
    c.send(REGISTERED)
    if c.recv(5) is None:
        print("DROPPED WITHOUT KEY", flush=True)
    c.s.close()

    c = register_with_key(ls, sock)
    seq, last_good, pending = 0, 0, set()
    for line in open(tasks_file):
        mode, text = line.split(" ", 1)
        task = json.loads(text)
        if mode in ATTACKS:
            attack(c, mode, task)
            end = time.time() + 10
            while not c.closed and time.time() < end:
                h = c.recv(end - time.time())
                if h and h.get("type") == "STATUS":
                    on_status(c, h, pending)
            print("%s %s %s" % ("DROPPED" if c.closed else "NOT DROPPED", mode,
                                task["task_id"]), flush=True)
            c.s.close()
            c = register_with_key(ls, sock)
            print("REREGISTERED", flush=True)
            seq, last_good = 0, 0  # launch numbers are per connection
            continue
        pending.add(task["task_id"])
        signed = dict(task)
        if mode == "replay":
            n = last_good  # accepted already
        else:
            seq += 1
            n = seq
        if mode == "good":
            last_good = n
        k = os.urandom(32) if mode == "wrongkey" else c.key
        if mode == "tampered":
            task["argv"] = ["/bin/sh", "-c", "touch %s.tampered" % task["env"]["MARK"]]
        mac = hmac.new(k, b"phx-launch %d\n" % n + canon(signed).encode(),
                       hashlib.sha256).hexdigest()
        hdr = {"type": "LAUNCH", "task": task}
        if mode != "nomac":
            hdr.update(seq=n, mac=mac)
        c.send(hdr)

    end = time.time() + 30
    while pending and time.time() < end:
        h = c.recv(end - time.time())
        if h is None:
            if c.closed:
                print("AGENT CLOSED", flush=True)
                break
            continue
        if h.get("type") == "STATUS":
            on_status(c, h, pending)
    print("PENDING %s" % " ".join(sorted(pending)) if pending else "ALL DONE", flush=True)


if __name__ == "__main__":
    main()
