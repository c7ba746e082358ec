// Licensed to the Apache Software Foundation (ASF) under one
// or more contributor license agreements.  See the NOTICE file
// distributed with this work for additional information
// regarding copyright ownership.  The ASF licenses this file
// to you under the Apache License, Version 2.0 (the
// "License"); you may not use this file except in compliance
// with the License.  You may obtain a copy of the License at
//
//   http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing,
// software distributed under the License is distributed on an
// "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
// KIND, either express or implied.  See the License for the
// specific language governing permissions and limitations
// under the License.

//! `milagro-install` with plugins pulled from where they are published: a
//! third-party plugin crate written here (outside the workspace, depending
//! on `milagro-plugin-api = "0.1"`, which the installer points at this
//! host's copy), served from a local git repository (`file://`) and, as a
//! prebuilt library with its minisign signature, from an HTTP server on
//! 127.0.0.1 started by the test. Every install runs the real installer
//! into a temporary prefix and starts the real node; cargo runs offline.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use milagro_tests::{
    installed::{Installed, manifest},
    json, target_dir, test_plugins,
};
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The installer on `node`, with cargo offline (no test reaches beyond
/// 127.0.0.1).
fn installer(node: &Installed, leading: &[&str], manifest: &Path, extra: &[&str]) -> Output {
    let mut command = building(node.command(leading, manifest));
    command.args(extra).env("CARGO_NET_OFFLINE", "true");
    node.run(command)
}

/// One target dir for every build of these tests, so the plugin's
/// dependencies are compiled once.
fn building(mut command: Command) -> Command {
    command
        .env("CARGO_TARGET_DIR", target_dir().join("installer-sources"))
        // A third party's crate is not linted with this workspace's clippy.
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    command
}

fn installed_ok(node: &Installed, leading: &[&str], manifest: &Path, extra: &[&str]) -> String {
    node.succeeded(&installer(node, leading, manifest, extra))
}

/// A third-party plugin crate in a git repository of its own.
struct ThirdParty {
    repo: PathBuf,
}

impl ThirdParty {
    fn new(dir: &Path) -> ThirdParty {
        let repo = dir.join("hello-milagro");
        std::fs::create_dir_all(&repo).unwrap();
        let party = ThirdParty { repo };
        party.git(&["init", "--quiet"]);
        party
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Third Party",
                "-c",
                "user.email=tp@localhost",
            ])
            .args(args)
            .current_dir(&self.repo)
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Writes version `version` of the crate and commits it; its commit ID.
    fn release(&self, version: &str) -> String {
        write_crate(&self.repo, version);
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "-m", version]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn url(&self) -> String {
        format!("file://{}", self.repo.display())
    }
}

/// Writes the third party's crate, at `version`, into `dir`.
fn write_crate(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"hello-milagro\"\nversion = \"{version}\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nmilagro-plugin-api = \"0.1\"\nserde_json = \"1\"\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), PLUGIN_SOURCE).unwrap();
}

/// The third party's plugin: one route answering with its version.
const PLUGIN_SOURCE: &str = r#"//! A third-party plugin: says which version it is.

use milagro_plugin_api::{Error, Host, Plugin, Request, Response, Route};

pub struct Hello;

impl Plugin for Hello {
    type Config = serde_json::Value;
    const NAME: &'static str = "hello";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn new(_config: Self::Config, _host: Host) -> Result<Self, Error> {
        Ok(Hello)
    }

    fn routes(&self) -> Vec<Route<Self>> {
        vec![Route::get("/hello", "hello", |p: &Self, r| Box::pin(p.hello(r)))
            .summary("Which version this is")]
    }
}

impl Hello {
    async fn hello(&self, _request: &Request) -> Result<Response, Error> {
        Response::json(200, &serde_json::json!({"from": "third party", "version": Self::VERSION}))
    }
}

milagro_plugin_api::export_plugin!(Hello);
"#;

