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

//! Identity chains (issue 18, part 1), end to end with real `milagro`
//! processes: a fiduciary and the beneficiary rotate their identities
//! between a custody order and its redemption and the wallet is still
//! released (its key checked independently); a revoked key is refused after
//! its revocation; and the hostile inputs of the new `identity/rotated` and
//! `identity/revoked` envelopes are refused with their reasons.

use std::{
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use ipld_core::ipld::Ipld;
use milagro::keystore::{Keystore, KeystoreConfig, KeystoreSigner, file::FileKeystore};
use milagro_proto::{
    DecapsulationKey, EcdhKey, EnvelopeDraft, IdentityDraft, LocalEcdhKey, LocalSigner,
    REVOKED_KIND, ROTATED_KIND, Revocation, Rotated, Signer, VerifiedIdentity, seal,
};
use milagro_tests::{
    Node, NodeConfig, PluginEntry, counter,
    craft::{
        Party, deliver, encode, envelope, fetch_identity, note, now_ms, party, publish, to_map,
    },
    custody::{Role, order_ok, peers, redeem, restartable_node_config, wait_complete, wait_wallet},
    json, plugin_library,
    wallet::check_wallets,
};

const REPLY_TIMEOUT_MS: u64 = 20_000;
const WAIT: Duration = Duration::from_secs(60);

/// A party rotated from `from`: new keys, a document linked to `from`'s and
/// signed by both keys.
fn rotated(from: &Party, name: &str) -> Party {
    let signer = LocalSigner::generate().unwrap();
    let draft = IdentityDraft::new(
        name,
        from.doc.created_ms() + 1,
        signer.public_key(),
        LocalEcdhKey::generate().unwrap().public_key(),
        DecapsulationKey::generate().unwrap().public_key(),
    );
    let doc = draft
        .sign_rotation(&signer, &from.doc, &from.signer)
        .unwrap();
    Party { signer, doc }
}

fn accepted(response: (u16, String)) {
    assert!(
        (200..300).contains(&response.0),
        "expected acceptance, got {}: {}",
        response.0,
        response.1
    );
}

fn refused(response: (u16, String), why: &str) {
    assert_eq!(
        response.0, 422,
        "expected a refusal ({why}): {}",
        response.1
    );
    assert!(
        response.1.contains(why),
        "the refusal names {why:?}: {}",
        response.1
    );
}

/// What `node` knows of `id`'s chain (`GET /v1/identity/{id}`).
fn chain_view(node: &Node, id: &str) -> serde_json::Value {
    let (status, body) = node.get(&format!("/v1/identity/{id}"));
    assert_eq!(status, 200, "{body}");
    json(&body)["chain"].clone()
}

fn rotated_body(previous: &Party, current: &Party) -> Vec<u8> {
    Rotated {
        previous: *previous.doc.id(),
        current: *current.doc.id(),
    }
    .encode()
    .unwrap()
}

fn revocation(by: &Party, revoked: &VerifiedIdentity, time_ms: u64) -> Vec<u8> {
    Revocation::sign(&by.signer, &by.doc, revoked.id(), time_ms)
        .unwrap()
        .encode()
        .unwrap()
}

fn probe() -> PluginEntry {
    PluginEntry::new(
        "probe",
        &plugin_library("milagro-test-probe"),
        "{ label = \"p\", consumes = [\"test/note\"] }",
    )
}

#[test]
fn rotation_announcements_and_revocations_are_checked_and_a_revoked_key_is_refused() {
    let node = Node::start(
        NodeConfig::new("chain")
            .section("[ipfs]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n")
            .plugin(probe()),
    );
    let me = fetch_identity(&node, &node.id());
    let a1 = party("a1");
    let a2 = rotated(&a1, "a2");
    let stranger = party("stranger");
    // Another successor of a1, as a thief of a1's key can make.
    let fork = rotated(&a1, "fork");
    for p in [&a1, &a2, &stranger, &fork] {
        publish(&node, p.doc.block().bytes());
    }
    accepted(deliver(
        &node,
        &note(&a1, &[&me], "hello", None, now_ms()),
        None,
    ));

    // Rotation announcements that do not hold.
    let announce = |from: &Party, body: &[u8]| {
        deliver(&node, &envelope(from, &me, ROTATED_KIND, &[], body), None)
    };
    refused(
        announce(&stranger, &rotated_body(&a1, &stranger)),
        "does not chain to the announced ID",
    );
    refused(
        announce(&stranger, &rotated_body(&a1, &a2)),
        "but the envelope is signed by",
    );
    refused(announce(&a2, b"not cbor"), "envelope refused");
    refused(announce(&a2, &[0xa0; 600]), "exceeds limit 512");
    refused(announce(&a2, &rotated_body(&a2, &a2)), "must differ");
    assert!(chain_view(&node, &a1.doc.id().to_string())["newest"].is_null());
    // The genuine one: the old ID now points at the new.
    accepted(announce(&a2, &rotated_body(&a1, &a2)));
    assert_eq!(
        chain_view(&node, &a1.doc.id().to_string())["newest"],
        a2.doc.id().to_string()
    );
    // A second branch does not take the pointer over.
    accepted(announce(&fork, &rotated_body(&a1, &fork)));
    assert_eq!(
        chain_view(&node, &a1.doc.id().to_string())["newest"],
        a2.doc.id().to_string()
    );

    // Revocations that do not hold.
    let revoke = |from: &Party, body: &[u8]| {
        deliver(&node, &envelope(from, &me, REVOKED_KIND, &[], body), None)
    };
    let now = now_ms();
    refused(
        revoke(&stranger, &revocation(&stranger, &a1.doc, now)),
        "which is not a later identity of its chain",
    );
    // The predecessor revoking its successor.
    refused(
        revoke(&a1, &revocation(&a1, &a2.doc, now)),
        "which is not a later identity of its chain",
    );
    // Signed by the revoked key itself (the signing API refuses to make one).
    let mut own = to_map(&revocation(&a2, &a1.doc, now));
    let by = own["by"].clone();
    own.insert("revoked".into(), by);
    refused(revoke(&a2, &encode(&own)), "cannot revoke itself");
    // Re-dated after signing.
    let mut redated = to_map(&revocation(&a2, &a1.doc, now));
    redated.insert("time".into(), Ipld::Integer(0));
    refused(revoke(&a2, &encode(&redated)), "revocation signature");
    refused(revoke(&a2, &[0xa0; 600]), "exceeds limit 512");
    refused(revoke(&a2, b"\x01"), "envelope refused");
    assert!(chain_view(&node, &a1.doc.id().to_string())["revoked"].is_null());

    // The genuine one, relayed by anybody (it is signed by the successor).
    let revoked_at = now_ms();
    accepted(revoke(&stranger, &revocation(&a2, &a1.doc, revoked_at)));
    let view = chain_view(&node, &a1.doc.id().to_string());
    assert_eq!(view["revoked"]["by"], a2.doc.id().to_string(), "{view}");
    assert_eq!(view["revoked"]["time_ms"], revoked_at);

    // The revoked key after its revocation: refused; before it: accepted.
    refused(
        deliver(
            &node,
            &note(&a1, &[&me], "after", None, revoked_at + 2_000),
            None,
        ),
        "was revoked from",
    );
    accepted(deliver(
        &node,
        &note(&a1, &[&me], "before", None, revoked_at - 2_000),
        None,
    ));
    // The successor is not affected.
    accepted(deliver(
        &node,
        &note(&a2, &[&me], "new", None, now_ms()),
        None,
    ));
    // The fork of the revoked document (made with the stolen key, dated
    // before the revocation): refused now.
    refused(
        deliver(&node, &note(&fork, &[&me], "fork", None, now_ms()), None),
        "on another branch than the revoker's",
    );
    assert!(
        counter(&node, "milagro_inbox_refused_total", "reason=\"revoked\"") >= 2,
        "refusals of revoked keys are counted"
    );
    assert!(counter(&node, "milagro_inbox_refused_total", "reason=\"chain\"") >= 9);

    // `milagro identity revoke` on a node that never rotated, or naming an
    // ID not of its chain: refused, nothing signed.
    let mut node = node;
    node.kill();
    let a1_id = a1.doc.id().to_string();
    for (args, why) in [
        (vec!["identity", "revoke"], "never rotated"),
        (
            vec!["identity", "revoke", "--id", &a1_id],
            "is not an earlier ID of this node's chain",
        ),
    ] {
        let out = node.command(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}

/// Stops `node`, runs `milagro identity <args>` on it, and returns stdout.
fn identity_command(node: &mut Node, args: &[&str]) -> String {
    node.kill();
    let out = node.command(&[&["identity"], args].concat());
    assert!(
        out.status.success(),
        "milagro identity {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Waits (bounded) until `node` knows `old`'s chain as `done` says.
fn wait_chain(node: &Node, old: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let view = chain_view(node, old);
        if done(&view) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {view}\n{}", node.log());
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_fiduciary_and_the_beneficiary_rotate_between_order_and_redemption() {
    // The probe plugin (test/note) serves the test IPFS blocks.
    let start = |name: &str, roles: &[Role], bootstrap: &[&Node]| {
        let config = restartable_node_config(name, roles, &peers(bootstrap), REPLY_TIMEOUT_MS)
            .plugin(probe());
        let dir = config.write();
        Node::start_in(dir, &config)
    };
    let mut b = start("beneficiary", &[Role::Beneficiary], &[]);
    let mut f1 = start("fiduciary-1", &[Role::Fiduciary], &[&b]);
    let f2 = start("fiduciary-2", &[Role::Fiduciary], &[&b, &f1]);
    let p = start("principal", &[Role::Principal], &[&b, &f1, &f2]);
    let (b_old, f1_old) = (b.id(), f1.id());
    let fids = vec![f1_old.clone(), f2.id()];

    let reference = "rotated-wallet";
    let order = order_ok(&p, &fids, Some(&b_old), "btc", reference);
    assert_eq!(order["status"], "ready", "{order}");
    wait_wallet(&b, reference, WAIT, |w| w["status"] == "pending");
    // A second wallet, which the beneficiary redeems itself.
    let own_reference = "rotated-wallet-own";
    let own_order = order_ok(&p, &fids, Some(&b_old), "eth", own_reference);
    wait_wallet(&b, own_reference, WAIT, |w| w["status"] == "pending");

    // The fiduciary rotates and revokes its old key; the beneficiary
    // rotates. Each is stopped for it and started again.
    identity_command(&mut f1, &["rotate"]);
    let revoked = json(&identity_command(&mut f1, &["revoke"]));
    assert_eq!(revoked[0]["revoked"], f1_old.as_str(), "{revoked}");
    // The old key, as a thief holding the keystore would have it.
    let keystore: Arc<dyn Keystore> = Arc::new(
        FileKeystore::open(
            &f1.dir.path().join("data/keystore"),
            &KeystoreConfig::default(),
        )
        .unwrap(),
    );
    let stolen = KeystoreSigner::new(keystore, "node/1/signing").unwrap();
    f1.restart();
    identity_command(&mut b, &["rotate"]);
    b.restart();
    let (b_new, f1_new) = (b.id(), f1.id());
    assert_ne!(b_new, b_old);
    assert_ne!(f1_new, f1_old);
    assert_eq!(f1.identity()["previous"], f1_old.as_str());

    // The principal, a counterparty of both, learns the successors and
    // the revocation from their announcements.
    wait_chain(
        &p,
        &f1_old,
        "the principal learns f1's rotation and revocation",
        |v| v["newest"] == f1_new.as_str() && v["revoked"]["by"] == f1_new.as_str(),
    );
    wait_chain(&p, &b_old, "the principal learns b's rotation", |v| {
        v["newest"] == b_new.as_str()
    });

    // Redemption: the principal sends to the fiduciaries as the order names
    // them (f1 under its old ID, delivered to the new); f1 releases to the
    // beneficiary as the order names it; the beneficiary matches f1's new
    // ID to the order's.
    let (status, r) = redeem(&p, reference, None);
    assert_eq!(status, 202, "{r}");
    let w = wait_complete(&b, reference, WAIT);
    assert_eq!(w["address"], order["address"]);
    assert_eq!(w["shares_received"], 2, "{w}");
    let mut checked = w.clone();
    checked["legacy_address"] = order["legacy_address"].clone();
    // The beneficiary, under its new ID, redeems the second wallet; the
    // fiduciaries take it as the order's beneficiary.
    let (status, body) = b.call(
        "POST",
        &format!("/v1/beneficiary/wallets/{own_reference}/redeem"),
        None,
    );
    assert!((200..300).contains(&status), "{status}: {body}");
    let mut own = wait_complete(&b, own_reference, WAIT);
    assert_eq!(own["address"], own_order["address"]);
    own["legacy_address"] = own_order["legacy_address"].clone();
    assert_eq!(check_wallets(&[checked, own]), 2);

    // An envelope signed with f1's revoked key, dated after the
    // revocation: refused by the principal and by f1 itself; dated before
    // it, accepted.
    let old_doc = fetch_identity(&p, &f1_old);
    let revoked_at = revoked[0]["time_ms"].as_u64().unwrap();
    for (node, who) in [(&p, "principal"), (&f1, "f1 itself")] {
        let to = fetch_identity(node, &node.id());
        let forged = signed_by(&stolen, &old_doc, &to, revoked_at + 1_000);
        let response = deliver(node, &forged, None);
        assert_eq!(response.0, 422, "{who}: {}", response.1);
        assert!(
            response.1.contains("was revoked from"),
            "{who}: {}",
            response.1
        );
    }
    let to = fetch_identity(&p, &p.id());
    accepted(deliver(
        &p,
        &signed_by(&stolen, &old_doc, &to, revoked_at - 1_000),
        None,
    ));
}

/// A plaintext `test/note` from `sender` (signed by `signer`) to `to`.
fn signed_by(
    signer: &KeystoreSigner,
    sender: &VerifiedIdentity,
    to: &VerifiedIdentity,
    time_ms: u64,
) -> Vec<u8> {
    let draft = EnvelopeDraft {
        body: Some(b"signed with a revoked key"),
        ..EnvelopeDraft::new("test/note", time_ms)
    };
    seal(signer, sender, &[to], &draft)
        .unwrap()
        .block()
        .bytes()
        .to_vec()
}
