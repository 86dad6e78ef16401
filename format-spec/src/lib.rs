//! Test vectors for the format specification live in tests/.
