"""Continuous TCP prober, run inside a pod namespace: ``prober.py IP PORT SECONDS``.

Opens a new connection every 20 ms for SECONDS and prints ``{"ok": n, "failed": m}``; each
attempt waits up to 1 s (a dropped SYN), so a gap in enforcement shows up as a changed count.
"""

import json
import socket
import sys
import time

ip, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
counts = {"ok": 0, "failed": 0}
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        with socket.create_connection((ip, port), timeout=1.0):
            counts["ok"] += 1
    except OSError:
        counts["failed"] += 1
    time.sleep(0.02)
print(json.dumps(counts))
