//! Each account's tree as C2SP tlog-tiles under `/tiles/<account>/`
//! (docs/TILES.md), read with code this project did not write: Cloudflare's
//! `tlog_tiles` crate (a port of Go's sumdb/tlog) authenticates the tiles
//! against the checkpoint's root and computes inclusion proofs from them,
//! its `signed_note` crate checks the checkpoint's signature, and Go's own
//! sumdb packages (goverify) check the tile-made proofs with the entries
//! read back from the entry bundles. Then who may read tiles, malformed
//! paths and tiles beyond the tree.

use crate::helpers::*;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tlog_tiles::{
    check_record, prove_record, record_hash, stored_hash_index, tree_hash, Checkpoint, Hash,
    HashReader, Tile, TileHashReader, TileReader,
};

const IMMUTABLE: &str = "private, max-age=31536000, immutable";
const SHORT_LIVED: &str = "private, max-age=5";

fn event(account: &str, i: u32) -> Value {
    json!({"id": format!("{account}-{i}"), "event_type": "Test Case",
           "action": if i.is_multiple_of(2) { "Update" } else { "Create" },
           "actor": {"id": format!("u-{}", i % 7), "name": "Ada", "email": "ada@example.com"},
           "project": "Checkout", "target": {"id": format!("TC-{i}")},
           "details": {"round": i, "note": "x".repeat((i % 50) as usize)}})
}

