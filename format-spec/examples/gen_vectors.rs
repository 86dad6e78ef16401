//! Writes the test vectors to `format-spec/vectors/`.
//!
//! Run with `cargo run -p arca-format-spec --example gen_vectors`. The
//! output is deterministic for a given libzstd (see the crate docs).

use std::path::PathBuf;

use arca_format_spec::{Frames, build, readme, to_hex_lines};

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors");
    std::fs::create_dir_all(&dir)?;
    let v = build(&Frames::compute());
    for (name, bytes) in v.hex_files() {
        std::fs::write(dir.join(name), to_hex_lines(bytes))?;
    }
    std::fs::write(dir.join("chunker.json"), &v.chunker)?;
    std::fs::write(dir.join("README.md"), readme(&v))?;
    println!("wrote the vectors to {}", dir.display());
    Ok(())
}
