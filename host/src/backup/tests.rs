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

//! Unit tests of `backup`.

use std::io::{self, Read, Write};

use super::{
    archive::{Records, read_archive, sha256_hex, write_member_header},
    encryption::{SecretString, decrypt, encrypt},
    error::{BackupError, read_error},
    format::{DATABASE, FORMAT, MANIFEST, VERSION},
    manifest::{KeystoreManifest, Manifest, Member},
};
use crate::store::Entry;

fn member(name: &str, data: &[u8]) -> Member {
    Member {
        name: name.into(),
        bytes: data.len() as u64,
        sha256: sha256_hex(data),
    }
}

const ID: &str = "bafyreicl6ujc6ncfktctxxroxognfn7d2fqavvrryoc2lv6m4i6hpbkfti";

fn manifest(members: Vec<Member>) -> Manifest {
    Manifest {
        format: FORMAT.into(),
        version: VERSION,
        node_id: ID.into(),
        node_name: "n".into(),
        created_ms: 1,
        milagro_version: "0".into(),
        identity_chain: vec![ID.into()],
        keystore: KeystoreManifest {
            backend: "file".into(),
            token_must_hold: Vec::new(),
        },
        members,
    }
}

/// The plaintext of an archive with `manifest` and `members` (written
/// as given, so they may disagree with it).
fn plaintext(manifest: &[u8], members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    write_member_header(&mut out, MANIFEST, manifest.len() as u64).unwrap();
    out.extend_from_slice(manifest);
    for (name, data) in members {
        write_member_header(&mut out, name, data.len() as u64).unwrap();
        out.extend_from_slice(data);
    }
    out
}

fn read(bytes: &[u8]) -> Result<Manifest, BackupError> {
    read_archive(bytes, |_, data| {
        io::copy(data, &mut io::sink())
            .map(drop)
            .map_err(|e| read_error("m", e))
    })
}

fn good() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let db = b"\0\0\0\x01k\0\0\0\x01v".to_vec();
    let key = b"entry".to_vec();
    let m = serde_json::to_vec(&manifest(vec![
        member(DATABASE, &db),
        member("keystore/a.entry", &key),
    ]))
    .unwrap();
    (m, db, key)
}

#[test]
fn a_good_archive_reads_and_every_lie_is_refused() {
    let (m, db, key) = good();
    let ok = plaintext(&m, &[(DATABASE, &db), ("keystore/a.entry", &key)]);
    assert_eq!(read(&ok).unwrap().node_id, ID);
    // Records parse back.
    let records: Vec<Entry> = Records {
        input: db.as_slice(),
    }
    .collect::<Result<_, _>>()
    .unwrap();
    assert_eq!(records, vec![(b"k".to_vec(), b"v".to_vec())]);

    let refused = |bytes: Vec<u8>, expect: &str| {
        let e = read(&bytes).unwrap_err().to_string();
        assert!(e.contains(expect), "{expect:?} not in {e:?}");
        assert!(!e.contains('\n'), "one line: {e}");
    };
    // A member altered after the manifest was made.
    refused(
        plaintext(&m, &[(DATABASE, &db), ("keystore/a.entry", b"entrX")]),
        "does not match the manifest (sha256)",
    );
    // Cut anywhere.
    for cut in [1, 10, m.len(), ok.len() - 1] {
        refused(ok[..cut].to_vec(), "truncated");
    }
    // More than the manifest lists.
    let mut longer = ok.clone();
    longer.push(0);
    refused(longer, "data follows the last member");
    // Members swapped or resized.
    refused(
        plaintext(&m, &[("keystore/a.entry", &key), (DATABASE, &db)]),
        "another member is in its place",
    );
    refused(
        plaintext(&m, &[(DATABASE, &db[..5]), ("keystore/a.entry", &key)]),
        "(size)",
    );
    // Another version, another format, a path out of the keystore.
    let mut other = manifest(vec![member(DATABASE, &db)]);
    other.version = 2;
    refused(
        plaintext(&serde_json::to_vec(&other).unwrap(), &[(DATABASE, &db)]),
        "version 2 is not supported",
    );
    let mut other = serde_json::to_value(manifest(vec![member(DATABASE, &db)])).unwrap();
    other["format"] = "tar".into();
    refused(
        plaintext(&serde_json::to_vec(&other).unwrap(), &[(DATABASE, &db)]),
        "not a milagro backup",
    );
    for name in ["keystore/../../etc/passwd", "keystore/.hidden", "other"] {
        let lying = manifest(vec![member(DATABASE, &db), member(name, &key)]);
        refused(
            plaintext(&serde_json::to_vec(&lying).unwrap(), &[(DATABASE, &db)]),
            "is not allowed",
        );
    }
    // A file keystore backup must carry the keystore, a plugin's must not.
    refused(
        plaintext(
            &serde_json::to_vec(&manifest(vec![member(DATABASE, &db)])).unwrap(),
            &[(DATABASE, &db)],
        ),
        "without keystore files",
    );
    // A lying record length inside the database member.
    let bad_db = b"\xff\xff\xff\xff".to_vec();
    let e = Records {
        input: bad_db.as_slice(),
    }
    .next()
    .unwrap()
    .unwrap_err();
    assert!(e.to_string().contains("claims"), "{e}");
}

#[test]
fn age_refuses_a_wrong_passphrase_a_flipped_bit_and_a_cut() {
    let pass = SecretString::from("correct horse battery staple".to_string());
    let mut sealed = Vec::new();
    let mut writer = encrypt(pass.clone(), &mut sealed).unwrap();
    writer.write_all(&[7u8; 100_000]).unwrap();
    writer.finish().unwrap();
    let open = |bytes: &[u8], pass: &SecretString| -> Result<Vec<u8>, BackupError> {
        let mut out = Vec::new();
        decrypt(pass, bytes)?
            .read_to_end(&mut out)
            .map_err(|e| read_error("the data", e))?;
        Ok(out)
    };
    assert_eq!(open(&sealed, &pass).unwrap().len(), 100_000);
    let wrong = SecretString::from("incorrect horse battery staple".to_string());
    assert!(matches!(
        open(&sealed, &wrong),
        Err(BackupError::WrongPassphrase)
    ));
    let mut flipped = sealed.clone();
    let at = flipped.len() - 70_000;
    flipped[at] ^= 1;
    assert!(matches!(
        open(&flipped, &pass),
        Err(BackupError::Damaged(_))
    ));
    // A cut inside a chunk fails that chunk's tag; at a chunk boundary
    // the missing last-chunk flag says it.
    for cut in [100, sealed.len() - 65_536 - 300] {
        assert!(matches!(
            open(&sealed[..sealed.len() - cut], &pass),
            Err(BackupError::Truncated(_) | BackupError::Damaged(_))
        ));
    }
    assert!(matches!(
        open(
            &[b"PK\x03\x04 not age\n".as_slice(), &[0u8; 200]].concat(),
            &pass
        ),
        Err(BackupError::NotAnArchive(_))
    ));
}
