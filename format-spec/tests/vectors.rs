//! The test vectors in `vectors/`, checked three ways:
//!
//! 1. decoded with the engine's decoders, with concrete field values
//!    asserted;
//! 2. decoded by an independent reader written from `README.md` alone,
//!    using the `blake3`, `chacha20poly1305`, `argon2`, `zstd`, `base64`
//!    and `serde_json` crates and no engine code;
//! 3. rebuilt with the generator's logic (`arca_format_spec::build`) and
//!    compared byte for byte, and compared with what the engine's own
//!    encoders write (which use random nonces, so they are compared after
//!    opening).
//!
//! A change to the format breaks this test. Regenerate the vectors with
//! `cargo run -p arca-format-spec --example gen_vectors` only for an
//! intended change, and update the specification with it.

use std::path::PathBuf;

use arca_engine::format::chunker::{Chunker, ChunkerParams};
use arca_engine::format::compress::Compression;
use arca_engine::format::config::Config;
use arca_engine::format::crypto::{KdfParams, MasterKey, label};
use arca_engine::format::id::{BlobId, IndexId, PackId, PruneId, RepoId, SnapshotId};
use arca_engine::format::index::IndexSegment;
use arca_engine::format::keyfile::KeyFile;
use arca_engine::format::pack::{self, BlobKind, PackBuilder, PackEntry};
use arca_engine::format::prune::{Base, PruneRecord, PruneState, Seal, seal_name};
use arca_engine::format::snapshot::Snapshot;
use arca_engine::format::tree::{Content, NodeKind, Timestamp, Tree};
use arca_format_spec as spec;

// ---------------------------------------------------------------- helpers

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn load(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(vectors_dir().join(name))
        .unwrap_or_else(|e| panic!("vectors/{name}: {e}"));
    assert!(
        text.chars()
            .all(|c| c.is_whitespace() || matches!(c, '0'..='9' | 'a'..='f')),
        "vectors/{name} is not lowercase hex"
    );
    spec::from_hex_lines(&text).unwrap_or_else(|e| panic!("vectors/{name}: {e}"))
}

fn key() -> MasterKey {
    MasterKey::from_secret(spec::MASTER_SECRET)
}

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

fn range(e: &PackEntry) -> std::ops::Range<usize> {
    e.offset as usize..(e.offset + e.length as u64) as usize
}

// The ids of the vectors, as the vectors' README lists them.
const KEY_ID: &str = "b0e949cf59790b991e7cff567baad4c5cfa8f9c1e467e3f0269a5ceabc6286af";
const DATA_PACK_ID: &str = "133ea72606ef90c0ce1c31cebfa9efc8dbda7a8c9719772b917fb991dd976964";
const TREE_PACK_ID: &str = "5dbb1b4386667682cb30f73bdf2c89d186084982d69485dd59ce5433d307ae7e";
const INDEX_ID: &str = "b8a977a8b73fc14fee4eadd0866e00f27c3df864eaebb791e82aaf521f1e94b6";
const INDEX_V1_ID: &str = "2a3ab72c1689c42ea3c97d9ec8dbc6d12b4fdba0b37af4d0bdf896baef9b58c4";
const SNAPSHOT_ID: &str = "52d0fabcc307abdcfee11d15f27c40cdefea3f83c2be9c6f7994de2f31b9b4ec";
const PRUNE_RECORD_ID: &str = "1449dad30bfe2940593085f5fecac613bc369337ee7708a8f126b18799fc283c";
const SEAL_NAME: &str = "7ba3a28b987ca1664eee23f094a01a42c7bdac73d15e53711205f9fb45de397e";
const BLOB_DATA_1: &str = "aa9421573cd169d17767ca0a00db2786cd8e0833806da3196128a47b53660bfc";
const BLOB_DATA_2: &str = "3b17198158ed57f8438a3f48b0555a79267c48342a5255242f679360e5ed55f9";
const BLOB_ROOT_TREE: &str = "e3485044576c3e81003b8f6a055425c9951373f7bc847137eb8d48c680b141c3";
const BLOB_EMPTY_TREE: &str = "6ff39724a3f78ba3e08f3fd2d5517a656a7f70b99861baefd86aee9184f03206";
const FILE_HASH: &str = "ebd8d809f29b378e235c421e3a2de128d9a320beee587ef227e21d1ad616da87";

fn data_entries() -> Vec<PackEntry> {
    vec![
        PackEntry {
            kind: BlobKind::Data,
            compression: Compression::Zstd,
            id: id(BLOB_DATA_1),
            offset: 0,
            length: 115,
            raw_length: 896,
        },
        PackEntry {
            kind: BlobKind::Data,
            compression: Compression::None,
            id: id(BLOB_DATA_2),
            offset: 115,
            length: 240,
            raw_length: 200,
        },
    ]
}

fn tree_entries() -> Vec<PackEntry> {
    vec![
        PackEntry {
            kind: BlobKind::Tree,
            compression: Compression::Zstd,
            id: id(BLOB_ROOT_TREE),
            offset: 0,
            length: 398,
            raw_length: 553,
        },
        PackEntry {
            kind: BlobKind::Tree,
            compression: Compression::None,
            id: id(BLOB_EMPTY_TREE),
            offset: 398,
            length: 45,
            raw_length: 5,
        },
    ]
}

// ------------------------------------------------- 1. the engine decodes

#[test]
fn config_decodes() {
    let bytes = load("config.hex");
    assert_eq!(bytes.len(), 250);
    assert_eq!(&bytes[..4], b"ACF\x01");
    assert_eq!(&bytes[4..28], &spec::nonce::CONFIG);
    let c = Config::from_object(&key(), &bytes).unwrap();
    assert_eq!(c.version, 2);
    assert_eq!(c.id, RepoId(spec::REPO_ID));
    assert_eq!(c.created.to_rfc3339(), "2026-11-01T12:00:00+00:00");
    assert_eq!(
        c.chunker,
        ChunkerParams {
            min_size: 128 * 1024,
            avg_size: 512 * 1024,
            max_size: 4 * 1024 * 1024,
        }
    );
    assert_eq!(c.pack_size, 16 << 20);
    // another key does not open it
    assert!(Config::from_object(&MasterKey::from_secret([0; 32]), &bytes).is_err());
}

#[test]
fn key_file_decodes_and_unlocks() {
    let bytes = load("key.hex");
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), KEY_ID);
    let k = KeyFile::parse(&bytes).unwrap();
    assert_eq!(k.version, 1);
    assert_eq!(k.created, spec::created());
    assert_eq!(k.host, "vectors.example");
    assert_eq!(k.username, "alice");
    assert_eq!(k.kdf.algorithm, "argon2id");
    assert_eq!(
        k.kdf.params,
        Some(KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1
        })
    );
    assert_eq!(k.kdf.salt, "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8=");
    let master = k
        .unlock(spec::PASSWORD)
        .unwrap()
        .expect("the password opens it");
    assert_eq!(master.secret(), &spec::MASTER_SECRET);
    assert!(k.unlock(b"wrong password").unwrap().is_none());
    // the config copy is the config object, byte for byte
    assert_eq!(k.config_object(), load("config.hex"));
}

#[test]
fn data_pack_decodes() {
    let bytes = load("pack-data.hex");
    assert_eq!(bytes.len(), 507);
    assert_eq!(&bytes[bytes.len() - 8..], b"\x90\x00\x00\x00APK\x01");
    let k = key();
    let entries = pack::read_header_from_bytes(&k, &id(DATA_PACK_ID), &bytes).unwrap();
    assert_eq!(entries, data_entries());
    let b1 = pack::open_blob(&k, &entries[0], &bytes[range(&entries[0])]).unwrap();
    let b2 = pack::open_blob(&k, &entries[1], &bytes[range(&entries[1])]).unwrap();
    assert_eq!(b1, spec::data_blob_1());
    assert_eq!(b2, spec::data_blob_2());
    assert_eq!(&b1[..20], b"arca format-spec tes");
    // the pack's name is checked
    assert!(pack::read_header_from_bytes(&k, &PackId([0; 32]), &bytes).is_err());
    // a blob opened as the wrong kind does not authenticate
    let mut wrong = entries[1];
    wrong.kind = BlobKind::Tree;
    assert!(pack::open_blob(&k, &wrong, &bytes[range(&entries[1])]).is_err());
}

