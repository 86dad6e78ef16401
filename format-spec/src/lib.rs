//! arca's on-disk format: the specification (`README.md`) and its test
//! vectors (`vectors/`).
//!
//! This library holds the one piece of logic the vectors need: [`build`],
//! which assembles every vector deterministically from fixed inputs (master
//! secret, nonces, salt, password, times) with the engine's public encoders.
//! `examples/gen_vectors.rs` writes its output to `vectors/`;
//! `tests/vectors.rs` decodes the files and calls [`build`] again to check
//! that the engine still produces exactly these bytes.
//!
//! zstd output is not part of the format (a different libzstd may compress
//! the same input to different bytes, and every reader accepts both), so
//! the compressed frames are an input of [`build`] ([`Frames`]): the
//! generator computes them with [`Frames::compute`], the test takes them
//! from the vectors.

use arca_engine::format::chunker::{Chunker, ChunkerParams};
use arca_engine::format::compress::{Compression, CompressionMode, compress};
use arca_engine::format::config::Config;
use arca_engine::format::crypto::{KdfParams, MasterKey, PasswordKey, label};
use arca_engine::format::id::{
    BlobId, IndexId, KeyId, PackId, PruneId, RepoId, SealId, SnapshotId, content_hash,
};
use arca_engine::format::index::{IndexSegment, IndexedPack};
use arca_engine::format::keyfile::{KdfRecord, KeyFile};
use arca_engine::format::pack::{self, BlobKind, PackEntry};
use arca_engine::format::prune::{Base, PruneRecord, RecordInfo, Seal, Swept, ToDelete, seal_name};
use arca_engine::format::snapshot::{DumpCheck, PgBaseBackup, Snapshot, SourceError, Summary};
use arca_engine::format::tree::{Content, Extent, Node, NodeKind, Timestamp, Tree};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};

/// The repository master secret: bytes 0x00, 0x01, ..., 0x1f.
pub const MASTER_SECRET: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = i as u8;
        i += 1;
    }
    s
};

/// The password of the key file.
pub const PASSWORD: &[u8] = b"correct horse battery staple";

/// The Argon2id salt: bytes 0xa0, 0xa1, ..., 0xbf.
pub const SALT: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = 0xa0 + i as u8;
        i += 1;
    }
    s
};

/// Argon2id cost of the key file: 64 KiB, one pass, one lane (tiny, so
/// that the test runs fast; `init` refuses less than 8 MiB, readers accept
/// it).
pub const KDF: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// The repository id recorded in the config: bytes 0xc0, ..., 0xdf.
pub const REPO_ID: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = 0xc0 + i as u8;
        i += 1;
    }
    s
};

/// The fixed nonces: each is 24 copies of one byte.
pub mod nonce {
    /// The config object.
    pub const CONFIG: [u8; 24] = [0x01; 24];
    /// The master secret wrapped in the key file.
    pub const KEY: [u8; 24] = [0x02; 24];
    /// Data blob 1 (zstd).
    pub const DATA_1: [u8; 24] = [0x03; 24];
    /// Data blob 2 (raw).
    pub const DATA_2: [u8; 24] = [0x04; 24];
    /// The data pack's header.
    pub const DATA_PACK_HEADER: [u8; 24] = [0x05; 24];
    /// The root tree blob.
    pub const ROOT_TREE: [u8; 24] = [0x06; 24];
    /// The empty subtree blob.
    pub const EMPTY_TREE: [u8; 24] = [0x07; 24];
    /// The tree pack's header.
    pub const TREE_PACK_HEADER: [u8; 24] = [0x08; 24];
    /// The index segment.
    pub const INDEX: [u8; 24] = [0x09; 24];
    /// The snapshot manifest.
    pub const SNAPSHOT: [u8; 24] = [0x0a; 24];
    /// The check record.
    pub const CHECK: [u8; 24] = [0x0b; 24];
    /// The lock.
    pub const LOCK: [u8; 24] = [0x0c; 24];
    /// The index segment in format version 1.
    pub const INDEX_V1: [u8; 24] = [0x0d; 24];
    /// The prune record.
    pub const PRUNE_RECORD: [u8; 24] = [0x0e; 24];
    /// The seal.
    pub const SEAL: [u8; 24] = [0x0f; 24];
    /// The maintenance lock.
    pub const LOCK_MAINTENANCE: [u8; 24] = [0x10; 24];
    /// The master secret wrapped in the token's key file.
    pub const TOKEN_KEY: [u8; 24] = [0x11; 24];
    /// The archived WAL file.
    pub const WAL: [u8; 24] = [0x12; 24];
    /// The lock-removal notice.
    pub const LOCK_REMOVAL: [u8; 24] = [0x13; 24];
    /// The drill record.
    pub const DRILL: [u8; 24] = [0x14; 24];
}

/// The access token of `key-token.hex`: `arca-token-1:` and the hex of
/// bytes 0x60, 0x61, ..., 0x7f.
pub const TOKEN_TEXT: &str =
    "arca-token-1:606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f";

/// The context of a token's key-encryption key (copied from the
/// specification, §4).
pub const TOKEN_CONTEXT: &str = "arca 2026-12 token key-encryption key";

/// The token's key-encryption key: `derive_key(TOKEN_CONTEXT, token || salt)`.
pub fn token_kek() -> [u8; 32] {
    let token = hex::decode(&TOKEN_TEXT["arca-token-1:".len()..]).expect("hex");
    let mut m = token;
    m.extend_from_slice(&SALT);
    blake3::derive_key(TOKEN_CONTEXT, &m)
}

/// The token's key file (same salt as the password's; real writers draw
/// a fresh one).
pub fn token_key_file(config_object: &[u8]) -> KeyFile {
    let token = arca_engine::format::crypto::Token::parse(TOKEN_TEXT.as_bytes()).expect("a token");
    let pk = PasswordKey::from_token(&token, &SALT);
    KeyFile {
        version: 1,
        created: created(),
        host: "vectors.example".into(),
        username: "postgres".into(),
        kdf: KdfRecord {
            algorithm: "token".into(),
            params: None,
            salt: B64.encode(SALT),
        },
        master: B64.encode(pk.wrap_with_nonce(&master(), nonce::TOKEN_KEY)),
        config: B64.encode(config_object),
    }
}

/// The archived file of `wal.hex`: a base backup's history file.
pub const WAL_NAME: &str = "000000010000000000000002.00000028.backup";

/// Its content, as `pg_backup_stop` writes it.
pub fn wal_content() -> Vec<u8> {
    b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n\
CHECKPOINT LOCATION: 0/2000060\n\
BACKUP METHOD: streamed\n\
BACKUP FROM: primary\n\
START TIME: 2026-11-01 12:00:00 UTC\n\
LABEL: vectors\n\
START TIMELINE: 1\n"
        .to_vec()
}

