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

//! Unit tests of `file`.

use super::*;

fn open(dir: &Path) -> FileKeystore {
    FileKeystore::open(dir, &KeystoreConfig::default()).unwrap()
}

#[test]
fn keys_sign_and_agree_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let signing = ks
        .generate("node/signing", KeyKind::Secp256k1Signing)
        .unwrap();
    let ecdh = ks.generate("node/ecdh", KeyKind::Secp256k1Ecdh).unwrap();
    assert!(matches!(
        ks.generate("node/signing", KeyKind::Secp256k1Signing),
        Err(KeystoreError::Exists { .. })
    ));
    let digest = [7u8; 32];
    let sig = ks.sign_prehash("node/signing", &digest).unwrap();
    signing.verify_prehash(&digest, &sig, "test").unwrap();

    let peer = LocalEcdhKey::generate().unwrap();
    let ours = ks.ecdh("node/ecdh", &peer.public_key()).unwrap();
    assert_eq!(*ours, *peer.diffie_hellman(&ecdh).unwrap());

    ks.put_secret("plugin/x/share", b"s3cret").unwrap();
    drop(ks);
    let ks = open(dir.path());
    assert_eq!(ks.public_key("node/signing").unwrap(), Some(signing));
    assert_eq!(
        &**ks.get_secret("plugin/x/share").unwrap().unwrap(),
        b"s3cret"
    );
    assert!(ks.get_secret("nope").unwrap().is_none());
    assert!(matches!(
        ks.sign_prehash("node/ecdh", &digest),
        Err(KeystoreError::WrongKind { .. })
    ));
    assert!(matches!(
        ks.get_secret("node/signing"),
        Err(KeystoreError::WrongKind { .. })
    ));
}

#[test]
fn an_erased_secret_is_gone_and_keys_cannot_be_erased_as_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    ks.put_secret("share/a", b"old share").unwrap();
    ks.generate("node/signing", KeyKind::Secp256k1Signing)
        .unwrap();
    let entries = || fs::read_dir(dir.path()).unwrap().count();
    let before = entries();
    ks.delete_secret("share/a").unwrap();
    assert_eq!(entries(), before - 1);
    ks.delete_secret("share/a").unwrap();
    drop(ks);
    let ks = open(dir.path());
    assert!(ks.get_secret("share/a").unwrap().is_none());
    assert!(matches!(
        ks.delete_secret("node/signing"),
        Err(KeystoreError::WrongKind { .. })
    ));
    assert!(ks.public_key("node/signing").unwrap().is_some());
}

#[test]
fn long_labels_are_stored_under_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let long = format!(
        "plugin/fiduciary/dkg-deal/{}/{}",
        "b".repeat(59),
        "c".repeat(59)
    );
    let longer = format!("{long}x");
    ks.put_secret(&long, b"one").unwrap();
    ks.put_secret(&longer, b"two").unwrap();
    let exact = "e".repeat(MAX_HEX_LABEL);
    ks.put_secret(&exact, b"three").unwrap();
    drop(ks);
    let ks = open(dir.path());
    assert_eq!(&**ks.get_secret(&long).unwrap().unwrap(), b"one");
    assert_eq!(&**ks.get_secret(&longer).unwrap().unwrap(), b"two");
    assert_eq!(&**ks.get_secret(&exact).unwrap().unwrap(), b"three");
    let hashed = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("sha256-")
        })
        .count();
    assert_eq!(hashed, 2);
}