#[test]
fn tree_pack_decodes() {
    let bytes = load("pack-tree.hex");
    assert_eq!(bytes.len(), 595);
    let k = key();
    let entries = pack::read_header_from_bytes(&k, &id(TREE_PACK_ID), &bytes).unwrap();
    assert_eq!(entries, tree_entries());
    let root = pack::open_blob(&k, &entries[0], &bytes[range(&entries[0])]).unwrap();
    assert_eq!(root, load("tree-plain.hex"));
    let empty = pack::open_blob(&k, &entries[1], &bytes[range(&entries[1])]).unwrap();
    assert_eq!(empty, [1, 0, 0, 0, 0]);
    assert_eq!(Tree::decode(&empty).unwrap(), Tree::default());
    // the sealed tree vector is the first blob of this pack
    assert_eq!(&bytes[range(&entries[0])], &load("tree-sealed.hex")[..]);
}

fn backup_base() -> Base {
    Base {
        generation: 2,
        mark: Some(id(PRUNE_RECORD_ID)),
    }
}

fn assert_vector_segment(seg: &IndexSegment) {
    assert_eq!(seg.packs.len(), 2);
    assert_eq!(seg.packs[0].id, id::<PackId>(DATA_PACK_ID));
    assert_eq!(seg.packs[0].size, 507);
    assert_eq!(seg.packs[0].entries, data_entries());
    assert_eq!(seg.packs[1].id, id::<PackId>(TREE_PACK_ID));
    assert_eq!(seg.packs[1].size, 595);
    assert_eq!(seg.packs[1].entries, tree_entries());
    assert_eq!(seg.supersedes, vec![IndexId([0xee; 32])]);
}

#[test]
fn index_segment_decodes() {
    let bytes = load("index.hex");
    assert_eq!(bytes.len(), 363);
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), INDEX_ID);
    assert_eq!(&bytes[..4], b"AIX\x02");
    let seg = IndexSegment::from_object(&key(), &bytes).unwrap();
    assert_vector_segment(&seg);
    assert_eq!(seg.base, backup_base());
}

#[test]
fn index_segment_v1_decodes() {
    let bytes = load("index-v1.hex");
    assert_eq!(bytes.len(), 327);
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), INDEX_V1_ID);
    assert_eq!(&bytes[..4], b"AIX\x01");
    let seg = IndexSegment::from_object(&key(), &bytes).unwrap();
    assert_vector_segment(&seg);
    assert_eq!(
        seg.base,
        Base::default(),
        "a version-1 segment has base generation 0"
    );
    // the same segment plaintext as inside the version-2 object, after its base
    let k = key();
    let v1 = zstd::bulk::decompress(&k.open(label::INDEX, &bytes[4..]).unwrap(), 1 << 20).unwrap();
    let v2 = zstd::bulk::decompress(
        &k.open(label::INDEX_V2, &load("index.hex")[4..]).unwrap(),
        1 << 20,
    )
    .unwrap();
    assert_eq!(&v2[40..], &v1[..]);
}

#[test]
fn prune_record_decodes() {
    let bytes = load("prune-record.hex");
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), PRUNE_RECORD_ID);
    assert_eq!(&bytes[..4], b"APR\x01");
    assert_eq!(&bytes[4..28], &spec::nonce::PRUNE_RECORD);
    let r = PruneRecord::from_object(&key(), &bytes).unwrap();
    assert_eq!(r, spec::prune_record());
    let i = &r.info;
    assert_eq!(i.generation, 2);
    assert_eq!(i.previous, Some(PruneId([0xd1; 32])));
    assert_eq!(i.host, "prune.example");
    let s = i.swept.as_ref().unwrap();
    assert_eq!((s.generation, s.mark), (1, PruneId([0xd1; 32])));
    assert_eq!(s.accepted, vec![SnapshotId([0xd4; 32])]);
    assert_eq!(i.to_delete.packs, vec![(PackId([0xd2; 32]), 70_000)]);
    assert_eq!(i.to_delete.snapshots, vec![SnapshotId([0xd3; 32])]);
    assert_eq!(i.supersedes_index, vec![IndexId([0xd5; 32])]);
    assert_eq!(i.supersedes_prune, vec![PruneId([0xd1; 32])]);
    assert_eq!(i.condemned, vec![(PackId([0xd6; 32]), 1102)]);
    // a flipped byte does not authenticate
    let mut bad = bytes.clone();
    bad[40] ^= 1;
    assert!(PruneRecord::from_object(&key(), &bad).is_err());
}

#[test]
fn seal_decodes() {
    let bytes = load("seal.hex");
    assert_eq!(&bytes[..4], b"ASL\x01");
    let s = Seal::from_object(&key(), &bytes).unwrap();
    assert_eq!(s, spec::seal());
    assert_eq!((s.generation, s.mark), (1, PruneId([0xd1; 32])));
    // named by the repository and the generation, not by its bytes
    assert_eq!(seal_name(&RepoId(spec::REPO_ID), 1).to_hex(), SEAL_NAME);
    assert_ne!(blake3::hash(&bytes).to_hex().as_str(), SEAL_NAME);
}

#[test]
fn prune_rules_on_the_vectors() {
    // The prune record is the head; the rules of §15.2 applied to it.
    let k = key();
    let record = PruneRecord::from_object(&k, &load("prune-record.hex")).unwrap();
    let st = PruneState::from_records(vec![(id(PRUNE_RECORD_ID), record)]);
    assert_eq!(st.head().unwrap().0, id::<PruneId>(PRUNE_RECORD_ID));
    assert!(!st.is_fork());
    assert_eq!(st.base(), backup_base());
    // index.hex counts, index-v1.hex is void
    let v2 = IndexSegment::from_object(&k, &load("index.hex")).unwrap();
    let v1 = IndexSegment::from_object(&k, &load("index-v1.hex")).unwrap();
    assert!(st.base_valid(&v2.base));
    assert!(!st.base_valid(&v1.base));
    // the snapshot is valid (it honours the swept mark); the accepted one too,
    // whatever its base; the void one is not
    let snap = Snapshot::from_object(&k, &load("snapshot.hex")).unwrap();
    assert!(st.snapshot_valid(&id(SNAPSHOT_ID), &snap.base));
    // the base backup it records, and the WAL that needs
    assert_eq!(snap.postgres.len(), 1);
    assert_eq!(snap.postgres[0].start_wal, "000000010000000000000002");
    assert_eq!(snap.postgres[0].stop_lsn.as_deref(), Some("0/2000138"));
    assert!(st.snapshot_valid(&SnapshotId([0xd4; 32]), &Base::default()));
    assert!(!st.snapshot_valid(&SnapshotId([0xd3; 32]), &Base::default()));
    // a base on generation 1's record itself honours the sweep; one on
    // another record of generation 1 (a withdrawn sibling) does not
    let on = |m: u8| Base {
        generation: 1,
        mark: Some(PruneId([m; 32])),
    };
    assert!(st.base_valid(&on(0xd1)));
    assert!(!st.base_valid(&on(0x77)));
    // marked packs: the condemned one and the one to delete
    let marked = st.marked_packs();
    assert!(marked.contains(&PackId([0xd6; 32])) && marked.contains(&PackId([0xd2; 32])));
    assert!(!marked.contains(&id(DATA_PACK_ID)) && !marked.contains(&id(TREE_PACK_ID)));
    assert!(st.superseded_segments().contains(&IndexId([0xd5; 32])));
}