/// The WAL object: `AWL\x01 || seal(AWL\x01, id || size || blake3 ||
/// compression 0 || content)`, built here from the specification's
/// layout rather than by the engine's encoder.
pub fn wal_object() -> Vec<u8> {
    use arca_engine::format::wal::WalFile;
    let file = WalFile::parse(WAL_NAME).expect("a WAL file name");
    let data = wal_content();
    let mut p = file.id().0.to_vec();
    p.extend_from_slice(&(data.len() as u64).to_le_bytes());
    p.extend_from_slice(blake3::hash(&data).as_bytes());
    p.push(0);
    p.extend_from_slice(&data);
    magic_object(&master(), label::WAL, &p, nonce::WAL)
}

/// Plaintext of data blob 1: a line repeated 16 times (compresses well).
pub fn data_blob_1() -> Vec<u8> {
    b"arca format-spec test vector: a compressible data blob.\n".repeat(16)
}

/// Plaintext of data blob 2: the first 200 bytes of the (unkeyed) BLAKE3
/// XOF of `"arca format-spec test vector: an incompressible data blob"`.
pub fn data_blob_2() -> Vec<u8> {
    let mut out = vec![0u8; 200];
    blake3::Hasher::new()
        .update(b"arca format-spec test vector: an incompressible data blob")
        .finalize_xof()
        .fill(&mut out);
    out
}

/// The hole between the two extents of `data.bin`.
pub const HOLE: u64 = 1000;
/// The hole at the end of `data.bin`.
pub const TRAILING_HOLE: u64 = 500;

/// The logical content of the file `data.bin`: blob 1, a hole of
/// [`HOLE`] bytes, blob 2, a hole of [`TRAILING_HOLE`] bytes (holes read as
/// zeros).
pub fn file_content() -> Vec<u8> {
    let mut v = data_blob_1();
    v.resize(v.len() + HOLE as usize, 0);
    v.extend_from_slice(&data_blob_2());
    v.resize(v.len() + TRAILING_HOLE as usize, 0);
    v
}

/// When the repository and the key were created.
pub fn created() -> DateTime<Utc> {
    "2026-11-01T12:00:00Z".parse().expect("valid time")
}

/// The snapshot's time (and the backup's start).
pub fn snapshot_time() -> DateTime<Utc> {
    "2026-11-02T03:04:05.123456789Z"
        .parse()
        .expect("valid time")
}

/// When the backup ended.
pub fn backup_end() -> DateTime<Utc> {
    "2026-11-02T03:04:06.500Z".parse().expect("valid time")
}

/// The chunker test: parameters, input length and the zeroed range.
pub const CHUNKER_PARAMS: ChunkerParams = ChunkerParams {
    min_size: 256,
    avg_size: 1024,
    max_size: 4096,
};
/// Bytes of chunker input.
pub const CHUNKER_INPUT_LEN: usize = 65536;
/// The byte range of the chunker input set to zero (forces max-size cuts).
pub const CHUNKER_ZERO_RANGE: std::ops::Range<usize> = 30000..40000;

/// The chunker input: the first [`CHUNKER_INPUT_LEN`] bytes of the
/// (unkeyed) BLAKE3 XOF of `"arca format-spec chunker input"`, with the
/// bytes in [`CHUNKER_ZERO_RANGE`] set to zero.
pub fn chunker_input() -> Vec<u8> {
    let mut out = vec![0u8; CHUNKER_INPUT_LEN];
    blake3::Hasher::new()
        .update(b"arca format-spec chunker input")
        .finalize_xof()
        .fill(&mut out);
    out[CHUNKER_ZERO_RANGE].fill(0);
    out
}

/// A blob's plaintext as stored inside its envelope, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The bytes sealed (a zstd frame, or the plaintext itself).
    pub bytes: Vec<u8>,
    /// Which of the two.
    pub compression: Compression,
}

impl Stored {
    /// What the blob writer stores for `plain` at `--compression auto`.
    pub fn compute(plain: &[u8]) -> Self {
        let (bytes, compression) = compress(plain, CompressionMode::Auto);
        Self {
            bytes: bytes.into_owned(),
            compression,
        }
    }
}

/// The compressed forms the vectors contain (see the crate docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frames {
    /// Data blob 1 (the writer compresses it: zstd).
    pub data_1: Stored,
    /// Data blob 2 (the writer stores it raw).
    pub data_2: Stored,
    /// The root tree blob.
    pub root_tree: Stored,
    /// The empty tree blob (shorter than 64 bytes: raw).
    pub empty_tree: Stored,
    /// The index segment's zstd frame (version 2: base, then the segment).
    pub index: Vec<u8>,
    /// The version-1 index segment's zstd frame.
    pub index_v1: Vec<u8>,
    /// The check record's zstd frame.
    pub check_record: Vec<u8>,
    /// The prune record's zstd frame.
    pub prune_record: Vec<u8>,
}

impl Frames {
    /// Compresses as the engine does: blobs through `compress::compress` at
    /// `auto`, index segments and the prune record with zstd level 3 (as
    /// `IndexSegment::to_object` and `PruneRecord::to_object`).
    pub fn compute() -> Self {
        let z = |b: &[u8]| zstd::bulk::compress(b, 3).expect("in-memory zstd");
        let mut f = Self {
            data_1: Stored::compute(&data_blob_1()),
            data_2: Stored::compute(&data_blob_2()),
            root_tree: Stored::compute(&root_tree().encode()),
            empty_tree: Stored::compute(&Tree::default().encode()),
            index: vec![],
            index_v1: vec![],
            check_record: z(&check_record().encode_plain()),
            prune_record: z(&prune_record().encode_plain()),
        };
        // The index plaintexts depend on the blobs' frames (pack ids) and,
        // for version 2, on the prune record's id (its base).
        f.index_v1 = z(&index_segment_v1(&f).encode_plain());
        f.index = z(&index_v2_plain(&index_segment(&f)));
        f
    }
}

/// The plaintext of a version-2 index segment object (before zstd):
/// `base_gen:u64le || base_mark[32] || segment plaintext`, as
/// `IndexSegment::to_object` compresses it.
pub fn index_v2_plain(seg: &IndexSegment) -> Vec<u8> {
    let mut out = seg.base.generation.to_le_bytes().to_vec();
    out.extend_from_slice(&seg.base.mark.map_or([0; 32], |m| m.0));
    out.extend_from_slice(&seg.encode_plain());
    out
}

/// The check record: both packs verified, at the snapshot's end time and
/// one day before it.
pub fn check_record() -> arca_engine::format::coverage::Coverage {
    let f = Frames {
        data_1: Stored::compute(&data_blob_1()),
        data_2: Stored::compute(&data_blob_2()),
        root_tree: Stored::compute(&root_tree().encode()),
        empty_tree: Stored::compute(&Tree::default().encode()),
        index: vec![],
        index_v1: vec![],
        check_record: vec![],
        prune_record: vec![],
    };
    let mut c = arca_engine::format::coverage::Coverage::default();
    c.verified
        .insert(data_pack(&f).id, backup_end().timestamp());
    c.verified
        .insert(tree_pack(&f).id, backup_end().timestamp() - 86_400);
    c
}

