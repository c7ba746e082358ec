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

//! Requests and responses for plugin handlers, in plain Rust types.

use abi_stable::std_types::{RString, RVec, Tuple2};
use serde::{Serialize, de::DeserializeOwned};

use super::Error;
use crate::abi::{AbiRequest, AbiResponse};

/// A request routed to one of the plugin's operations.
#[derive(Debug, Clone)]
pub struct Request {
    /// The operation id of the matched [`crate::Route`].
    pub operation: String,
    /// The upper-case HTTP method.
    pub method: String,
    /// The request path as received, including the plugin's mount point.
    pub path: String,
    /// Path parameters captured by the route template (read with [`Request::param`]).
    pub params: Vec<(String, String)>,
    /// The raw query string without `?` (read with [`Request::query_param`]).
    pub query: String,
    /// Request headers, lower-case names (read with [`Request::header`]).
    pub headers: Vec<(String, String)>,
    /// The request body (within the host's size limit).
    pub body: Vec<u8>,
}

impl Request {
    /// A path parameter captured by the route template.
    pub fn param(&self, name: &str) -> Option<&str> {
        find(&self.params, name)
    }

    /// A query parameter, percent-decoded. Repeated names yield the first.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A header (names are lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// Parses the body as JSON into `T`; an error names what is wrong.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            if e.is_data() {
                Error::unprocessable(format!("invalid request body: {e}"))
            } else {
                Error::bad_request(format!("malformed JSON body: {e}"))
            }
        })
    }
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A handler's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Headers to send (name, value).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Result<Response, Error> {
        let body = serde_json::to_vec(value)
            .map_err(|e| Error::internal(format!("response does not serialise: {e}")))?;
        Ok(Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        })
    }

    /// A response with no body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

impl From<Error> for Response {
    fn from(e: Error) -> Self {
        Response {
            status: e.code.http_status(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: e.to_json(),
        }
    }
}

fn pairs_from_abi(pairs: RVec<Tuple2<RString, RString>>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .map(|Tuple2(k, v)| (k.into_string(), v.into_string()))
        .collect()
}

fn pairs_to_abi(pairs: Vec<(String, String)>) -> RVec<Tuple2<RString, RString>> {
    pairs
        .into_iter()
        .map(|(k, v)| Tuple2(RString::from(k), RString::from(v)))
        .collect()
}

impl From<AbiRequest> for Request {
    fn from(r: AbiRequest) -> Self {
        Request {
            operation: r.operation.into_string(),
            method: r.method.into_string(),
            path: r.path.into_string(),
            params: pairs_from_abi(r.params),
            query: r.query.into_string(),
            headers: pairs_from_abi(r.headers),
            body: r.body.into_vec(),
        }
    }
}

impl From<Request> for AbiRequest {
    fn from(r: Request) -> Self {
        AbiRequest {
            operation: r.operation.into(),
            method: r.method.into(),
            path: r.path.into(),
            params: pairs_to_abi(r.params),
            query: r.query.into(),
            headers: pairs_to_abi(r.headers),
            body: r.body.into(),
        }
    }
}

impl From<Response> for AbiResponse {
    fn from(r: Response) -> Self {
        AbiResponse {
            status: r.status,
            headers: pairs_to_abi(r.headers),
            body: r.body.into(),
        }
    }
}

impl From<AbiResponse> for Response {
    fn from(r: AbiResponse) -> Self {
        Response {
            status: r.status,
            headers: pairs_from_abi(r.headers),
            body: r.body.into_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> Request {
        Request {
            operation: "op".into(),
            method: "GET".into(),
            path: "/x".into(),
            params: vec![("reference".into(), "r1".into())],
            query: query.into(),
            headers: vec![],
            body: vec![],
        }
    }

    #[test]
    fn query_params_are_decoded() {
        let r = request("limit=10&cursor=a%2Fb&name=x+y&bad=%zz&trail=%4&limit=11");
        assert_eq!(r.query_param("limit").as_deref(), Some("10"));
        assert_eq!(r.query_param("cursor").as_deref(), Some("a/b"));
        assert_eq!(r.query_param("name").as_deref(), Some("x y"));
        assert_eq!(r.query_param("bad").as_deref(), Some("%zz"));
        assert_eq!(r.query_param("trail").as_deref(), Some("%4"));
        assert_eq!(r.query_param("missing"), None);
        assert_eq!(r.param("reference"), Some("r1"));
    }

    #[test]
    fn json_body_errors_distinguish_syntax_from_shape() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            n: u32,
        }
        let mut r = request("");
        r.body = b"{not json".to_vec();
        assert_eq!(
            r.json::<Body>().unwrap_err().code,
            super::super::ErrorCode::BadRequest
        );
        r.body = br#"{"n": "x"}"#.to_vec();
        assert_eq!(
            r.json::<Body>().unwrap_err().code,
            super::super::ErrorCode::Unprocessable
        );
    }
}
