//! Entry points for the fuzz targets in `fuzz/` (one per decoder of
//! repository bytes). They are ordinary functions so that the seed corpora
//! also run as tests on stable Rust. Each must never panic, whatever bytes
//! it is given.
//!
//! Where a decoder accepts its input, the target also asserts what acceptance
//! promises (names sorted and safe, extents inside the file, pack entries
//! tiling the data, the binary encodings being canonical, JSON round trips):
//! a failed assertion is a decoder bug just like a panic inside it.
//!
//! Sealed objects are opened with a fixed key, [`fuzz_key`]. The fuzzer
//! cannot forge an authentication tag, so each target also seals the input
//! itself (with [`FUZZ_NONCE`]) and feeds that to the object decoder, which
//! lets the fuzzer reach what lies behind the envelope (zstd, JSON, the
//! length arithmetic), and checks that the sealed path agrees with the
//! plaintext decoder.

use std::sync::OnceLock;

use crate::format::compress::Compression;
use crate::format::config::{Config, READ_VERSIONS};
use crate::format::crypto::{MasterKey, NONCE_LEN, SEAL_OVERHEAD, label};
use crate::format::id::{PackId, PruneId, content_hash};
use crate::format::index::IndexSegment;
use crate::format::keyfile::KeyFile;
use crate::format::pack::{
    self, BlobKind, ENTRY_LEN, MAX_BLOB_LEN, MAX_ENTRIES, PackEntry, TRAILER_LEN,
};
use crate::format::prune::{Base, PruneRecord, Seal};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{self, Content, Tree};
use crate::format::wire::Reader;

/// The master secret of the fuzz targets and of the sealed seed files.
pub const FUZZ_SECRET: [u8; 32] = [7; 32];

/// The nonce the targets (and the seed generator) seal with. Reusing a nonce
/// is only acceptable because nothing here is secret.
pub const FUZZ_NONCE: [u8; NONCE_LEN] = [0x5a; NONCE_LEN];

/// `MasterKey::from_secret(FUZZ_SECRET)`, derived once.
pub fn fuzz_key() -> &'static MasterKey {
    static KEY: OnceLock<MasterKey> = OnceLock::new();
    KEY.get_or_init(|| MasterKey::from_secret(FUZZ_SECRET))
}

/// `data` as a zstd frame, for the targets that seal their input as a
/// compressed plaintext (one compression context per thread: creating one
/// per input would dominate the run time).
fn compress(data: &[u8]) -> Vec<u8> {
    use std::cell::RefCell;
    thread_local! {
        static COMPRESSOR: RefCell<zstd::bulk::Compressor<'static>> =
            RefCell::new(zstd::bulk::Compressor::new(1).expect("zstd context"));
    }
    COMPRESSOR.with(|c| c.borrow_mut().compress(data).expect("in-memory zstd"))
}

/// Most packs an index segment may list (`index::MAX_PACKS`).
const MAX_INDEX_PACKS: usize = 1 << 20;