/// The lock: a shared lock held by a backup.
pub fn lock() -> arca_engine::format::lock::LockInfo {
    arca_engine::format::lock::LockInfo {
        kind: arca_engine::format::lock::LockKind::Shared,
        host: "db-1".into(),
        pid: 4242,
        username: "backup".into(),
        operation: "backup".into(),
        created: snapshot_time(),
        refreshed: backup_end(),
        // absent, as in locks written before the field existed
        process_space: String::new(),
    }
}

/// The maintenance lock: held by a prune (beside any number of shared
/// locks), with the optional `process_space` present.
pub fn lock_maintenance() -> arca_engine::format::lock::LockInfo {
    arca_engine::format::lock::LockInfo {
        kind: arca_engine::format::lock::LockKind::Maintenance,
        host: "prune.example".into(),
        pid: 77,
        username: "backup".into(),
        operation: "prune".into(),
        created: seal_time(),
        refreshed: record_time(),
        process_space: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/4026531836".into(),
    }
}

/// The lock-removal notice: an `arca unlock --remove-all` took the
/// maintenance lock away.
pub fn lock_removal() -> arca_engine::format::lock::LockRemoval {
    arca_engine::format::lock::LockRemoval {
        removed: record_time(),
        host: "ops.example".into(),
        pid: 9001,
        username: "oncall".into(),
        operation: "unlock --remove-all".into(),
    }
}

/// The drill record: a drill of the vectors' snapshot that passed, held
/// against a 15-minute RTO.
pub fn drill_record() -> arca_engine::format::drill::DrillRecord {
    arca_engine::format::drill::DrillRecord {
        snapshot: arca_engine::format::id::SnapshotId([0xd7; 32]),
        paths: vec!["/data.bin".into(), "/link".into(), "/sub".into()],
        source_host: "vectors.example".into(),
        host: "drill.example".into(),
        username: "oncall".into(),
        started: record_time(),
        restore_seconds: 12.5,
        check_seconds: 3.25,
        total_seconds: 15.75,
        files: 2,
        bytes: 1096,
        checks: vec!["validator `pg_isready`: accepting connections".into()],
        ok: true,
        error: String::new(),
        rto_seconds: Some(900),
    }
}

/// The prune record of generation 1 that the vectors' record builds on
/// and sweeps (not in the vectors: generation 2 deleted it).
pub const PREVIOUS_RECORD: [u8; 32] = [0xd1; 32];
/// A pack generation 1 condemned, which generation 2 deletes.
pub const SWEPT_PACK: [u8; 32] = [0xd2; 32];
/// Its size.
pub const SWEPT_PACK_SIZE: u64 = 70_000;
/// A snapshot void under generation 2 (based before generation 1's mark,
/// not accepted), which generation 2 deletes.
pub const VOID_SNAPSHOT: [u8; 32] = [0xd3; 32];
/// A snapshot based before generation 1's mark that generation 2 accepted.
pub const ACCEPTED_SNAPSHOT: [u8; 32] = [0xd4; 32];
/// An index segment generation 2 supersedes.
pub const SUPERSEDED_BY_RECORD: [u8; 32] = [0xd5; 32];
/// The pack generation 2 condemns (swept by generation 3).
pub const CONDEMNED_PACK: [u8; 32] = [0xd6; 32];
/// The size of the pack the record condemns.
pub const CONDEMNED_PACK_SIZE: u64 = 1000 + 50 + 52;

/// When generation 2 wrote the seal of generation 1.
pub fn seal_time() -> DateTime<Utc> {
    "2026-11-02T01:00:00Z".parse().expect("valid time")
}

/// When generation 2 committed its record.
pub fn record_time() -> DateTime<Utc> {
    "2026-11-02T01:30:00.250Z".parse().expect("valid time")
}

/// The seal prune generation 2 wrote before its listing: generation 1,
/// naming generation 1's record.
pub fn seal() -> Seal {
    Seal {
        generation: 1,
        mark: PruneId(PREVIOUS_RECORD),
        host: "prune.example".into(),
        created: seal_time(),
    }
}

/// The prune record of generation 2: it sweeps generation 1's mark
/// (deletes the pack generation 1 condemned and a void snapshot, accepts
/// one snapshot), supersedes one segment and generation 1's record, and
/// condemns one pack (named by id and size: its header says what it holds).
pub fn prune_record() -> PruneRecord {
    PruneRecord {
        info: RecordInfo {
            generation: 2,
            previous: Some(PruneId(PREVIOUS_RECORD)),
            created: record_time(),
            host: "prune.example".into(),
            swept: Some(Swept {
                generation: 1,
                mark: PruneId(PREVIOUS_RECORD),
                accepted: vec![SnapshotId(ACCEPTED_SNAPSHOT)],
            }),
            to_delete: ToDelete {
                packs: vec![(PackId(SWEPT_PACK), SWEPT_PACK_SIZE)],
                snapshots: vec![SnapshotId(VOID_SNAPSHOT)],
            },
            supersedes_index: vec![IndexId(SUPERSEDED_BY_RECORD)],
            supersedes_prune: vec![PruneId(PREVIOUS_RECORD)],
            condemned: vec![(PackId(CONDEMNED_PACK), CONDEMNED_PACK_SIZE)],
        },
    }
}

/// The stored prune record, `prune/<its id>`.
pub fn prune_record_object(frames: &Frames) -> Vec<u8> {
    magic_object(
        &master(),
        label::PRUNE,
        &frames.prune_record,
        nonce::PRUNE_RECORD,
    )
}

/// The id of the prune record: the base of what the backup wrote after it.
pub fn prune_record_id(frames: &Frames) -> PruneId {
    PruneId(content_hash(&prune_record_object(frames)))
}

/// The base of the backup that made the snapshot: generation 2, the
/// vectors' prune record.
pub fn backup_base(frames: &Frames) -> Base {
    Base {
        generation: 2,
        mark: Some(prune_record_id(frames)),
    }
}

/// The master key of the vectors.
pub fn master() -> MasterKey {
    MasterKey::from_secret(MASTER_SECRET)
}

/// The config.
pub fn config() -> Config {
    Config {
        version: 2,
        id: RepoId(REPO_ID),
        created: created(),
        chunker: ChunkerParams::default(),
        pack_size: 16 << 20,
    }
}

