#!/usr/bin/env python3
"""Loads COUNT synthetic events into a running Auditlog server through the
ingest API, in batches of 1,000 over two keep-alive connections.

Usage: load-events.py BASE_URL INGEST_KEY COUNT
The events are deterministic (the same COUNT gives the same events) and
realistic in size: actor, project/app/version, target, a details.changes
list and a context, about 600 bytes of JSON each."""

import http.client
import json
import sys
import threading
import time
import urllib.parse

TYPES = ["Test Case", "Test Suite", "Test Plan", "Test Data", "Element", "Environment"]
ACTIONS = ["Create", "Update", "Delete"]
BASE = 1_735_689_600  # 2025-01-01T00:00:00Z


def event(i):
    t = BASE + i * 3
    return {
        "id": f"bench-{i}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".000000Z",
        "event_type": TYPES[i % len(TYPES)],
        "action": ACTIONS[(i // len(TYPES)) % len(ACTIONS)],
        "actor": {"id": f"u-{i % 97}", "name": f"User {i % 97}", "email": f"user{i % 97}@example.com"},
        "project": f"Project {i % 13}",
        "app": ["Web", "Mobile", "API"][i % 3],
        "version": f"{i % 5}.{i % 7}",
        "target": {"id": f"TC-{i % 5003}", "name": f"Login with SSO, case {i % 5003}"},
        "details": {"changes": [
            {"field": "title", "old": f"Login {i}", "new": f"Login with SSO {i}"},
            {"field": "priority", "old": i % 4, "new": (i + 1) % 4},
        ]},
        "context": {"ip": f"203.0.113.{i % 250}", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "request_id": f"r-{i}"},
    }


def worker(base, key, batches, errors):
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for start, end in batches:
        body = json.dumps({"events": [event(i) for i in range(start, end)]})
        conn.request("POST", "/api/v1/events", body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status != 201:
            errors.append(f"batch {start}: {response.status} {answer[:300]!r}")
            return


def main():
    base, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    batches = [(s, min(s + 1000, count)) for s in range(0, count, 1000)]
    errors = []
    started = time.time()
    threads = [threading.Thread(target=worker, args=(base, key, batches[n::2], errors)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("\n".join(errors))
    seconds = time.time() - started
    print(f"loaded {count} events in {seconds:.1f} s ({count / seconds:,.0f} events/s)")


if __name__ == "__main__":
    main()