/// Pack trailer and header: the input as a plaintext pack (blobs, header
/// plaintext, trailer: the header's entries must tile the bytes before it),
/// the same header sealed, and the input as a whole sealed pack
/// (`read_header_from_bytes`, with and without the name check).
pub fn pack_header(data: &[u8]) {
    let key = fuzz_key();
    let n = data.len();
    // The trailer parser on its own, at any length.
    if let Ok(hlen) = pack::parse_trailer(data) {
        assert_eq!(n, TRAILER_LEN);
        assert_eq!(&data[4..], pack::TRAILER_MAGIC);
        assert_eq!(hlen.to_le_bytes(), data[..4]);
    }

    if n >= TRAILER_LEN
        && let Ok(hlen) = pack::parse_trailer(&data[n - TRAILER_LEN..])
        && let Some(hstart) = (n - TRAILER_LEN).checked_sub(hlen as usize)
    {
        let header = &data[hstart..n - TRAILER_LEN];
        let data_end = hstart as u64;
        let plain = pack::decode_header_plain(header, data_end);
        if let Ok(entries) = &plain {
            check_pack_entries(entries, data_end);
            // The encoding is canonical: nothing else decodes to these entries.
            assert_eq!(pack::encode_entries(entries), header);
        }
        // The same header behind an authentic envelope must decode the same.
        let sealed = key.seal_with_nonce(label::PACK_HEADER, header, FUZZ_NONCE);
        let pack_size = data_end + sealed.len() as u64 + TRAILER_LEN as u64;
        let opened = pack::decode_header(key, pack_size, &sealed);
        match (&plain, &opened) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => panic!("decode_header and decode_header_plain disagree: {plain:?} vs {opened:?}"),
        }
        // The envelope binds its label.
        assert!(
            pack::decode_header(
                key,
                pack_size,
                &key.seal_with_nonce(label::INDEX, header, FUZZ_NONCE)
            )
            .is_err()
        );
    }

    // The input as a whole sealed pack, without and with its name checked.
    let unchecked = pack::read_header_from_bytes_unchecked(key, data);
    let id = PackId(content_hash(data));
    let checked = pack::read_header_from_bytes(key, &id, data);
    assert_eq!(
        unchecked.as_ref().ok(),
        checked.as_ref().ok(),
        "checking the pack's true name changed the result"
    );
    if let Ok(entries) = checked {
        let hlen = u32::from_le_bytes(data[n - TRAILER_LEN..n - 4].try_into().unwrap()) as usize;
        let data_end = (n - TRAILER_LEN - hlen) as u64;
        check_pack_entries(&entries, data_end);
        let mut wrong = id;
        wrong.0[0] ^= 1;
        assert!(
            pack::read_header_from_bytes(key, &wrong, data).is_err(),
            "pack read under another name"
        );
    }
}

/// Index segments: the plaintext decoder, the input as a stored object, the
/// input as the (zstd) payload of an authentic version-1 and version-2
/// object, and the input compressed and sealed as the plaintext of both
/// versions (version 2: `base_gen:u64le base_mark[32]`, then a version-1
/// plaintext), which must agree with the plaintext decoder.
pub fn index_segment(data: &[u8]) {
    let key = fuzz_key();
    let plain = IndexSegment::decode_plain(data);
    if let Ok(seg) = &plain {
        check_index(seg);
        assert_eq!(seg.base, Base::default(), "a plaintext segment has a base");
        assert_eq!(
            seg.encode_plain(),
            data,
            "index segment encoding is not canonical"
        );
    }
    if let Ok(seg) = IndexSegment::from_object(key, data) {
        check_index(&seg);
    }
    for magic in [label::INDEX, label::INDEX_V2] {
        let mut object = magic.to_vec();
        object.extend_from_slice(&key.seal_with_nonce(magic, data, FUZZ_NONCE));
        if let Ok(seg) = IndexSegment::from_object(key, &object) {
            check_index_object(&seg);
            if magic == label::INDEX {
                assert_eq!(seg.base, Base::default(), "a version-1 segment has a base");
            }
        }
    }

    let z = compress(data);
    // The input as a version-1 plaintext.
    let mut v1 = label::INDEX.to_vec();
    v1.extend_from_slice(&key.seal_with_nonce(label::INDEX, &z, FUZZ_NONCE));
    match (&plain, IndexSegment::from_object(key, &v1)) {
        (Ok(a), Ok(b)) => assert_eq!(a, &b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("version-1 from_object and decode_plain disagree: {a:?} vs {b:?}"),
    }
    // The input as a version-2 plaintext.
    let mut v2 = label::INDEX_V2.to_vec();
    v2.extend_from_slice(&key.seal_with_nonce(label::INDEX_V2, &z, FUZZ_NONCE));
    let opened = IndexSegment::from_object(key, &v2);
    if data.len() < 40 {
        assert!(
            opened.is_err(),
            "a version-2 segment without its base decoded: {opened:?}"
        );
    } else {
        let (prefix, rest) = data.split_at(40);
        let expected = IndexSegment::decode_plain(rest).map(|seg| IndexSegment {
            base: Base {
                generation: u64::from_le_bytes(prefix[..8].try_into().unwrap()),
                mark: (prefix[8..] != [0; 32]).then(|| PruneId(prefix[8..].try_into().unwrap())),
            },
            ..seg
        });
        match (&expected, &opened) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b);
                check_index_object(b);
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("version-2 from_object and decode_plain disagree: {a:?} vs {b:?}"),
        }
    }
}