/// The root tree: `data.bin` (a file with two extents and two holes),
/// `link` (a symlink to `data.bin`), `sub` (an empty directory).
pub fn root_tree() -> Tree {
    let key = master();
    let (b1, b2) = (data_blob_1(), data_blob_2());
    let mut file = Node::new(b"data.bin".to_vec(), NodeKind::File);
    file.mode = 0o640;
    file.uid = 1000;
    file.gid = 100;
    file.user = b"alice".to_vec();
    file.group = b"users".to_vec();
    file.mtime = Timestamp {
        sec: 1_793_500_000,
        nsec: 123_456_789,
    };
    file.atime = Timestamp::default();
    file.ctime = Timestamp {
        sec: 1_793_500_001,
        nsec: 5,
    };
    file.inode = 4242;
    file.device = 0x801;
    file.nlink = 1;
    file.size = file_content().len() as u64;
    file.xattrs = vec![(b"user.comment".to_vec(), b"test vector".to_vec())];
    file.content = Content::File {
        hash: *blake3::hash(&file_content()).as_bytes(),
        extents: vec![
            Extent {
                offset: 0,
                length: b1.len() as u32,
                blob: key.blob_id(&b1),
            },
            Extent {
                offset: b1.len() as u64 + HOLE,
                length: b2.len() as u32,
                blob: key.blob_id(&b2),
            },
        ],
    };

    let mut link = Node::new(b"link".to_vec(), NodeKind::Symlink);
    link.mode = 0o777;
    link.uid = 1000;
    link.gid = 100;
    link.user = b"alice".to_vec();
    link.group = b"users".to_vec();
    link.mtime = Timestamp {
        sec: 1_793_500_002,
        nsec: 0,
    };
    link.ctime = link.mtime;
    link.inode = 4243;
    link.device = 0x801;
    link.nlink = 1;
    link.target = b"data.bin".to_vec();

    let mut sub = Node::new(b"sub".to_vec(), NodeKind::Dir);
    sub.mode = 0o755;
    sub.uid = 0;
    sub.gid = 0;
    sub.user = b"root".to_vec();
    sub.group = b"root".to_vec();
    sub.mtime = Timestamp {
        sec: 1_793_500_003,
        nsec: 999_999_999,
    };
    sub.ctime = sub.mtime;
    sub.inode = 4244;
    sub.device = 0x801;
    sub.nlink = 2;
    sub.content = Content::Dir {
        subtree: key.blob_id(&Tree::default().encode()),
    };

    let mut t = Tree {
        nodes: vec![sub, link, file],
    };
    t.sort();
    t
}

/// A pack assembled from sealed blobs with a fixed header nonce.
pub struct BuiltPack {
    /// The whole pack.
    pub bytes: Vec<u8>,
    /// Its entries, as in the header.
    pub entries: Vec<PackEntry>,
    /// Its id: BLAKE3 of `bytes`.
    pub id: PackId,
}

/// Seals `stored` as a blob of `kind` and returns its pack entry fields.
fn seal_blob(
    key: &MasterKey,
    kind: BlobKind,
    plain: &[u8],
    stored: &Stored,
    nonce: [u8; 24],
) -> (BlobId, Compression, u32, Vec<u8>) {
    let sealed = key.seal_with_nonce(kind.label(), &stored.bytes, nonce);
    (
        key.blob_id(plain),
        stored.compression,
        plain.len() as u32,
        sealed,
    )
}

/// `blob* seal(PACK_HEADER, entries) header_length:u32le "APK\x01"`.
fn build_pack(
    key: &MasterKey,
    kind: BlobKind,
    blobs: Vec<(BlobId, Compression, u32, Vec<u8>)>,
    header_nonce: [u8; 24],
) -> BuiltPack {
    let mut bytes = vec![];
    let mut entries = vec![];
    for (id, compression, raw_length, sealed) in blobs {
        entries.push(PackEntry {
            kind,
            compression,
            id,
            offset: bytes.len() as u64,
            length: sealed.len() as u32,
            raw_length,
        });
        bytes.extend_from_slice(&sealed);
    }
    let header = key.seal_with_nonce(
        label::PACK_HEADER,
        &pack::encode_entries(&entries),
        header_nonce,
    );
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(pack::TRAILER_MAGIC);
    BuiltPack {
        id: PackId(content_hash(&bytes)),
        bytes,
        entries,
    }
}

/// The data pack: blob 1 (zstd) then blob 2 (raw).
pub fn data_pack(frames: &Frames) -> BuiltPack {
    let key = master();
    let blobs = vec![
        seal_blob(
            &key,
            BlobKind::Data,
            &data_blob_1(),
            &frames.data_1,
            nonce::DATA_1,
        ),
        seal_blob(
            &key,
            BlobKind::Data,
            &data_blob_2(),
            &frames.data_2,
            nonce::DATA_2,
        ),
    ];
    build_pack(&key, BlobKind::Data, blobs, nonce::DATA_PACK_HEADER)
}

/// The tree pack: the root tree, then the empty tree.
pub fn tree_pack(frames: &Frames) -> BuiltPack {
    let key = master();
    let blobs = vec![
        seal_blob(
            &key,
            BlobKind::Tree,
            &root_tree().encode(),
            &frames.root_tree,
            nonce::ROOT_TREE,
        ),
        seal_blob(
            &key,
            BlobKind::Tree,
            &Tree::default().encode(),
            &frames.empty_tree,
            nonce::EMPTY_TREE,
        ),
    ];
    build_pack(&key, BlobKind::Tree, blobs, nonce::TREE_PACK_HEADER)
}

/// The id the index segment names as superseded (no such segment exists
/// in the vectors; the field is there to be exercised).
pub const SUPERSEDED: [u8; 32] = [0xee; 32];

/// The index segment listing both packs, as the backup wrote it (version
/// 2, based on the prune record).
pub fn index_segment(frames: &Frames) -> IndexSegment {
    IndexSegment {
        base: backup_base(frames),
        ..index_segment_v1(frames)
    }
}

/// The same segment as a build of format version 1 wrote it (no base).
pub fn index_segment_v1(frames: &Frames) -> IndexSegment {
    let (d, t) = (data_pack(frames), tree_pack(frames));
    IndexSegment {
        packs: vec![
            IndexedPack {
                id: d.id,
                size: d.bytes.len() as u64,
                entries: d.entries,
            },
            IndexedPack {
                id: t.id,
                size: t.bytes.len() as u64,
                entries: t.entries,
            },
        ],
        supersedes: vec![IndexId(SUPERSEDED)],
        base: Default::default(),
    }
}

/// `magic || seal(magic, plaintext)`: config, index and snapshot objects.
fn magic_object(key: &MasterKey, magic: &[u8; 4], plain: &[u8], nonce: [u8; 24]) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&key.seal_with_nonce(magic, plain, nonce));
    out
}

/// The snapshot manifest.
pub fn snapshot(frames: &Frames, index_object_len: u64) -> Snapshot {
    let (d, t) = (data_pack(frames), tree_pack(frames));
    let blobs = [
        data_blob_1().len(),
        data_blob_2().len(),
        root_tree().encode().len(),
        Tree::default().encode().len(),
    ];
    Snapshot {
        time: snapshot_time(),
        host: "vectors.example".into(),
        username: "alice".into(),
        paths: vec!["/data.bin".into(), "/link".into(), "/sub".into()],
        tags: vec!["daily".into(), "vectors".into()],
        tree: master().blob_id(&root_tree().encode()),
        parent: None,
        original: None,
        program_version: "arca 0.1.0".into(),
        partial: true,
        errors: vec![SourceError {
            path: "/sub/secret".into(),
            error: "Permission denied (os error 13)".into(),
        }],
        warnings: vec![SourceError {
            path: "/data.bin".into(),
            error: "changed while it was read".into(),
        }],
        summary: Summary {
            backup_start: Some(snapshot_time()),
            backup_end: Some(backup_end()),
            files_new: 1,
            files_changed: 0,
            files_unmodified: 0,
            dirs: 1,
            others: 1,
            total_bytes: file_content().len() as u64,
            bytes_read: (data_blob_1().len() + data_blob_2().len()) as u64,
            blobs_added: blobs.len() as u64,
            data_added: blobs.iter().sum::<usize>() as u64,
            data_added_packed: d.bytes.len() as u64 + t.bytes.len() as u64 + index_object_len,
        },
        postgres: vec![PgBaseBackup {
            path: "/sub".into(),
            timeline: 1,
            start_lsn: "0/2000028".into(),
            start_wal: "000000010000000000000002".into(),
            stop_lsn: Some("0/2000138".into()),
            label: "pg_basebackup base backup".into(),
        }],
        checks: vec![DumpCheck {
            path: "/data.bin".into(),
            kind: "command".into(),
            format: String::new(),
            validator: "test -s \"$ARCA_CHECK_FILE\" && echo not empty".into(),
            result: "not empty".into(),
            warnings: vec!["changed while it was read".into()],
        }],
        base: backup_base(frames),
    }
}

