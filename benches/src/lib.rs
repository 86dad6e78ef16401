//! Shared inputs for the benchmarks: compressible and incompressible data,
//! taken from the benchmark corpus when it exists (so the figures describe
//! what users back up), synthetic otherwise.

use std::path::Path;

/// Deterministic incompressible bytes.
pub fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Compressible bytes: a PostgreSQL dump from the corpus if built
/// (`target/bench-corpus/s1/v1/pg/dump.sql`), else SQL-like text.
pub fn compressible(n: usize) -> Vec<u8> {
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-corpus/s1/v1/pg/dump.sql");
    if let Ok(mut b) = std::fs::read(&corpus)
        && b.len() >= n
    {
        b.truncate(n);
        return b;
    }
    let mut s = String::with_capacity(n + 100);
    let mut i = 0u64;
    while s.len() < n {
        s.push_str(&format!("{i}\t{}\t{}\t                                                                                    \n", i % 10, (i * 7919) % 100_000 - 50_000));
        i += 1;
    }
    s.truncate(n);
    s.into_bytes()
}

/// The benchmark corpus's vector segments if built (float32 embeddings: what
/// users' vector stores hold), else random bytes.
pub fn embeddings(n: usize) -> Vec<u8> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench-corpus/s1/v1/vectors/segment-0000.vec");
    match std::fs::read(&corpus) {
        Ok(mut b) if b.len() >= n => {
            b.truncate(n);
            b
        }
        _ => random(n, 99),
    }
}

/// The data of the benchmark corpus's v1 generation (`target/bench-corpus/
/// s1/v1`), every file's data regions concatenated (holes skipped, as
/// backup skips them), if the corpus was built; `None` otherwise.
pub fn corpus_v1() -> Option<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-corpus/s1/v1");
    if !root.is_dir() {
        return None;
    }
    let mut files = vec![];
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()? {
            let p = e.ok()?.path();
            let ft = std::fs::symlink_metadata(&p).ok()?.file_type();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let h = std::fs::File::open(&f).ok()?;
        let len = h.metadata().ok()?.len();
        for r in arca_engine::host::fsmeta::data_regions(&h, len).ok()? {
            use std::os::unix::fs::FileExt;
            let start = out.len();
            out.resize(start + (r.end - r.start) as usize, 0);
            if let Err(e) = h.read_exact_at(&mut out[start..], r.start) {
                eprintln!("{}: {e}", f.display());
                return None;
            }
        }
    }
    Some(out)
}
