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

//! API abuse against an all-roles node (issue 9): missing and wrong tokens,
//! routes that do not exist, path traversal in references, huge and deeply
//! nested JSON, invalid UTF-8, wrong methods. Every answer is a 4xx with a
//! JSON error, never a 5xx, and the node stays healthy.

use milagro_tests::{
    Node,
    custody::{ALL_ROLES, node_config},
    json, request,
};

/// Sends only the head of a POST announcing `length` bytes; returns the
/// response head.
fn huge_request(node: &Node, bearer: &str, length: usize) -> String {
    use std::io::{Read, Write};
    let address = node
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /v1/custody/orders HTTP/1.1\r\nHost: x\r\nAuthorization: {bearer}\r\ncontent-type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    .unwrap();
    let mut answer = vec![0u8; 512];
    let n = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

fn assert_4xx(what: &str, r: &(u16, String)) {
    assert!((400..500).contains(&r.0), "{what}: {} {}", r.0, r.1);
    let v: serde_json::Value =
        serde_json::from_str(&r.1).unwrap_or_else(|_| panic!("{what}: not a JSON error: {}", r.1));
    assert!(
        v["error"]["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{what}: {}",
        r.1
    );
}

#[test]
fn abusive_requests_get_4xx_and_never_5xx() {
    let node = Node::start(node_config("abuse", &ALL_ROLES, &[], 5_000));
    let token = node.token();
    let bearer = format!("Bearer {token}");
    let post = |path: &str, body: &[u8]| {
        request(
            ureq::post(&node.url(path))
                .set("Authorization", &bearer)
                .set("content-type", "application/json"),
            Some(body),
        )
    };
    let get = |path: &str| {
        request(
            ureq::get(&node.url(path)).set("Authorization", &bearer),
            None,
        )
    };
    let mut cases = 0;

    // No token, a wrong token, a token without the scheme, on every plugin.
    for path in [
        "/v1/custody/orders",
        "/v1/fiduciary/shares",
        "/v1/beneficiary/wallets",
        "/v1/beneficiary/wallets/x",
    ] {
        assert_4xx(path, &node.get(path));
        let wrong = request(
            ureq::get(&node.url(path)).set("Authorization", "Bearer 00"),
            None,
        );
        assert_4xx(path, &wrong);
        let bare = request(
            ureq::get(&node.url(path)).set("Authorization", &token),
            None,
        );
        assert_4xx(path, &bare);
        cases += 3;
    }

    // Routes that do not exist, other mounts, wrong methods.
    for (method, path) in [
        ("GET", "/v1/custody"),
        ("GET", "/v1/custody/orders/a/b/c"),
        ("DELETE", "/v1/custody/orders"),
        ("PUT", "/v1/fiduciary/shares"),
        ("GET", "/v1/nothing/here"),
        ("GET", "/v1/custody/orders/a/redeem"),
    ] {
        let r = request(
            ureq::request(method, &node.url(path)).set("Authorization", &bearer),
            None,
        );
        assert_4xx(&format!("{method} {path}"), &r);
        cases += 1;
    }

    // Path traversal and odd references.
    for reference in [
        "..",
        "..%2f..%2fetc%2fpasswd",
        "%2e%2e",
        "a%00b",
        "%ff%fe",
        "x%20y",
        ".hidden",
        &"r".repeat(300),
    ] {
        assert_4xx(reference, &get(&format!("/v1/custody/orders/{reference}")));
        assert_4xx(
            reference,
            &get(&format!("/v1/beneficiary/wallets/{reference}")),
        );
        assert_4xx(
            reference,
            &post(&format!("/v1/custody/orders/{reference}/redeem"), b""),
        );
        cases += 3;
    }

    // Bodies: huge, deeply nested, invalid UTF-8, wrong types, not JSON.
    let huge = format!(
        "{{\"fiduciaries\": [\"{}\"], \"coin\": \"btc\"}}",
        "a".repeat(4 * 1024 * 1024)
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let nested_object = format!(
        "{{\"fiduciaries\": {}1{}, \"coin\": \"btc\"}}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    // A huge body is refused from its Content-Length, before it is read
    // (the server answers 413 and closes; the client may still be writing).
    let huge_answer = huge_request(&node, &bearer, huge.len());
    assert!(huge_answer.starts_with("HTTP/1.1 413"), "{huge_answer}");
    cases += 1;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("deep", deep.into_bytes()),
        ("nested", nested_object.into_bytes()),
        (
            "invalid utf-8",
            b"{\"coin\": \"\xff\xfe\", \"fiduciaries\": []}".to_vec(),
        ),
        ("not json", b"fiduciaries=1".to_vec()),
        ("empty", Vec::new()),
        ("array", b"[]".to_vec()),
        ("null", b"null".to_vec()),
        (
            "wrong types",
            br#"{"fiduciaries": "x", "coin": 5}"#.to_vec(),
        ),
        (
            "threshold overflow",
            br#"{"fiduciaries": ["x"], "coin": "btc", "threshold": 99999999999999999999}"#.to_vec(),
        ),
    ];
    for (what, body) in &bodies {
        assert_4xx(what, &post("/v1/custody/orders", body));
        cases += 1;
    }
    for (what, body) in &bodies[..5] {
        assert_4xx(what, &post("/v1/custody/orders/r/redeem", body));
        cases += 1;
    }
    for query in [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "limit=100000",
        "cursor=%ff",
    ] {
        let r = get(&format!("/v1/custody/orders?{query}"));
        assert!(
            r.0 == 200 || (400..500).contains(&r.0),
            "{query}: {} {}",
            r.0,
            r.1
        );
        cases += 1;
    }

    // Still healthy, nothing recorded.
    assert_eq!(node.get("/v1/status").0, 200);
    assert_eq!(
        json(&get("/v1/custody/orders").1)["orders"],
        serde_json::json!([])
    );
    eprintln!("API abuse: {cases} requests, 0 server errors, node healthy");
}
