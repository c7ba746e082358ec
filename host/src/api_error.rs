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

//! How facility errors become API errors (the code, hence the HTTP status,
//! a plugin or a REST client sees). One place, so the REST routes and the
//! plugin facilities answer alike.

use std::fmt::Display;

use milagro_ipfs::IpfsError;
use milagro_plugin_api::{Error, ErrorCode};
use milagro_proto::Cid;

use crate::{
    identity::IdentityError,
    keystore::KeystoreError,
    store::StoreError,
    transport::{TransportError, inbox::InboxError},
};

pub fn parse_cid(text: &str, what: &str) -> Result<Cid, Error> {
    Cid::try_from(text)
        .map_err(|e| Error::bad_request(format!("{what} {text:?} is not a CID: {e}")))
}

pub fn ipfs(e: IpfsError) -> Error {
    let code = match &e {
        // Backend: the IPFS node failed the operation, e.g. its repo cannot
        // be written (disk full, read-only): nothing was stored.
        // NoSubscribers: the message reached no one; a later try may.
        IpfsError::Unavailable(_) | IpfsError::Backend { .. } | IpfsError::NoSubscribers(_) => {
            ErrorCode::Unavailable
        }
        IpfsError::NotFound(_) => ErrorCode::NotFound,
        IpfsError::Unsupported { .. } => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    };
    Error::new(code, e.to_string())
}

/// A failed resolution of identity `id`.
pub fn identity(id: &dyn Display, e: IdentityError) -> Error {
    match e {
        IdentityError::Ipfs(IpfsError::NotFound(_)) => {
            Error::not_found(format!("identity {id} not found on IPFS"))
        }
        IdentityError::Ipfs(other) => ipfs(other),
        IdentityError::Store(e) => store(e),
        e @ (IdentityError::Invalid { .. }
        | IdentityError::Rotation { .. }
        | IdentityError::ChainTooLong(_)) => Error::unprocessable(e.to_string()),
        other => Error::internal(other.to_string()),
    }
}

pub fn transport(e: TransportError) -> Error {
    match e {
        TransportError::Recipient { .. } => Error::unprocessable(e.to_string()),
        TransportError::Seal(_) => Error::bad_request(e.to_string()),
        TransportError::Ipfs(e) => ipfs(e),
        TransportError::Undelivered(_) => Error::unavailable(e.to_string()),
    }
}

pub fn inbox(e: InboxError) -> Error {
    match e {
        InboxError::Replayed { .. } => Error::conflict(e.to_string()),
        InboxError::OverQuota(_) => Error::new(ErrorCode::TooManyRequests, e.to_string()),
        InboxError::Store(_) | InboxError::Chain(crate::chain::ChainError::Store(_)) => {
            Error::unavailable(e.to_string())
        }
        InboxError::Unavailable(_) => Error::unavailable(e.to_string()),
        InboxError::Invalid(milagro_proto::Error::Oversize { .. }) => {
            Error::new(ErrorCode::PayloadTooLarge, e.to_string())
        }
        _ => Error::unprocessable(e.to_string()),
    }
}

/// A chain question (same party?) that could not be answered: the
/// database failed (503), or an ID does not resolve or verify, or forks
/// from a revoked chain (422).
pub fn chain(e: crate::chain::ChainError) -> Error {
    match e {
        crate::chain::ChainError::Store(e) => store(e),
        e => Error::unprocessable(e.to_string()),
    }
}

/// The database failed (disk full, read-only or failing file system): the
/// write was not applied, the client may retry (503).
pub fn store(e: StoreError) -> Error {
    Error::unavailable(format!("storage failing: {e}"))
}

pub fn keystore(e: KeystoreError) -> Error {
    match e {
        KeystoreError::Missing(label) => {
            Error::not_found(format!("no key or secret labelled {label:?}"))
        }
        e @ (KeystoreError::Exists { .. } | KeystoreError::WrongKind { .. }) => {
            Error::conflict(e.to_string())
        }
        e @ KeystoreError::Invalid(_) => Error::bad_request(e.to_string()),
        e @ KeystoreError::Storage(_) => Error::unavailable(e.to_string()),
        e => Error::internal(e.to_string()),
    }
}