#[test]
fn tree_plaintext_decodes() {
    let bytes = load("tree-plain.hex");
    assert_eq!(bytes.len(), 553);
    assert_eq!(bytes[0], 1, "tree version");
    assert_eq!(&bytes[1..5], &3u32.to_le_bytes());
    let k = key();
    assert_eq!(k.blob_id(&bytes), id::<BlobId>(BLOB_ROOT_TREE));
    let t = Tree::decode(&bytes).unwrap();
    let names: Vec<&[u8]> = t.nodes.iter().map(|n| &n.name[..]).collect();
    assert_eq!(names, [&b"data.bin"[..], b"link", b"sub"]);

    let f = &t.nodes[0];
    assert_eq!(f.kind, NodeKind::File);
    assert_eq!(f.flags, 0);
    assert_eq!(f.mode, 0o640);
    assert_eq!((f.uid, f.gid), (1000, 100));
    assert_eq!((&f.user[..], &f.group[..]), (&b"alice"[..], &b"users"[..]));
    assert_eq!(
        f.mtime,
        Timestamp {
            sec: 1_793_500_000,
            nsec: 123_456_789
        }
    );
    assert_eq!(f.atime, Timestamp::default());
    assert_eq!(
        f.ctime,
        Timestamp {
            sec: 1_793_500_001,
            nsec: 5
        }
    );
    assert_eq!((f.inode, f.device, f.nlink, f.rdev), (4242, 0x801, 1, 0));
    assert_eq!(f.size, 2596);
    assert!(f.target.is_empty());
    assert_eq!(
        f.xattrs,
        vec![(b"user.comment".to_vec(), b"test vector".to_vec())]
    );
    let Content::File { hash, extents } = &f.content else {
        panic!("not a file")
    };
    assert_eq!(hex::encode(hash), FILE_HASH);
    assert_eq!(extents.len(), 2);
    assert_eq!(
        (extents[0].offset, extents[0].length, extents[0].blob),
        (0, 896, id(BLOB_DATA_1))
    );
    assert_eq!(
        (extents[1].offset, extents[1].length, extents[1].blob),
        (1896, 200, id(BLOB_DATA_2))
    );

    let l = &t.nodes[1];
    assert_eq!(l.kind, NodeKind::Symlink);
    assert_eq!(l.mode, 0o777);
    assert_eq!(l.target, b"data.bin");
    assert_eq!(l.size, 0);
    assert_eq!(l.content, Content::None);

    let d = &t.nodes[2];
    assert_eq!(d.kind, NodeKind::Dir);
    assert_eq!(d.mode, 0o755);
    assert_eq!((d.uid, d.gid, d.nlink), (0, 0, 2));
    assert_eq!(&d.user[..], b"root");
    assert_eq!(
        d.mtime,
        Timestamp {
            sec: 1_793_500_003,
            nsec: 999_999_999
        }
    );
    assert_eq!(d.subtree(), Some(id(BLOB_EMPTY_TREE)));
}

#[test]
fn sealed_tree_opens() {
    let sealed = load("tree-sealed.hex");
    assert_eq!(sealed.len(), 398);
    assert_eq!(&sealed[..24], &spec::nonce::ROOT_TREE);
    let e = tree_entries()[0];
    let plain = pack::open_blob(&key(), &e, &sealed).unwrap();
    assert_eq!(plain, load("tree-plain.hex"));
    // the stored form is one zstd frame
    let stored = key().open(label::TREE_BLOB, &sealed).unwrap();
    assert_eq!(&stored[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    assert!(key().open(label::DATA_BLOB, &sealed).is_err());
}

#[test]
fn snapshot_decodes() {
    let bytes = load("snapshot.hex");
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), SNAPSHOT_ID);
    assert_eq!(&bytes[..4], b"ASN\x01");
    let s = Snapshot::from_object(&key(), &bytes).unwrap();
    assert_eq!(s.time.to_rfc3339(), "2026-11-02T03:04:05.123456789+00:00");
    assert_eq!(s.host, "vectors.example");
    assert_eq!(s.username, "alice");
    assert_eq!(s.paths, ["/data.bin", "/link", "/sub"]);
    assert_eq!(s.tags, ["daily", "vectors"]);
    assert_eq!(s.tree, id::<BlobId>(BLOB_ROOT_TREE));
    assert_eq!(s.parent, None);
    assert_eq!(s.original, None);
    assert_eq!(s.program_version, "arca 0.1.0");
    assert!(s.partial);
    assert_eq!(s.errors.len(), 1);
    assert_eq!(s.errors[0].path, "/sub/secret");
    assert_eq!(s.errors[0].error, "Permission denied (os error 13)");
    assert_eq!(s.warnings.len(), 1);
    assert_eq!(s.warnings[0].path, "/data.bin");
    let m = &s.summary;
    assert_eq!(m.backup_start, Some(spec::snapshot_time()));
    assert_eq!(
        m.backup_end.unwrap().to_rfc3339(),
        "2026-11-02T03:04:06.500+00:00"
    );
    assert_eq!(
        (
            m.files_new,
            m.files_changed,
            m.files_unmodified,
            m.dirs,
            m.others
        ),
        (1, 0, 0, 1, 1)
    );
    assert_eq!(m.total_bytes, 2596);
    assert_eq!(m.bytes_read, 1096);
    assert_eq!(m.blobs_added, 4);
    assert_eq!(m.data_added, 896 + 200 + 553 + 5);
    assert_eq!(m.data_added_packed, 507 + 595 + 363);
    assert_eq!(s.base, backup_base());
    assert_eq!(
        SnapshotId(*blake3::hash(&bytes).as_bytes()),
        id(SNAPSHOT_ID)
    );
}

#[test]
fn chunker_vector_matches_the_engine() {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors_dir().join("chunker.json")).unwrap())
            .unwrap();
    let params: ChunkerParams = serde_json::from_value(v["params"].clone()).unwrap();
    assert_eq!(params, spec::CHUNKER_PARAMS);
    let input = spec::chunker_input();
    assert_eq!(
        v["input"]["blake3"].as_str().unwrap(),
        blake3::hash(&input).to_hex().as_str()
    );
    let ends: Vec<usize> = serde_json::from_value(v["chunk_ends"].clone()).unwrap();
    assert_eq!(ends.len(), 52);
    let c = Chunker::new(params, key().chunker_key());
    let engine: Vec<usize> = c.chunks(&input).map(|r| r.end).collect();
    assert_eq!(engine, ends);
    assert_eq!(c.boundaries(&input, true), ends);
    assert_eq!(
        v["chunker_key"].as_str().unwrap(),
        hex::encode(key().chunker_key())
    );
}

// ------------------------------------- 2. an independent reader of the spec