/// A segment an object decoder accepted: the index invariants, and what
/// comes out is what a writer would have written: it survives another trip
/// through the plaintext and the (version-2) object encodings.
fn check_index_object(seg: &IndexSegment) {
    check_index(seg);
    let again =
        IndexSegment::decode_plain(&seg.encode_plain()).expect("re-encoded index segment decodes");
    assert_eq!(
        again,
        IndexSegment {
            base: Base::default(),
            ..seg.clone()
        }
    );
    let again = IndexSegment::from_object(fuzz_key(), &seg.to_object(fuzz_key()))
        .expect("re-encoded index segment object decodes");
    assert_eq!(&again, seg, "index segment object round trip");
}

/// Tree blobs: decoding, the promised invariants, and a byte-exact round trip.
pub fn tree(data: &[u8]) {
    let Ok(t) = Tree::decode(data) else {
        return;
    };
    check_tree(&t);
    let encoded = t.encode();
    let again = Tree::decode(&encoded).expect("a re-encoded tree decodes");
    assert_eq!(again, t, "tree round trip");
    assert_eq!(encoded, data, "tree encoding is not canonical");
}

/// Snapshot manifests: JSON and stored object; whatever decodes must
/// re-serialize into JSON that decodes to the same snapshot.
pub fn snapshot(data: &[u8]) {
    let key = fuzz_key();
    let plain = Snapshot::decode_json(data);
    if let Ok(s) = &plain {
        check_snapshot_round_trip(s);
    }
    if let Ok(s) = Snapshot::from_object(key, data) {
        check_snapshot_round_trip(&s);
    }
    let mut object = label::SNAPSHOT.to_vec();
    object.extend_from_slice(&key.seal_with_nonce(label::SNAPSHOT, data, FUZZ_NONCE));
    match (&plain, Snapshot::from_object(key, &object)) {
        (Ok(a), Ok(b)) => assert_eq!(a, &b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("Snapshot::from_object and decode_json disagree: {a:?} vs {b:?}"),
    }
}

/// The repository config: JSON and stored object, with the validation
/// `decode_json` promises and a JSON round trip.
pub fn config(data: &[u8]) {
    let key = fuzz_key();
    let plain = Config::decode_json(data);
    if let Ok(c) = &plain {
        check_config(c);
    }
    if let Ok(c) = Config::from_object(key, data) {
        check_config(&c);
    }
    let mut object = label::CONFIG.to_vec();
    object.extend_from_slice(&key.seal_with_nonce(label::CONFIG, data, FUZZ_NONCE));
    match (&plain, Config::from_object(key, &object)) {
        (Ok(a), Ok(b)) => assert_eq!(a, &b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("Config::from_object and decode_json disagree: {a:?} vs {b:?}"),
    }
}

/// Key files: `KeyFile::parse` only. `unlock` is not called: Argon2 with
/// costs chosen by the fuzzer would take seconds per input.
pub fn key_file(data: &[u8]) {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;

    let Ok(k) = KeyFile::parse(data) else {
        return;
    };
    assert_eq!(k.version, 1);
    match k.kdf.params {
        Some(p) => {
            assert_eq!(k.kdf.algorithm, "argon2id");
            assert!(p.is_sane());
            // "Sane" must mean Argon2 accepts them, so `unlock` cannot fail on them.
            assert!(
                argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32)).is_ok(),
                "is_sane accepted parameters Argon2 refuses: {p:?}"
            );
        }
        None => {
            assert!(k.kdf.is_token());
            // a token's derivation cannot fail, whatever the token
            let t = crate::format::crypto::Token::parse(
                b"arca-token-1:0000000000000000000000000000000000000000000000000000000000000000",
            )
            .expect("a token");
            assert!(k.unlock_with_token(&t).is_ok());
        }
    }
    let salt = B64.decode(&k.kdf.salt).expect("parse checked the salt");
    assert!((8..=64).contains(&salt.len()));
    B64.decode(&k.master)
        .expect("parse checked the wrapped master key");
    let config = B64
        .decode(&k.config)
        .expect("parse checked the config copy");
    assert_eq!(k.config_object(), config);
    let again = KeyFile::parse(&k.to_bytes()).expect("a re-serialized key file parses");
    assert_eq!(again, k, "key file round trip");
}

