"""Drives a real Qdrant Edge shard (PyPI qdrant-edge-py) for
cli/tests/qdrant_edge.rs: creates, writes, updates and optimizes a shard,
and prints a digest of what a loaded shard answers.

Every point's vector is a function of its id and version (its payload `v`),
so a loaded shard can be checked point by point without the original.
"""
import json
import random
import sys
import time

from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeVectorParams,
    Point,
    Query,
    QueryRequest,
    ScrollRequest,
    UpdateOperation,
)

DIM = 64


def vector(point_id, version):
    rnd = random.Random(point_id * 1_000_003 + version)
    return [rnd.uniform(-1.0, 1.0) for _ in range(DIM)]


def point(point_id, version):
    return Point(point_id, vector(point_id, version), {"id": point_id, "v": version})


def config():
    # a low indexing threshold so that optimize() builds an HNSW index
    # (vector_index/graph.bin) for a shard of a few MiB
    return EdgeConfig(
        vectors=EdgeVectorParams(size=DIM, distance=Distance.Dot),
        optimizers=EdgeOptimizersConfig(indexing_threshold=1000, default_segment_number=2),
    )


def upsert(shard, points, batch=500):
    for k in range(0, len(points), batch):
        shard.update(UpdateOperation.upsert_points(points[k : k + batch]))


def create(path, count):
    shard = EdgeShard.create(path, config())
    upsert(shard, [point(i, 0) for i in range(count)])
    shard.flush()
    shard.close()


def write(path, start, seconds):
    """Appends batches of new points, flushing each, until `seconds` pass;
    prints the highest id flushed after each batch."""
    shard = EdgeShard.load(path)
    next_id = start
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        upsert(shard, [point(i, 0) for i in range(next_id, next_id + 200)])
        shard.flush()
        next_id += 200
        print(next_id, flush=True)
    shard.close()


def update(path, every):
    """Gives every `every`-th point a new version (every=20: 5% of points)."""
    shard = EdgeShard.load(path)
    count = shard.count(CountRequest())
    upsert(shard, [point(i, 1) for i in range(0, count, every)])
    shard.flush()
    shard.close()


def optimize(path):
    shard = EdgeShard.load(path)
    changed = shard.optimize()
    shard.flush()
    shard.close()
    print(json.dumps({"optimized": changed}))


def digest(path):
    shard = EdgeShard.load(path)
    info = shard.info()
    count = shard.count(CountRequest())
    records = []
    offset = None
    while True:
        page, offset = shard.scroll(
            ScrollRequest(offset=offset, limit=1000, with_payload=True, with_vector=True)
        )
        records.extend(page)
        if offset is None:
            break
    # a point is "bad" if its payload is missing (torn: a copy made while
    # the shard was written can hold a point whose payload was not yet
    # written) or its vector is not the one its payload's version names
    bad = []
    versions = {}
    for r in records:
        v = (r.payload or {}).get("v")
        versions[r.id] = v
        got = r.vector if isinstance(r.vector, list) else list(r.vector.values())[0]
        if v is None or len(got) != DIM or any(
            abs(a - b) > 1e-5 for a, b in zip(got, vector(r.id, v))
        ):
            bad.append(r.id)
    bad_ids = set(bad)
    rnd = random.Random(42)
    queries = []
    score_errors = 0
    for _ in range(5):
        q = [rnd.uniform(-1.0, 1.0) for _ in range(DIM)]
        hits = shard.query(QueryRequest(limit=10, query=Query.Nearest(q), with_payload=True))
        queries.append([[h.id, round(h.score, 4)] for h in hits])
        for h in hits:
            v = (h.payload or {}).get("v")
            if v is None or h.id in bad_ids:
                continue  # counted in bad
            want = sum(a * b for a, b in zip(q, vector(h.id, v)))
            if abs(want - h.score) > 1e-3 * max(1.0, abs(want)):
                score_errors += 1
    shard.close()
    ids = sorted(versions)
    print(
        json.dumps(
            {
                "count": count,
                "records": len(records),
                "segments": info.segments_count,
                "indexed": info.indexed_vectors_count,
                "max_id": ids[-1] if ids else None,
                "first_missing": next(
                    (i for i, want in enumerate(ids) if i != want), len(ids)
                ),
                "updated": sum(1 for v in versions.values() if v),
                "bad": len(bad),
                "first_bad": min(bad) if bad else None,
                "score_errors": score_errors,
                "queries": queries,
            }
        )
    )


if __name__ == "__main__":
    cmd, path, *rest = sys.argv[1:]
    if cmd == "create":
        create(path, int(rest[0]))
    elif cmd == "write":
        write(path, int(rest[0]), float(rest[1]))
    elif cmd == "update":
        update(path, int(rest[0]))
    elif cmd == "optimize":
        optimize(path)
    elif cmd == "digest":
        digest(path)
    else:
        sys.exit(f"unknown command {cmd}")