/// What the specification says, implemented without the engine.
mod independent {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    use chacha20poly1305::aead::{Aead, Payload};
    use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};

    pub const CTX_ENCRYPTION: &str = "arca 2026-11 repository v1 encryption key";
    pub const CTX_BLOB_ID: &str = "arca 2026-11 repository v1 blob id key";
    pub const CTX_CHUNKER: &str = "arca 2026-11 repository v1 chunker key";

    pub struct Keys {
        pub enc: [u8; 32],
        pub id: [u8; 32],
        pub chunker: [u8; 32],
    }

    pub fn keys(master: &[u8; 32]) -> Keys {
        Keys {
            enc: blake3::derive_key(CTX_ENCRYPTION, master),
            id: blake3::derive_key(CTX_BLOB_ID, master),
            chunker: blake3::derive_key(CTX_CHUNKER, master),
        }
    }

    /// `nonce(24) || ciphertext || tag(16)`, AD = the 4-byte label.
    pub fn open(key: &[u8; 32], label: &[u8; 4], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 40 {
            return None;
        }
        let cipher = XChaCha20Poly1305::new_from_slice(key).ok()?;
        let nonce = XNonce::try_from(&sealed[..24]).ok()?;
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed[24..],
                    aad: label,
                },
            )
            .ok()
    }

    pub fn u16le(b: &[u8], at: &mut usize) -> u16 {
        let v = u16::from_le_bytes(b[*at..*at + 2].try_into().unwrap());
        *at += 2;
        v
    }
    pub fn u32le(b: &[u8], at: &mut usize) -> u32 {
        let v = u32::from_le_bytes(b[*at..*at + 4].try_into().unwrap());
        *at += 4;
        v
    }
    pub fn u64le(b: &[u8], at: &mut usize) -> u64 {
        let v = u64::from_le_bytes(b[*at..*at + 8].try_into().unwrap());
        *at += 8;
        v
    }
    pub fn take<'a>(b: &'a [u8], at: &mut usize, n: usize) -> &'a [u8] {
        let v = &b[*at..*at + n];
        *at += n;
        v
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct Entry {
        pub kind: u8,
        pub compression: u8,
        pub id: [u8; 32],
        pub offset: u64,
        pub length: u32,
        pub raw_length: u32,
    }

    /// `count:u32le` then 50-byte entries.
    pub fn entries(b: &[u8], at: &mut usize) -> Vec<Entry> {
        let n = u32le(b, at);
        (0..n)
            .map(|_| Entry {
                kind: take(b, at, 1)[0],
                compression: take(b, at, 1)[0],
                id: take(b, at, 32).try_into().unwrap(),
                offset: u64le(b, at),
                length: u32le(b, at),
                raw_length: u32le(b, at),
            })
            .collect()
    }

    /// A pack: checks its name, its trailer, its header and the layout,
    /// then opens every blob and checks its id. Returns entries and
    /// plaintexts.
    pub fn read_pack(k: &Keys, name: &[u8; 32], pack: &[u8]) -> Vec<(Entry, Vec<u8>)> {
        assert_eq!(blake3::hash(pack).as_bytes(), name, "pack name");
        let n = pack.len();
        assert_eq!(&pack[n - 4..], b"APK\x01", "trailer magic");
        let hlen = u32::from_le_bytes(pack[n - 8..n - 4].try_into().unwrap()) as usize;
        let hstart = n - 8 - hlen;
        let header = open(&k.enc, b"APH\x01", &pack[hstart..n - 8]).expect("header opens");
        let mut at = 0;
        let es = entries(&header, &mut at);
        assert_eq!(at, header.len(), "no bytes after the entries");
        let mut pos = 0u64;
        let mut out = vec![];
        for e in es {
            assert_eq!(e.offset, pos, "blobs tile the pack");
            pos += e.length as u64;
            let label: &[u8; 4] = match e.kind {
                0 => b"ADB\x01",
                1 => b"ATB\x01",
                k => panic!("kind {k}"),
            };
            let sealed = &pack[e.offset as usize..pos as usize];
            let stored = open(&k.enc, label, sealed).expect("blob opens");
            let plain = match e.compression {
                0 => stored,
                1 => zstd::stream::decode_all(&stored[..]).unwrap(),
                c => panic!("compression {c}"),
            };
            assert_eq!(plain.len(), e.raw_length as usize);
            assert_eq!(
                blake3::keyed_hash(&k.id, &plain).as_bytes(),
                &e.id,
                "blob id"
            );
            out.push((e, plain));
        }
        assert_eq!(pos as usize, hstart, "blobs end where the header starts");
        out
    }

    /// `magic || seal(magic, body)`.
    pub fn open_magic(k: &Keys, magic: &[u8; 4], object: &[u8]) -> Vec<u8> {
        assert_eq!(&object[..4], magic);
        open(&k.enc, magic, &object[4..]).expect("object opens")
    }

    /// The key file: Argon2id over the password, unwrap the master secret.
    pub fn unlock(key_file: &[u8], password: &[u8]) -> Option<[u8; 32]> {
        let v: serde_json::Value = serde_json::from_slice(key_file).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["kdf"]["algorithm"], "argon2id");
        let salt = B64.decode(v["kdf"]["salt"].as_str().unwrap()).unwrap();
        let p = argon2::Params::new(
            v["kdf"]["memory_kib"].as_u64().unwrap() as u32,
            v["kdf"]["iterations"].as_u64().unwrap() as u32,
            v["kdf"]["parallelism"].as_u64().unwrap() as u32,
            Some(32),
        )
        .unwrap();
        let mut kek = [0u8; 32];
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p)
            .hash_password_into(password, &salt, &mut kek)
            .unwrap();
        let wrapped = B64.decode(v["master"].as_str().unwrap()).unwrap();
        open(&kek, b"AKY\x01", &wrapped).map(|m| m.try_into().unwrap())
    }

    pub struct Extent {
        pub offset: u64,
        pub length: u32,
        pub blob: [u8; 32],
    }

    pub struct Node {
        pub name: Vec<u8>,
        pub kind: u8,
        pub size: u64,
        pub target: Vec<u8>,
        pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
        pub hash: Option<[u8; 32]>,
        pub extents: Vec<Extent>,
        pub subtree: Option<[u8; 32]>,
        pub times: [(i64, u32); 3],
        pub mode: u32,
    }

    /// A tree blob, with the validation rules of the specification.
    pub fn tree(b: &[u8]) -> Vec<Node> {
        let mut at = 0;
        assert_eq!(take(b, &mut at, 1)[0], 1, "tree version");
        let n = u32le(b, &mut at);
        let mut nodes: Vec<Node> = vec![];
        for _ in 0..n {
            let len = u16le(b, &mut at) as usize;
            let name = take(b, &mut at, len).to_vec();
            assert!(!name.is_empty() && name.len() <= 4096);
            assert!(name != b"." && name != b"..");
            assert!(!name.contains(&b'/') && !name.contains(&0));
            if let Some(prev) = nodes.last() {
                assert!(prev.name < name, "sorted, unique");
            }
            let kind = take(b, &mut at, 1)[0];
            assert!(kind <= 6);
            let _flags = take(b, &mut at, 1)[0];
            let mode = u32le(b, &mut at);
            let _uid = u32le(b, &mut at);
            let _gid = u32le(b, &mut at);
            let mut times = [(0i64, 0u32); 3];
            for t in &mut times {
                let sec = u64le(b, &mut at) as i64;
                let nsec = u32le(b, &mut at);
                assert!(nsec < 1_000_000_000);
                *t = (sec, nsec);
            }
            let _inode = u64le(b, &mut at);
            let _device = u64le(b, &mut at);
            let _nlink = u64le(b, &mut at);
            let size = u64le(b, &mut at);
            let _rdev = u64le(b, &mut at);
            let l = u16le(b, &mut at) as usize;
            let _user = take(b, &mut at, l);
            let l = u16le(b, &mut at) as usize;
            let _group = take(b, &mut at, l);
            let l = u32le(b, &mut at) as usize;
            let target = take(b, &mut at, l).to_vec();
            let nx = u32le(b, &mut at);
            let mut xattrs = vec![];
            for _ in 0..nx {
                let l = u16le(b, &mut at) as usize;
                let k = take(b, &mut at, l).to_vec();
                let l = u32le(b, &mut at) as usize;
                let v = take(b, &mut at, l).to_vec();
                xattrs.push((k, v));
            }
            let (mut hash, mut extents, mut subtree) = (None, vec![], None);
            match kind {
                0 => {
                    hash = Some(take(b, &mut at, 32).try_into().unwrap());
                    let ne = u32le(b, &mut at);
                    let mut end = 0u64;
                    for _ in 0..ne {
                        let e = Extent {
                            offset: u64le(b, &mut at),
                            length: u32le(b, &mut at),
                            blob: take(b, &mut at, 32).try_into().unwrap(),
                        };
                        assert!(e.offset >= end && e.length > 0, "ordered, not overlapping");
                        end = e.offset + e.length as u64;
                        extents.push(e);
                    }
                    assert!(end <= size);
                }
                1 => subtree = Some(take(b, &mut at, 32).try_into().unwrap()),
                _ => {}
            }
            nodes.push(Node {
                name,
                kind,
                size,
                target,
                xattrs,
                hash,
                extents,
                subtree,
                times,
                mode,
            });
        }
        assert_eq!(at, b.len(), "no bytes after the last node");
        nodes
    }

    /// `round(log2(avg))` ± 1 into fastcdc's table (normalisation level 1).
    const MASKS: [u64; 26] = [
        0,
        0,
        0,
        0,
        0,
        0x0000000001804110,
        0x0000000001803110,
        0x0000000018035100,
        0x0000001800035300,
        0x0000019000353000,
        0x0000590003530000,
        0x0000d90003530000,
        0x0000d90103530000,
        0x0000d90303530000,
        0x0000d90313530000,
        0x0000d90f03530000,
        0x0000d90303537000,
        0x0000d90703537000,
        0x0000d90707537000,
        0x0000d91707537000,
        0x0000d91747537000,
        0x0000d91767537000,
        0x0000d93767537000,
        0x0000d93777537000,
        0x0000d93777577000,
        0x0000db3777577000,
    ];

    /// The chunk end offsets, byte by byte as the specification states.
    pub fn chunk_ends(
        chunker_key: &[u8; 32],
        min: usize,
        avg: usize,
        max: usize,
        data: &[u8],
    ) -> Vec<usize> {
        let mut table = [0u8; 2048];
        blake3::Hasher::new_keyed(chunker_key)
            .update(b"gear")
            .finalize_xof()
            .fill(&mut table);
        let gear: Vec<u64> = table
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let bits = (avg as f64).log2().round() as usize;
        let (mask_s, mask_l) = (MASKS[bits + 1], MASKS[bits - 1]);
        let cut = |d: &[u8]| -> usize {
            if d.len() <= min {
                return d.len();
            }
            let remaining = d.len().min(max);
            let center = avg.min(remaining);
            let mut h: u64 = 0;
            for (i, &byte) in d.iter().enumerate().take(remaining / 2 * 2).skip(min) {
                h = (h << 1).wrapping_add(gear[byte as usize]);
                let mask = if i < center { mask_s } else { mask_l };
                if h & mask == 0 {
                    return i;
                }
            }
            remaining
        };
        let mut out = vec![];
        let mut pos = 0;
        while pos < data.len() {
            pos += cut(&data[pos..]);
            out.push(pos);
        }
        out
    }
}

