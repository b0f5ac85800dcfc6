#!/usr/bin/env python3
"""Checks that includes follow the layer order (docs/architecture.md, "Service layers").

Engine (host/) includes nothing above it; cuda/ only host/; backends/ only host/ and cuda/; each
service/ layer only layers below it (util < db, http < objects < jobs < runner, stores < workers <
api < cli; objects sits above http because the S3 object store speaks HTTP; layers of one rank do not include each other). Prints each offending include and exits 1
when there is any. Usage: check-layers.py [REPO] (default: this script's repository)."""
import os
import re
import sys

SERVICE_RANK = {'util': 0, 'db': 1, 'http': 1, 'objects': 2, 'jobs': 3, 'runner': 4, 'stores': 4,
                'workers': 5, 'api': 6, 'cli': 7}
# What each top-level folder may include (besides itself).
TOP_ALLOWED = {'host': set(), 'cuda': {'host'}, 'backends': {'host', 'cuda'},
               'service': {'host', 'cuda', 'backends'}}
INCLUDE = re.compile(r'\s*#\s*include\s+"([^"]+)"')


def violations(repo):
    for top in TOP_ALLOWED:
        for root, _, files in os.walk(os.path.join(repo, top)):
            for f in sorted(files):
                if not f.endswith(('.hpp', '.cpp', '.cu', '.cuh', '.in')):
                    continue
                path = os.path.join(root, f)
                rel = os.path.relpath(path, repo)
                parts = rel.split(os.sep)
                for n, line in enumerate(open(path, errors='replace'), 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(1).split('/')
                    if len(target) < 2 or target[0] not in TOP_ALLOWED:
                        continue  # same-folder or generated include
                    if target[0] != top:
                        if target[0] not in TOP_ALLOWED[top]:
                            yield f'{rel}:{n}: {top}/ includes {m.group(1)}'
                        continue
                    if top == 'service' and len(parts) > 2 and len(target) > 2:
                        mine, theirs = parts[1], target[1]
                        if mine in SERVICE_RANK and theirs in SERVICE_RANK and mine != theirs and \
                                SERVICE_RANK[theirs] >= SERVICE_RANK[mine]:
                            yield f'{rel}:{n}: service/{mine} includes {m.group(1)}'


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bad = list(violations(repo))
    for v in bad:
        print(v)
    print(f'check-layers: {len(bad)} include(s) against the layer order')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
