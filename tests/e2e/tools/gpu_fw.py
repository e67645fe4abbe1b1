#!/usr/bin/env python3
"""A Mesos-JSON framework that accepts GPUs, for the end-to-end test t0800.

  gpu_fw.py MASTER first STATEFILE OUT   accept GPUs 0 and 1 (by device id)
                                         for a task that writes its GPU
                                         variables to OUT and sleeps; exit
                                         once it runs, without TEARDOWN
  gpu_fw.py MASTER second PREFIX OUT     a new framework: accept GPU 0 (must
                                         be refused), then 1 GPU by count
                                         for a task that writes its GPU
                                         variables to OUT
  gpu_fw.py MASTER offer                 print one offer, tear down
  gpu_fw.py MASTER teardown STATEFILE    resubscribe as `first`'s framework
                                         and tear it down

Each offer is printed as "offer gpus N ids [..] numa [..]"."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesos_fw import Stream  # noqa: E402

# The GPU variables, and whether /dev/full opens: t0800 makes it a device
# file of GPU 1, which the devices cgroup of a task without GPU 1 denies.
SHOW = ('full=$(head -c1 /dev/full >/dev/null 2>&1 && echo ok || echo denied); '
        'echo "CVD=$CUDA_VISIBLE_DEVICES ROCR=$ROCR_VISIBLE_DEVICES '
        'ORD=$GPU_DEVICE_ORDINAL ORDER=$CUDA_DEVICE_ORDER PHX=$PHX_GPUS full=$full" > {}')


def next_offer(s):
    while True:
        ev = s.event()
        if ev["type"] == "OFFERS":
            offer = ev["offers"]["offers"][0]
            scalars = {r["name"]: r["scalar"]["value"] for r in offer["resources"]}
            topo = offer["topology"]
            print("offer gpus", int(scalars.get("gpus", 0)), "ids", topo["gpu_ids"],
                  "numa", [b["gpus"] for b in topo["numa"]], flush=True)
            return offer


def task(offer, task_id, cmd, ngpus, ids=None):
    ti = {"name": task_id, "task_id": {"value": task_id}, "agent_id": offer["agent_id"],
          "resources": [
              {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}},
              {"name": "mem", "type": "SCALAR", "scalar": {"value": 64.0}},
              {"name": "gpus", "type": "SCALAR", "scalar": {"value": ngpus}}],
          "command": {"shell": True, "value": cmd}}
    if ids is not None:
        ti["gpus"] = ids
    return ti


def accept(s, offer, ti, expect=202):
    return s.call({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [ti]}}],
        "filters": {"refuse_seconds": 0.1}}}, expect)


def wait_state(s, task_id, states):
    while True:
        ev = s.event()
        if ev["type"] == "UPDATE":
            st = ev["update"]["status"]
            s.ack(st)
            if st["task_id"]["value"] == task_id:
                print(task_id, st["state"], st.get("message", ""), flush=True)
                if st["state"] in states:
                    return st["state"]


def main():
    master, mode = sys.argv[1], sys.argv[2]
    if mode == "first":
        s = Stream(master, failover=600.0)
        offer = next_offer(s)
        accept(s, offer, task(offer, "gpu-a", SHOW.format(sys.argv[4]) + "; exec sleep 607",
                              2, [0, 1]))
        wait_state(s, "gpu-a", ("TASK_RUNNING", "TASK_FAILED", "TASK_ERROR"))
        json.dump({"framework_id": s.framework_id}, open(sys.argv[3], "w"))
        return 0
    if mode == "second":
        prefix, out = sys.argv[3], sys.argv[4]
        s = Stream(master)
        offer = next_offer(s)
        body = accept(s, offer, task(offer, prefix + "-taken", "true", 1, [0]), 400)
        print("refused:", body, flush=True)
        offer = next_offer(s)
        accept(s, offer, task(offer, prefix + "-count", SHOW.format(out), 1))
        wait_state(s, prefix + "-count", ("TASK_FINISHED", "TASK_FAILED", "TASK_ERROR"))
        s.call({"type": "TEARDOWN"})
        return 0
    if mode == "offer":
        s = Stream(master)
        next_offer(s)
        s.call({"type": "TEARDOWN"})
        return 0
    if mode == "teardown":
        saved = json.load(open(sys.argv[3]))
        s = Stream(master, framework_id=saved["framework_id"], failover=600.0)
        while s.event()["type"] != "SUBSCRIBED":
            pass
        s.call({"type": "TEARDOWN"})
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main())