#[test]
fn independent_reader_agrees() {
    use independent as ind;

    // keys: from the password through the key file, then derived
    let key_file = load("key.hex");
    let master = ind::unlock(&key_file, spec::PASSWORD).expect("password opens the key");
    assert_eq!(master, spec::MASTER_SECRET);
    assert!(ind::unlock(&key_file, b"nope").is_none());
    let k = ind::keys(&master);

    // config (and its copy in the key file)
    let config = load("config.hex");
    let kv: serde_json::Value = serde_json::from_slice(&key_file).unwrap();
    use base64::Engine;
    let copy = base64::engine::general_purpose::STANDARD
        .decode(kv["config"].as_str().unwrap())
        .unwrap();
    assert_eq!(copy, config);
    let c: serde_json::Value =
        serde_json::from_slice(&ind::open_magic(&k, b"ACF\x01", &config)).unwrap();
    assert_eq!(c["version"], 2);
    assert_eq!(c["id"], hex::encode(spec::REPO_ID));
    assert_eq!(c["created"], "2026-11-01T12:00:00Z");
    assert_eq!(c["chunker"]["min_size"], 131072);
    assert_eq!(c["chunker"]["avg_size"], 524288);
    assert_eq!(c["chunker"]["max_size"], 4194304);
    assert_eq!(c["pack_size"], 16777216);

    // snapshot
    let snap = load("snapshot.hex");
    let snap_name = *blake3::hash(&snap).as_bytes();
    assert_eq!(hex::encode(snap_name), SNAPSHOT_ID);
    let s: serde_json::Value =
        serde_json::from_slice(&ind::open_magic(&k, b"ASN\x01", &snap)).unwrap();
    assert_eq!(s["time"], "2026-11-02T03:04:05.123456789Z");
    assert_eq!(s["postgres"][0]["start_wal"], "000000010000000000000002");
    assert_eq!(s["postgres"][0]["timeline"], 1);
    assert_eq!(s["checks"][0]["path"], "/data.bin");
    assert_eq!(s["checks"][0]["kind"], "command");
    assert_eq!(s["checks"][0]["result"], "not empty");
    assert_eq!(s["tree"], BLOB_ROOT_TREE);
    assert_eq!(s["parent"], serde_json::Value::Null);
    assert_eq!(s["partial"], true);

    // the prune record (the head) and what it says
    let record = load("prune-record.hex");
    assert_eq!(
        hex::encode(blake3::hash(&record).as_bytes()),
        PRUNE_RECORD_ID
    );
    let rz = ind::open_magic(&k, b"APR\x01", &record);
    let rplain = zstd::stream::decode_all(&rz[..]).unwrap();
    // the plaintext is the JSON alone
    let info: serde_json::Value = serde_json::from_slice(&rplain).unwrap();
    assert_eq!(info["generation"], 2);
    let d = |b: u8| hex::encode([b; 32]);
    assert_eq!(info["previous"], d(0xd1));
    let swept = &info["swept"];
    assert_eq!(
        (swept["generation"].as_u64(), swept["mark"].as_str()),
        (Some(1), Some(&d(0xd1)[..]))
    );
    assert_eq!(swept["accepted"][0], d(0xd4));
    assert_eq!(info["to_delete"]["packs"][0][0], d(0xd2));
    assert_eq!(info["to_delete"]["packs"][0][1], 70000);
    assert_eq!(info["to_delete"]["snapshots"][0], d(0xd3));
    assert_eq!(info["supersedes_index"][0], d(0xd5));
    assert_eq!(info["supersedes_prune"][0], d(0xd1));
    // the condemned packs, by id and size
    assert_eq!(info["condemned"].as_array().map(|a| a.len()), Some(1));
    assert_eq!(info["condemned"][0][0], d(0xd6));
    assert_eq!(info["condemned"][0][1], 1102);
    // the rule: a base honours the swept mark if its generation is higher,
    // or equal with that very mark
    let sw_gen = swept["generation"].as_u64().unwrap();
    let sw_mark: [u8; 32] = hex::decode(swept["mark"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let honours = |g: u64, mark: [u8; 32]| g > sw_gen || (g == sw_gen && mark == sw_mark);

    // the seal of generation 1, read by its computed name
    let mut seal_input = b"arca 2026-12 seal v1".to_vec();
    seal_input.extend_from_slice(&spec::REPO_ID);
    seal_input.extend_from_slice(&1u64.to_le_bytes());
    assert_eq!(blake3::hash(&seal_input).to_hex().as_str(), SEAL_NAME);
    let seal: serde_json::Value =
        serde_json::from_slice(&ind::open_magic(&k, b"ASL\x01", &load("seal.hex"))).unwrap();
    assert_eq!(seal["generation"], 1);
    assert_eq!(seal["mark"], d(0xd1));
    assert_eq!(seal["created"], "2026-11-02T01:00:00Z");

    // the snapshot's base honours the swept mark: it is valid
    let sb = &s["base"];
    let sb_mark: [u8; 32] = hex::decode(sb["mark"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(hex::encode(sb_mark), PRUNE_RECORD_ID);
    assert!(honours(sb["generation"].as_u64().unwrap(), sb_mark));

    // the version-1 segment: no base (generation 0), so void here
    let v1 = load("index-v1.hex");
    assert_eq!(hex::encode(blake3::hash(&v1).as_bytes()), INDEX_V1_ID);
    let v1plain = zstd::stream::decode_all(&ind::open_magic(&k, b"AIX\x01", &v1)[..]).unwrap();
    assert!(!honours(0, [0; 32]));

    // index segment (version 2): its base, then which blob is where
    let index = load("index.hex");
    assert_eq!(hex::encode(blake3::hash(&index).as_bytes()), INDEX_ID);
    let z = ind::open_magic(&k, b"AIX\x02", &index);
    let v2plain = zstd::stream::decode_all(&z[..]).unwrap();
    let mut at = 0;
    let base_gen = ind::u64le(&v2plain, &mut at);
    let base_mark: [u8; 32] = ind::take(&v2plain, &mut at, 32).try_into().unwrap();
    assert_eq!(
        (base_gen, hex::encode(base_mark)),
        (2, PRUNE_RECORD_ID.to_string())
    );
    assert!(honours(base_gen, base_mark), "the segment counts");
    let plain = v2plain[at..].to_vec();
    assert_eq!(plain, v1plain, "the same segment as the version-1 one");
    let mut at = 0;
    let npacks = ind::u32le(&plain, &mut at);
    assert_eq!(npacks, 2);
    let mut located = std::collections::HashMap::new();
    let mut packs = vec![];
    for _ in 0..npacks {
        let pid: [u8; 32] = ind::take(&plain, &mut at, 32).try_into().unwrap();
        let size = ind::u64le(&plain, &mut at);
        let es = ind::entries(&plain, &mut at);
        for e in &es {
            located.insert(e.id, (pid, e.clone()));
        }
        packs.push((pid, size, es));
    }
    let nsup = ind::u32le(&plain, &mut at);
    assert_eq!(nsup, 1);
    assert_eq!(ind::take(&plain, &mut at, 32), &[0xee; 32]);
    assert_eq!(at, plain.len());

    // packs: names, headers, blobs and their ids; the index agrees
    let mut blobs = std::collections::HashMap::new();
    for (file, want) in [
        ("pack-data.hex", DATA_PACK_ID),
        ("pack-tree.hex", TREE_PACK_ID),
    ] {
        let bytes = load(file);
        let name: [u8; 32] = hex::decode(want).unwrap().try_into().unwrap();
        let (_, size, es) = packs.iter().find(|p| p.0 == name).expect("indexed");
        assert_eq!(*size, bytes.len() as u64);
        let read = ind::read_pack(&k, &name, &bytes);
        assert_eq!(
            &read.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            es,
            "index entries equal the pack header"
        );
        for (e, p) in read {
            blobs.insert(e.id, (e.kind, p));
        }
    }
    let blob_hex = |h: &str| -> [u8; 32] { hex::decode(h).unwrap().try_into().unwrap() };
    assert_eq!(blobs[&blob_hex(BLOB_DATA_1)].1, spec::data_blob_1());
    assert_eq!(blobs[&blob_hex(BLOB_DATA_2)].1, spec::data_blob_2());
    assert_eq!(located.len(), 4);

    // walk the snapshot: root tree, its file, its directory
    let root_id = blob_hex(s["tree"].as_str().unwrap());
    let (kind, root_plain) = &blobs[&root_id];
    assert_eq!(*kind, 1);
    assert_eq!(root_plain, &load("tree-plain.hex"));
    let nodes = ind::tree(root_plain);
    assert_eq!(nodes.len(), 3);
    let file = &nodes[0];
    assert_eq!(
        (file.name.as_slice(), file.kind, file.size),
        (&b"data.bin"[..], 0, 2596)
    );
    assert_eq!(file.mode, 0o640);
    assert_eq!(file.times[0], (1_793_500_000, 123_456_789));
    assert_eq!(file.xattrs[0].0, b"user.comment");
    // logical content: extents at their offsets, holes as zeros
    let mut content = vec![0u8; file.size as usize];
    for e in &file.extents {
        let (kind, p) = &blobs[&e.blob];
        assert_eq!(*kind, 0);
        assert_eq!(p.len(), e.length as usize);
        content[e.offset as usize..e.offset as usize + p.len()].copy_from_slice(p);
    }
    assert_eq!(content, spec::file_content());
    assert_eq!(blake3::hash(&content).as_bytes(), &file.hash.unwrap());
    assert_eq!(hex::encode(file.hash.unwrap()), FILE_HASH);
    let link = &nodes[1];
    assert_eq!((link.kind, link.target.as_slice()), (2, &b"data.bin"[..]));
    let dir = &nodes[2];
    assert_eq!(dir.kind, 1);
    let sub = dir.subtree.unwrap();
    assert_eq!(hex::encode(sub), BLOB_EMPTY_TREE);
    assert!(ind::tree(&blobs[&sub].1).is_empty());

    // the sealed tree vector
    let sealed = load("tree-sealed.hex");
    let stored = ind::open(&k.enc, b"ATB\x01", &sealed).unwrap();
    assert_eq!(
        zstd::stream::decode_all(&stored[..]).unwrap(),
        load("tree-plain.hex")
    );

    // the chunker
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors_dir().join("chunker.json")).unwrap())
            .unwrap();
    let want: Vec<usize> = serde_json::from_value(v["chunk_ends"].clone()).unwrap();
    let mut input = vec![0u8; 65536];
    blake3::Hasher::new()
        .update(b"arca format-spec chunker input")
        .finalize_xof()
        .fill(&mut input);
    input[30000..40000].fill(0);
    assert_eq!(hex::encode(k.chunker), v["chunker_key"].as_str().unwrap());
    assert_eq!(ind::chunk_ends(&k.chunker, 256, 1024, 4096, &input), want);
}

#[test]
fn independent_chunker_matches_the_engine_on_more_inputs() {
    // The byte-wise description in the specification equals the engine's
    // chunker for other sizes and keys too.
    let key = [0x5c; 32];
    let mut data = vec![0u8; 300_000];
    blake3::Hasher::new()
        .update(b"more")
        .finalize_xof()
        .fill(&mut data);
    data[100_000..140_000].fill(7);
    for (min, avg, max) in [(64, 256, 1024), (256, 1024, 4096), (2048, 12288, 49152)] {
        let p = ChunkerParams {
            min_size: min,
            avg_size: avg,
            max_size: max,
        };
        p.validate().unwrap();
        let engine: Vec<usize> = Chunker::new(p, &key).chunks(&data).map(|r| r.end).collect();
        for len in [data.len(), 12_345, 300, 63] {
            let engine_part: Vec<usize> = Chunker::new(p, &key)
                .chunks(&data[..len])
                .map(|r| r.end)
                .collect();
            assert_eq!(
                independent::chunk_ends(
                    &key,
                    min as usize,
                    avg as usize,
                    max as usize,
                    &data[..len]
                ),
                engine_part,
                "{min}/{avg}/{max} len {len}"
            );
        }
        assert!(!engine.is_empty());
    }
}

// ------------------------------------------- 3. the vectors are reproduced

/// The compressed forms, taken from the vectors (see the crate docs).
fn frames_from_vectors() -> spec::Frames {
    let k = key();
    let blob = |file: &str, e: PackEntry| -> spec::Stored {
        let sealed = &load(file)[range(&e)];
        spec::Stored {
            bytes: k.open(e.kind.label(), sealed).unwrap(),
            compression: e.compression,
        }
    };
    let [d1, d2] = <[PackEntry; 2]>::try_from(data_entries()).unwrap();
    let [t1, t2] = <[PackEntry; 2]>::try_from(tree_entries()).unwrap();
    spec::Frames {
        data_1: blob("pack-data.hex", d1),
        data_2: blob("pack-data.hex", d2),
        root_tree: blob("pack-tree.hex", t1),
        empty_tree: blob("pack-tree.hex", t2),
        index: k.open(label::INDEX_V2, &load("index.hex")[4..]).unwrap(),
        index_v1: k.open(label::INDEX, &load("index-v1.hex")[4..]).unwrap(),
        check_record: k
            .open(label::COVERAGE, &load("check-record.hex")[4..])
            .unwrap(),
        prune_record: k
            .open(label::PRUNE, &load("prune-record.hex")[4..])
            .unwrap(),
    }
}

#[test]
fn check_record_decodes() {
    let c = arca_engine::format::coverage::Coverage::from_object(&key(), &load("check-record.hex"))
        .unwrap();
    assert_eq!(c.verified.len(), 2);
    let end = spec::backup_end().timestamp();
    assert_eq!(c.verified[&id::<PackId>(DATA_PACK_ID)], end);
    assert_eq!(c.verified[&id::<PackId>(TREE_PACK_ID)], end - 86_400);
    // Independently: magic, sealed zstd of count:u32le (pack_id[32] time:i64le)* sorted by id.
    let bytes = load("check-record.hex");
    assert_eq!(&bytes[..4], b"ACV\x01");
    let z = key().open(label::COVERAGE, &bytes[4..]).unwrap();
    let plain = zstd::bulk::decompress(&z, 1 << 20).unwrap();
    assert_eq!(plain.len(), 4 + 2 * 40);
    assert_eq!(u32::from_le_bytes(plain[..4].try_into().unwrap()), 2);
    let first = &plain[4..36];
    assert!(first < &plain[44..76], "entries are sorted by pack id");
    let mut damaged = bytes.clone();
    *damaged.last_mut().unwrap() ^= 1;
    assert!(arca_engine::format::coverage::Coverage::from_object(&key(), &damaged).is_err());
}

#[test]
fn lock_decodes() {
    let l = arca_engine::format::lock::LockInfo::from_object(&key(), &load("lock.hex")).unwrap();
    assert_eq!(l.kind, arca_engine::format::lock::LockKind::Shared);
    assert_eq!(
        (l.host.as_str(), l.pid, l.operation.as_str()),
        ("db-1", 4242, "backup")
    );
    assert_eq!(l.refreshed, spec::backup_end());
    let json = key().open(label::LOCK, &load("lock.hex")[4..]).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["kind"], "shared");
}

#[test]
fn lock_removal_notice_decodes() {
    let n = arca_engine::format::lock::LockRemoval::from_object(&key(), &load("lock-removal.hex"))
        .unwrap();
    assert_eq!(n, spec::lock_removal());
    assert_eq!(&load("lock-removal.hex")[..4], b"ALR\x01");
    let json = key()
        .open(label::LOCK_REMOVAL, &load("lock-removal.hex")[4..])
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["operation"], "unlock --remove-all");
    assert_eq!(v["removed"], "2026-11-02T01:30:00.250Z");
    // a notice is not a lock: the labels keep them apart
    assert!(
        arca_engine::format::lock::LockInfo::from_object(&key(), &load("lock-removal.hex"))
            .is_err()
    );
}

