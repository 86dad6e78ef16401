//! Per-stage throughput, one core: chunking, keyed hashing, compression
//! (per level, compressible and incompressible data), encryption, pack
//! write and read. Figures are bytes per second per core.

use std::hint::black_box;

use arca_benches::{compressible, embeddings, random};
use arca_engine::format::chunker::{Chunker, ChunkerParams};
use arca_engine::format::compress::{self, CompressionMode};
use arca_engine::format::crypto::{MasterKey, label};
use arca_engine::format::pack::{self, BlobKind, PackBuilder};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const N: usize = 16 << 20;

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("sql-dump", compressible(N)),
        ("embeddings", embeddings(N)),
        ("random", random(N, 1)),
    ]
}

fn chunking(c: &mut Criterion) {
    let data = random(N, 2);
    let ch = Chunker::new(ChunkerParams::default(), &[3; 32]);
    let mut g = c.benchmark_group("chunker");
    g.throughput(Throughput::Bytes(N as u64));
    g.bench_function("fastcdc-sequential", |b| {
        b.iter(|| black_box(ch.boundaries(&data, true)))
    });
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    g.bench_function("fastcdc-parallel-2-threads", |b| {
        b.iter(|| two.install(|| black_box(ch.boundaries_parallel(&data, true))))
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let data = random(N, 4);
    let key = MasterKey::from_secret([5; 32]);
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Bytes(N as u64));
    // blob ids are keyed BLAKE3 of ~512 KiB chunks
    g.bench_function("keyed-blake3-512KiB-chunks", |b| {
        b.iter(|| {
            for ch in data.chunks(512 << 10) {
                black_box(key.blob_id(ch));
            }
        })
    });
    g.bench_function("blake3-file-hash", |b| {
        b.iter(|| black_box(blake3::hash(&data)))
    });
    g.finish();
}

fn compression(c: &mut Criterion) {
    let mut g = c.benchmark_group("compress");
    g.throughput(Throughput::Bytes(N as u64));
    g.sample_size(10);
    for (name, data) in inputs() {
        for level in [1, 3, 6] {
            g.bench_with_input(
                BenchmarkId::new(name, format!("zstd-{level}")),
                &data,
                |b, d| {
                    b.iter(|| {
                        for ch in d.chunks(512 << 10) {
                            black_box(compress::compress(ch, CompressionMode::Level(level)));
                        }
                    })
                },
            );
        }
        let stored: Vec<_> = data
            .chunks(512 << 10)
            .map(|ch| {
                let (s, how) = compress::compress(ch, CompressionMode::Auto);
                (s.into_owned(), how, ch.len())
            })
            .collect();
        let ratio =
            stored.iter().map(|(s, _, _)| s.len()).sum::<usize>() as f64 / data.len() as f64;
        eprintln!(
            "{name}: auto level stores {:.1}% of the input",
            ratio * 100.0
        );
        g.bench_with_input(
            BenchmarkId::new(name, "decompress-auto"),
            &stored,
            |b, st| {
                b.iter(|| {
                    for (s, how, n) in st {
                        black_box(compress::decompress(s.clone(), *how, *n).unwrap());
                    }
                })
            },
        );
    }
    g.finish();
}

fn encryption(c: &mut Criterion) {
    let data = random(N, 6);
    let key = MasterKey::from_secret([7; 32]);
    let sealed: Vec<Vec<u8>> = data
        .chunks(512 << 10)
        .map(|ch| key.seal(label::DATA_BLOB, ch))
        .collect();
    let mut g = c.benchmark_group("xchacha20poly1305");
    g.throughput(Throughput::Bytes(N as u64));
    g.bench_function("seal-512KiB", |b| {
        b.iter(|| {
            for ch in data.chunks(512 << 10) {
                black_box(key.seal(label::DATA_BLOB, ch));
            }
        })
    });
    g.bench_function("open-512KiB", |b| {
        b.iter(|| {
            for s in &sealed {
                black_box(key.open(label::DATA_BLOB, s).unwrap());
            }
        })
    });
    g.finish();
}

fn packs(c: &mut Criterion) {
    let data = random(N, 8);
    let key = MasterKey::from_secret([9; 32]);
    let blobs: Vec<_> = data
        .chunks(512 << 10)
        .map(|ch| {
            (
                key.blob_id(ch),
                key.seal(label::DATA_BLOB, ch),
                ch.len() as u32,
            )
        })
        .collect();
    let mut g = c.benchmark_group("pack");
    g.throughput(Throughput::Bytes(N as u64));
    g.bench_function("write-16MiB", |b| {
        b.iter(|| {
            let mut p = PackBuilder::new(BlobKind::Data, N + (1 << 20));
            for (id, s, n) in &blobs {
                p.add(*id, compress::Compression::None, *n, s);
            }
            black_box(p.finish(&key))
        })
    });
    let mut p = PackBuilder::new(BlobKind::Data, N + (1 << 20));
    for (id, s, n) in &blobs {
        p.add(*id, compress::Compression::None, *n, s);
    }
    let f = p.finish(&key);
    g.bench_function("read-verify-16MiB", |b| {
        b.iter(|| {
            let entries = pack::read_header_from_bytes(&key, &f.id, &f.bytes).unwrap();
            for e in &entries {
                let r = e.range();
                black_box(
                    pack::open_blob(&key, e, &f.bytes[r.start as usize..r.end as usize]).unwrap(),
                );
            }
        })
    });
    g.finish();
}

criterion_group!(benches, chunking, hashing, compression, encryption, packs);
criterion_main!(benches);