#[test]
fn nothing_secret_is_stored_in_clear_and_entries_cannot_be_moved() {
    let dir = tempfile::tempdir().unwrap();
    let ks = open(dir.path());
    let secret = b"0123456789abcdef-very-secret-share";
    ks.put_secret("a", secret).unwrap();
    for entry in fs::read_dir(dir.path()).unwrap() {
        let bytes = fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret));
    }
    // An entry copied under another label does not decrypt.
    fs::copy(ks.path("a"), ks.path("b")).unwrap();
    assert!(matches!(
        ks.get_secret("b"),
        Err(KeystoreError::Decrypt { .. })
    ));
    let mode = fs::metadata(ks.path("a")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn wrong_master_key_or_passphrase_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path());
    fs::write(dir.path().join("master.key"), [1u8; 32]).unwrap();
    assert!(matches!(
        FileKeystore::open(dir.path(), &KeystoreConfig::default()),
        Err(KeystoreError::Decrypt { .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    let config = KeystoreConfig {
        passphrase_env: Some("MILAGRO_TEST_KEYSTORE_PASSPHRASE".into()),
        ..KeystoreConfig::default()
    };
    // SAFETY: this test is the only user of this variable.
    unsafe { std::env::set_var("MILAGRO_TEST_KEYSTORE_PASSPHRASE", "correct horse battery") };
    FileKeystore::open(dir.path(), &config)
        .unwrap()
        .put_secret("s", b"x")
        .unwrap();
    unsafe { std::env::set_var("MILAGRO_TEST_KEYSTORE_PASSPHRASE", "wrong horse battery") };
    assert!(matches!(
        FileKeystore::open(dir.path(), &config),
        Err(KeystoreError::Decrypt { .. })
    ));
    assert!(!dir.path().join("master.key").exists());
}

fn passphrase_config(var: &str, passphrase: &str) -> KeystoreConfig {
    // SAFETY: each test uses its own variable, set once before use.
    unsafe { std::env::set_var(var, passphrase) };
    KeystoreConfig {
        passphrase_env: Some(var.into()),
        ..KeystoreConfig::default()
    }
}

fn kdf_line(dir: &Path) -> String {
    fs::read_to_string(dir.join(KDF_FILE)).unwrap()
}

#[test]
fn kdf_parameters_are_stored_beside_the_salt_and_win_over_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = passphrase_config("MILAGRO_TEST_KS_STORED", "correct horse battery");
    let made_with = KdfParams {
        m_kib: 20 * 1024,
        t: 2,
        p: 2,
    };
    assert_ne!(made_with, DEFAULT_KDF);
    FileKeystore::open_with(dir.path(), &config, made_with)
        .unwrap()
        .put_secret("s", b"kept")
        .unwrap();
    let line = kdf_line(dir.path());
    assert!(
        line.starts_with("argon2id v=19 m=20480 t=2 p=2 salt="),
        "{line}"
    );
    assert!(!dir.path().join(LEGACY_SALT_FILE).exists());
    let mode = fs::metadata(dir.path().join(KDF_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Reopened with other defaults: the stored parameters are used.
    let ks = FileKeystore::open_with(dir.path(), &config, DEFAULT_KDF).unwrap();
    assert_eq!(&**ks.get_secret("s").unwrap().unwrap(), b"kept");
    assert_eq!(
        kdf_line(dir.path()),
        line,
        "the kdf file is never rewritten"
    );
    // No temp file is left behind.
    assert!(
        fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp"))
    );
}

/// A keystore made by the previous release (a raw `salt`, argon2's
/// defaults) opens, and gets its `kdf` file once the passphrase is
/// proven right.
#[test]
fn legacy_keystores_open_and_are_upgraded_to_a_kdf_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = passphrase_config("MILAGRO_TEST_KS_LEGACY", "correct horse battery");
    // Make the previous release's layout: the salt alone, and entries
    // under the key `Argon2::default()` derives from it.
    let salt = [0x5au8; 16];
    let mut legacy_key = [0u8; 32];
    argon2::Argon2::default()
        .hash_password_into(b"correct horse battery", &salt, &mut legacy_key)
        .unwrap();
    let kdf = Kdf {
        params: LEGACY_KDF,
        salt: salt.to_vec(),
        legacy: true,
    };
    assert_eq!(
        *derive(b"correct horse battery", &kdf).unwrap(),
        legacy_key,
        "LEGACY_KDF is what the previous release derived with"
    );
    fs::write(dir.path().join(LEGACY_SALT_FILE), salt).unwrap();
    let ks = FileKeystore {
        dir: dir.path().to_owned(),
        cipher: Aes256Gcm::new((&legacy_key).into()),
        label_locks: std::array::from_fn(|_| Mutex::new(())),
        signers: Mutex::default(),
        ecdh_keys: Mutex::default(),
    };
    ks.write(
        VERIFIER_LABEL,
        EntryKind::Secret,
        None,
        VERIFIER_VALUE,
        Replace::Never,
    )
    .unwrap();
    ks.put_secret("old", b"from the old release").unwrap();
    drop(ks);
    assert!(!dir.path().join(KDF_FILE).exists());

    // A wrong passphrase is refused and records nothing.
    let wrong = passphrase_config("MILAGRO_TEST_KS_LEGACY_WRONG", "wrong horse battery");
    assert!(matches!(
        FileKeystore::open(dir.path(), &wrong),
        Err(KeystoreError::Decrypt { .. })
    ));
    assert!(!dir.path().join(KDF_FILE).exists());

    // The right one opens it with the legacy parameters (the defaults
    // are stronger) and records them.
    assert_ne!(DEFAULT_KDF, LEGACY_KDF);
    let ks = FileKeystore::open(dir.path(), &config).unwrap();
    assert_eq!(
        &**ks.get_secret("old").unwrap().unwrap(),
        b"from the old release"
    );
    drop(ks);
    assert_eq!(
        kdf_line(dir.path()),
        format!("argon2id v=19 m=19456 t=2 p=1 salt={}\n", hex::encode(salt))
    );
    assert!(
        dir.path().join(LEGACY_SALT_FILE).exists(),
        "kept for older releases"
    );
    let ks = FileKeystore::open(dir.path(), &config).unwrap();
    assert_eq!(
        &**ks.get_secret("old").unwrap().unwrap(),
        b"from the old release"
    );
}

#[test]
fn hostile_kdf_files_are_refused_with_one_line() {
    let salt = "ab".repeat(16);
    for (text, why) in [
        (
            format!("argon2id v=19 m=1024 t=2 p=1 salt={salt}\n"),
            "below the floor",
        ),
        (
            format!("argon2id v=19 m=19456 t=1 p=1 salt={salt}\n"),
            "below the floor",
        ),
        (
            format!("argon2id v=19 m=19456 t=2 p=0 salt={salt}\n"),
            "below the floor",
        ),
        (
            format!("argon2id v=19 m=99999999 t=2 p=1 salt={salt}\n"),
            "beyond the maximum",
        ),
        (
            format!("argon2id v=19 m=19456 t=9999 p=1 salt={salt}\n"),
            "beyond the maximum",
        ),
        (
            format!("argon2i v=19 m=19456 t=2 p=1 salt={salt}\n"),
            "only argon2id",
        ),
        (
            format!("argon2id v=16 m=19456 t=2 p=1 salt={salt}\n"),
            "only argon2id",
        ),
        (
            format!("argon2id v=19 m=+19456 t=2 p=1 salt={salt}\n"),
            "bad m=",
        ),
        (
            format!("argon2id v=19 m=19456 t=2 p=1 salt={salt} extra\n"),
            "expected",
        ),
        (
            "argon2id v=19 m=19456 t=2 p=1 salt=abcd\n".into(),
            "salt must be",
        ),
        (
            "argon2id v=19 m=19456 t=2 p=1 salt=zz\n".into(),
            "salt must be",
        ),
        (
            "argon2id v=19 m=19456 t=2 p=1 salt=\0\n".into(),
            "salt must be",
        ),
        (String::new(), "expected"),
        ("\u{feff}".into(), "expected"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = passphrase_config("MILAGRO_TEST_KS_HOSTILE", "correct horse battery");
        fs::write(dir.path().join(KDF_FILE), &text).unwrap();
        let err = FileKeystore::open(dir.path(), &config).err().expect(&text);
        let message = err.to_string();
        assert!(
            matches!(err, KeystoreError::Invalid(_)) && message.contains(why),
            "{text:?}: {message}"
        );
        assert!(!message.contains('\n'), "{message}");
        assert!(!message.contains("correct horse"), "{message}");
    }
    // New keystores are refused parameters below the floor.
    let dir = tempfile::tempdir().unwrap();
    let config = passphrase_config("MILAGRO_TEST_KS_HOSTILE", "correct horse battery");
    let weak = KdfParams {
        m_kib: 4096,
        t: 1,
        p: 1,
    };
    assert!(matches!(
        FileKeystore::open_with(dir.path(), &config, weak),
        Err(KeystoreError::Invalid(_))
    ));
    assert!(!dir.path().join(KDF_FILE).exists());
}

/// The unlock time of a new passphrase keystore at the default
/// parameters, printed for the record (`--nocapture`).
#[test]
fn default_kdf_is_at_least_owasps_minimum_and_unlock_is_timed() {
    check_kdf(DEFAULT_KDF).unwrap();
    const { assert!(DEFAULT_KDF.m_kib >= 19 * 1024 && DEFAULT_KDF.t >= 2) };
    let dir = tempfile::tempdir().unwrap();
    let config = passphrase_config("MILAGRO_TEST_KS_TIMED", "correct horse battery");
    FileKeystore::open(dir.path(), &config).unwrap();
    let started = std::time::Instant::now();
    FileKeystore::open(dir.path(), &config).unwrap();
    println!(
        "keystore unlock, Argon2id m={} KiB t={} p={}: {:?}",
        DEFAULT_KDF.m_kib,
        DEFAULT_KDF.t,
        DEFAULT_KDF.p,
        started.elapsed()
    );
}

#[test]
fn concurrent_writes_of_one_label_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let ks = Arc::new(open(dir.path()));
    let threads = 8;
    let rounds = 25;
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let writers: Vec<_> = (0..threads)
        .map(|t| {
            let (ks, barrier) = (Arc::clone(&ks), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for r in 0..rounds {
                    let value = format!("[{t}:{r}]").repeat(200);
                    ks.put_secret("shared", value.as_bytes())
                        .unwrap_or_else(|e| panic!("write {t}/{r} failed: {e}"));
                    let read = ks.get_secret("shared").unwrap().unwrap();
                    let read = String::from_utf8(read.to_vec()).unwrap();
                    // Whatever is read is one whole value somebody wrote.
                    let unit = &read[..=read.find(']').expect("a whole value")];
                    assert_eq!(read, unit.repeat(200), "torn value");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("no write failed or tore");
    }
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Generating one key pair from many threads at once makes one key.
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let generators: Vec<_> = (0..threads)
        .map(|_| {
            let (ks, barrier) = (Arc::clone(&ks), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                ks.generate("node/raced", KeyKind::Secp256k1Signing)
            })
        })
        .collect();
    let results: Vec<_> = generators.into_iter().map(|g| g.join().unwrap()).collect();
    let made: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(made.len(), 1, "exactly one key pair generated");
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(KeystoreError::Exists { .. })))
    );
    let digest = [3u8; 32];
    let sig = ks.sign_prehash("node/raced", &digest).unwrap();
    made[0].verify_prehash(&digest, &sig, "raced").unwrap();
    assert_eq!(ks.public_key("node/raced").unwrap().as_ref(), Some(made[0]));
}