/// One blob: the first 50 bytes are its pack entry (decoded with
/// `decode_entries`), the rest its sealed bytes. Also opens the rest sealed
/// by the target, so that decompression and the length checks are reached.
pub fn blob(data: &[u8]) {
    let key = fuzz_key();
    let Some(head) = data.get(..ENTRY_LEN) else {
        return;
    };
    let mut buf = Vec::with_capacity(4 + ENTRY_LEN);
    buf.extend_from_slice(&1u32.to_le_bytes());
    buf.extend_from_slice(head);
    let mut r = Reader::new(&buf);
    let Ok(entries) = pack::decode_entries(&mut r) else {
        return;
    };
    assert!(r.finish().is_ok() && entries.len() == 1);
    let entry = entries[0];
    check_entry(&entry);
    let mut encoded = vec![];
    entry.encode_into(&mut encoded);
    assert_eq!(encoded, head, "pack entry encoding is not canonical");

    let sealed = &data[ENTRY_LEN..];
    if let Ok(plain) = pack::open_blob(key, &entry, sealed) {
        check_opened(&entry, &plain);
        // The envelope binds the kind.
        let other = PackEntry {
            kind: match entry.kind {
                BlobKind::Data => BlobKind::Tree,
                BlobKind::Tree => BlobKind::Data,
            },
            ..entry
        };
        assert!(
            pack::open_blob(key, &other, sealed).is_err(),
            "blob opened as the other kind"
        );
    }

    let resealed = key.seal_with_nonce(entry.kind.label(), sealed, FUZZ_NONCE);
    if let Ok(length) = u32::try_from(resealed.len()) {
        let e = PackEntry { length, ..entry };
        if let Ok(plain) = pack::open_blob(key, &e, &resealed) {
            check_opened(&e, &plain);
        }
    }
}

fn check_opened(entry: &PackEntry, plain: &[u8]) {
    assert_eq!(plain.len(), entry.raw_length as usize, "opened blob length");
    assert_eq!(fuzz_key().blob_id(plain), entry.id, "opened blob id");
    if entry.compression == Compression::None {
        assert_eq!(entry.length as usize, plain.len() + SEAL_OVERHEAD);
    }
}

/// What `PackEntry::decode` promises about one entry.
fn check_entry(e: &PackEntry) {
    assert!(
        e.length as usize >= SEAL_OVERHEAD,
        "entry shorter than its envelope: {e:?}"
    );
    assert!(e.raw_length <= MAX_BLOB_LEN, "entry too long: {e:?}");
    if e.compression == Compression::None {
        assert_eq!(
            e.raw_length as usize + SEAL_OVERHEAD,
            e.length as usize,
            "{e:?}"
        );
    }
}

