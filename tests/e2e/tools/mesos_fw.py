#!/usr/bin/env python3
"""A framework written only against Mesos' v1 HTTP scheduler API in JSON, as
third-party frameworks are: no munge, no Phalanx extensions.  It talks to the
master like it would talk to Mesos, for the end-to-end tests.

  mesos_fw.py MASTER launch CMD         run CMD as one task; print its states
  mesos_fw.py MASTER sleeper STATEFILE  launch `sleep 600`, save ids, exit
                                        without TEARDOWN (a crashed scheduler)
  mesos_fw.py MASTER resume STATEFILE   resubscribe with the saved id; print
                                        the RECONCILE answers for the task and
                                        for an unknown task, then exit
  mesos_fw.py MASTER requests           send one REQUEST of two gang requests,
                                        print its answer (status and body)
  mesos_fw.py MASTER longtime           a gang with a 200-year task (refused),
                                        then a 100-year task (runs)
  mesos_fw.py MASTER signal FILE        SIGNAL (our extension): bad calls and
                                        another framework's refused, then USR1
                                        to a running task that traps it (FILE)
  FW_ROLE: the role to subscribe with (default "*")

Every event line is checked to be ASCII (non-ASCII must arrive escaped)."""
import http.client
import json
import os
import sys
import time


class Stream:
    def __init__(self, master, framework_id=None, failover=0.0):
        host, port = master.split(":")
        self.host, self.port = host, int(port)
        self.conn = http.client.HTTPConnection(host, self.port, timeout=30)
        info = {"user": os.environ.get("FW_USER", "root"), "name": "mesos-json-fw \u00e9t\u00e9",
                "roles": [os.environ.get("FW_ROLE", "*")], "failover_timeout": failover,
                "hostname": None, "webui_url": None}
        if framework_id:
            info["id"] = {"value": framework_id}
        else:
            info["id"] = None  # explicit null = absent
        body = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}})
        self.conn.request("POST", "/api/v1/scheduler", body,
                          {"Content-Type": "application/json",
                           "Accept": "application/json"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise SystemExit(f"SUBSCRIBE answered {self.resp.status}: {self.resp.read()!r}")
        self.stream_id = self.resp.getheader("Mesos-Stream-Id")
        self.framework_id = None

    def event(self):
        line = b""
        while not line.endswith(b"\n"):
            c = self.resp.read(1)
            if not c:
                raise SystemExit("event stream closed")
            line += c
        data = self.resp.read(int(line))
        data.decode("ascii")  # raises if the master sent raw non-ASCII
        ev = json.loads(data)
        if ev["type"] == "SUBSCRIBED":
            self.framework_id = ev["subscribed"]["framework_id"]["value"]
        return ev

    def call(self, call, expect=202):
        call["framework_id"] = {"value": self.framework_id}
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        c.request("POST", "/api/v1/scheduler", json.dumps(call),
                  {"Content-Type": "application/json", "Mesos-Stream-Id": self.stream_id})
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != expect:
            raise SystemExit(f"{call['type']} answered {r.status}: {body!r}")
        return body.decode()

    def ack(self, status):
        if "uuid" in status:
            self.call({"type": "ACKNOWLEDGE", "acknowledge": {
                "agent_id": status["agent_id"], "task_id": status["task_id"],
                "uuid": status["uuid"]}})


def task_info(offer, task_id, cmd):
    return {"name": task_id, "task_id": {"value": task_id},
            "agent_id": offer["agent_id"],
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "*"},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 64.0}, "role": "*"}],
            "command": {"shell": True, "value": cmd}}


def launch_one(s, task_id, cmd):
    while True:
        ev = s.event()
        if ev["type"] == "OFFERS":
            offers = ev["offers"]["offers"]
            first = offers[0]
            s.call({"type": "ACCEPT", "accept": {
                "offer_ids": [first["id"]],
                "operations": [{"type": "LAUNCH", "launch": {
                    "task_infos": [task_info(first, task_id, cmd)]}}],
                "filters": {"refuse_seconds": 5.0}}})
            if len(offers) > 1:
                s.call({"type": "DECLINE", "decline": {
                    "offer_ids": [o["id"] for o in offers[1:]],
                    "filters": {"refuse_seconds": 60.0}}})
            return first


