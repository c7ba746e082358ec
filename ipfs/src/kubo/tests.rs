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

//! Unit tests of `kubo`.

use super::*;

const PEER: &str = "12D3KooWGRUVh7hCQ1iWuo8m3xQ8qXN1rq9K3rJ3Uyd3uZ5Yb6nL";

#[test]
fn first_line_braces_and_blank_lines_carry_no_message() {
    assert_eq!(parse_sub_line(b"{}\n"), Ok(None));
    assert_eq!(parse_sub_line(b"{}"), Ok(None));
    assert_eq!(parse_sub_line(b"  \r\n"), Ok(None));
}

#[test]
fn multibase_line_with_a_short_seqno() {
    // js-ipfs: from as a peer ID string, data and seqno as multibase
    // base64url; this seqno has 3 bytes, not 8.
    let line = format!(
        r#"{{"from":"{PEER}","data":"uaGVsbG8gd29ybGQ","seqno":"uAQID","topicIDs":["udGVzdA"]}}"#
    );
    let m = parse_sub_line(line.as_bytes()).unwrap().unwrap();
    assert_eq!(m.from, PEER);
    assert_eq!(m.data, b"hello world");
    assert_eq!(m.seqno, vec![1, 2, 3]);
}

#[test]
fn empty_and_one_byte_seqnos_and_other_multibases() {
    let line = format!(r#"{{"from":"{PEER}","data":"mAP8","seqno":"u","topicIDs":[]}}"#);
    let m = parse_sub_line(line.as_bytes()).unwrap().unwrap();
    assert_eq!(m.data, vec![0x00, 0xff]);
    assert!(m.seqno.is_empty());
    let line = format!(r#"{{"from":"{PEER}","data":"f0001","seqno":"uAA"}}"#);
    let m = parse_sub_line(line.as_bytes()).unwrap().unwrap();
    assert_eq!(m.data, vec![0x00, 0x01]);
    assert_eq!(m.seqno, vec![0]);
}

#[test]
fn legacy_base64_line() {
    // Older APIs: from is the base64 of the peer ID bytes, data and
    // seqno plain padded base64.
    let peer_bytes = multibase::decode(format!("z{PEER}")).unwrap().1;
    let from = base64::engine::general_purpose::STANDARD.encode(&peer_bytes);
    let line = format!(
        r#"{{"from":"{from}","data":"aGVsbG8gd29ybGQ=","seqno":"AQID","topicIDs":["test"]}}"#
    );
    let m = parse_sub_line(line.as_bytes()).unwrap().unwrap();
    assert_eq!(m.from, PEER, "the peer ID is given in its text form");
    assert_eq!(m.data, b"hello world");
    assert_eq!(m.seqno, vec![1, 2, 3]);
}

#[test]
fn legacy_data_starting_with_u_is_not_mistaken_for_multibase() {
    // Standard base64 "uAAA" is 3 bytes; as multibase it would be 2.
    let from = base64::engine::general_purpose::STANDARD
        .encode(multibase::decode(format!("z{PEER}")).unwrap().1);
    let line = format!(r#"{{"from":"{from}","data":"uAAA"}}"#);
    let m = parse_sub_line(line.as_bytes()).unwrap().unwrap();
    assert_eq!(m.data, vec![0xb8, 0x00, 0x00]);
}

#[test]
fn lines_without_from_are_guessed() {
    let m = parse_sub_line(br#"{"data":"uaGk"}"#).unwrap().unwrap();
    assert_eq!(m.data, b"hi");
    assert_eq!(m.from, "");
    let m = parse_sub_line(br#"{"data":"aGk="}"#).unwrap().unwrap();
    assert_eq!(m.data, b"hi");
}

#[test]
fn a_bad_seqno_does_not_lose_the_message() {
    let line = format!(r#"{{"from":"{PEER}","data":"uaGk","seqno":"not multibase!"}}"#);
    let m = parse_sub_line(line.as_bytes()).unwrap().unwrap();
    assert_eq!(m.data, b"hi");
    assert!(m.seqno.is_empty());
}

#[test]
fn garbage_lines_are_errors() {
    assert!(parse_sub_line(b"not json").is_err());
    let line = format!(r#"{{"from":"{PEER}","data":"u!!!"}}"#);
    assert!(parse_sub_line(line.as_bytes()).is_err());
}

#[test]
fn topics_are_multibase_base64url() {
    assert_eq!(encode_topic("test"), "udGVzdA");
    assert_eq!(
        multibase::decode(encode_topic("/milagro/1/inbox/bafy"))
            .unwrap()
            .1,
        b"/milagro/1/inbox/bafy"
    );
}

#[test]
fn api_addresses() {
    assert_eq!(
        normalise_base("http://127.0.0.1:5001").unwrap(),
        "http://127.0.0.1:5001"
    );
    assert_eq!(
        normalise_base("http://127.0.0.1:5001/").unwrap(),
        "http://127.0.0.1:5001"
    );
    assert_eq!(
        normalise_base("http://localhost:5001/api/v0").unwrap(),
        "http://localhost:5001"
    );
    assert_eq!(
        normalise_base("/ip4/127.0.0.1/tcp/5001").unwrap(),
        "http://127.0.0.1:5001"
    );
    assert_eq!(
        normalise_base("/ip6/::1/tcp/5001").unwrap(),
        "http://[::1]:5001"
    );
    for bad in [
        "https://x:5001",
        "127.0.0.1:5001",
        "/ip4/1.2.3.4/udp/5",
        "http://a:b@x:1",
        "http://x:1/other",
    ] {
        assert!(
            matches!(normalise_base(bad), Err(IpfsError::Config(_))),
            "{bad}"
        );
    }
    let e = normalise_base("http://user:secret@x:1")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("secret"), "{e}");
}

#[test]
fn query_values_are_percent_encoded() {
    let c = KuboClient::new("http://127.0.0.1:1").unwrap();
    assert_eq!(
        c.url(
            "swarm/connect",
            &[("arg", "/ip4/127.0.0.1/tcp/4001/p2p/Qm")]
        ),
        "http://127.0.0.1:1/api/v0/swarm/connect?arg=%2Fip4%2F127.0.0.1%2Ftcp%2F4001%2Fp2p%2FQm"
    );
}

#[test]
fn multipart_body_wraps_the_data_once() {
    let (ct, body) = multipart(b"abc\r\n--x");
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with(&format!("--{boundary}\r\n")));
    assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
    assert!(text.contains("\r\n\r\nabc\r\n--x\r\n--"));
}

#[test]
fn error_answers_give_the_node_message() {
    let m = error_message(
        StatusCode::INTERNAL_SERVER_ERROR,
        br#"{"Message":"PublishError.InsufficientPeers","Code":0,"Type":"error"}"#,
    );
    assert!(m.contains("InsufficientPeers"), "{m}");
    assert_eq!(error_message(StatusCode::NOT_FOUND, b""), "404 Not Found");
}

#[test]
fn id_addresses_end_in_the_peer_id() {
    let body = format!(
        r#"{{"ID":"{PEER}","Addresses":["/ip4/127.0.0.1/tcp/4001/p2p/{PEER}","/ip4/127.0.0.1/tcp/4002"]}}"#
    );
    let info = parse_id(body.as_bytes()).unwrap();
    assert_eq!(info.peer_id, PEER);
    assert!(
        info.addresses
            .iter()
            .all(|a| a.ends_with(&format!("/p2p/{PEER}")))
    );
    let info = parse_id(format!(r#"{{"ID":"{PEER}","Addresses":null}}"#).as_bytes()).unwrap();
    assert!(info.addresses.is_empty());
}

#[test]
fn cids_from_the_node_are_parsed_in_any_base() {
    let cid = crate::cid_v1(RAW, b"x");
    let base58 = multibase::encode(multibase::Base::Base58Btc, cid.to_bytes());
    assert_eq!(parse_cid("block/put", &base58).unwrap(), cid);
    assert_eq!(parse_cid("block/put", &cid.to_string()).unwrap(), cid);
    assert!(parse_cid("block/put", "nonsense").is_err());
}

#[tokio::test]
async fn refused_connection_is_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = KuboClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    match c.id().await {
        Err(IpfsError::Unavailable(m)) => assert!(m.contains("cannot connect"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
