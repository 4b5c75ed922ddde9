#!/usr/bin/env python3
"""Which tables and indexes the writer's commits write to the WAL.

usage: python3 bench/wal-attribution.py DB WAL [--events-per-commit N]

DB and WAL are copies of a store's `auditlog.db` and `auditlog.db-wal`
taken together while the server was stopped with SIGSTOP (so that the pair
is consistent), for example during `bench ingest`:

    kill -STOP $PID; cp STORE/auditlog.db STORE/auditlog.db-wal SNAP/; kill -CONT $PID

Every frame of the WAL's current generation (the frames whose salts match
the header's) up to its last commit frame is a page one commit wrote. The
page's owner comes from SQLite's `dbstat` over a copy of the pair, so the
copies themselves are not changed. Pages `dbstat` does not list are on the
free list: pages a commit wrote and a later one freed (with
`secure_delete`, a freed page is written again, as zeros).

`--events-per-commit` (the server's `auditlog_writer_group_events` sum over
its count) turns frames per commit into WAL bytes per event.
"""
import argparse
import collections
import os
import shutil
import sqlite3
import struct
import tempfile

WAL_HEADER = 32
FRAME_HEADER = 24


def committed_frames(wal_bytes):
    """The page numbers of the committed frames, and the commit count."""
    page_size = struct.unpack('>I', wal_bytes[8:12])[0]
    salts = struct.unpack('>II', wal_bytes[16:24])
    pages, pending, commits = [], [], 0
    offset = WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(wal_bytes):
        page, commit_size, salt1, salt2 = struct.unpack('>IIII', wal_bytes[offset:offset + 16])
        if (salt1, salt2) != salts:
            break
        pending.append(page)
        if commit_size:
            pages.extend(pending)
            pending = []
            commits += 1
        offset += FRAME_HEADER + page_size
    return page_size, pages, commits


def page_owners(db, wal):
    """Page number -> the table or index that owns it, read on a copy."""
    scratch = tempfile.mkdtemp()
    try:
        shutil.copy(db, os.path.join(scratch, 'store.db'))
        shutil.copy(wal, os.path.join(scratch, 'store.db-wal'))
        conn = sqlite3.connect(os.path.join(scratch, 'store.db'))
        owners = dict(conn.execute('SELECT pageno, name FROM dbstat'))
        conn.close()
        return owners
    finally:
        shutil.rmtree(scratch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('db')
    parser.add_argument('wal')
    parser.add_argument('--events-per-commit', type=float)
    args = parser.parse_args()
    with open(args.wal, 'rb') as f:
        page_size, pages, commits = committed_frames(f.read())
    owners = page_owners(args.db, args.wal)
    frames = collections.Counter(owners.get(page, '(free list)') for page in pages)
    total = max(len(pages), 1)
    per_commit = len(pages) / max(commits, 1)
    print(f'{commits} commits, {len(pages)} frames of {page_size} bytes, '
          f'{per_commit:.0f} frames per commit')
    if args.events_per_commit:
        print(f'{per_commit * page_size / args.events_per_commit:,.0f} WAL bytes per event '
              f'at {args.events_per_commit:.0f} events per commit')
    print(f"{'table or index':40s} {'frames':>9s} {'share':>7s} {'per commit':>11s}")
    for name, count in frames.most_common():
        print(f'{name:40s} {count:9d} {100 * count / total:6.1f}% {count / max(commits, 1):11.1f}')


if __name__ == '__main__':
    main()