/// The key file (its JSON, pretty-printed as `KeyFile::to_bytes` writes it).
pub fn key_file(config_object: &[u8]) -> KeyFile {
    let pk = PasswordKey::derive(PASSWORD, &SALT, KDF).expect("valid Argon2 parameters");
    KeyFile {
        version: 1,
        created: created(),
        host: "vectors.example".into(),
        username: "alice".into(),
        kdf: KdfRecord {
            algorithm: "argon2id".into(),
            params: Some(KDF),
            salt: B64.encode(SALT),
        },
        master: B64.encode(pk.wrap_with_nonce(&master(), nonce::KEY)),
        config: B64.encode(config_object),
    }
}

/// The chunk end offsets of [`chunker_input`] with [`CHUNKER_PARAMS`] and
/// the vectors' chunker key.
pub fn chunk_ends() -> Vec<usize> {
    let c = Chunker::new(CHUNKER_PARAMS, master().chunker_key());
    c.chunks(&chunker_input()).map(|r| r.end).collect()
}

/// Every vector, with the ids it is stored under.
pub struct Vectors {
    /// `config`.
    pub config: Vec<u8>,
    /// `keys/<key_id>`.
    pub key: Vec<u8>,
    /// Its id.
    pub key_id: KeyId,
    /// `packs/<xx>/<id>`: the data pack.
    pub data_pack: BuiltPack,
    /// `packs/<xx>/<id>`: the tree pack.
    pub tree_pack: BuiltPack,
    /// `index/<index_id>`.
    pub index: Vec<u8>,
    /// Its id.
    pub index_id: IndexId,
    /// The root tree blob's plaintext.
    pub tree_plain: Vec<u8>,
    /// The root tree blob as sealed (the first blob of the tree pack).
    pub tree_sealed: Vec<u8>,
    /// `snapshots/<snapshot_id>`.
    pub snapshot: Vec<u8>,
    /// Its id.
    pub snapshot_id: SnapshotId,
    /// The chunker vector (JSON).
    pub chunker: Vec<u8>,
    /// `checks/<id>`: a check record.
    pub check_record: Vec<u8>,
    /// `locks/<random id>`: a lock.
    pub lock: Vec<u8>,
    /// `locks/<random id>`: a maintenance lock.
    pub lock_maintenance: Vec<u8>,
    /// `removed-locks/<lock id>`: a lock-removal notice.
    pub lock_removal: Vec<u8>,
    /// `drills/<hash>`: a drill record.
    pub drill_record: Vec<u8>,
    /// The index segment in version 1 (`index/<index_v1_id>`).
    pub index_v1: Vec<u8>,
    /// Its id.
    pub index_v1_id: IndexId,
    /// `prune/<prune_record_id>`.
    pub prune_record: Vec<u8>,
    /// Its id.
    pub prune_record_id: PruneId,
    /// `seals/<seal_name>`.
    pub seal: Vec<u8>,
    /// Its name.
    pub seal_name: SealId,
    /// `keys/<token_key_id>`: the key file of an access token.
    pub token_key: Vec<u8>,
    /// Its id.
    pub token_key_id: KeyId,
    /// `wal/<wal_id>`: an archived WAL file.
    pub wal: Vec<u8>,
    /// Its name.
    pub wal_id: arca_engine::format::id::WalId,
}

/// Builds every vector.
pub fn build(frames: &Frames) -> Vectors {
    let key = master();
    let config_json = serde_json::to_vec(&config()).expect("config serializes");
    let config = magic_object(&key, label::CONFIG, &config_json, nonce::CONFIG);
    let key_bytes = key_file(&config).to_bytes();
    let token_key = token_key_file(&config).to_bytes();
    let data_pack = data_pack(frames);
    let tree_pack = tree_pack(frames);
    let tree_plain = root_tree().encode();
    let e = tree_pack.entries[0];
    let tree_sealed =
        tree_pack.bytes[e.offset as usize..(e.offset + e.length as u64) as usize].to_vec();
    let index = magic_object(&key, label::INDEX_V2, &frames.index, nonce::INDEX);
    let index_v1 = magic_object(&key, label::INDEX, &frames.index_v1, nonce::INDEX_V1);
    let prune_record = prune_record_object(frames);
    let seal_json = serde_json::to_vec(&seal()).expect("seal serializes");
    let snap = snapshot(frames, index.len() as u64);
    let snap_json = serde_json::to_vec(&snap).expect("snapshot serializes");
    let snapshot = magic_object(&key, label::SNAPSHOT, &snap_json, nonce::SNAPSHOT);
    Vectors {
        key_id: KeyId(content_hash(&key_bytes)),
        key: key_bytes,
        config,
        data_pack,
        tree_pack,
        index_id: IndexId(content_hash(&index)),
        index,
        tree_plain,
        tree_sealed,
        snapshot_id: SnapshotId(content_hash(&snapshot)),
        snapshot,
        chunker: chunker_json(),
        check_record: magic_object(&key, label::COVERAGE, &frames.check_record, nonce::CHECK),
        lock: magic_object(
            &key,
            label::LOCK,
            &serde_json::to_vec(&lock()).expect("lock serializes"),
            nonce::LOCK,
        ),
        lock_maintenance: magic_object(
            &key,
            label::LOCK,
            &serde_json::to_vec(&lock_maintenance()).expect("lock serializes"),
            nonce::LOCK_MAINTENANCE,
        ),
        lock_removal: magic_object(
            &key,
            label::LOCK_REMOVAL,
            &serde_json::to_vec(&lock_removal()).expect("lock removal serializes"),
            nonce::LOCK_REMOVAL,
        ),
        drill_record: magic_object(
            &key,
            label::DRILL,
            &serde_json::to_vec(&drill_record()).expect("drill record serializes"),
            nonce::DRILL,
        ),
        index_v1_id: IndexId(content_hash(&index_v1)),
        index_v1,
        prune_record_id: PruneId(content_hash(&prune_record)),
        prune_record,
        seal: magic_object(&key, label::SEAL, &seal_json, nonce::SEAL),
        seal_name: seal_name(&RepoId(REPO_ID), seal().generation),
        token_key_id: KeyId(content_hash(&token_key)),
        token_key,
        wal: wal_object(),
        wal_id: arca_engine::format::wal::WalFile::parse(WAL_NAME)
            .expect("a WAL file name")
            .id(),
    }
}

