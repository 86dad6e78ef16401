//! Catalog insert and lookup at 1M and 10M blobs (dedup lookups happen for
//! every new chunk; restore planning looks up every chunk of a snapshot).
//! Set ARCA_BENCH_CATALOG_SIZES=1000000 to skip the 10M case.

use std::hint::black_box;

use arca_engine::format::compress::Compression;
use arca_engine::format::id::{BlobId, IndexId, PackId, RepoId};
use arca_engine::format::index::{IndexSegment, IndexedPack};
use arca_engine::format::pack::{BlobKind, PackEntry};
use arca_engine::store::catalog::Catalog;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn id(n: u64, salt: u8) -> [u8; 32] {
    *blake3::hash(&[&n.to_le_bytes()[..], &[salt]].concat()).as_bytes()
}

/// A segment of `packs` packs with `per_pack` blobs, blob numbers from `first`.
fn segment(first: u64, packs: u64, per_pack: u64) -> IndexSegment {
    IndexSegment {
        packs: (0..packs)
            .map(|p| {
                let base = first + p * per_pack;
                IndexedPack {
                    id: PackId(id(base, 1)),
                    size: per_pack * 600_000,
                    entries: (0..per_pack)
                        .map(|i| PackEntry {
                            kind: BlobKind::Data,
                            compression: Compression::Zstd,
                            id: BlobId(id(base + i, 0)),
                            offset: i * 600_000,
                            length: 600_000,
                            raw_length: 700_000,
                        })
                        .collect(),
                }
            })
            .collect(),
        supersedes: vec![],
        base: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let sizes: Vec<u64> = std::env::var("ARCA_BENCH_CATALOG_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000]);
    let mut g = c.benchmark_group("catalog");
    g.sample_size(10);
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path(), &RepoId([n as u8; 32])).unwrap();
        let per_seg = 100_000u64;
        for s in 0..n / per_seg {
            cat.add_segment(&IndexId(id(s, 2)), &segment(s * per_seg, per_seg / 32, 32))
                .unwrap();
        }
        let mut next = n;
        g.throughput(Throughput::Elements(10_000));
        g.bench_with_input(BenchmarkId::new("insert-10k", n), &n, |b, _| {
            b.iter(|| {
                cat.add_segment(&IndexId(id(next, 2)), &segment(next, 10_000 / 32, 32))
                    .unwrap();
                next += 10_000;
            })
        });
        let mut k = 0u64;
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("lookup-hit", n), &n, |b, &n| {
            b.iter(|| {
                k = (k + 7_777_777) % n;
                black_box(
                    cat.locations(BlobKind::Data, &BlobId(id(k, 0)))
                        .unwrap()
                        .remove(0),
                )
            })
        });
        g.bench_with_input(BenchmarkId::new("contains-miss", n), &n, |b, _| {
            b.iter(|| {
                k += 1;
                black_box(cat.contains(BlobKind::Data, &BlobId(id(k, 9))).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