/// Entries that `check_layout` accepted tile `0..data_end` in order.
fn check_pack_entries(entries: &[PackEntry], data_end: u64) {
    assert!(entries.len() <= MAX_ENTRIES as usize);
    let mut pos = 0u64;
    for e in entries {
        check_entry(e);
        assert_eq!(e.offset, pos, "entries do not tile the pack");
        let r = e.range();
        assert_eq!(r.start, pos);
        pos = r.end;
    }
    assert_eq!(pos, data_end, "entries do not reach the header");
}

/// An index segment may list a subset of a pack's blobs, but in pack
/// order, without overlap, and inside the pack.
fn check_index(seg: &IndexSegment) {
    assert!(seg.packs.len() <= MAX_INDEX_PACKS);
    for p in &seg.packs {
        let mut end = 0u64;
        for e in &p.entries {
            check_entry(e);
            assert!(e.offset >= end, "index entries out of order or overlapping");
            end = e
                .offset
                .checked_add(e.length as u64)
                .unwrap_or_else(|| panic!("index entry ends beyond 2^64: {e:?}"));
            assert!(
                end <= p.size,
                "index entry beyond the pack's size: {e:?} in a pack of {}",
                p.size
            );
        }
    }
}

fn check_tree(t: &Tree) {
    for w in t.nodes.windows(2) {
        assert!(w[0].name < w[1].name, "tree names not sorted and unique");
    }
    for n in &t.nodes {
        assert!(
            tree::check_name(&n.name).is_ok(),
            "unsafe name {:?}",
            n.name
        );
        assert!(t.get(&n.name).is_some_and(|m| std::ptr::eq(m, n)));
        for ts in [n.mtime, n.atime, n.ctime] {
            assert!(ts.nsec < 1_000_000_000);
        }
        match (&n.content, n.kind) {
            (Content::File { extents, .. }, tree::NodeKind::File) => {
                let mut end = 0u64;
                for e in extents {
                    assert!(e.length > 0, "empty extent");
                    assert!(e.offset >= end, "extents overlap or are out of order");
                    end = e
                        .offset
                        .checked_add(e.length as u64)
                        .expect("extent end fits u64");
                }
                assert!(end <= n.size, "extents beyond the file's size");
            }
            (Content::Dir { .. }, tree::NodeKind::Dir) => {}
            (Content::None, k) => assert!(k != tree::NodeKind::File && k != tree::NodeKind::Dir),
            (c, k) => panic!("content {c:?} for a {k:?}"),
        }
    }
}

fn check_snapshot_round_trip(s: &Snapshot) {
    let json = serde_json::to_vec(s).expect("a snapshot serializes");
    match Snapshot::decode_json(&json) {
        Ok(again) => assert_eq!(&again, s, "snapshot JSON round trip"),
        Err(e) => panic!(
            "a decoded snapshot re-serializes to JSON it cannot read: {e}: {}",
            String::from_utf8_lossy(&json)
        ),
    }
}

fn check_config(c: &Config) {
    assert!(READ_VERSIONS.contains(&c.version));
    assert!(c.chunker.validate().is_ok());
    assert!((1 << 20..=1 << 30).contains(&c.pack_size));
    let json = serde_json::to_vec(c).expect("a config serializes");
    match Config::decode_json(&json) {
        Ok(again) => assert_eq!(&again, c, "config JSON round trip"),
        Err(e) => panic!(
            "a decoded config re-serializes to JSON it cannot read: {e}: {}",
            String::from_utf8_lossy(&json)
        ),
    }
}

