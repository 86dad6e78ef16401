//! The fuzz targets' seed corpora (`fuzz/corpus/<target>/`), run as ordinary
//! tests on stable Rust, and the generator of the seed files.
//!
//! - `seed_corpora_do_not_panic` feeds every file of every corpus to its
//!   `arca_engine::fuzzing` function (this is what CI runs);
//! - `regenerate_seed_corpora` (ignored) rewrites the `seed-*` files from
//!   real engine encodings, deterministically (fixed key, salt, nonces and
//!   times), leaving any other file (crash reproducers, minimised inputs)
//!   alone:
//!   `cargo test -p arca-engine --test fuzz_corpus -- --ignored regenerate`

use std::path::{Path, PathBuf};

use arca_engine::fuzzing;

/// A fuzz target's name and the function it calls.
type Target = (&'static str, fn(&[u8]));

/// Every fuzz target.
const TARGETS: &[Target] = &[
    ("pack_header", fuzzing::pack_header),
    ("index_segment", fuzzing::index_segment),
    ("tree", fuzzing::tree),
    ("snapshot", fuzzing::snapshot),
    ("config", fuzzing::config),
    ("key_file", fuzzing::key_file),
    ("blob", fuzzing::blob),
    ("coverage", fuzzing::coverage),
    ("lock", fuzzing::lock),
    ("prune_record", fuzzing::prune_record),
    ("seal", fuzzing::seal),
    ("wal_object", fuzzing::wal_object),
    ("drill_record", fuzzing::drill_record),
];

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn seed_corpora_do_not_panic() {
    let root = corpus_root();
    let mut failures = vec![];
    for &(target, run) in TARGETS {
        let dir = root.join(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|e| e.expect("corpus directory entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "corpus {} is empty", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failures.push(format!("{target}: {}", f.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus input(s) panicked (messages above):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Writes the seed files. Run after a format change, then commit the result.
#[test]
#[ignore = "writes fuzz/corpus; run explicitly after a format change"]
fn regenerate_seed_corpora() {
    let seeds = seeds::all();
    let root = corpus_root();
    for (target, files) in &seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        // Drop stale seeds (not crash reproducers or fuzzer finds).
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("seed-") && !files.iter().any(|(n, _)| *n == name) {
                std::fs::remove_file(&p).unwrap();
            }
        }
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    // The generator is deterministic: a second run gives the same bytes.
    assert_eq!(seeds::all(), seeds);
    // And every seed goes through its target.
    for (target, files) in &seeds {
        let run = TARGETS.iter().find(|(t, _)| t == target).unwrap().1;
        for (_, bytes) in files {
            run(bytes);
        }
    }
}

mod seeds {
    use arca_engine::format::chunker::ChunkerParams;
    use arca_engine::format::compress::{self, Compression, CompressionMode};
    use arca_engine::format::config::{Config, DEFAULT_PACK_SIZE, FORMAT_VERSION};
    use arca_engine::format::crypto::{KdfParams, MasterKey, NONCE_LEN, PasswordKey, label};
    use arca_engine::format::id::{
        BlobId, IndexId, PackId, PruneId, RepoId, SnapshotId, content_hash,
    };
    use arca_engine::format::index::{IndexSegment, IndexedPack};
    use arca_engine::format::keyfile::{KdfRecord, KeyFile};
    use arca_engine::format::pack::{self, BlobKind, PackBuilder, PackEntry, TRAILER_MAGIC};
    use arca_engine::format::prune::{Base, PruneRecord, RecordInfo, Seal, Swept, ToDelete};
    use arca_engine::format::snapshot::{PgBaseBackup, Snapshot, SourceError, Summary};
    use arca_engine::format::tree::{
        Content, Extent, FLAG_INCOMPLETE, Node, NodeKind, Timestamp, Tree,
    };
    use arca_engine::fuzzing::{FUZZ_SECRET, fuzz_key};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;
    use chrono::{DateTime, Utc};

    type Files = Vec<(String, Vec<u8>)>;

    /// A distinct fixed nonce per sealed seed (never the same twice).
    fn nonce(n: u8) -> [u8; NONCE_LEN] {
        let mut out = [0xa0; NONCE_LEN];
        out[0] = n;
        out
    }

    fn time(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ts(sec: i64, nsec: u32) -> Timestamp {
        Timestamp { sec, nsec }
    }

    fn object(magic: &[u8; 4], sealed: Vec<u8>) -> Vec<u8> {
        let mut out = magic.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    fn half(b: &[u8]) -> Vec<u8> {
        b[..b.len() / 2].to_vec()
    }

    /// A pack, built with `PackBuilder` and then given a header sealed with
    /// a fixed nonce (`finish` picks a random one).
    struct Pack {
        bytes: Vec<u8>,
        entries: Vec<PackEntry>,
        /// The header plaintext.
        header: Vec<u8>,
    }

    fn build_pack(key: &MasterKey, kind: BlobKind, blobs: &[Vec<u8>], nonce_base: u8) -> Pack {
        let mut b = PackBuilder::new(kind, 1 << 16);
        for (i, plain) in blobs.iter().enumerate() {
            let (stored, how) = compress::compress(plain, CompressionMode::Auto);
            let sealed = key.seal_with_nonce(kind.label(), &stored, nonce(nonce_base + i as u8));
            b.add(key.blob_id(plain), how, plain.len() as u32, &sealed);
        }
        let finished = b.finish(key);
        let data_end = finished.entries.last().map_or(0, |e| e.range().end) as usize;
        let header = pack::encode_entries(&finished.entries);
        let sealed_header =
            key.seal_with_nonce(label::PACK_HEADER, &header, nonce(nonce_base + 100));
        let mut bytes = finished.bytes[..data_end].to_vec();
        bytes.extend_from_slice(&sealed_header);
        bytes.extend_from_slice(&(sealed_header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(TRAILER_MAGIC);
        let id = PackId(content_hash(&bytes));
        assert_eq!(
            pack::read_header_from_bytes(key, &id, &bytes).unwrap(),
            finished.entries
        );
        Pack {
            bytes,
            entries: finished.entries,
            header,
        }
    }

    /// Deterministic, compressible and incompressible data blobs.
    fn data_blobs() -> Vec<Vec<u8>> {
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..3000)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect();
        vec![
            b"hello, arca! ".repeat(200), // zstd
            noise,                        // stored raw
            b"tail".to_vec(),             // too short to compress
        ]
    }

    fn sample_tree(data: &[PackEntry], subtree: BlobId) -> Tree {
        let mut sparse = Node::new(b"caf\xe9 sparse\n\xff".to_vec(), NodeKind::File);
        sparse.mode = 0o640;
        sparse.uid = 1000;
        sparse.gid = 1000;
        sparse.user = b"alice".to_vec();
        sparse.group = b"staff".to_vec();
        sparse.mtime = ts(1_790_000_000, 123_456_789);
        sparse.atime = ts(1_790_000_100, 0);
        sparse.ctime = ts(1_790_000_000, 999_999_999);
        sparse.inode = 42;
        sparse.device = 0x803;
        sparse.nlink = 2;
        sparse.size = 10_000_000;
        sparse.xattrs = vec![
            (
                b"security.selinux".to_vec(),
                b"system_u:object_r:user_home_t:s0\0".to_vec(),
            ),
            (b"user.comment".to_vec(), vec![0, 1, 2, 0xff]),
            (b"user.empty".to_vec(), vec![]),
        ];
        // Three extents with holes between and after them.
        sparse.content = Content::File {
            hash: [0x33; 32],
            extents: vec![
                Extent {
                    offset: 0,
                    length: data[0].raw_length,
                    blob: data[0].id,
                },
                Extent {
                    offset: 4_000_000,
                    length: data[1].raw_length,
                    blob: data[1].id,
                },
                Extent {
                    offset: 9_000_000,
                    length: data[2].raw_length,
                    blob: data[2].id,
                },
            ],
        };
        let mut empty = Node::new(b"empty".to_vec(), NodeKind::File);
        empty.mode = 0o600;
        empty.flags = FLAG_INCOMPLETE;
        empty.content = Content::File {
            hash: *blake3::hash(b"").as_bytes(),
            extents: vec![],
        };
        let mut dir = Node::new(b"sub dir".to_vec(), NodeKind::Dir);
        dir.mode = 0o755;
        dir.mtime = ts(-1, 5); // before the epoch
        dir.content = Content::Dir { subtree };
        let mut link = Node::new("lien-ŝ".as_bytes().to_vec(), NodeKind::Symlink);
        link.mode = 0o777;
        link.target = b"../caf\xe9/\xfe".to_vec();
        let mut fifo = Node::new(b"fifo".to_vec(), NodeKind::Fifo);
        fifo.mode = 0o600;
        let mut chr = Node::new(b"null".to_vec(), NodeKind::CharDevice);
        chr.rdev = (1 << 8) | 3;
        chr.mode = 0o666;
        let mut blk = Node::new(b"sda".to_vec(), NodeKind::BlockDevice);
        blk.rdev = 8 << 8;
        let sock = Node::new(b"sock".to_vec(), NodeKind::Socket);
        let mut t = Tree {
            nodes: vec![sparse, empty, dir, link, fifo, chr, blk, sock],
        };
        t.sort();
        t
    }

    fn key_file(config_object: &[u8]) -> Vec<u8> {
        let salt = [0x5b; 32];
        let params = KdfParams {
            memory_kib: KdfParams::MIN_MEMORY_KIB,
            iterations: 1,
            parallelism: 1,
        };
        let pk = PasswordKey::derive(b"correct horse battery staple", &salt, params).unwrap();
        let k = KeyFile {
            version: 1,
            created: time("2026-11-02T10:00:00.5Z"),
            host: "backup-host".into(),
            username: "alice".into(),
            kdf: KdfRecord {
                algorithm: "argon2id".into(),
                params: Some(params),
                salt: B64.encode(salt),
            },
            master: B64.encode(pk.wrap_with_nonce(fuzz_key(), nonce(200))),
            config: B64.encode(config_object),
        };
        let bytes = k.to_bytes();
        let parsed = KeyFile::parse(&bytes).unwrap();
        let unlocked = parsed
            .unlock(b"correct horse battery staple")
            .unwrap()
            .unwrap();
        assert_eq!(unlocked.secret(), &FUZZ_SECRET);
        bytes
    }

    /// Every target's seed files.
    pub fn all() -> Vec<(&'static str, Files)> {
        let key = fuzz_key();
        let f = |name: &str, b: Vec<u8>| (format!("seed-{name}"), b);

        // Packs: data blobs, and the tree blobs of a two-level tree.
        let data = build_pack(key, BlobKind::Data, &data_blobs(), 1);
        let empty_tree = Tree::default().encode();
        let tree = sample_tree(&data.entries, key.blob_id(&empty_tree));
        let tree_bytes = tree.encode();
        assert_eq!(Tree::decode(&tree_bytes).unwrap(), tree);
        let trees = build_pack(
            key,
            BlobKind::Tree,
            &[tree_bytes.clone(), empty_tree.clone()],
            20,
        );
        let empty_pack = build_pack(key, BlobKind::Data, &[], 40);

        // pack_header: plaintext packs (blobs, header plaintext, trailer),
        // sealed packs, edge cases.
        let plain_pack = |p: &Pack| {
            let data_end = p.entries.last().map_or(0, |e| e.range().end) as usize;
            let mut out = p.bytes[..data_end].to_vec();
            out.extend_from_slice(&p.header);
            out.extend_from_slice(&(p.header.len() as u32).to_le_bytes());
            out.extend_from_slice(TRAILER_MAGIC);
            out
        };
        let pack_header = vec![
            f("plain-data-pack", plain_pack(&data)),
            f("plain-tree-pack", plain_pack(&trees)),
            f("sealed-data-pack", data.bytes.clone()),
            f("sealed-tree-pack", trees.bytes.clone()),
            f("sealed-empty-pack", empty_pack.bytes.clone()),
            f("plain-empty-pack", plain_pack(&empty_pack)),
            f("trailer-only", {
                let mut t = 0u32.to_le_bytes().to_vec();
                t.extend_from_slice(TRAILER_MAGIC);
                t
            }),
            f("truncated", half(&data.bytes)),
            f("empty", vec![]),
        ];

        // blob: entry (50 bytes) then the sealed blob.
        let mut blob = vec![];
        for (name, p) in [("data", &data), ("tree", &trees)] {
            for (i, e) in p.entries.iter().enumerate() {
                let mut b = vec![];
                e.encode_into(&mut b);
                let r = e.range();
                b.extend_from_slice(&p.bytes[r.start as usize..r.end as usize]);
                let how = match e.compression {
                    Compression::None => "raw",
                    Compression::Zstd => "zstd",
                };
                assert!(pack::open_blob(key, e, &b[pack::ENTRY_LEN..]).is_ok());
                blob.push(f(&format!("{name}-{i}-{how}"), b));
            }
        }
        let first = blob[0].1.clone();
        blob.push(f("entry-only", first[..pack::ENTRY_LEN].to_vec()));
        blob.push(f("truncated", first[..pack::ENTRY_LEN + 20].to_vec()));
        blob.push(f("empty", vec![]));

        // index_segment: two packs and one superseded segment, as a
        // version-1 segment (no base) and a version-2 one (based on a
        // prune generation).
        let seg = IndexSegment {
            packs: vec![
                IndexedPack {
                    id: PackId(content_hash(&data.bytes)),
                    size: data.bytes.len() as u64,
                    entries: data.entries.clone(),
                },
                IndexedPack {
                    id: PackId(content_hash(&trees.bytes)),
                    size: trees.bytes.len() as u64,
                    entries: trees.entries.clone(),
                },
            ],
            supersedes: vec![IndexId([0x99; 32])],
            base: Base {
                generation: 7,
                mark: Some(PruneId([0x77; 32])),
            },
        };
        let seg_plain = seg.encode_plain();
        let seg_object = index_object(label::INDEX, &seg_plain, 50);
        assert_eq!(
            IndexSegment::from_object(key, &seg_object).unwrap(),
            IndexSegment {
                base: Base::default(),
                ..seg.clone()
            }
        );
        let seg_v2_plain = index_v2_plain(&seg);
        let seg_v2_object = index_object(label::INDEX_V2, &seg_v2_plain, 52);
        assert_eq!(IndexSegment::from_object(key, &seg_v2_object).unwrap(), seg);
        let empty_seg = IndexSegment::default().encode_plain();
        let empty_v2 = index_v2_plain(&IndexSegment::default());
        let empty_v2_object = index_object(label::INDEX_V2, &empty_v2, 53);
        assert_eq!(
            IndexSegment::from_object(key, &empty_v2_object).unwrap(),
            IndexSegment::default()
        );
        // Based on a generation, with no mark (prune's own segments).
        let unmarked = IndexSegment {
            base: Base {
                generation: 3,
                mark: None,
            },
            ..seg.clone()
        };
        let unmarked_object = index_object(label::INDEX_V2, &index_v2_plain(&unmarked), 54);
        assert_eq!(
            IndexSegment::from_object(key, &unmarked_object).unwrap(),
            unmarked
        );
        let index_segment = vec![
            f("plain-2-packs", seg_plain.clone()),
            f("object-2-packs", seg_object.clone()),
            f("plain-empty", empty_seg.clone()),
            f("object-empty", index_object(label::INDEX, &empty_seg, 51)),
            f(
                "zstd-of-plain",
                zstd::bulk::compress(&seg_plain, 3).unwrap(),
            ),
            f("truncated-plain", half(&seg_plain)),
            f("truncated-object", half(&seg_object)),
            f("v2-plain-2-packs", seg_v2_plain.clone()),
            f("v2-object-2-packs", seg_v2_object.clone()),
            f("v2-plain-empty", empty_v2),
            f("v2-object-empty", empty_v2_object),
            f("v2-object-unmarked", unmarked_object),
            f(
                "v2-zstd-of-plain",
                zstd::bulk::compress(&seg_v2_plain, 3).unwrap(),
            ),
            f("v2-truncated-plain", half(&seg_v2_plain)),
            f("v2-truncated-object", half(&seg_v2_object)),
            f("empty", vec![]),
        ];

        // tree
        let tree_seeds = vec![
            f("kinds-sparse-xattrs", tree_bytes.clone()),
            f("empty-tree", empty_tree),
            f("truncated", half(&tree_bytes)),
            f("empty", vec![]),
        ];

        // snapshot
        let snap = Snapshot {
            time: time("2026-11-02T10:20:30.123456789Z"),
            host: "backup-host".into(),
            username: "alice".into(),
            paths: vec!["/home/alice".into(), "/etc".into()],
            tags: vec!["daily".into(), "ünïcode".into()],
            tree: key.blob_id(&tree_bytes),
            parent: Some(SnapshotId([0x21; 32])),
            original: Some(SnapshotId([0x22; 32])),
            program_version: "arca 0.1.0".into(),
            partial: true,
            errors: vec![SourceError {
                path: "/home/alice/\u{fffd}locked".into(),
                error: "Permission denied (os error 13)".into(),
            }],
            warnings: vec![SourceError {
                path: "/home/alice/log".into(),
                error: "changed while it was read".into(),
            }],
            summary: Summary {
                backup_start: Some(time("2026-11-02T10:20:30.123456789Z")),
                backup_end: Some(time("2026-11-02T10:21:00Z")),
                files_new: 10,
                files_changed: 2,
                files_unmodified: 1000,
                dirs: 50,
                others: 3,
                total_bytes: 123_456_789,
                bytes_read: 4_567_890,
                blobs_added: 12,
                data_added: 3_000_000,
                data_added_packed: 1_500_000,
            },
            postgres: vec![PgBaseBackup {
                path: "/etc".into(),
                timeline: 2,
                start_lsn: "1/A0000028".into(),
                start_wal: "0000000200000001000000A0".into(),
                stop_lsn: Some("1/A1000100".into()),
                label: "nightly".into(),
            }],
            checks: vec![arca_engine::format::snapshot::DumpCheck {
                path: "app.dump".into(),
                kind: "postgres".into(),
                format: "pg_dump custom archive".into(),
                validator: "pg_restore --verbose --file=/dev/null".into(),
                result: "read every byte".into(),
                warnings: vec!["\u{fffd}".into()],
            }],
            base: Base {
                generation: 7,
                mark: Some(PruneId([0x77; 32])),
            },
        };
        let snap_json = serde_json::to_vec(&snap).unwrap();
        let snap_object = object(
            label::SNAPSHOT,
            key.seal_with_nonce(label::SNAPSHOT, &snap_json, nonce(60)),
        );
        assert_eq!(Snapshot::from_object(key, &snap_object).unwrap(), snap);
        let minimal = format!(
            r#"{{"time":"2026-01-01T00:00:00Z","host":"h","paths":["/"],"tree":"{}","future_field":[1,{{"x":null}}]}}"#,
            snap.tree
        )
        .into_bytes();
        assert_eq!(
            Snapshot::decode_json(&minimal).unwrap().base,
            Base::default()
        );
        // Based on a generation with no mark, and with no base at all (as
        // written before prune existed).
        let unmarked = serde_json::to_vec(&Snapshot {
            base: Base {
                generation: 3,
                mark: None,
            },
            ..snap.clone()
        })
        .unwrap();
        let no_base = serde_json::to_vec(&Snapshot {
            base: Base::default(),
            ..snap.clone()
        })
        .unwrap();
        assert!(!String::from_utf8_lossy(&no_base).contains("\"base\""));
        let snapshot = vec![
            f("full-json", snap_json.clone()),
            f("full-object", snap_object.clone()),
            f("minimal-json", minimal),
            f("base-unmarked-json", unmarked),
            f("no-base-json", no_base),
            f("pretty-json", serde_json::to_vec_pretty(&snap).unwrap()),
            f("truncated-json", half(&snap_json)),
            f("truncated-object", half(&snap_object)),
            f("empty", vec![]),
        ];

        // config
        let cfg = Config {
            version: FORMAT_VERSION,
            id: RepoId([0x42; 32]),
            created: time("2026-11-01T08:00:00.000000001Z"),
            chunker: ChunkerParams::default(),
            pack_size: DEFAULT_PACK_SIZE,
        };
        let cfg_json = serde_json::to_vec(&cfg).unwrap();
        let cfg_object = object(
            label::CONFIG,
            key.seal_with_nonce(label::CONFIG, &cfg_json, nonce(70)),
        );
        assert_eq!(Config::from_object(key, &cfg_object).unwrap(), cfg);
        let small = Config {
            chunker: ChunkerParams {
                min_size: 64,
                avg_size: 256,
                max_size: 1024,
            },
            pack_size: 1 << 20,
            ..cfg.clone()
        };
        let small_json = serde_json::to_vec(&small).unwrap();
        Config::decode_json(&small_json).unwrap();
        let with_version = |v: u32| {
            let json = String::from_utf8(cfg_json.clone()).unwrap().replace(
                &format!("\"version\":{FORMAT_VERSION}"),
                &format!("\"version\":{v}"),
            );
            assert!(json.contains(&format!("\"version\":{v},")));
            json.into_bytes()
        };
        assert!(Config::decode_json(&with_version(1)).is_ok());
        assert!(
            Config::decode_json(&with_version(3))
                .unwrap_err()
                .is_unsupported_version()
        );
        let config = vec![
            f("json", cfg_json.clone()),
            f("object", cfg_object.clone()),
            f("small-chunks-json", small_json),
            // Every version this build reads, and the next (refused).
            f("version-1-json", with_version(1)),
            f("version-3-json", with_version(3)),
            f("truncated-json", half(&cfg_json)),
            f("truncated-object", half(&cfg_object)),
            f("empty", vec![]),
        ];

        // key_file
        let kf = key_file(&cfg_object);
        let kf_text = String::from_utf8(kf.clone()).unwrap();
        let insane = kf_text.replace("\"iterations\": 1", "\"iterations\": 1000000");
        assert_ne!(insane, kf_text);
        // a token's key file: the same fields, no Argon2 parameters
        let token_kf = {
            let v: serde_json::Value = serde_json::from_slice(&kf).unwrap();
            let mut v = v;
            v["kdf"] = serde_json::json!({"algorithm": "token", "salt": v["kdf"]["salt"]});
            serde_json::to_vec_pretty(&v).unwrap()
        };
        assert!(KeyFile::parse(&token_kf).unwrap().kdf.is_token());
        let key_file = vec![
            f("key", kf.clone()),
            f("token-key", token_kf),
            f("insane-kdf", insane.into_bytes()),
            f("truncated", half(&kf)),
            f("empty", vec![]),
        ];

        vec![
            ("pack_header", pack_header),
            ("index_segment", index_segment),
            ("tree", tree_seeds),
            ("snapshot", snapshot),
            ("config", config),
            ("key_file", key_file),
            ("blob", blob),
            ("coverage", coverage_seeds(key)),
            ("lock", lock_seeds()),
            ("prune_record", prune_record_seeds(key, &seg)),
            ("seal", seal_seeds(key)),
            ("wal_object", wal_seeds(key)),
            ("drill_record", drill_seeds()),
        ]
    }

    /// Drill record JSON (the target seals it): a passed drill with an RTO,
    /// a failed one, and edge cases.
    fn drill_seeds() -> Files {
        let j = |ok: bool, total: &str, extra: &str| {
            format!(
                r#"{{"snapshot":"{}","paths":["/var/lib/postgresql"],"source_host":"db-1","host":"drill-1","username":"oncall","started":"2026-11-22T03:00:00Z","restore_seconds":12.5,"check_seconds":3.0,"total_seconds":{total},"files":1200,"bytes":4096000,"checks":["validator `pg_isready`: accepting connections"],"ok":{ok}{extra}}}"#,
                "d7".repeat(32)
            )
            .into_bytes()
        };
        vec![
            (
                "seed-passed".to_string(),
                j(true, "15.5", r#","rto_seconds":900"#),
            ),
            (
                "seed-failed".to_string(),
                j(
                    false,
                    "15.5",
                    r#","error":"the validator failed (exit status: 2)""#,
                ),
            ),
            ("seed-negative".to_string(), j(true, "-1", "")),
            ("seed-huge".to_string(), j(true, "1e309", "")),
            ("seed-empty-object".to_string(), b"{}".to_vec()),
        ]
    }

    /// WAL objects: payloads (the target seals them) of a compressed
    /// segment, a raw history file, one filed under another name; an
    /// object; names.
    fn wal_seeds(key: &MasterKey) -> Files {
        use arca_engine::format::wal::{self, WalFile};
        let f = |name: &str, b: Vec<u8>| (format!("seed-{name}"), b);
        let seg = WalFile::parse("000000010000000000000001").unwrap();
        let mut data = vec![0u8; 64 << 10];
        data[..19].copy_from_slice(b"\x10\xd1\x05\x00WAL page header");
        let payload = |file: WalFile, data: &[u8], mode: CompressionMode| {
            let (body, how) = compress::compress(data, mode);
            let mut p = file.id().0.to_vec();
            p.extend_from_slice(&(data.len() as u64).to_le_bytes());
            p.extend_from_slice(&wal::file_hash(data));
            p.push(how as u8);
            p.extend_from_slice(&body);
            p
        };
        let zstd = payload(seg, &data, CompressionMode::Auto);
        let history = WalFile::parse("00000002.history").unwrap();
        let hist = payload(
            history,
            b"1\t0/3000000\tno recovery target specified\n",
            CompressionMode::Off,
        );
        let other = payload(
            WalFile::parse("000000010000000000000002").unwrap(),
            b"x",
            CompressionMode::Off,
        );
        let mut obj = label::WAL.to_vec();
        obj.extend_from_slice(&key.seal_with_nonce(label::WAL, &zstd, nonce(120)));
        assert_eq!(wal::decode(key, &seg.id(), &obj).unwrap().data, data);
        vec![
            f("segment-payload", zstd.clone()),
            f("history-payload", hist),
            f("other-name-payload", other),
            f("object", obj.clone()),
            f("name-segment", b"000000010000000000000001".to_vec()),
            f(
                "name-backup",
                b"000000010000000000000002.00000028.backup".to_vec(),
            ),
            f("name-partial", b"000000020000000000000003.partial".to_vec()),
            f("truncated-payload", half(&zstd)),
            f("truncated-object", half(&obj)),
            f("empty", vec![]),
        ]
    }

    /// The version-2 index plaintext: `base_gen:u64le base_mark[32]`, then
    /// the version-1 plaintext.
    fn index_v2_plain(seg: &IndexSegment) -> Vec<u8> {
        let mut out = seg.base.generation.to_le_bytes().to_vec();
        out.extend_from_slice(&seg.base.mark.map_or([0; 32], |m| m.0));
        out.extend_from_slice(&seg.encode_plain());
        out
    }

    /// An index segment object of either version, sealed with `nonce(n)`.
    fn index_object(magic: &[u8; 4], plain: &[u8], n: u8) -> Vec<u8> {
        let z = zstd::bulk::compress(plain, 3).unwrap();
        object(magic, fuzz_key().seal_with_nonce(magic, &z, nonce(n)))
    }

    /// A prune record object, sealed with `nonce(n)`.
    fn prune_object(key: &MasterKey, plain: &[u8], n: u8) -> Vec<u8> {
        let z = zstd::bulk::compress(plain, 3).unwrap();
        object(
            label::PRUNE,
            key.seal_with_nonce(label::PRUNE, &z, nonce(n)),
        )
    }

    /// Prune records: a full one (sweeping the previous generation's mark,
    /// condemning the packs of `seg`), the smallest valid one, records the
    /// decoder must refuse, and edge cases.
    fn prune_record_seeds(key: &MasterKey, seg: &IndexSegment) -> Files {
        let f = |name: &str, b: Vec<u8>| (format!("seed-{name}"), b);
        let full = PruneRecord {
            info: RecordInfo {
                generation: 3,
                previous: Some(PruneId([0x32; 32])),
                created: time("2026-12-01T03:00:00.123456789Z"),
                host: "prune-host".into(),
                swept: Some(Swept {
                    generation: 2,
                    mark: PruneId([0x32; 32]),
                    accepted: vec![SnapshotId([0x41; 32]), SnapshotId([0x42; 32])],
                }),
                to_delete: ToDelete {
                    packs: vec![(PackId([0x51; 32]), 1 << 20), (PackId([0x52; 32]), 4242)],
                    snapshots: vec![SnapshotId([0x43; 32])],
                },
                supersedes_index: vec![IndexId([0x61; 32]), IndexId([0x62; 32])],
                supersedes_prune: vec![PruneId([0x32; 32]), PruneId([0x31; 32])],
                condemned: seg.packs.iter().map(|p| (p.id, p.size)).collect(),
            },
        };
        let full_plain = full.encode_plain();
        let full_object = prune_object(key, &full_plain, 80);
        assert_eq!(PruneRecord::from_object(key, &full_object).unwrap(), full);
        let empty = PruneRecord {
            info: RecordInfo {
                generation: 1,
                previous: None,
                created: time("2026-12-01T00:00:00Z"),
                host: String::new(),
                swept: None,
                to_delete: ToDelete::default(),
                supersedes_index: vec![],
                supersedes_prune: vec![],
                condemned: vec![],
            },
        };
        let empty_plain = empty.encode_plain();
        let empty_object = prune_object(key, &empty_plain, 81);
        assert_eq!(PruneRecord::from_object(key, &empty_object).unwrap(), empty);
        let minimal =
            br#"{"generation":1,"created":"2026-12-01T00:00:00Z","future_field":[1,{"x":null}]}"#
                .to_vec();
        PruneRecord::decode_plain(&minimal).unwrap();
        let generation_0 = br#"{"generation":0,"created":"2026-12-01T00:00:00Z"}"#.to_vec();
        assert!(PruneRecord::decode_plain(&generation_0).is_err());
        // A condemned pack without its size.
        let sizeless = format!(
            r#"{{"generation":2,"created":"2026-12-01T00:00:00Z","condemned":[["{}"]]}}"#,
            PackId([0x77; 32])
        )
        .into_bytes();
        assert!(PruneRecord::decode_plain(&sizeless).is_err());
        // Bytes after the JSON.
        let mut trailing = empty_plain.clone();
        trailing.extend_from_slice(&[0, 0, 0, 0]);
        assert!(PruneRecord::decode_plain(&trailing).is_err());
        vec![
            f("full-plain", full_plain.clone()),
            f("full-object", full_object.clone()),
            f("full-zstd", zstd::bulk::compress(&full_plain, 3).unwrap()),
            f("empty-plain", empty_plain.clone()),
            f("empty-object", empty_object),
            f("minimal-plain", minimal),
            f("generation-0-plain", generation_0),
            f("sizeless-condemned-plain", sizeless),
            f("trailing-bytes-plain", trailing),
            f("truncated-plain", half(&full_plain)),
            f("truncated-object", half(&full_object)),
            f("empty", vec![]),
        ]
    }

    /// Seal JSON (the fuzz target seals it), a sealed seal, and edge cases.
    fn seal_seeds(key: &MasterKey) -> Files {
        let f = |name: &str, b: Vec<u8>| (format!("seed-{name}"), b);
        let s = Seal {
            generation: 2,
            mark: PruneId([0x32; 32]),
            host: "prune-host".into(),
            created: time("2026-12-01T02:59:59.5Z"),
        };
        let json = serde_json::to_vec(&s).unwrap();
        let sealed = object(
            label::SEAL,
            key.seal_with_nonce(label::SEAL, &json, nonce(90)),
        );
        assert_eq!(Seal::from_object(key, &sealed).unwrap(), s);
        let minimal = format!(
            r#"{{"generation":1,"mark":"{}","created":"2026-12-01T00:00:00Z","future_field":null}}"#,
            PruneId([0x31; 32])
        )
        .into_bytes();
        let mut minimal_object = label::SEAL.to_vec();
        minimal_object.extend_from_slice(&key.seal_with_nonce(label::SEAL, &minimal, nonce(91)));
        Seal::from_object(key, &minimal_object).unwrap();
        vec![
            f("json", json.clone()),
            f("object", sealed.clone()),
            f("minimal-json", minimal),
            f("pretty-json", serde_json::to_vec_pretty(&s).unwrap()),
            f(
                "no-mark-json",
                br#"{"generation":1,"created":"2026-12-01T00:00:00Z"}"#.to_vec(),
            ),
            f("truncated-json", half(&json)),
            f("truncated-object", half(&sealed)),
            f("empty", vec![]),
        ]
    }

    /// Lock JSON (the fuzz target seals it): valid locks of both kinds and
    /// edge cases.
    fn lock_seeds() -> Files {
        let j = |kind: &str| {
            format!(
                r#"{{"kind":"{kind}","host":"db-1","pid":4242,"username":"backup","operation":"backup","created":"2026-11-22T02:00:00Z","refreshed":"2026-11-22T02:05:00Z"}}"#
            )
            .into_bytes()
        };
        vec![
            ("seed-shared".to_string(), j("shared")),
            ("seed-exclusive".to_string(), j("exclusive")),
            ("seed-unknown-kind".to_string(), j("sideways")),
            ("seed-empty-object".to_string(), b"{}".to_vec()),
            ("seed-not-json".to_string(), b"ALK\x01garbage".to_vec()),
            (
                "seed-removal-notice".to_string(),
                br#"{"removed":"2026-11-22T02:30:00Z","host":"ops-1","pid":9001,"username":"oncall","operation":"unlock --remove-all"}"#.to_vec(),
            ),
        ]
    }

    /// Check records: two packs verified at fixed times, and edge cases.
    fn coverage_seeds(key: &arca_engine::format::crypto::MasterKey) -> Files {
        use arca_engine::format::coverage::Coverage;
        use arca_engine::format::id::PackId;
        let mut c = Coverage::default();
        c.verified.insert(PackId([0x11; 32]), 1_790_000_000);
        c.verified.insert(PackId([0x22; 32]), 1_790_086_400);
        let plain = c.encode_plain();
        let z = zstd::bulk::compress(&plain, 3).unwrap();
        let mut obj = arca_engine::format::crypto::label::COVERAGE.to_vec();
        obj.extend_from_slice(&key.seal_with_nonce(
            arca_engine::format::crypto::label::COVERAGE,
            &z,
            arca_engine::fuzzing::FUZZ_NONCE,
        ));
        vec![
            ("seed-plain-two-packs".to_string(), plain.clone()),
            ("seed-zstd-payload".to_string(), z),
            ("seed-object".to_string(), obj),
            ("seed-empty".to_string(), vec![0, 0, 0, 0]),
            ("seed-truncated".to_string(), plain[..30].to_vec()),
        ]
    }
}
