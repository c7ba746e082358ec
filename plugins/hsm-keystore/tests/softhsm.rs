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

//! The keystore against a real SoftHSM2 token, in process: one SoftHSM
//! installation (config + token dir in a temp dir) per test process, one
//! token per test. Needs Debian's `softhsm2` (scripts/test installs it).
//! The refusals that need a fresh process (wrong PIN, missing token or
//! module, missing mechanism) are in tests/tests/hsm.rs.

use std::{
    path::PathBuf,
    process::Command,
    sync::{Arc, OnceLock},
    time::Instant,
};

use k256::ecdsa::{VerifyingKey, signature::hazmat::PrehashVerifier};
use milagro_plugin_api::{ErrorCode, KeyType, KeystoreBackend};
use milagro_plugin_hsm_keystore::{Config, HsmKeystore};

const PIN: &str = "1234";

fn module() -> PathBuf {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("libsofthsm2.so: apt-get install softhsm2")
}

/// The tokens of this file's tests.
const TOKENS: [&str; 3] = ["keys", "secrets", "concurrent"];

/// This process's SoftHSM, with every token of [`TOKENS`]: SoftHSM reads
/// SOFTHSM2_CONF and lists its tokens once per process, when the module
/// is first initialised.
fn softhsm() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\n",
                dir.path().join("tokens").display()
            ),
        )
        .unwrap();
        // SAFETY: set once, before any thread of this test reads it.
        unsafe {
            std::env::set_var("SOFTHSM2_CONF", &conf);
            std::env::set_var("MILAGRO_TEST_HSM_PIN", PIN);
        }
        for label in TOKENS {
            let out = Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", PIN, "--so-pin", "5678"])
                .output()
                .expect("softhsm2-util: apt-get install softhsm2");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    })
}

/// A keystore config for one of [`TOKENS`].
fn token(label: &str) -> Config {
    softhsm();
    Config {
        module: module(),
        token_label: label.into(),
        pin_env: Some("MILAGRO_TEST_HSM_PIN".into()),
        pin_file: None,
        key_prefix: "test/".into(),
        sessions: 4,
    }
}

fn verify(public: &[u8], digest: &[u8; 32], signature: &[u8; 64]) {
    let key = VerifyingKey::from_sec1_bytes(public).unwrap();
    let sig = k256::ecdsa::Signature::from_slice(signature).unwrap();
    assert_eq!(sig.normalize_s(), sig, "low-S");
    key.verify_prehash(digest, &sig).unwrap();
}

#[test]
fn keys_sign_and_agree_in_the_token_and_are_found_by_label_again() {
    let config = token("keys");
    let ks = HsmKeystore::new(config.clone()).unwrap();
    assert!(ks.describe().contains("\"keys\""), "{}", ks.describe());
    let signing = ks
        .generate("node/1/signing", KeyType::Secp256k1Signing)
        .unwrap();
    let ecdh = ks.generate("node/1/ecdh", KeyType::Secp256k1Ecdh).unwrap();
    let taken = ks
        .generate("node/1/signing", KeyType::Secp256k1Ecdh)
        .unwrap_err();
    assert_eq!(taken.code, ErrorCode::Conflict);

    for i in 0..20u8 {
        let digest = [i; 32];
        verify(
            &signing,
            &digest,
            &ks.sign_prehash("node/1/signing", &digest).unwrap(),
        );
    }
    let peer = k256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    let peer_public = peer.public_key();
    use k256::elliptic_curve::sec1::ToSec1Point;
    let ours = ks
        .ecdh("node/1/ecdh", peer_public.to_sec1_point(true).as_bytes())
        .unwrap();
    let theirs = k256::ecdh::diffie_hellman(
        peer.to_nonzero_scalar(),
        k256::PublicKey::from_sec1_bytes(&ecdh).unwrap().as_affine(),
    );
    assert_eq!(ours.as_slice(), theirs.raw_secret_bytes().as_slice());

    // Wrong kinds, unknown labels, bad input.
    let e = ks.sign_prehash("node/1/ecdh", &[1; 32]).unwrap_err();
    assert_eq!(e.code, ErrorCode::Unprocessable, "{e}");
    let e = ks.sign_prehash("nope", &[1; 32]).unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound, "{e}");
    let e = ks.ecdh("node/1/ecdh", &[5; 33]).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest, "{e}");
    assert!(ks.public_key("nope").unwrap().is_none());

    // A restart: a new keystore finds the keys by label.
    drop(ks);
    let ks = HsmKeystore::new(config).unwrap();
    assert_eq!(ks.public_key("node/1/signing").unwrap().unwrap(), signing);
    assert_eq!(ks.public_key("node/1/ecdh").unwrap().unwrap(), ecdh);
    verify(
        &signing,
        &[9; 32],
        &ks.sign_prehash("node/1/signing", &[9; 32]).unwrap(),
    );
}

#[test]
fn secrets_are_encrypted_in_the_token_and_bound_to_their_labels() {
    let config = token("secrets");
    let ks = HsmKeystore::new(config.clone()).unwrap();
    let secret = b"custody share: 0123456789abcdef0123456789abcdef";
    assert!(ks.get_secret("plugin/f/share").unwrap().is_none());
    ks.put_secret("plugin/f/share", secret).unwrap();
    assert_eq!(
        ks.get_secret("plugin/f/share").unwrap().unwrap().as_slice(),
        secret
    );
    ks.put_secret("plugin/f/share", b"replaced").unwrap();
    assert_eq!(
        ks.get_secret("plugin/f/share").unwrap().unwrap().as_slice(),
        b"replaced"
    );
    ks.put_secret("plugin/f/other", secret).unwrap();

    // A key pair's label is not a secret's, and the other way round.
    ks.generate("k", KeyType::Secp256k1Signing).unwrap();
    assert_eq!(
        ks.put_secret("k", b"x").unwrap_err().code,
        ErrorCode::Unprocessable
    );
    assert_eq!(
        ks.generate("plugin/f/other", KeyType::Secp256k1Signing)
            .unwrap_err()
            .code,
        ErrorCode::Conflict
    );

    drop(ks);
    let ks = HsmKeystore::new(config).unwrap();
    assert_eq!(
        ks.get_secret("plugin/f/other").unwrap().unwrap().as_slice(),
        secret
    );

    // Nothing in the token files is the plaintext.
    let mut pending = vec![softhsm().path().join("tokens")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                let bytes = std::fs::read(entry.path()).unwrap();
                assert!(!bytes.windows(secret.len()).any(|w| w == secret));
            }
        }
    }
}

#[test]
fn concurrent_signers_share_the_session_pool() {
    let ks = Arc::new(HsmKeystore::new(token("concurrent")).unwrap());
    let public = ks.generate("s", KeyType::Secp256k1Signing).unwrap();
    let threads = 16;
    let per_thread = 25;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let ks = Arc::clone(&ks);
            let public = public.clone();
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let digest = [(t * per_thread + i) as u8; 32];
                    verify(&public, &digest, &ks.sign_prehash("s", &digest).unwrap());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let n = threads * per_thread;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "hsm-keystore (SoftHSM2, debug build, {threads} threads): {n} signatures (verified) in {secs:.2}s = {:.0}/s",
        n as f64 / secs
    );
}