/// Check-coverage records: the plaintext decoder, and the object decoder on
/// the input sealed as a record's payload.
pub fn coverage(data: &[u8]) {
    use crate::format::coverage::Coverage;
    if let Ok(c) = Coverage::decode_plain(data) {
        // entries are unique; re-encoding sorts them, and decodes the same
        let again = Coverage::decode_plain(&c.encode_plain()).expect("re-encoding decodes");
        assert_eq!(again, c);
    }
    let key = fuzz_key();
    let mut obj = label::COVERAGE.to_vec();
    obj.extend_from_slice(&key.seal_with_nonce(label::COVERAGE, data, FUZZ_NONCE));
    if let Ok(c) = Coverage::from_object(key, &obj) {
        assert!(c.verified.len() <= 1 << 26);
    }
    let _ = Coverage::from_object(key, data);
}

/// Lock objects: the object decoder on the input, and on the input sealed
/// as a lock's JSON; an accepted lock re-encodes to one that decodes equal.
pub fn lock(data: &[u8]) {
    use crate::format::lock::{LockInfo, LockRemoval};
    let key = fuzz_key();
    let _ = LockInfo::from_object(key, data);
    let _ = LockRemoval::from_object(key, data);
    let mut obj = label::LOCK.to_vec();
    obj.extend_from_slice(&key.seal_with_nonce(label::LOCK, data, FUZZ_NONCE));
    if let Ok(l) = LockInfo::from_object(key, &obj) {
        let again = LockInfo::from_object(key, &l.to_object(key)).expect("re-encoded lock decodes");
        assert_eq!(again.describe(), l.describe());
    }
    assert!(
        LockRemoval::from_object(key, &obj).is_err(),
        "a lock is no notice"
    );
    // the same bytes as a lock-removal notice's JSON
    let mut obj = label::LOCK_REMOVAL.to_vec();
    obj.extend_from_slice(&key.seal_with_nonce(label::LOCK_REMOVAL, data, FUZZ_NONCE));
    if let Ok(n) = LockRemoval::from_object(key, &obj) {
        let again =
            LockRemoval::from_object(key, &n.to_object(key)).expect("re-encoded notice decodes");
        assert_eq!(again, n);
    }
}

/// Drill records: the object decoder, the input also sealed as a record's
/// JSON. An accepted record has finite, non-negative durations and
/// re-encodes to a record that decodes the same.
pub fn drill_record(data: &[u8]) {
    use crate::format::drill::DrillRecord;
    let key = fuzz_key();
    let _ = DrillRecord::from_object(key, data);
    let mut obj = label::DRILL.to_vec();
    obj.extend_from_slice(&key.seal_with_nonce(label::DRILL, data, FUZZ_NONCE));
    if let Ok(r) = DrillRecord::from_object(key, &obj) {
        for s in [r.restore_seconds, r.check_seconds, r.total_seconds] {
            assert!(s.is_finite() && s >= 0.0, "accepted a bad duration");
        }
        let again =
            DrillRecord::from_object(key, &r.to_object(key)).expect("re-encoded record decodes");
        assert_eq!(again, r);
        let _ = r.met();
    }
}