#[test]
fn drill_record_decodes() {
    let bytes = load("drill-record.hex");
    let r = arca_engine::format::drill::DrillRecord::from_object(&key(), &bytes).unwrap();
    assert_eq!(r, spec::drill_record());
    assert!(r.met(), "15.75 s within 900 s");
    let json = key().open(label::DRILL, &bytes[4..]).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["rto_seconds"], 900);
    assert_eq!(v["total_seconds"], 15.75);
    assert!(v.get("error").is_none(), "omitted when empty");
    // a negative duration is refused
    let mut bad = v.clone();
    bad["check_seconds"] = serde_json::json!(-1.0);
    let sealed = [
        &b"ADR\x01"[..],
        &key().seal(label::DRILL, &serde_json::to_vec(&bad).unwrap()),
    ]
    .concat();
    assert!(arca_engine::format::drill::DrillRecord::from_object(&key(), &sealed).is_err());
}

#[test]
fn vectors_are_reproduced_exactly() {
    let frames = frames_from_vectors();
    let v = spec::build(&frames);
    for (name, bytes) in v.hex_files() {
        assert!(
            load(name) == bytes,
            "vectors/{name} differs from what the generator builds"
        );
    }
    assert_eq!(
        std::fs::read(vectors_dir().join("chunker.json")).unwrap(),
        v.chunker,
        "vectors/chunker.json"
    );
    assert_eq!(
        std::fs::read_to_string(vectors_dir().join("README.md")).unwrap(),
        spec::readme(&v),
        "vectors/README.md"
    );
    assert_eq!(v.key_id.to_hex(), KEY_ID);
    assert_eq!(v.index_id.to_hex(), INDEX_ID);
    assert_eq!(v.index_v1_id.to_hex(), INDEX_V1_ID);
    assert_eq!(v.prune_record_id.to_hex(), PRUNE_RECORD_ID);
    assert_eq!(v.seal_name.to_hex(), SEAL_NAME);
    assert_eq!(v.snapshot_id.to_hex(), SNAPSHOT_ID);
    assert_eq!(v.data_pack.id.to_hex(), DATA_PACK_ID);
    assert_eq!(v.tree_pack.id.to_hex(), TREE_PACK_ID);

    // The frames decompress to what they stand for.
    let plain = |s: &spec::Stored, raw: &[u8]| match s.compression {
        Compression::Zstd => assert_eq!(zstd::bulk::decompress(&s.bytes, raw.len()).unwrap(), raw),
        Compression::None => assert_eq!(s.bytes, raw),
    };
    plain(&frames.data_1, &spec::data_blob_1());
    plain(&frames.data_2, &spec::data_blob_2());
    plain(&frames.root_tree, &spec::root_tree().encode());
    plain(&frames.empty_tree, &Tree::default().encode());
    assert_eq!(frames.data_1.compression, Compression::Zstd);
    assert_eq!(frames.data_2.compression, Compression::None);

    // With this build's libzstd the generator makes the same frames; if not,
    // only the compressed bytes differ, which is not a format change.
    if spec::Frames::compute() != frames {
        eprintln!("note: this libzstd compresses the vectors' blobs to other bytes");
    }
}

