//! Entry points for the fuzz targets in `fuzz/` (one per decoder of
//! repository bytes). They are ordinary functions so that the seed corpora
//! also run as tests on stable Rust. Each must never panic, whatever bytes
//! it is given.
