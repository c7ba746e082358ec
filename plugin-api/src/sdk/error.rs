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

//! The one error type of the safe layer: a stable code and a message.
//!
//! Handlers return it to produce a JSON error response; host facilities
//! return it when they fail. Messages must never contain secret material.

use std::fmt;

use abi_stable::std_types::RString;

use crate::abi::AbiError;

/// Machine-readable error codes, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed (400).
    BadRequest,
    /// The caller did not authenticate (401).
    Unauthorized,
    /// The caller may not do this (403).
    Forbidden,
    /// No such resource (404).
    NotFound,
    /// The route exists but not with this method (405).
    MethodNotAllowed,
    /// The request conflicts with the resource's state (409).
    Conflict,
    /// The body is over the limit (413).
    PayloadTooLarge,
    /// The request is well-formed but does not verify or fit (422).
    Unprocessable,
    /// The resource is locked (e.g. an account blocked after failed logins).
    Locked,
    /// The caller sent too many requests; retry later.
    TooManyRequests,
    /// A fault on this side, not the caller's (500).
    Internal,
    /// A facility or dependency is not there (not provided, or down).
    Unavailable,
    /// Something did not answer in time (504).
    Timeout,
}

impl ErrorCode {
    const ALL: [ErrorCode; 13] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Unprocessable,
        ErrorCode::Locked,
        ErrorCode::TooManyRequests,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
    ];

    /// The code as it appears in error bodies, e.g. `not_found`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unprocessable => "unprocessable",
            ErrorCode::Locked => "locked",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
        }
    }

    /// The HTTP status of a response with this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Unprocessable => 422,
            ErrorCode::Locked => 423,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 504,
        }
    }

    /// Parses a code; unknown codes (from a newer peer) read as `Internal`.
    pub fn parse(code: &str) -> ErrorCode {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == code)
            .unwrap_or(ErrorCode::Internal)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// What kind of failure, and so the HTTP status.
    pub code: ErrorCode,
    /// What went wrong, for people; never secret material.
    pub message: String,
}

impl Error {
    /// An error with any code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// A malformed request (400).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// The caller may not do this (403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// No such resource (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// A conflict with the resource's state (409).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// Well-formed but does not verify or fit (422).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unprocessable, message)
    }

    /// A fault on this side (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// A facility or dependency is not there (503).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// Something did not answer in time (504).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Timeout, message)
    }

    /// The JSON body of an error response: `{"error":{"code":..,"message":..}}`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "error": { "code": self.code.as_str(), "message": self.message }
        }))
        .expect("a JSON object of two strings always serialises")
    }
}

impl From<Error> for AbiError {
    fn from(e: Error) -> Self {
        AbiError {
            code: RString::from(e.code.as_str()),
            message: RString::from(e.message),
        }
    }
}

impl From<AbiError> for Error {
    fn from(e: AbiError) -> Self {
        Error {
            code: ErrorCode::parse(e.code.as_str()),
            message: e.message.into_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_text() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), code);
        }
        assert_eq!(ErrorCode::parse("from_the_future"), ErrorCode::Internal);
    }

    #[test]
    fn error_json_shape() {
        let body = Error::not_found("no such order").to_json();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "no such order");
    }
}