/// The chunker vector as pretty JSON.
pub fn chunker_json() -> Vec<u8> {
    let key = master();
    let mut gear = [0u8; 32];
    blake3::Hasher::new_keyed(key.chunker_key())
        .update(b"gear")
        .finalize_xof()
        .fill(&mut gear);
    let v = serde_json::json!({
        "master_secret": hex::encode(MASTER_SECRET),
        "chunker_key": hex::encode(key.chunker_key()),
        "gear_first_4": (0..4)
            .map(|i| format!("{:016x}", u64::from_le_bytes(gear[i * 8..i * 8 + 8].try_into().unwrap())))
            .collect::<Vec<_>>(),
        "params": CHUNKER_PARAMS,
        "input": {
            "xof_of": "arca format-spec chunker input",
            "length": CHUNKER_INPUT_LEN,
            "zeroed": [CHUNKER_ZERO_RANGE.start, CHUNKER_ZERO_RANGE.end],
            "blake3": blake3::hash(&chunker_input()).to_hex().to_string(),
        },
        "chunk_ends": chunk_ends(),
    });
    let mut out = serde_json::to_vec_pretty(&v).expect("json");
    out.push(b'\n');
    out
}

/// Lowercase hex, 64 digits per line, with a final newline.
pub fn to_hex_lines(bytes: &[u8]) -> String {
    let h = hex::encode(bytes);
    let mut out = String::with_capacity(h.len() + h.len() / 64 + 1);
    for line in h.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("hex is ASCII"));
        out.push('\n');
    }
    out
}

/// Decodes a hex file, ignoring whitespace.
pub fn from_hex_lines(s: &str) -> Result<Vec<u8>, hex::FromHexError> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean)
}

impl Vectors {
    /// The hex files and their contents, in the order the README lists them.
    pub fn hex_files(&self) -> Vec<(&'static str, &[u8])> {
        vec![
            ("config.hex", &self.config[..]),
            ("key.hex", &self.key[..]),
            ("pack-data.hex", &self.data_pack.bytes[..]),
            ("pack-tree.hex", &self.tree_pack.bytes[..]),
            ("index.hex", &self.index[..]),
            ("tree-plain.hex", &self.tree_plain[..]),
            ("tree-sealed.hex", &self.tree_sealed[..]),
            ("snapshot.hex", &self.snapshot[..]),
            ("check-record.hex", &self.check_record[..]),
            ("lock.hex", &self.lock[..]),
            ("lock-maintenance.hex", &self.lock_maintenance[..]),
            ("lock-removal.hex", &self.lock_removal[..]),
            ("drill-record.hex", &self.drill_record[..]),
            ("index-v1.hex", &self.index_v1[..]),
            ("prune-record.hex", &self.prune_record[..]),
            ("seal.hex", &self.seal[..]),
            ("key-token.hex", &self.token_key[..]),
            ("wal.hex", &self.wal[..]),
        ]
    }
}

/// The BLAKE3 key-derivation contexts (copied from the specification).
pub mod context {
    /// The encryption sub-key.
    pub const ENCRYPTION: &str = "arca 2026-11 repository v1 encryption key";
    /// The blob-id sub-key.
    pub const BLOB_ID: &str = "arca 2026-11 repository v1 blob id key";
    /// The chunker sub-key.
    pub const CHUNKER: &str = "arca 2026-11 repository v1 chunker key";
}

/// The key-encryption key Argon2id derives from [`PASSWORD`] and [`SALT`].
pub fn kek() -> [u8; 32] {
    let p = argon2::Params::new(KDF.memory_kib, KDF.iterations, KDF.parallelism, Some(32))
        .expect("valid Argon2 parameters");
    let mut out = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p)
        .hash_password_into(PASSWORD, &SALT, &mut out)
        .expect("Argon2id");
    out
}

fn entry_rows(out: &mut String, pack: &str, entries: &[PackEntry]) {
    for e in entries {
        out.push_str(&format!(
            "| {pack} | {} | {} | `{}` | {} | {} | {} |\n",
            e.kind.name(),
            match e.compression {
                Compression::None => "0 (none)",
                Compression::Zstd => "1 (zstd)",
            },
            e.id,
            e.offset,
            e.length,
            e.raw_length
        ));
    }
}