/// How the test server answers for one file.
#[derive(Clone)]
enum Serve {
    Whole(Vec<u8>),
    /// Announces the whole length, sends half, closes.
    Truncated(Vec<u8>),
}

type Files = Arc<Mutex<BTreeMap<String, Serve>>>;

/// A plain HTTP server on 127.0.0.1 serving files it is given; stopped
/// when dropped.
struct FileServer {
    port: u16,
    files: Files,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FileServer {
    fn start(files: BTreeMap<String, Serve>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let files = Arc::new(Mutex::new(files));
        let (stopping, serving) = (stop.clone(), files.clone());
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    answer(stream, &serving);
                }
            }
        });
        FileServer {
            port,
            files,
            stop,
            thread: Some(thread),
        }
    }

    /// Serves `bytes` at `/path` from now on.
    fn serve(&self, path: &str, bytes: Vec<u8>) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), Serve::Whole(bytes));
    }

    fn url(&self, file: &str) -> String {
        format!("http://127.0.0.1:{}/{file}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(mut stream: TcpStream, files: &Files) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") && request.len() < 8192 {
        match stream.read(&mut byte) {
            Ok(1) => request.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/");
    let file = files
        .lock()
        .unwrap()
        .get(path.trim_start_matches('/'))
        .cloned();
    let (status, announced, body): (&str, usize, &[u8]) = match &file {
        Some(Serve::Whole(bytes)) => ("200 OK", bytes.len(), bytes),
        Some(Serve::Truncated(bytes)) => ("200 OK", bytes.len(), &bytes[..bytes.len() / 2]),
        None => ("404 Not Found", 0, b""),
    };
    let _ = stream.write_all(
        format!("HTTP/1.1 {status}\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let _ = stream.write_all(body);
}

/// Every path under `root` with what it is: a file's sha256, a link's
/// target, or "dir".
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                out.insert(relative, format!("link {:?}", std::fs::read_link(&path)));
            } else if kind.is_dir() {
                out.insert(relative, "dir".into());
                walk(root, &path, out);
            } else {
                out.insert(relative, sha256(&std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// (inode, mtime in ns) of a file.
fn identity(path: &Path) -> (u64, i64) {
    let meta = std::fs::metadata(path).unwrap();
    (meta.ino(), meta.mtime() * 1_000_000_000 + meta.mtime_nsec())
}

/// A minisign key pair made for this test, and signatures made with it.
struct Signer {
    public: minisign::PublicKey,
    secret: minisign::SecretKey,
}

impl Signer {
    fn new() -> Signer {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("a key pair");
        Signer {
            public: pair.pk,
            secret: pair.sk,
        }
    }

    fn key(&self) -> String {
        self.public.to_base64()
    }

    fn sign(&self, bytes: &[u8]) -> Vec<u8> {
        minisign::sign(Some(&self.public), &self.secret, bytes, None, None)
            .expect("sign")
            .into_string()
            .into_bytes()
    }
}

fn call_hello(node: &Installed, instance: &str) -> serde_json::Value {
    let (status, body) = node.call("GET", &format!("/v1/{instance}/hello"), None);
    assert_eq!(status, 200, "{instance}: {body}\n{}", node.log());
    json(&body)
}

/// Acceptance 1 (git, and a signed prebuilt library over HTTP), 2 (a
/// re-run is a no-op; a changed rev upgrades only that plugin) and 3
/// (`plugins verify` finds a library modified after install), with
/// `plugins add` and `plugins list`.
#[test]
fn third_party_plugins_install_from_git_and_a_signed_url_pinned_and_verified() {
    let node = Installed::new();
    let party = ThirdParty::new(node.dir());
    let rev1 = party.release("1.0.0");
    let base = format!(
        "[node]\nname = \"third-party\"\n\n[[plugins]]\nname = \"example\"\n\n[[plugins]]\nname = \"hello\"\ngit = \"{}\"\nrev = \"{rev1}\"\n",
        party.url()
    );
    let m = manifest(node.dir(), "node.toml", &base);
    let out = installed_ok(&node, &[], &m, &["--start"]);
    assert!(out.contains("plugin hello: cloning"), "{out}");
    assert!(out.contains("crate(s) compiled"), "{out}");
    assert_eq!(call_hello(&node, "hello")["version"], "1.0.0");
    let record = std::fs::read_to_string(node.prefix.join("etc/milagro/plugins.lock")).unwrap();
    assert!(record.contains(&format!("#{rev1}")), "{record}");
    assert!(
        node.prefix
            .join("etc/milagro/locks/hello.Cargo.lock")
            .is_file(),
        "the build's lockfile is kept beside the install"
    );

    // The same manifest again: nothing fetched or rebuilt, same file.
    let hello_so = node.prefix.join("lib/milagro/plugins/hello.so");
    let before = identity(&hello_so);
    let plugins_before = snapshot(&node.prefix.join("lib/milagro/plugins"));
    let out = installed_ok(&node, &[], &m, &["--start"]);
    assert!(
        out.contains("plugin hello: unchanged") && out.contains("nothing fetched or rebuilt"),
        "{out}"
    );
    assert!(
        !out.contains("cloning") && !out.contains("cargo build"),
        "{out}"
    );
    assert_eq!(identity(&hello_so), before, "the library was not replaced");
    assert_eq!(
        snapshot(&node.prefix.join("lib/milagro/plugins")),
        plugins_before
    );

    // The published prebuilt library: the installed build of 1.0.0, signed.
    let published = std::fs::read(&hello_so).unwrap();
    let signer = Signer::new();
    let server = FileServer::start(BTreeMap::from([
        ("hello.so".to_string(), Serve::Whole(published.clone())),
        (
            "hello.so.minisig".to_string(),
            Serve::Whole(signer.sign(&published)),
        ),
    ]));
    let out = installed_ok(
        &node,
        &["plugins", "add", "hello-signed", "--plugin", "hello"],
        &m,
        &[
            "--url",
            &server.url("hello.so"),
            "--sha256",
            &sha256(&published),
            "--signature",
            &server.url("hello.so.minisig"),
            "--signer-key",
            &signer.key(),
            "--start",
        ],
    );
    assert!(
        out.contains("plugin hello-signed: signature verified"),
        "{out}"
    );
    assert!(out.contains("plugin hello: unchanged"), "{out}");
    assert_eq!(call_hello(&node, "hello-signed")["version"], "1.0.0");
    let text = std::fs::read_to_string(&m).unwrap();
    assert!(
        text.contains("name = \"hello-signed\"") && text.contains("signer_key"),
        "plugins add wrote the entry: {text}"
    );
    let published_url = server.url("hello.so");
    drop(server);

    // A new rev of the git plugin: only it is rebuilt; the prebuilt one,
    // whose server is gone, is kept as it is.
    let rev2 = party.release("2.0.0");
    let signed_so = node.prefix.join("lib/milagro/plugins/hello-signed.so");
    let signed_before = identity(&signed_so);
    let hello_before = sha256(&std::fs::read(&hello_so).unwrap());
    std::fs::write(&m, text.replace(&rev1, &rev2)).unwrap();
    let out = installed_ok(&node, &[], &m, &["--start"]);
    assert!(out.contains("plugin hello: cloning"), "{out}");
    assert!(out.contains("plugin hello-signed: unchanged"), "{out}");
    assert_eq!(call_hello(&node, "hello")["version"], "2.0.0");
    assert_eq!(call_hello(&node, "hello-signed")["version"], "1.0.0");
    assert_eq!(identity(&signed_so), signed_before);
    assert_ne!(sha256(&std::fs::read(&hello_so).unwrap()), hello_before);

    // What the prefix has.
    let list = Command::new(milagro_tests::artifact("milagro-install"))
        .args(["plugins", "list", "--prefix"])
        .arg(&node.prefix)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    for expected in [
        format!("git+{}#{rev2}", party.url()),
        format!("url+{published_url}"),
        sha256(&published),
        "workspace:milagro-plugin-example".to_string(),
    ] {
        assert!(list.contains(&expected), "{expected} in:\n{list}");
    }

    // Verify: intact, then one library changed after install.
    node.stop();
    let verify = || {
        Command::new(milagro_tests::artifact("milagro-install"))
            .args(["plugins", "verify", "--prefix"])
            .arg(&node.prefix)
            .arg("--manifest")
            .arg(&m)
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(
        ok.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut tampered = published.clone();
    tampered.extend_from_slice(b"\0tampered");
    std::fs::write(&signed_so, tampered).unwrap();
    let bad = verify();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "verify must fail");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("MODIFIED plugin \"hello-signed\"")
            && stderr.contains(&signed_so.display().to_string()),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(stdout.contains("ok plugin \"hello\""), "{stdout}");
}

/// Runs the installer expecting a refusal: one stderr line, the prefix as
/// it was.
fn refused(node: &Installed, leading: &[&str], manifest: &Path, extra: &[&str]) -> String {
    let before = snapshot(&node.prefix);
    let out = installer(node, leading, manifest, extra);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the install must fail: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one message:\n{stderr}");
    assert!(lines[0].starts_with("milagro-install: error: "), "{stderr}");
    assert_eq!(
        snapshot(&node.prefix),
        before,
        "the prefix changed: {stderr}"
    );
    lines[0].to_string()
}

/// Acceptance 1: a wrong sha256, a bad signature, a truncated download, an
/// unreachable URL and an incompatible plugin-api each stop the install
/// with one line and leave the installed prefix exactly as it was.
#[test]
fn failed_fetches_and_checks_leave_the_prefix_as_it_was() {
    let node = Installed::new();
    let m = manifest(
        node.dir(),
        "node.toml",
        "[node]\nname = \"kept\"\n\n[[plugins]]\nname = \"example\"\n",
    );
    installed_ok(&node, &[], &m, &[]);

    // A real, compatible plugin as the published file; the probe built
    // against a changed plugin-api as an incompatible one.
    let good = std::fs::read(target_dir().join("debug/libmilagro_plugin_example.so")).unwrap();
    let odd = std::fs::read(test_plugins::abi_mismatch_probe()).unwrap();
    let signer = Signer::new();
    let stranger = Signer::new();
    let server = FileServer::start(BTreeMap::from([
        ("good.so".to_string(), Serve::Whole(good.clone())),
        (
            "good.so.minisig".to_string(),
            Serve::Whole(stranger.sign(&good)),
        ),
        (
            "other.minisig".to_string(),
            Serve::Whole(signer.sign(b"other")),
        ),
        ("cut.so".to_string(), Serve::Truncated(good.clone())),
        ("odd.so".to_string(), Serve::Whole(odd.clone())),
        (
            "huge.minisig".to_string(),
            Serve::Whole(vec![b'#'; 1 << 20]),
        ),
    ]));
    let unreachable = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/good.so", listener.local_addr().unwrap())
    };
    let entry = |url: &str, sha: &str, extra: &str| {
        format!(
            "[node]\nname = \"kept\"\n\n[[plugins]]\nname = \"example\"\n\n[[plugins]]\nname = \"fetched\"\nurl = \"{url}\"\nsha256 = \"{sha}\"\n{extra}"
        )
    };
    let good_sha = sha256(&good);
    let signed_by = |signature: &str, signer: &Signer| {
        format!(
            "signature = \"{}\"\nsigner_key = \"{}\"\n",
            server.url(signature),
            signer.key()
        )
    };
    let has_good_sha = format!("has sha256 {good_sha}");
    let of_length = format!("of {} bytes", good.len());
    let cases = [
        (
            entry(&server.url("good.so"), &sha256(b"something else"), ""),
            vec!["plugin \"fetched\"", &*has_good_sha, "the manifest expects"],
        ),
        (
            entry(
                &server.url("good.so"),
                &good_sha,
                &signed_by("good.so.minisig", &signer),
            ),
            vec![
                "plugin \"fetched\": bad signature",
                "not signed by signer_key",
            ],
        ),
        (
            entry(
                &server.url("good.so"),
                &good_sha,
                &signed_by("other.minisig", &signer),
            ),
            vec!["plugin \"fetched\": bad signature"],
        ),
        (
            entry(&server.url("cut.so"), &good_sha, ""),
            vec!["plugin \"fetched\": truncated download", &*of_length],
        ),
        (
            entry(&unreachable, &good_sha, ""),
            vec!["plugin \"fetched\": cannot download", &*unreachable],
        ),
        (
            entry(&server.url("missing.so"), &good_sha, ""),
            vec!["plugin \"fetched\": cannot download", "404"],
        ),
        (
            entry(
                &server.url("good.so"),
                &good_sha,
                &signed_by("huge.minisig", &signer),
            ),
            vec!["huge.minisig", "more than the 65536 expected"],
        ),
        (
            entry(&server.url("odd.so"), &sha256(&odd), ""),
            vec![
                "plugin \"fetched\" refused",
                "was built against an incompatible plugin-api",
                "AbiRequest",
            ],
        ),
    ];
    for (text, expected) in cases {
        let bad = manifest(node.dir(), "bad.toml", &text);
        let line = refused(&node, &[], &bad, &[]);
        for e in expected {
            assert!(line.contains(e), "{e:?} in {line}\n{text}");
        }
    }

    // The same refusals through `plugins add`, which leaves the manifest
    // as it was.
    let before = std::fs::read_to_string(&m).unwrap();
    let line = refused(
        &node,
        &["plugins", "add", "fetched"],
        &m,
        &["--url", &server.url("cut.so"), "--sha256", &good_sha],
    );
    assert!(line.contains("truncated download"), "{line}");
    assert_eq!(std::fs::read_to_string(&m).unwrap(), before);

    // A damaged install record is named, not trusted or overwritten.
    let record = node.prefix.join("etc/milagro/plugins.lock");
    std::fs::write(&record, "[[plugins]]\nname = 1\n").unwrap();
    let line = refused(&node, &[], &m, &[]);
    assert!(
        line.contains("plugins.lock") && line.contains("invalid type"),
        "{line}"
    );
    // An install made before records: listed from host.toml.
    std::fs::remove_file(&record).unwrap();
    let out = Command::new(milagro_tests::artifact("milagro-install"))
        .args(["plugins", "list", "--prefix"])
        .arg(&node.prefix)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("example") && stdout.contains("no install record"),
        "{stdout}"
    );
    let out = Command::new(milagro_tests::artifact("milagro-install"))
        .args(["plugins", "list", "--prefix"])
        .arg(node.dir().join("nothing-here"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("has no install"),
        "{stderr}"
    );
}

/// Hostile source entries: each refused with one line naming the file,
/// line and column and what is expected, before anything is fetched or
/// written.
#[test]
fn bad_source_entries_fail_with_one_clear_line() {
    let node = Installed::new();
    let key = Signer::new().key();
    let sha = "ab".repeat(32);
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let cases: Vec<(String, &str)> = vec![
        (
            format!(
                "crate = \"hello\"\nversion = \"1.0.0\"\nurl = \"https://example.org/x.so\"\nsha256 = \"{sha}\""
            ),
            "give one source, not url and crate",
        ),
        (
            format!("git = \"https://example.org/x.git\"\nrev = \"{rev}\"\npath = \"x.so\""),
            "give one source, not path and git",
        ),
        (
            "url = \"https://example.org/x.so\"".into(),
            "a url source needs sha256",
        ),
        (
            "url = \"https://example.org/x.so\"\nsha256 = \"not-hex\"".into(),
            "sha256: expected 64 hex digits",
        ),
        (
            format!(
                "url = \"https://example.org/x.so\"\nsha256 = \"{}\"",
                "zz".repeat(32)
            ),
            "sha256: expected 64 hex digits",
        ),
        (
            format!("url = \"http://example.org/x.so\"\nsha256 = \"{sha}\""),
            "plain http is allowed to loopback only",
        ),
        (
            format!("url = \"ftp://127.0.0.1/x.so\"\nsha256 = \"{sha}\""),
            "scheme \"ftp\" is not allowed",
        ),
        (
            format!("url = \"not a url\"\nsha256 = \"{sha}\""),
            "is not a URL",
        ),
        (
            format!(
                "url = \"https://example.org/x.so\"\nsha256 = \"{sha}\"\nsignature = \"https://example.org/x.so.minisig\""
            ),
            "signature needs signer_key",
        ),
        (
            format!(
                "url = \"https://example.org/x.so\"\nsha256 = \"{sha}\"\nsignature = \"https://example.org/x.minisig\"\nsigner_key = \"RWnot-a-key\""
            ),
            "signer_key: not a minisign public key",
        ),
        (
            format!(
                "url = \"https://example.org/x.so\"\nsha256 = \"{sha}\"\nsigner_key = \"{key}\""
            ),
            "signer_key needs signature",
        ),
        (
            "git = \"https://example.org/x.git\"\nrev = \"0123abc\"".into(),
            "expected a full commit ID (40 hex digits), not a branch, tag or short ID",
        ),
        (
            "git = \"https://example.org/x.git\"\nrev = \"main\"".into(),
            "rev \"main\": expected a full commit ID",
        ),
        (
            "git = \"https://example.org/x.git\"".into(),
            "a git source needs rev",
        ),
        (
            format!("git = \"ext::sh -c touch% /tmp/pwned\"\nrev = \"{rev}\""),
            "scheme \"ext\" is not allowed",
        ),
        (
            format!("git = \"https://example.org/x.git\"\nrev = \"{rev}\"\nsha256 = \"{sha}\""),
            "sha256 goes with path or url",
        ),
        ("crate = \"hello\"".into(), "a crate source needs version"),
        (
            "crate = \"hello\"\nversion = \"^1.0\"".into(),
            "expected one exact version x.y.z, not a range",
        ),
        (
            "crate = \"hello\"\nversion = \"1.0\"".into(),
            "expected one exact version x.y.z",
        ),
        (
            "crate = \"../hello\"\nversion = \"1.0.0\"".into(),
            "not a crate name",
        ),
        (format!("rev = \"{rev}\""), "rev goes with git"),
        ("version = \"1.0.0\"".into(), "version goes with crate"),
        ("registry = \"mine\"".into(), "registry goes with crate"),
        ("".into(), "unknown plugin \"third\": expected one of"),
    ];
    for (keys, expected) in cases {
        let text = format!("[node]\nname = \"x\"\n\n[[plugins]]\nname = \"third\"\n{keys}\n");
        let m = manifest(node.dir(), "hostile.toml", &text);
        let line = refused(&node, &[], &m, &[]);
        assert!(line.contains(expected), "{expected:?} in {line}\n{text}");
        assert!(line.contains("hostile.toml:"), "names the file: {line}");
        assert!(!node.prefix.exists(), "nothing installed: {line}");
    }

    // The command line refuses a short rev the same way, and leaves the
    // manifest as it was.
    let m = manifest(node.dir(), "node.toml", "[node]\nname = \"x\"\n");
    let line = refused(
        &node,
        &["plugins", "add", "third"],
        &m,
        &["--git", "https://example.org/x.git", "--rev", "0123abc"],
    );
    assert!(line.contains("expected a full commit ID"), "{line}");
    assert_eq!(
        std::fs::read_to_string(&m).unwrap(),
        "[node]\nname = \"x\"\n"
    );
}

/// A cargo registry of the third party's own on 127.0.0.1 (the sparse
/// protocol: `config.json`, the index file, `.crate` downloads).
struct Registry {
    server: FileServer,
    dir: PathBuf,
    index: Vec<String>,
}

impl Registry {
    fn new(dir: &Path) -> Registry {
        let server = FileServer::start(BTreeMap::new());
        let config = serde_json::json!({
            "dl": format!("http://127.0.0.1:{}/dl/{{crate}}/{{version}}/download", server.port),
        });
        server.serve("index/config.json", config.to_string().into_bytes());
        Registry {
            server,
            dir: dir.join("registry"),
            index: Vec::new(),
        }
    }

    /// `sparse+http://.../index/`, for `CARGO_REGISTRIES_<NAME>_INDEX`.
    fn index_url(&self) -> String {
        format!("sparse+{}", self.server.url("index/"))
    }

    /// Packages the crate at `version` (a `.crate` is a gzipped tar of
    /// `<name>-<version>/`) and adds it to the index.
    fn publish(&mut self, version: &str) {
        let package = format!("hello-milagro-{version}");
        write_crate(&self.dir.join(&package), version);
        let file = self.dir.join(format!("{package}.crate"));
        let status = Command::new("tar")
            .arg("-czf")
            .arg(&file)
            .arg("-C")
            .arg(&self.dir)
            .arg(&package)
            .status()
            .expect("run tar");
        assert!(status.success(), "tar");
        let bytes = std::fs::read(&file).unwrap();
        let crates_io = |name: &str, req: &str| {
            serde_json::json!({"name": name, "req": req, "features": [], "optional": false,
                "default_features": true, "target": null, "kind": "normal",
                "registry": "https://github.com/rust-lang/crates.io-index"})
        };
        self.index.push(
            serde_json::json!({
                "name": "hello-milagro", "vers": version,
                "deps": [crates_io("milagro-plugin-api", "^0.1"), crates_io("serde_json", "^1")],
                "cksum": sha256(&bytes), "features": {}, "yanked": false,
            })
            .to_string(),
        );
        self.server
            .serve(&format!("dl/hello-milagro/{version}/download"), bytes);
        self.server.serve(
            "index/he/ll/hello-milagro",
            self.index.join("\n").into_bytes(),
        );
    }
}

/// A `crate` source from a registry (the third party's own, on 127.0.0.1):
/// installs and serves; a new pinned version upgrades it, and the build's
/// lockfile is kept. Cargo is online here (the plugin's crates.io
/// dependencies resolve through the crates.io index, seeded from the
/// host's lockfile).
#[test]
fn a_registry_crate_installs_at_its_pinned_version_and_upgrades_when_the_pin_moves() {
    let node = Installed::new();
    let mut registry = Registry::new(node.dir());
    registry.publish("1.0.0");
    let text = "[node]\nname = \"crate\"\n\n[[plugins]]\nname = \"hello\"\ncrate = \"hello-milagro\"\nversion = \"1.0.0\"\nregistry = \"third-party\"\n";
    let m = manifest(node.dir(), "node.toml", text);
    let index = registry.index_url();
    let install = || {
        let mut command = building(node.command(&[], &m));
        command
            .arg("--start")
            .env("CARGO_REGISTRIES_THIRD_PARTY_INDEX", &index);
        node.succeeded(&node.run(command))
    };
    let out = install();
    assert!(out.contains("fetching crate hello-milagro 1.0.0"), "{out}");
    assert_eq!(call_hello(&node, "hello")["version"], "1.0.0");
    let record = std::fs::read_to_string(node.prefix.join("etc/milagro/plugins.lock")).unwrap();
    assert!(
        record.contains("registry+third-party:hello-milagro@1.0.0"),
        "{record}"
    );
    let lock =
        std::fs::read_to_string(node.prefix.join("etc/milagro/locks/hello.Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"hello-milagro\"\nversion = \"1.0.0\""),
        "{lock}"
    );

    let out = install();
    assert!(out.contains("plugin hello: unchanged"), "{out}");

    registry.publish("2.0.0");
    std::fs::write(&m, text.replace("1.0.0", "2.0.0")).unwrap();
    let out = install();
    assert!(out.contains("fetching crate hello-milagro 2.0.0"), "{out}");
    assert_eq!(call_hello(&node, "hello")["version"], "2.0.0");
}