#[test]
fn engine_encoders_write_what_the_vectors_hold() {
    // The engine's encoders draw random nonces: compare after opening.
    let k = key();
    let open = |magic: &[u8; 4], obj: &[u8]| {
        assert_eq!(&obj[..4], magic);
        k.open(magic, &obj[4..]).unwrap()
    };

    let config = spec::config();
    let obj = config.to_object(&k);
    assert_eq!(obj.len(), load("config.hex").len());
    assert_eq!(
        open(label::CONFIG, &obj),
        open(label::CONFIG, &load("config.hex"))
    );

    let snapshot = Snapshot::from_object(&k, &load("snapshot.hex")).unwrap();
    let obj = snapshot.to_object(&k);
    assert_eq!(
        open(label::SNAPSHOT, &obj),
        open(label::SNAPSHOT, &load("snapshot.hex"))
    );

    // the engine writes index segments as version 2 only (version 1 is read)
    let unz = |z: Vec<u8>| zstd::bulk::decompress(&z, 1 << 20).unwrap();
    for file in ["index.hex", "index-v1.hex"] {
        let seg = IndexSegment::from_object(&k, &load(file)).unwrap();
        let obj = seg.to_object(&k);
        let plain = unz(open(label::INDEX_V2, &obj));
        assert_eq!(plain, spec::index_v2_plain(&seg));
        assert_eq!(&plain[40..], &seg.encode_plain()[..]);
    }
    let seg = IndexSegment::from_object(&k, &load("index.hex")).unwrap();
    assert_eq!(
        unz(open(label::INDEX_V2, &seg.to_object(&k))),
        unz(open(label::INDEX_V2, &load("index.hex")))
    );
    assert_eq!(
        IndexSegment::from_object(&k, &load("index-v1.hex"))
            .unwrap()
            .encode_plain(),
        unz(open(label::INDEX, &load("index-v1.hex")))
    );

    // the prune record, the seal and the maintenance lock
    let r = PruneRecord::from_object(&k, &load("prune-record.hex")).unwrap();
    assert_eq!(
        unz(open(label::PRUNE, &r.to_object(&k))),
        unz(open(label::PRUNE, &load("prune-record.hex")))
    );
    assert_eq!(
        r.encode_plain(),
        unz(open(label::PRUNE, &load("prune-record.hex")))
    );
    let seal = Seal::from_object(&k, &load("seal.hex")).unwrap();
    assert_eq!(
        open(label::SEAL, &seal.to_object(&k)),
        open(label::SEAL, &load("seal.hex"))
    );
    let l = arca_engine::format::lock::LockInfo::from_object(&k, &load("lock-maintenance.hex"))
        .unwrap();
    assert_eq!(
        open(label::LOCK, &l.to_object(&k)),
        open(label::LOCK, &load("lock-maintenance.hex"))
    );

    let t = Tree::decode(&load("tree-plain.hex")).unwrap();
    assert_eq!(t.encode(), load("tree-plain.hex"));

    // A PackBuilder given the same sealed blobs writes the same pack but for
    // the header's nonce and ciphertext.
    for (file, kind, entries) in [
        ("pack-data.hex", BlobKind::Data, data_entries()),
        ("pack-tree.hex", BlobKind::Tree, tree_entries()),
    ] {
        let want = load(file);
        let mut b = PackBuilder::new(kind, 1024);
        for e in &entries {
            b.add(e.id, e.compression, e.raw_length, &want[range(e)]);
        }
        let got = b.finish(&k);
        assert_eq!(got.entries, entries);
        assert_eq!(got.bytes.len(), want.len());
        let data_end = entries.last().map_or(0, |e| range(e).end);
        assert_eq!(&got.bytes[..data_end], &want[..data_end]);
        assert_eq!(&got.bytes[want.len() - 8..], &want[want.len() - 8..]);
        let header = |p: &[u8]| {
            k.open(label::PACK_HEADER, &p[data_end..p.len() - 8])
                .unwrap()
        };
        assert_eq!(header(&got.bytes), header(&want));
        assert_eq!(header(&want), pack::encode_entries(&entries));
        assert_eq!(
            pack::read_header_from_bytes(&k, &got.id, &got.bytes).unwrap(),
            entries
        );
    }

    // KeyFile::create writes the same fields (its salt and nonce are random).
    let made = KeyFile::create(
        &k,
        spec::PASSWORD,
        spec::KDF,
        &load("config.hex"),
        "vectors.example",
        "alice",
    )
    .unwrap();
    let fields = |b: &[u8]| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        let mut f: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        f.extend(
            v["kdf"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| format!("kdf.{k}")),
        );
        f
    };
    assert_eq!(fields(&made.to_bytes()), fields(&load("key.hex")));
    let parsed = KeyFile::parse(&made.to_bytes()).unwrap();
    assert_eq!(
        parsed.unlock(spec::PASSWORD).unwrap().unwrap().secret(),
        &spec::MASTER_SECRET
    );
    assert_eq!(parsed.config_object(), load("config.hex"));
}

// ------------------------------------------------ versions and tampering