async fn ingest(server: &TestServer, account: &TestAccount, count: u32) {
    let ids: Vec<u32> = (0..count).collect();
    for chunk in ids.chunks(500) {
        let events: Vec<Value> = chunk.iter().map(|&i| event(&account.name, i)).collect();
        let (status, body) = server
            .post(
                "/api/v1/events",
                &account.ingest,
                &json!({"events": events}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// One GET: status, headers and the raw body.
async fn fetch(
    server: &TestServer,
    path: &str,
    key: Option<&str>,
    accept_gzip: bool,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = server.http.get(server.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if accept_gzip {
        request = request.header("accept-encoding", "gzip");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The C2SP URL of a tile as the `tlog_tiles` crate names it: its paths
/// are Go's `tile/<H>/<L>/<N>` (`data` for entries); C2SP drops the height,
/// which is always 8, and calls data `entries`.
fn c2sp_path(account: &str, tile: &Tile) -> String {
    let go = tile.path();
    let rest = go
        .strip_prefix("tile/8/")
        .unwrap_or_else(|| panic!("a tile of height 8: {go}"));
    let rest = match rest.strip_prefix("data/") {
        Some(index) => format!("entries/{index}"),
        None => rest.to_string(),
    };
    format!("/tiles/{account}/tile/{rest}")
}

/// A `tlog_tiles::TileReader` over HTTP: what a tlog client does. The
/// reader's trait is blocking, so each fetch runs on the test's runtime
/// from a blocking section (the runtime is multi-threaded).
struct HttpTiles<'a> {
    server: &'a TestServer,
    account: &'a str,
    key: &'a str,
    fetched: Mutex<BTreeSet<String>>,
}

impl TileReader for HttpTiles<'_> {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        let handle = tokio::runtime::Handle::current();
        tiles
            .iter()
            .map(|tile| {
                let path = c2sp_path(self.account, tile);
                let (status, headers, body) = tokio::task::block_in_place(|| {
                    handle.block_on(fetch(self.server, &path, Some(self.key), false))
                });
                assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
                assert_eq!(header(&headers, "content-type"), "application/octet-stream");
                let full = tile.width() == 256;
                assert_eq!(
                    header(&headers, "cache-control"),
                    if full { IMMUTABLE } else { SHORT_LIVED },
                    "{path}"
                );
                self.fetched.lock().unwrap().insert(path);
                Ok(body)
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// The entries of an entry bundle: big-endian u16 length, then the bytes.
fn split_bundle(mut bundle: &[u8]) -> Vec<Vec<u8>> {
    let mut entries = Vec::new();
    while !bundle.is_empty() {
        assert!(bundle.len() >= 2, "a truncated length prefix");
        let len = u16::from_be_bytes([bundle[0], bundle[1]]) as usize;
        assert!(bundle.len() >= 2 + len, "a truncated entry");
        entries.push(bundle[2..2 + len].to_vec());
        bundle = &bundle[2 + len..];
    }
    entries
}

/// Polls the tiles' checkpoint until it reports `size` (a checkpoint is
/// signed on demand when none exists, else within seconds of growth).
async fn tiles_checkpoint(server: &TestServer, account: &TestAccount, size: u64) -> String {
    let path = format!("/tiles/{}/checkpoint", account.name);
    let start = Instant::now();
    loop {
        let (status, headers, body) = fetch(server, &path, Some(&account.read), false).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(
            header(&headers, "content-type"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(header(&headers, "cache-control"), SHORT_LIVED);
        let note = String::from_utf8(body).unwrap();
        if note.lines().nth(1) == Some(&size.to_string()) {
            return note;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no checkpoint of size {size}: {note}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Everything a tlog client reads of one account, checked with the
/// independent implementations.
async fn read_account_with_independent_tools(
    server: &TestServer,
    account: &TestAccount,
    size: u64,
    vkey: &str,
    goverify: &Result<std::path::PathBuf, String>,
) {
    let name = account.name.as_str();
    let note = tiles_checkpoint(server, account, size).await;
    // The same checkpoint as the API's.
    let (_, api_note) = get_text(server, "/api/v1/checkpoint", &account.read).await;
    assert_eq!(note, api_note);

    // The signature, with Cloudflare's signed_note.
    let verifier = signed_note::StandardVerifier::new(vkey).unwrap();
    let parsed = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
    let (verified, _) = parsed
        .verify(&signed_note::VerifierList::new(vec![Box::new(verifier)]))
        .expect("the checkpoint's signature verifies with signed_note");
    assert_eq!(verified.len(), 1);
    // The body, with tlog_tiles' checkpoint parser.
    let checkpoint = Checkpoint::from_bytes(parsed.text()).expect("a C2SP checkpoint");
    assert_eq!(checkpoint.origin(), format!("auditlog/{name}"));
    assert_eq!(checkpoint.size(), size);
    let root = *checkpoint.hash();

    // The root from the tiles: TileHashReader authenticates every tile it
    // reads against the checkpoint's root (InconsistentTile otherwise).
    let tiles = HttpTiles {
        server,
        account: name,
        key: &account.read,
        fetched: Mutex::new(BTreeSet::new()),
    };
    let reader = TileHashReader::new(size, root, &tiles);
    assert_eq!(tree_hash(size, &reader).unwrap(), root);

    // Every entry bundle, read back: each entry hashes (SHA-256(0x00 ‖
    // entry)) to the leaf hash of the authenticated level-0 tiles, and is
    // the event's canonical JSON with its seq.
    let mut entries = Vec::new();
    for n in 0..size.div_ceil(256) {
        let width = (size - n * 256).min(256) as u32;
        let bundle = Tile::new(8, 0, n, width, true);
        let path = c2sp_path(name, &bundle);
        let (status, headers, body) = fetch(server, &path, Some(&account.read), false).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        assert_eq!(header(&headers, "content-type"), "application/octet-stream");
        assert_eq!(
            header(&headers, "cache-control"),
            if width == 256 { IMMUTABLE } else { SHORT_LIVED }
        );
        let got = split_bundle(&body);
        assert_eq!(got.len(), width as usize, "{path}");
        entries.extend(got);
    }
    let indexes: Vec<u64> = (0..size).map(|i| stored_hash_index(0, i)).collect();
    let leaf_hashes = reader.read_hashes(&indexes).unwrap();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(record_hash(entry), leaf_hashes[i], "entry {i}");
        let event: Value = serde_json::from_slice(entry).unwrap();
        assert_eq!(event["seq"], json!(i + 1), "entry {i}");
        assert_eq!(event["account"], json!(name));
    }

    // Inclusion proofs made from the tiles alone equal the API's, check
    // with tlog_tiles, and check with Go's sumdb (goverify) against the
    // tiles' checkpoint with the leaf read from the bundle. The API proves
    // against the checkpoint the root log covers, which may be an earlier
    // one (signed between two requests of the ingest): the tiles of the
    // larger tree prove in that one too, and give its root.
    let ids: BTreeSet<u32> = [0, 1, 255, 256, 300, 511, 512, size as u32 - 1]
        .into_iter()
        .filter(|&i| (i as u64) < size)
        .collect();
    for i in ids {
        let (status, proof) = server
            .get(&format!("/api/v1/events/{name}-{i}/proof"), &account.read)
            .await;
        assert_eq!(status, 200, "{proof}");
        let index = proof["leaf_index"].as_u64().unwrap();
        let served_size = proof["tree_size"].as_u64().unwrap();
        assert!(index < served_size && served_size <= size, "{proof}");
        let entry = &entries[index as usize];
        assert_eq!(proof["leaf"], json!(BASE64.encode(entry)));
        let served: Vec<Hash> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Hash::parse_hash(h.as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(
            prove_record(served_size, index, &reader).unwrap(),
            served,
            "the proof of leaf {index} in the tree of {served_size}"
        );
        let served_note =
            signed_note::Note::from_bytes(proof["checkpoint"].as_str().unwrap().as_bytes())
                .unwrap();
        let served_checkpoint = Checkpoint::from_bytes(served_note.text()).unwrap();
        assert_eq!(served_checkpoint.size(), served_size);
        assert_eq!(
            tree_hash(served_size, &reader).unwrap(),
            *served_checkpoint.hash()
        );
        let from_tiles = prove_record(size, index, &reader).unwrap();
        check_record(&from_tiles, size, root, index, record_hash(entry)).unwrap();
        assert!(check_record(&from_tiles, size, root, index ^ 1, record_hash(entry)).is_err());
        if let Ok(bin) = goverify {
            let request = json!({"vkey": vkey, "checkpoint": note, "leaf": BASE64.encode(entry),
                                 "index": index,
                                 "proof": from_tiles.iter().map(|h| h.to_string()).collect::<Vec<_>>()});
            let answer = run_goverify(bin, &request);
            assert!(
                answer.starts_with(&format!("OK auditlog/{name} size {size}")),
                "{answer}"
            );
        }
    }

    // What a client fetched: for 600 entries that crosses two full level-0
    // tiles, a partial one and a partial level-1 tile.
    let fetched = tiles.fetched.into_inner().unwrap();
    if size == 600 {
        for path in [
            "tile/0/000",
            "tile/0/001",
            "tile/0/002.p/88",
            "tile/1/000.p/2",
        ] {
            assert!(
                fetched.contains(&format!("/tiles/{name}/{path}")),
                "{path} in {fetched:?}"
            );
        }
    }

    // A gzipped bundle is the same bundle.
    let (status, headers, gz) = fetch(
        server,
        &format!("/tiles/{name}/tile/entries/000.p/1"),
        Some(&account.read),
        true,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(split_bundle(&plain), vec![entries[0].clone()]);
}

async fn get_text(server: &TestServer, path: &str, key: &str) -> (u16, String) {
    let (status, _, body) = fetch(server, path, Some(key), false).await;
    (status, String::from_utf8(body).unwrap())
}

/// Three accounts (600 entries: two full level-0 tiles and a partial one,
/// a partial level-1 tile; exactly 256: one full tile and a level-1 tile
/// of width 1; 3), each read over HTTP with the independent reader.
async fn tiles_read_with_an_independent_reader(server: &TestServer) {
    let (status, vkey) = get_text(server, "/api/v1/public-key", "").await;
    assert_eq!(status, 200);
    let vkey = vkey.trim().to_string();
    let accounts = [
        (server.account("acme"), 600),
        (server.account("globex"), 256),
        (server.account("initech"), 3),
    ];
    for (account, count) in &accounts {
        ingest(server, account, *count).await;
    }
    let goverify = goverify();
    if let Err(why) = &goverify {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the Go interop check of tile proofs (goverify) did not run: {why}"
        );
    }
    for (account, count) in &accounts {
        read_account_with_independent_tools(server, account, *count as u64, &vkey, &goverify).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_read_correctly_with_an_independent_tlog_tiles_reader() {
    let server = TestServer::start();
    tiles_read_with_an_independent_reader(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_read_correctly_with_an_independent_tlog_tiles_reader_on_postgres() {
    use auditlog_store_postgres::test_support::TestDatabase;
    let Some(database) = TestDatabase::create("tiles_independent_reader") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    let server = TestServer::start_on_database(
        &database.url,
        scratch.path(),
        &["--signing-key-file", &key_file],
    );
    tiles_read_with_an_independent_reader(&server).await;
}

#[tokio::test]
async fn tiles_are_read_only_by_the_accounts_read_keys_with_clear_errors() {
    let server = TestServer::start();
    let acme = server.account("acme");
    let globex = server.account("globex");
    let empty = server.account("empty");
    ingest(&server, &acme, 600).await;
    ingest(&server, &globex, 3).await;
    let routes = [
        "/tiles/acme/checkpoint",
        "/tiles/acme/tile/0/000",
        "/tiles/acme/tile/entries/000",
    ];
    for path in routes {
        // No key, a malformed header, an unknown key: 401.
        let (status, _, body) = fetch(&server, path, None, false).await;
        assert_eq!(status, 401, "{path}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error_code(&body), "missing_api_key");
        let (status, _, _) = fetch(&server, path, Some("not-a-key"), false).await;
        assert_eq!(status, 401, "{path}");
        // An ingest key of the account: 403.
        let (status, body) = server.get(path, &acme.ingest).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(error_code(&body), "insufficient_scope");
        // Another account's read key sees nothing here, as an event of
        // another account is not found on the other routes; an account
        // that does not exist answers the same.
        let (status, body) = server.get(path, &globex.read).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(error_code(&body), "not_found");
        let (status, body) = server
            .get(&path.replace("/acme/", "/nobody/"), &acme.read)
            .await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(error_code(&body), "not_found");
        // The account's own read key, and an admin key (admin implies read).
        let (status, _) = server.get(path, &acme.read).await;
        assert_eq!(status, 200, "{path}");
    }
    let admin = server.cli(
        &["key", "create", "--account", "acme", "--scope", "admin"],
        "",
    );
    let (status, _, _) = fetch(&server, "/tiles/acme/tile/0/000", Some(admin.trim()), false).await;
    assert_eq!(status, 200);
    // globex's own tiles are globex's: 3 entries, one partial tile.
    let (status, _, body) = fetch(
        &server,
        "/tiles/globex/tile/0/000.p/3",
        Some(&globex.read),
        false,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), 3 * 32);

    // Malformed paths: 400 naming the part of the path and the rule.
    let malformed = [
        ("tile/00/000", "level", "malformed_level"),
        ("tile/64/000", "level", "malformed_level"),
        ("tile/x/000", "level", "malformed_level"),
        ("tile/0/1", "index", "malformed_index"),
        ("tile/0/0000", "index", "malformed_index"),
        ("tile/0/001/002", "index", "malformed_index"),
        ("tile/0/x000/001", "index", "not_canonical"),
        (
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "index",
            "malformed_index",
        ),
        ("tile/0/000.p/0", "width", "malformed_width"),
        ("tile/0/000.p/256", "width", "malformed_width"),
        ("tile/0/000.p/08", "width", "malformed_width"),
        ("tile/entries/000.p/abc", "width", "malformed_width"),
        ("tile/entries/12", "index", "malformed_index"),
        ("tile/entries/000.x/5", "index", "malformed_index"),
    ];
    for (path, part, rule) in malformed {
        let (status, body) = server.get(&format!("/tiles/acme/{path}"), &acme.read).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(error_code(&body), "invalid_tile_path", "{path}");
        assert_eq!(body["error"]["details"]["field"], json!(part), "{path}");
        assert_eq!(body["error"]["details"]["rule"], json!(rule), "{path}");
    }

    // Beyond the tree of 600 entries: 404, while what it has is served.
    for (path, want) in [
        ("tile/0/001", 200),
        ("tile/0/002.p/88", 200),
        ("tile/0/000.p/17", 200),
        ("tile/1/000.p/2", 200),
        ("tile/entries/002.p/88", 200),
        ("tile/0/002", 404),
        ("tile/0/002.p/89", 404),
        ("tile/0/003.p/1", 404),
        ("tile/1/000", 404),
        ("tile/1/000.p/3", 404),
        ("tile/2/000.p/1", 404),
        ("tile/63/x001/000", 404),
        ("tile/entries/002", 404),
        ("tile/entries/002.p/89", 404),
        ("tile/entries/x018/x446/x744/x073/x709/x551/615", 404),
    ] {
        let (status, headers, body) = fetch(
            &server,
            &format!("/tiles/acme/{path}"),
            Some(&acme.read),
            false,
        )
        .await;
        assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&body));
        if want == 404 {
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(error_code(&body), "not_found");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("beyond the tree, which has 600 entries"),
                "{body}"
            );
            // An error is never cached as if it were a tile.
            assert_eq!(header(&headers, "cache-control"), "no-store");
        }
    }
    // An account without events has no checkpoint and no tiles.
    let (status, body) = server.get("/tiles/empty/checkpoint", &empty.read).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = server.get("/tiles/empty/tile/0/000.p/1", &empty.read).await;
    assert_eq!(status, 404);
    // No other method.
    let response = server
        .http
        .post(server.url("/tiles/acme/tile/0/000"))
        .bearer_auth(&acme.read)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
}

/// Removes the bodies of `acme-0` … (seqs 1..=`pruned`) the way pruning
/// does: an `Auditlog Retention` / `Prune` record covering them, its
/// coverage, then the removal, all through the store's own code.
async fn prune_prefix(store: &dyn auditlog_store::Store, pruned: u64) {
    use auditlog_core::coverage::{covers_json, SeqRange};
    use auditlog_core::{NewEvent, Taxonomy, Timestamp};
    use auditlog_store::{RemovalKind, RemovedBody};
    let account = store.account_by_name("acme").await.unwrap().unwrap();
    let range = SeqRange::new(1, pruned).unwrap();
    let record = NewEvent::parse(
        &json!({"event_type": "Auditlog Retention", "action": "Prune",
                "actor": {"id": "auditlog"}, "details": {"covers": covers_json(&[range])}}),
        &Taxonomy::default().with_own_types(),
        Timestamp::now(),
    )
    .unwrap();
    let receipts = store.append(&account, vec![record]).await.unwrap();
    let record_seq = receipts[0].seq;
    store
        .add_coverage(account.id, record_seq, &[range])
        .await
        .unwrap();
    let bodies: Vec<RemovedBody> = (1..=pruned)
        .map(|seq| RemovedBody {
            seq,
            event_id: format!("acme-{}", seq - 1),
        })
        .collect();
    let removed = store
        .remove_bodies(account.id, record_seq, RemovalKind::Pruned, &bodies)
        .await
        .unwrap();
    assert_eq!(removed, pruned);
}

/// What the tiles of acme (300 events, then seqs 1..=10 pruned and the
/// record at 301) answer: bundles touching a pruned entry 410, the rest of
/// the entries and every hash tile as before.
async fn pruned_entries_answer_410(
    server: &TestServer,
    acme: &TestAccount,
    tiles_before: &[(String, Vec<u8>)],
) {
    for path in [
        "tile/entries/000",
        "tile/entries/000.p/1",
        "tile/entries/000.p/10",
    ] {
        let (status, body) = server.get(&format!("/tiles/acme/{path}"), &acme.read).await;
        assert_eq!(status, 410, "{path}: {body}");
        assert_eq!(error_code(&body), "pruned");
        assert_eq!(body["error"]["details"]["seq"], json!(1), "{path}");
    }
    // A bundle of entries after the pruned prefix is whole.
    let (status, _, bundle) = fetch(
        server,
        "/tiles/acme/tile/entries/001.p/45",
        Some(&acme.read),
        false,
    )
    .await;
    assert_eq!(status, 200);
    let entries = split_bundle(&bundle);
    assert_eq!(entries.len(), 45);
    let last: Value = serde_json::from_slice(&entries[44]).unwrap();
    assert_eq!(last["event_type"], json!("Auditlog Retention"));
    // Pruning keeps every tree hash: the hash tiles are the same bytes.
    for (path, before) in tiles_before {
        let (status, _, after) = fetch(server, path, Some(&acme.read), false).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(&after, before, "{path}");
    }
}

async fn hash_tiles_of_acme(server: &TestServer, acme: &TestAccount) -> Vec<(String, Vec<u8>)> {
    let mut tiles = Vec::new();
    for path in [
        "/tiles/acme/tile/0/000",
        "/tiles/acme/tile/0/001.p/44",
        "/tiles/acme/tile/1/000.p/1",
    ] {
        let (status, _, body) = fetch(server, path, Some(&acme.read), false).await;
        assert_eq!(status, 200, "{path}");
        tiles.push((path.to_string(), body));
    }
    tiles
}

#[tokio::test]
async fn a_bundle_touching_a_pruned_entry_answers_410() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on(dir.path(), &[]);
    let acme = server.account("acme");
    ingest(&server, &acme, 300).await;
    let (status, _, _) = fetch(
        &server,
        "/tiles/acme/tile/entries/000",
        Some(&acme.read),
        false,
    )
    .await;
    assert_eq!(status, 200);
    let tiles_before = hash_tiles_of_acme(&server, &acme).await;
    server.kill();
    {
        let store = auditlog_store_sqlite::SqliteStore::open(dir.path()).unwrap();
        prune_prefix(&store, 10).await;
    }
    let server = TestServer::start_on(dir.path(), &[]);
    pruned_entries_answer_410(&server, &acme, &tiles_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_touching_a_pruned_entry_answers_410_on_postgres() {
    use auditlog_store_postgres::test_support::TestDatabase;
    use auditlog_store_postgres::PgStore;
    let Some(database) = TestDatabase::create("tiles_pruned_bundle") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let key_file = scratch.path().join("signing-key").display().to_string();
    let args = ["--signing-key-file", key_file.as_str()];
    let server = TestServer::start_on_database(&database.url, scratch.path(), &args);
    let acme = server.account("acme");
    ingest(&server, &acme, 300).await;
    let tiles_before = hash_tiles_of_acme(&server, &acme).await;
    // The server's own reads see the removal at once (no cache of bodies).
    let owner = PgStore::connect(&database.url).await.unwrap();
    prune_prefix(&owner, 10).await;
    pruned_entries_answer_410(&server, &acme, &tiles_before).await;
}