def main():
    master, mode = sys.argv[1], sys.argv[2]
    if mode == "launch":
        s = Stream(master)
        launch_one(s, "mesos-task-1", sys.argv[3])
        while True:
            ev = s.event()
            if ev["type"] == "UPDATE":
                st = ev["update"]["status"]
                print(st["task_id"]["value"], st["state"], st.get("message", ""), flush=True)
                s.ack(st)
                if st["state"] not in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"):
                    s.call({"type": "TEARDOWN"})
                    return 0 if st["state"] == "TASK_FINISHED" else 1
    if mode == "requests":
        s = Stream(master)
        while s.event()["type"] != "SUBSCRIBED":
            pass
        req = {"bundles": 1, "kind": "any", "cpus": 1, "expires_in_seconds": 60}
        call = {"type": "REQUEST",
                "request": {"requests": [dict(req, id="g1"), dict(req, id="g2")]}}
        call["framework_id"] = {"value": s.framework_id}
        c = http.client.HTTPConnection(s.host, s.port, timeout=30)
        c.request("POST", "/api/v1/scheduler", json.dumps(call),
                  {"Content-Type": "application/json", "Mesos-Stream-Id": s.stream_id})
        r = c.getresponse()
        print(r.status, r.read().decode(), flush=True)
        # none of them was kept: the master's state lists the framework's
        st = http.client.HTTPConnection(s.host, s.port, timeout=30)
        st.request("GET", "/state")
        resp = st.getresponse()
        if resp.status != 200:
            print("GET /state:", resp.status, resp.read().decode(), flush=True)
            return 1
        fws = json.loads(resp.read())
        mine = [f for f in fws.get("frameworks", []) if f.get("id") == s.framework_id]
        print("held:", sum(f.get("requests", 0) for f in mine), flush=True)
        s.call({"type": "TEARDOWN"})
        return 0
    if mode == "sleeper":
        s = Stream(master, failover=float(sys.argv[4]) if len(sys.argv) > 4 else 30.0)
        launch_one(s, "sleeper-1", "sleep 600")
        while True:
            ev = s.event()
            if ev["type"] == "UPDATE":
                st = ev["update"]["status"]
                s.ack(st)
                if st["state"] == "TASK_RUNNING":
                    json.dump({"framework_id": s.framework_id}, open(sys.argv[3], "w"))
                    print("running", s.framework_id, flush=True)
                    return 0  # exits without TEARDOWN: a scheduler crash
    if mode == "resume":
        saved = json.load(open(sys.argv[3]))
        s = Stream(master, framework_id=saved["framework_id"], failover=6.0)
        while s.event()["type"] != "SUBSCRIBED":
            pass
        s.call({"type": "RECONCILE", "reconcile": {"tasks": [
            {"task_id": {"value": "sleeper-1"}}, {"task_id": {"value": "no-such-task"}}]}})
        seen = {}
        deadline = time.time() + 20
        while len(seen) < 2 and time.time() < deadline:
            ev = s.event()
            if ev["type"] == "UPDATE":
                st = ev["update"]["status"]
                seen[st["task_id"]["value"]] = st["state"]
        for k in sorted(seen):
            print(k, seen[k], flush=True)
        if len(sys.argv) > 4 and sys.argv[4] == "teardown":
            s.call({"type": "TEARDOWN"})
        return 0
    if mode == "badgang":
        # Offers of two agents; one task fits, the other asks for too much:
        # the whole ACCEPT is refused and nothing runs.
        s = Stream(master)
        offers = []
        while len(offers) < 2:
            ev = s.event()
            if ev["type"] == "OFFERS":
                offers += ev["offers"]["offers"]
        good = task_info(offers[0], "gang-a", "sleep 30")
        bad = task_info(offers[1], "gang-b", "sleep 30")
        bad["resources"][0]["scalar"]["value"] = 999.0
        ids = [offers[0]["id"], offers[1]["id"]]
        accept = {"type": "ACCEPT", "accept": {"offer_ids": ids, "operations": [
            {"type": "LAUNCH", "launch": {"task_infos": [good, bad]}}]}}
        print("invalid gang:", s.call(accept, 400), flush=True)
        print("accepted twice:", s.call(accept, 400), flush=True)
        junk = {"type": "ACCEPT", "accept": {"offer_ids": "nope"}}
        print("wrong type:", s.call(junk, 400), flush=True)
        neg = {"type": "DECLINE", "decline": {"offer_ids": [], "filters": {"refuse_seconds": -1}}}
        print("negative:", s.call(neg, 400), flush=True)
        # Gang requests: malformed limits and agent lists are refused by
        # name; a list of agents that cannot hold the gang is refused.
        def request(**fields):
            req = {"id": "r1", "bundles": 2, "kind": "socket", "cpus": 1}
            req.update(fields)
            return {"type": "REQUEST", "request": {"requests": [req]}}
        print("bad agents:", s.call(request(agents=["1", "x"]), 400), flush=True)
        print("bad per_socket:", s.call(request(kind="any", per_socket=1), 400),
              flush=True)
        print("min_agents:", s.call(request(min_agents=3), 400), flush=True)
        print("no agents:", s.call(request(agents=[]), 400), flush=True)
        print("signed agent:", s.call(request(agents=["+1"]), 400), flush=True)
        one = offers[0]["agent_id"]["value"]
        print("too few agents:",
              s.call(request(cpus=2, per_agent=1, agents=[one]), 400), flush=True)
        print("negative agent_mem:", s.call(request(agent_mem=-1), 400), flush=True)
        print("whole_mem text:", s.call(request(whole_mem="yes"), 400), flush=True)
        print("agent_mem too big:", s.call(request(agent_mem=1e9), 400), flush=True)
        # a call refused keeps none of its requests: r9 can be asked again
        ok = {"id": "r9", "bundles": 1, "kind": "any", "cpus": 1}
        half = {"type": "REQUEST", "request": {"requests": [ok, dict(ok, id="r10", bundles=0)]}}
        print("half:", s.call(half, 400), flush=True)
        print("again:", s.call({"type": "REQUEST", "request": {"requests": [ok]}}, 202),
              flush=True)
        s.call({"type": "REQUEST", "request": {"cancel": ["r9"]}}, 202)
        # No update may arrive for gang-a: wait for one more offer round.
        deadline = time.time() + 3
        while time.time() < deadline:
            ev = s.event()
            if ev["type"] == "UPDATE":
                print("UNEXPECTED", json.dumps(ev), flush=True)
            if ev["type"] == "OFFERS":
                break
        s.call({"type": "TEARDOWN"})
        return 0
    if mode == "longtime":
        # A gang whose second task asks for 200 years is refused whole (the
        # agents allow at most 100); one of exactly 100 years then runs.
        s = Stream(master)
        offers = []
        while len(offers) < 2:
            ev = s.event()
            if ev["type"] == "OFFERS":
                offers += ev["offers"]["offers"]
        year_ns = 365 * 86400 * 10**9
        good = task_info(offers[0], "long-a", "sleep 30")
        bad = task_info(offers[1], "long-b", "sleep 30")
        bad["max_completion_time"] = {"nanoseconds": 200 * year_ns}
        accept = {"type": "ACCEPT", "accept": {
            "offer_ids": [offers[0]["id"], offers[1]["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [good, bad]}}],
            "filters": {"refuse_seconds": 0.0}}}
        print("200 years:", s.call(accept, 400), flush=True)
        s.call({"type": "REVIVE"})
        deadline = time.time() + 20
        launched = False
        while time.time() < deadline:
            ev = s.event()
            if ev["type"] == "OFFERS" and not launched:
                first = ev["offers"]["offers"][0]
                ti = task_info(first, "long-c", "sleep 30")
                ti["max_completion_time"] = {"nanoseconds": 100 * year_ns}
                s.call({"type": "ACCEPT", "accept": {
                    "offer_ids": [first["id"]], "operations": [
                        {"type": "LAUNCH", "launch": {"task_infos": [ti]}}]}})
                launched = True
            if ev["type"] == "UPDATE":
                st = ev["update"]["status"]
                print(st["task_id"]["value"], st["state"], st.get("message", ""),
                      flush=True)
                s.ack(st)
                if st["task_id"]["value"] == "long-c" and \
                        st["state"] not in ("TASK_STAGING", "TASK_STARTING"):
                    break
        s.call({"type": "TEARDOWN"})
        return 0
    if mode == "signal":
        mark = sys.argv[3]
        s = Stream(master)
        launch_one(s, "sig-1", "trap 'echo got USR1 >> %s' USR1; touch %s.ready; "
                   "while :; do sleep 0.2; done" % (mark, mark))
        while True:
            ev = s.event()
            if ev["type"] == "UPDATE":
                st = ev["update"]["status"]
                s.ack(st)
                if st["state"] == "TASK_RUNNING":
                    break
        deadline = time.time() + 10  # its trap is set
        while time.time() < deadline and not os.path.exists(mark + ".ready"):
            time.sleep(0.1)
        def sig(task, signal, to):
            return {"type": "SIGNAL", "signal": {"task_id": {"value": task},
                                                 "signal": signal, "to": to}}
        print("signal 0:", s.call(sig("sig-1", 0, "main"), 400), flush=True)
        print("signal 32:", s.call(sig("sig-1", 32, "main"), 400), flush=True)
        print("signal 65:", s.call(sig("sig-1", 65, "main"), 400), flush=True)
        print("bad to:", s.call(sig("sig-1", 10, "everyone"), 400), flush=True)
        print("unknown task:", s.call(sig("nope", 10, "main"), 400), flush=True)
        print("no task:", s.call({"type": "SIGNAL", "signal": {"signal": 10,
                                                              "to": "main"}}, 400),
              flush=True)
        other = Stream(master)
        while other.event()["type"] != "SUBSCRIBED":
            pass
        print("another's task:", other.call(sig("sig-1", 10, "main"), 400), flush=True)
        other.call({"type": "TEARDOWN"})
        s.call(sig("sig-1", 10, "main"))
        deadline = time.time() + 10
        while time.time() < deadline and not os.path.exists(mark):
            time.sleep(0.1)
        time.sleep(0.5)
        print("still running after USR1:", s.call({"type": "RECONCILE", "reconcile": {
            "tasks": [{"task_id": {"value": "sig-1"}}]}}) == "", flush=True)
        while True:
            ev = s.event()
            if ev["type"] == "UPDATE":
                print("sig-1", ev["update"]["status"]["state"], flush=True)
                break
        s.call({"type": "TEARDOWN"})
        return 0
    raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    sys.exit(main())