#[test]
fn unknown_versions_and_damage_are_rejected() {
    let k = key();
    // config: another magic version, or another version in the JSON
    let mut c = load("config.hex");
    c[3] = 2;
    assert!(Config::from_object(&k, &c).is_err());
    let mut json: serde_json::Value =
        serde_json::from_slice(&k.open(label::CONFIG, &load("config.hex")[4..]).unwrap()).unwrap();
    json["version"] = 3.into();
    assert!(Config::decode_json(&serde_json::to_vec(&json).unwrap()).is_err());
    json["version"] = 0.into();
    assert!(Config::decode_json(&serde_json::to_vec(&json).unwrap()).is_err());
    // version 1 (a repository no prune has upgraded) is still read
    json["version"] = 1.into();
    assert_eq!(
        Config::decode_json(&serde_json::to_vec(&json).unwrap())
            .unwrap()
            .version,
        1
    );
    // a config reader ignores fields it does not know
    json["version"] = 2.into();
    json["future_field"] = "x".into();
    assert!(Config::decode_json(&serde_json::to_vec(&json).unwrap()).is_ok());

    // index and snapshot: wrong magic
    for file in ["index.hex", "index-v1.hex"] {
        for v in [0u8, 3] {
            let mut i = load(file);
            i[3] = v;
            assert!(IndexSegment::from_object(&k, &i).is_err(), "{file} {v}");
        }
    }
    // a known kind in an unknown version that authenticates under its own
    // label is an unsupported version, not damage
    let z = k.open(label::INDEX_V2, &load("index.hex")[4..]).unwrap();
    let mut v3 = b"AIX\x03".to_vec();
    v3.extend_from_slice(&k.seal(b"AIX\x03", &z));
    let e = IndexSegment::from_object(&k, &v3).unwrap_err();
    assert!(e.is_unsupported_version(), "{e}");
    // a v2 body under the v1 magic (and the reverse) does not open
    let mut swapped = load("index.hex");
    swapped[3] = 1;
    assert!(IndexSegment::from_object(&k, &swapped).is_err());
    let mut swapped = load("index-v1.hex");
    swapped[3] = 2;
    assert!(IndexSegment::from_object(&k, &swapped).is_err());
    // prune record and seal: another magic version
    let mut r = load("prune-record.hex");
    r[3] = 2;
    assert!(PruneRecord::from_object(&k, &r).is_err());
    let mut sl = load("seal.hex");
    sl[3] = 2;
    assert!(Seal::from_object(&k, &sl).is_err());
    // a record of generation 0 is refused
    let mut r0 = spec::prune_record();
    r0.info.generation = 0;
    assert!(PruneRecord::decode_plain(&r0.encode_plain()).is_err());
    // a condemned pack without its size is refused
    let json = String::from_utf8(spec::prune_record().encode_plain()).unwrap();
    let cut = json.replace(",1102]]", "]]");
    assert_ne!(cut, json);
    assert!(PruneRecord::decode_plain(cut.as_bytes()).is_err());
    // trailing bytes after the JSON are refused
    let mut rt = spec::prune_record().encode_plain();
    rt.push(0);
    assert!(PruneRecord::decode_plain(&rt).is_err());
    let mut s = load("snapshot.hex");
    s[3] = 2;
    assert!(Snapshot::from_object(&k, &s).is_err());

    // pack: another trailer version
    let mut p = load("pack-data.hex");
    let n = p.len();
    p[n - 1] = b'2';
    assert!(pack::parse_trailer(&p[n - 8..]).is_err());

    // tree: another version byte
    let mut t = load("tree-plain.hex");
    t[0] = 2;
    assert!(Tree::decode(&t).is_err());

    // key file: another version
    let mut kv: serde_json::Value = serde_json::from_slice(&load("key.hex")).unwrap();
    kv["version"] = 2.into();
    assert!(KeyFile::parse(&serde_json::to_vec(&kv).unwrap()).is_err());

    // any flipped byte of a pack is caught (by its name, then by the AEAD)
    let p = load("pack-data.hex");
    let name: PackId = id(DATA_PACK_ID);
    for i in (0..p.len()).step_by(7) {
        let mut bad = p.clone();
        bad[i] ^= 0x40;
        assert!(
            pack::read_header_from_bytes(&k, &name, &bad).is_err(),
            "byte {i}"
        );
    }
    // a flipped byte inside a sealed blob fails authentication
    let e = data_entries()[0];
    let mut blob = p[range(&e)].to_vec();
    blob[30] ^= 1;
    assert!(pack::open_blob(&k, &e, &blob).is_err());
    // every flipped byte of the sealed tree fails
    let sealed = load("tree-sealed.hex");
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 1;
        assert!(k.open(label::TREE_BLOB, &bad).is_err(), "byte {i}");
    }
}

#[test]
fn tree_validation_rules() {
    // Unsafe or malformed trees built by hand from the vector are refused.
    let t = Tree::decode(&load("tree-plain.hex")).unwrap();
    for bad_name in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
        let mut t2 = t.clone();
        t2.nodes[1].name = bad_name.to_vec();
        assert!(Tree::decode(&t2.encode()).is_err(), "{bad_name:?}");
    }
    // unsorted and duplicate names
    let mut t2 = t.clone();
    t2.nodes.swap(0, 1);
    assert!(Tree::decode(&t2.encode()).is_err());
    let mut t2 = t.clone();
    t2.nodes[1].name = t2.nodes[0].name.clone();
    assert!(Tree::decode(&t2.encode()).is_err());
    // overlapping, empty and out-of-size extents
    let with_extents = |f: &dyn Fn(&mut Vec<arca_engine::format::tree::Extent>, &mut u64)| {
        let mut t2 = t.clone();
        let n = &mut t2.nodes[0];
        let Content::File { extents, .. } = &mut n.content else {
            unreachable!()
        };
        f(extents, &mut n.size);
        Tree::decode(&t2.encode())
    };
    assert!(with_extents(&|_, _| {}).is_ok());
    assert!(with_extents(&|e, _| e[1].offset = 800).is_err());
    assert!(with_extents(&|e, _| e.swap(0, 1)).is_err());
    assert!(with_extents(&|e, _| e[1].length = 0).is_err());
    assert!(with_extents(&|_, s| *s = 2000).is_err());
    // a trailing byte
    let mut b = load("tree-plain.hex");
    b.push(0);
    assert!(Tree::decode(&b).is_err());
    // nanoseconds out of range
    let mut t2 = t.clone();
    t2.nodes[2].mtime.nsec = 1_000_000_000;
    assert!(Tree::decode(&t2.encode()).is_err());
}

#[test]
fn token_key_file_unlocks_without_argon2() {
    use arca_engine::format::crypto::Token;
    let bytes = load("key-token.hex");
    let k = KeyFile::parse(&bytes).unwrap();
    assert!(k.kdf.is_token());
    assert_eq!(k.kdf.params, None);
    let token = Token::parse(spec::TOKEN_TEXT.as_bytes()).expect("a token");
    let master = k
        .unlock_with_token(&token)
        .unwrap()
        .expect("the token opens it");
    assert_eq!(master.secret(), &spec::MASTER_SECRET);
    // a password never opens a token's key file, another token neither
    assert!(k.unlock(spec::PASSWORD).unwrap().is_none());
    let other = Token::parse(
        b"arca-token-1:0000000000000000000000000000000000000000000000000000000000000000",
    )
    .unwrap();
    assert!(k.unlock_with_token(&other).unwrap().is_none());
    // what is not exactly a token is a password
    for not in [
        &b"arca-token-1:606162"[..],
        b"arca-token-1:606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F",
        b"token:606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f",
    ] {
        assert!(Token::parse(not).is_none());
    }

    // an independent reader: derive_key(context, token || salt), then open
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["kdf"]["algorithm"], "token");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let salt = b64.decode(v["kdf"]["salt"].as_str().unwrap()).unwrap();
    let mut m = hex::decode(&spec::TOKEN_TEXT["arca-token-1:".len()..]).unwrap();
    m.extend_from_slice(&salt);
    let kek = blake3::derive_key(spec::TOKEN_CONTEXT, &m);
    assert_eq!(kek, spec::token_kek());
    let wrapped = b64.decode(v["master"].as_str().unwrap()).unwrap();
    let opened = independent::open(&kek, b"AKY\x01", &wrapped).expect("opens");
    assert_eq!(opened, spec::MASTER_SECRET);
}

#[test]
fn wal_object_decodes() {
    use arca_engine::format::wal::{self, WalFile};
    let bytes = load("wal.hex");
    let file = WalFile::parse(spec::WAL_NAME).unwrap();
    // the name packs as the specification's table says
    assert_eq!(
        file.id().to_hex(),
        "0300000001000000000000000200000028000000000000000000000000000000"
    );
    let o = wal::decode(&key(), &file.id(), &bytes).unwrap();
    assert_eq!(o.file, file);
    assert_eq!(o.data, spec::wal_content());
    // filed under another name it does not open
    let other = WalFile::parse("000000010000000000000002").unwrap();
    assert!(wal::decode(&key(), &other.id(), &bytes).is_err());
    let b =
        arca_engine::ops::wal::parse_backup_file(spec::WAL_NAME, &String::from_utf8_lossy(&o.data))
            .unwrap();
    assert_eq!(b.start_segment.name(), "000000010000000000000002");

    // an independent reader: magic, open, then id || size || hash || 0 || body
    assert_eq!(&bytes[..4], b"AWL\x01");
    let k = independent::keys(&spec::MASTER_SECRET);
    let p = independent::open(&k.enc, b"AWL\x01", &bytes[4..]).expect("opens");
    assert_eq!(p[..32], file.id().0);
    let size = u64::from_le_bytes(p[32..40].try_into().unwrap()) as usize;
    assert_eq!(&p[40..72], blake3::hash(&p[73..]).as_bytes());
    assert_eq!((p[72], p.len() - 73), (0, size));
    assert_eq!(p[73..], spec::wal_content());
}