/// Prune records: the plaintext decoder (the record's JSON),
/// the input as a stored object, the input as the (zstd) payload of an
/// authentic record, and the input compressed and sealed as a record's
/// plaintext, which must agree with the plaintext decoder. An accepted
/// record re-encodes to one that decodes equal.
pub fn prune_record(data: &[u8]) {
    let key = fuzz_key();
    let plain = PruneRecord::decode_plain(data);
    if let Ok(r) = &plain {
        check_prune_record(r);
    }
    if let Ok(r) = PruneRecord::from_object(key, data) {
        check_prune_record(&r);
    }
    let mut object = label::PRUNE.to_vec();
    object.extend_from_slice(&key.seal_with_nonce(label::PRUNE, data, FUZZ_NONCE));
    if let Ok(r) = PruneRecord::from_object(key, &object) {
        check_prune_record(&r);
    }
    let z = compress(data);
    let mut object = label::PRUNE.to_vec();
    object.extend_from_slice(&key.seal_with_nonce(label::PRUNE, &z, FUZZ_NONCE));
    match (&plain, PruneRecord::from_object(key, &object)) {
        (Ok(a), Ok(b)) => assert_eq!(a, &b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("PruneRecord::from_object and decode_plain disagree: {a:?} vs {b:?}"),
    }
    // The envelope binds its label.
    let mut other = label::PRUNE.to_vec();
    other.extend_from_slice(&key.seal_with_nonce(label::INDEX, &z, FUZZ_NONCE));
    assert!(
        PruneRecord::from_object(key, &other).is_err(),
        "prune record opened under another label"
    );
}

fn check_prune_record(r: &PruneRecord) {
    assert!(r.info.generation > 0, "prune record of generation 0");
    assert!(
        r.info.condemned.len() <= 1 << 20,
        "too many condemned packs"
    );
    assert_eq!(
        r.marked().count(),
        r.info.condemned.len() + r.info.to_delete.packs.len()
    );
    let plain = r.encode_plain();
    let again = PruneRecord::decode_plain(&plain).expect("re-encoded prune record decodes");
    assert_eq!(&again, r, "prune record plaintext round trip");
    let again = PruneRecord::from_object(fuzz_key(), &r.to_object(fuzz_key()))
        .expect("re-encoded prune record object decodes");
    assert_eq!(&again, r, "prune record object round trip");
}

/// Seals: the object decoder on the input, and on the input sealed as a
/// seal's JSON; an accepted seal re-encodes to one that decodes equal.
pub fn seal(data: &[u8]) {
    let key = fuzz_key();
    let _ = Seal::from_object(key, data);
    let mut obj = label::SEAL.to_vec();
    obj.extend_from_slice(&key.seal_with_nonce(label::SEAL, data, FUZZ_NONCE));
    if let Ok(s) = Seal::from_object(key, &obj) {
        let again = Seal::from_object(key, &s.to_object(key)).expect("re-encoded seal decodes");
        assert_eq!(again, s, "seal round trip");
        // The envelope binds its label.
        let mut other = label::SEAL.to_vec();
        other.extend_from_slice(&key.seal_with_nonce(label::LOCK, data, FUZZ_NONCE));
        assert!(
            Seal::from_object(key, &other).is_err(),
            "seal opened under another label"
        );
    }
}

/// Archived WAL files: the input as a stored object, then sealed as the
/// object's payload, under the id of the first 32 bytes when they are a
/// WAL file's id (else segment `000000010000000000000001`); and the input
/// as a file name. An accepted object holds the file its id names, with
/// the bytes its hash records, and encodes back to an object that decodes
/// the same.
pub fn wal_object(data: &[u8]) {
    use crate::format::compress::CompressionMode;
    use crate::format::id::WalId;
    use crate::format::wal::{self, WalFile};

    let key = fuzz_key();
    if let Ok(name) = std::str::from_utf8(data)
        && let Some(f) = WalFile::parse(name)
    {
        assert_eq!(f.name(), name, "a parsed name prints as itself");
        assert_eq!(WalFile::from_id(&f.id()), Some(f));
    }
    let id = data
        .get(..32)
        .and_then(WalId::from_slice)
        .filter(|id| WalFile::from_id(id).is_some())
        .unwrap_or_else(|| WalFile::parse("000000010000000000000001").unwrap().id());
    let _ = wal::decode(key, &id, data);
    let mut obj = label::WAL.to_vec();
    obj.extend_from_slice(&key.seal_with_nonce(label::WAL, data, FUZZ_NONCE));
    if let Ok(o) = wal::decode(key, &id, &obj) {
        assert_eq!(o.file.id(), id, "an object opens only as its own name");
        assert_eq!(o.hash, wal::file_hash(&o.data));
        assert!(o.data.len() as u64 <= wal::MAX_FILE);
        let again = wal::encode(key, o.file, &o.data, &o.hash, CompressionMode::Auto)
            .expect("a decoded file re-encodes");
        assert_eq!(wal::decode(key, &id, &again).expect("re-encoded"), o);
    }
}
