//! The pipeline limit: chunk + id + compress + seal of in-memory data on
//! all cores, no I/O. It states what the CPU allows; backup throughput is
//! judged against it (target: backup >= 70% of this).

use std::hint::black_box;

use arca_benches::{compressible, embeddings, random};
use arca_engine::format::chunker::{Chunker, ChunkerParams};
use arca_engine::format::compress::{self, CompressionMode};
use arca_engine::format::crypto::MasterKey;
use arca_engine::format::pack::BlobKind;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;

const N: usize = 64 << 20;

/// What backup does to every new byte, minus reading and writing.
fn pipeline(key: &MasterKey, chunker: &Chunker, data: &[u8]) -> usize {
    let file_hash = blake3::Hasher::new().update_rayon(data).finalize();
    black_box(file_hash);
    let ends = chunker.boundaries_parallel(data, true);
    let mut starts = vec![0];
    starts.extend_from_slice(&ends[..ends.len() - 1]);
    starts
        .par_iter()
        .zip(ends.par_iter())
        .map(|(&s, &e)| {
            let ch = &data[s..e];
            let _id = key.blob_id(ch);
            let (stored, _) = compress::compress(ch, CompressionMode::Auto);
            key.seal(BlobKind::Data.label(), &stored).len()
        })
        .sum()
}

fn limit(c: &mut Criterion) {
    let key = MasterKey::from_secret([1; 32]);
    let chunker = Chunker::new(ChunkerParams::default(), key.chunker_key());
    // the corpus's mix: about 40% SQL text and pages, 10% embeddings, the
    // rest an ext4 image (mostly compressible); approximated by thirds
    let mut mix = compressible(N / 2);
    mix.extend_from_slice(&embeddings(N / 4));
    mix.extend_from_slice(&random(N / 4, 3));
    let mut g = c.benchmark_group("pipeline-limit");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(N as u64));
    for (name, data) in [
        ("sql-dump", compressible(N)),
        ("mix", mix),
        ("random", random(N, 5)),
    ] {
        g.bench_function(
            format!("{name}-{}-threads", rayon::current_num_threads()),
            |b| b.iter(|| black_box(pipeline(&key, &chunker, &data))),
        );
    }
    g.finish();
    // The corpus itself (what bench/compare.sh backs up), when it is built:
    // the limit that backup v1 is measured against.
    let Some(corpus) = arca_benches::corpus_v1() else {
        eprintln!(
            "no corpus at target/bench-corpus/s1/v1: skipping the corpus case (bench/compare.sh builds it)"
        );
        return;
    };
    let mut g = c.benchmark_group("pipeline-limit-corpus");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(corpus.len() as u64));
    g.bench_function(
        format!("corpus-v1-{}-threads", rayon::current_num_threads()),
        |b| b.iter(|| black_box(pipeline(&key, &chunker, &corpus))),
    );
    g.finish();
}

criterion_group!(benches, limit);
criterion_main!(benches);