/// The vectors' README (generated, so that its figures are those of the
/// files; the test checks that it is up to date).
pub fn readme(v: &Vectors) -> String {
    let key = master();
    let opened = |magic: &[u8; 4], obj: &[u8]| -> String {
        String::from_utf8(key.open(magic, &obj[4..]).expect("opens")).expect("UTF-8 JSON")
    };
    let mut o = String::new();
    o.push_str(
        "# arca format test vectors\n\
         \n\
         Generated by `cargo run -p arca-format-spec --example gen_vectors`\n\
         (`format-spec/examples/gen_vectors.rs`, logic in `format-spec/src/lib.rs`);\n\
         checked by `cargo test -p arca-format-spec` (`format-spec/tests/vectors.rs`).\n\
         Do not edit by hand: the test compares this file with what the generator writes.\n\
         The format itself is described in [`../README.md`](../README.md).\n\
         \n\
         Together the files form a complete one-snapshot repository (format version 2)\n\
         as it is after its second prune: a reader that follows the specification can\n\
         unlock the key file with the password, read the config, the prune record (the\n\
         head), the index, the snapshot, its trees and the file `data.bin`, check every id\n\
         on the way, and apply the prune record's rules (the snapshot and `index.hex` are\n\
         valid; see [Prune state](#prune-state)). `index-v1.hex` and `lock-maintenance.hex`\n\
         are extra objects of the kinds they show.\n\
         \n\
         Every `.hex` file is the object's bytes in lowercase hex, 64 digits per line;\n\
         strip all whitespace before decoding.\n\
         \n\
         ## Inputs\n\
         \n",
    );
    o.push_str(&format!(
        "| input | value |\n| --- | --- |\n\
         | master secret | `{}` (bytes 0x00..0x1f) |\n\
         | password | `{}` (UTF-8, no newline) |\n\
         | Argon2id | version 0x13, memory_kib {}, iterations {}, parallelism {}, output 32 bytes |\n\
         | salt | `{}` (bytes 0xa0..0xbf; base64 `{}`) |\n\
         | repository id | `{}` |\n\
         | config and key `created` | `{}` |\n\
         | snapshot `time` | `{}` |\n",
        hex::encode(MASTER_SECRET),
        String::from_utf8_lossy(PASSWORD),
        KDF.memory_kib,
        KDF.iterations,
        KDF.parallelism,
        hex::encode(SALT),
        B64.encode(SALT),
        hex::encode(REPO_ID),
        created().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        snapshot_time().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    ));
    o.push_str(
        "\nArgon2 memory of 64 KiB and one pass keep the test fast. `init` and `key add`\n\
         refuse less than 8192 KiB, but `KeyFile::parse` accepts any parameters within\n\
         `KdfParams::is_sane` (memory_kib >= 8 * parallelism, at least 8), so a reader\n\
         opens this key file.\n\
         \n\
         Nonces (each is 24 copies of one byte; real writers draw them at random):\n\
         \n\
         | nonce byte | sealed message |\n| --- | --- |\n\
         | `01` | config object |\n\
         | `02` | master secret wrapped in the key file |\n\
         | `03` | data blob 1 |\n\
         | `04` | data blob 2 |\n\
         | `05` | header of the data pack |\n\
         | `06` | root tree blob |\n\
         | `07` | empty tree blob |\n\
         | `08` | header of the tree pack |\n\
         | `09` | index segment (version 2) |\n\
         | `0a` | snapshot |\n\
         | `0b` | check record |\n\
         | `0c` | shared lock |\n\
         | `0d` | index segment (version 1) |\n\
         | `0e` | prune record |\n\
         | `0f` | seal |\n\
         | `10` | maintenance lock |\n\
         | `11` | master secret wrapped in the token's key file |\n\
         | `12` | archived WAL file |\n\
         \n\
         Derived values:\n\
         \n",
    );
    o.push_str(&format!(
        "| value | hex |\n| --- | --- |\n\
         | encryption key = derive_key(\"{}\", master) | `{}` |\n\
         | blob-id key = derive_key(\"{}\", master) | `{}` |\n\
         | chunker key = derive_key(\"{}\", master) | `{}` |\n\
         | key-encryption key = Argon2id(password, salt) | `{}` |\n\
         | token key-encryption key = derive_key(\"{}\", token \\|\\| salt) | `{}` |\n",
        context::ENCRYPTION,
        hex::encode(blake3::derive_key(context::ENCRYPTION, &MASTER_SECRET)),
        context::BLOB_ID,
        hex::encode(blake3::derive_key(context::BLOB_ID, &MASTER_SECRET)),
        context::CHUNKER,
        hex::encode(blake3::derive_key(context::CHUNKER, &MASTER_SECRET)),
        hex::encode(kek()),
        TOKEN_CONTEXT,
        hex::encode(token_kek()),
    ));
    o.push_str("\n## Files\n\n| file | what | stored at | bytes |\n| --- | --- | --- | --- |\n");
    let dp = v.data_pack.id.to_hex();
    let tp = v.tree_pack.id.to_hex();
    let rows = [
        (
            "config.hex",
            "config object".to_string(),
            "`config`".to_string(),
            v.config.len(),
        ),
        (
            "key.hex",
            "key file (JSON)".into(),
            format!("`keys/{}`", v.key_id),
            v.key.len(),
        ),
        (
            "pack-data.hex",
            "data pack: blob 1 (zstd), blob 2 (raw)".into(),
            format!("`packs/{}/{}`", &dp[..2], dp),
            v.data_pack.bytes.len(),
        ),
        (
            "pack-tree.hex",
            "tree pack: root tree (zstd), empty tree (raw)".into(),
            format!("`packs/{}/{}`", &tp[..2], tp),
            v.tree_pack.bytes.len(),
        ),
        (
            "index.hex",
            "index segment (version 2, base generation 2 = the prune record) listing both packs".into(),
            format!("`index/{}`", v.index_id),
            v.index.len(),
        ),
        (
            "index-v1.hex",
            "the same segment as format version 1 wrote it (no base; void in this repository)".into(),
            format!("`index/{}`", v.index_v1_id),
            v.index_v1.len(),
        ),
        (
            "tree-plain.hex",
            "root tree blob, plaintext".into(),
            "(inside pack-tree)".into(),
            v.tree_plain.len(),
        ),
        (
            "tree-sealed.hex",
            "root tree blob as sealed (bytes 0.. of pack-tree)".into(),
            "(inside pack-tree)".into(),
            v.tree_sealed.len(),
        ),
        (
            "snapshot.hex",
            "snapshot manifest".into(),
            format!("`snapshots/{}`", v.snapshot_id),
            v.snapshot.len(),
        ),
        (
            "check-record.hex",
            "check record: both packs verified (data pack at the snapshot's end time, tree pack one day earlier)".into(),
            format!("`checks/{}`", blake3::hash(&v.check_record).to_hex()),
            v.check_record.len(),
        ),
        (
            "lock.hex",
            "a shared lock: host `db-1`, pid 4242, user `backup`, operation `backup`".into(),
            "`locks/<random id>`".into(),
            v.lock.len(),
        ),
        (
            "lock-maintenance.hex",
            "a maintenance lock: host `prune.example`, pid 77, operation `prune`, with `process_space`".into(),
            "`locks/<random id>`".into(),
            v.lock_maintenance.len(),
        ),
        (
            "lock-removal.hex",
            "a lock-removal notice: `unlock --remove-all` by `oncall@ops.example`, pid 9001".into(),
            "`removed-locks/<the lock's id>`".into(),
            v.lock_removal.len(),
        ),
        (
            "drill-record.hex",
            "a drill record: a drill that passed within its 15-minute RTO".into(),
            format!("`drills/{}`", blake3::hash(&v.drill_record).to_hex()),
            v.drill_record.len(),
        ),
        (
            "prune-record.hex",
            "prune record of generation 2 (the head)".into(),
            format!("`prune/{}`", v.prune_record_id),
            v.prune_record.len(),
        ),
        (
            "seal.hex",
            "seal of generation 1, written by prune generation 2".into(),
            format!("`seals/{}`", v.seal_name),
            v.seal.len(),
        ),
        (
            "key-token.hex",
            format!("key file (JSON) of the access token `{TOKEN_TEXT}`"),
            format!("`keys/{}`", v.token_key_id),
            v.token_key.len(),
        ),
        (
            "wal.hex",
            format!("archived WAL file `{WAL_NAME}` (a backup history file, stored raw)"),
            format!("`wal/{}`", v.wal_id),
            v.wal.len(),
        ),
    ];
    for (f, what, at, n) in rows {
        o.push_str(&format!("| `{f}` | {what} | {at} | {n} |\n"));
    }
    o.push_str(
        "| `chunker.json` | chunk boundaries of a 64 KiB input (not an object) | | |\n\
         \n\
         ## Blobs\n\
         \n\
         | pack | kind | compression | blob id | offset | length | raw_length |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    entry_rows(&mut o, "data", &v.data_pack.entries);
    entry_rows(&mut o, "tree", &v.tree_pack.entries);
    o.push_str(&format!(
        "\n- Data blob 1: the 56-byte line `arca format-spec test vector: a compressible data blob.\\n`\n  \
         repeated 16 times ({} bytes), stored as one zstd frame (level 3).\n\
         - Data blob 2: the first 200 bytes of the unkeyed BLAKE3 XOF of\n  \
         `arca format-spec test vector: an incompressible data blob`; stored raw\n  \
         (zstd would not save 1/32 of it).\n\
         - Root tree: the directory `/` of the snapshot, with three nodes:\n  \
         `data.bin` (file, mode 0640, uid 1000, gid 100, `alice`/`users`, size {},\n  \
         one xattr `user.comment` = `test vector`, extents blob 1 at 0 and blob 2 at {},\n  \
         holes {}..{} and {}..{}), `link` (symlink to `data.bin`) and `sub`\n  \
         (directory, subtree = the empty tree).\n\
         - Empty tree: `01 00000000` (version 1, zero nodes); shorter than 64 bytes, so raw.\n\
         - Logical content of `data.bin`: blob 1, {} zero bytes, blob 2, {} zero bytes.\n  \
         Its BLAKE3 (the node's content hash): `{}`.\n\
         - The index segment names one superseded segment, `{}` (no such object\n  \
         exists; the field is exercised, nothing more: a backup writes none, `repair index` does).\n",
        data_blob_1().len(),
        file_content().len(),
        data_blob_1().len() as u64 + HOLE,
        data_blob_1().len(),
        data_blob_1().len() as u64 + HOLE,
        data_blob_1().len() as u64 + HOLE + data_blob_2().len() as u64,
        file_content().len(),
        HOLE,
        TRAILING_HOLE,
        blake3::hash(&file_content()),
        hex::encode(SUPERSEDED),
    ));
    o.push_str(&format!(
        "\n## Plaintexts\n\
         \n\
         Config JSON (inside `config.hex` and the key file's copy):\n\
         \n```json\n{}\n```\n\
         \n\
         Snapshot JSON (inside `snapshot.hex`):\n\
         \n```json\n{}\n```\n\
         \n\
         The key file is JSON as stored (`key.hex` is these bytes; there is no final newline):\n\
         \n```json\n{}\n```\n\
         \n\
         Maintenance lock JSON (inside `lock-maintenance.hex`):\n\
         \n```json\n{}\n```\n\
         \n\
         Lock-removal notice JSON (inside `lock-removal.hex`, label `ALR\\x01`):\n\
         \n```json\n{}\n```\n\
         \n\
         Drill record JSON (inside `drill-record.hex`, label `ADR\\x01`):\n\
         \n```json\n{}\n```\n",
        opened(label::CONFIG, &v.config),
        opened(label::SNAPSHOT, &v.snapshot),
        String::from_utf8_lossy(&v.key),
        opened(label::LOCK, &v.lock_maintenance),
        opened(label::LOCK_REMOVAL, &v.lock_removal),
        opened(label::DRILL, &v.drill_record),
    ));
    o.push_str(&prune_state(v));
    o.push_str(&format!(
        "\n## Chunker\n\
         \n\
         `chunker.json` gives chunk end offsets for min_size {}, avg_size {}, max_size {}\n\
         (not the config's sizes: small ones make a short test), the vectors' chunker key, and as\n\
         input the first {} bytes of the unkeyed BLAKE3 XOF of `arca format-spec chunker input`\n\
         with bytes {}..{} set to zero (the zeros force cuts at max_size). `gear_first_4` are\n\
         the first four entries of the gear table, as u64 in hex.\n",
        CHUNKER_PARAMS.min_size,
        CHUNKER_PARAMS.avg_size,
        CHUNKER_PARAMS.max_size,
        CHUNKER_INPUT_LEN,
        CHUNKER_ZERO_RANGE.start,
        CHUNKER_ZERO_RANGE.end,
    ));
    o
}

/// The "Prune state" section of the vectors' README: the prune record's
/// plaintext, the seal and its name, the index segment's base, and what
/// the rules of the specification (§15.2) make of them.
fn prune_state(v: &Vectors) -> String {
    let key = master();
    let z = key
        .open(label::PRUNE, &v.prune_record[4..])
        .expect("the record opens");
    let plain = zstd::stream::decode_all(&z[..]).expect("one zstd frame");
    let json = String::from_utf8(plain.clone()).expect("UTF-8 JSON");
    let seal_json = String::from_utf8(key.open(label::SEAL, &v.seal[4..]).expect("the seal opens"))
        .expect("UTF-8 JSON");
    let mut seal_input = b"arca 2026-12 seal v1".to_vec();
    seal_input.extend_from_slice(&REPO_ID);
    seal_input.extend_from_slice(&1u64.to_le_bytes());
    let index_plain = zstd::stream::decode_all(
        &key.open(label::INDEX_V2, &v.index[4..])
            .expect("the index opens")[..],
    )
    .expect("one zstd frame");
    format!(
        "\n## Prune state\n\
         \n\
         The repository is in prune generation 2. Generation 1's record `{prev}` is not\n\
         among the files (generation 2 superseded and deleted it), nor are the other objects\n\
         the record names (`d2…`, `d3…`, `d4…`, `d5…`, `d6…`: each 32 copies of one byte).\n\
         \n\
         - `prune-record.hex` is the only record, so it is the head. Its plaintext (after\n  \
         opening with label `APR\\x01` and one zstd frame) is the {plen} bytes of JSON\n  \
         below. It condemns one pack, `{cp}` of {csize} bytes (`condemned`: packs by id\n  \
         and size; a reader learns what the pack holds from its header).\n\
         - The record sweeps generation 1's mark: the pack `{sp}` ({sps} bytes) that\n  \
         generation 1 condemned and the void snapshot `{vs}` are to be deleted; the\n  \
         snapshot `{acc}` was based before that mark and is accepted.\n\
         - `seal.hex` is the seal of generation 1 (naming generation 1's record), stored\n  \
         at `seals/<name>` with name = BLAKE3 of the {sil} bytes\n  \
         `{si}`\n  \
         (`\"arca 2026-12 seal v1\"`, the repository id, generation 1 as u64le) = `{sn}`.\n\
         - `index.hex`'s plaintext begins with its base: generation `{bg}` (u64le) and\n  \
         mark `{bm}` (the record's id), then the segment. It honours the swept mark\n  \
         (generation 2 > 1), so it counts: both packs are live.\n\
         - `snapshot.hex` records the same base (`\"base\"` in its JSON): it honours the\n  \
         swept mark, so it is valid.\n\
         - `index-v1.hex` reads as base generation 0, which does not honour the swept mark\n  \
         (generation 1): in this repository it would be void and add nothing.\n\
         - A backup based on generation 2 confirms its snapshot by reading `seals/` for\n  \
         generations 2 and 3 (neither exists here): no conflict.\n\
         \n\
         Prune record JSON (inside `prune-record.hex`):\n\
         \n```json\n{json}\n```\n\
         \n\
         Seal JSON (inside `seal.hex`):\n\
         \n```json\n{seal_json}\n```\n",
        prev = hex::encode(PREVIOUS_RECORD),
        plen = plain.len(),
        cp = hex::encode(CONDEMNED_PACK),
        csize = CONDEMNED_PACK_SIZE,
        sp = hex::encode(SWEPT_PACK),
        sps = SWEPT_PACK_SIZE,
        vs = hex::encode(VOID_SNAPSHOT),
        acc = hex::encode(ACCEPTED_SNAPSHOT),
        sil = seal_input.len(),
        si = hex::encode(&seal_input),
        sn = v.seal_name,
        bg = hex::encode(&index_plain[..8]),
        bm = hex::encode(&index_plain[8..40]),
        json = json,
        seal_json = seal_json,
    )
}
