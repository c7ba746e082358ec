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

//! The M-Pin client: the device token and the two passes of a login.
//!
//! A device keeps the token `T = C - pin*H(id)`, `C` the combined client
//! secret; the token alone does not authenticate. Login (2-pass M-Pin):
//!
//! 1. [`pass1`]: a random `x`, `U = x*H(id)`, sent with the ID.
//! 2. The server answers a random `y`.
//! 3. [`pass2`]: `V = -(x+y)*(T + pin*H(id))`, which is `-(x+y)*C` when the
//!    PIN is right; the server checks it with [`crate::server::verify_login`].

use blstrs::{G1Affine, G1Projective, Scalar};
use group::prime::PrimeCurveAffine;
use zeroize::Zeroizing;

use crate::{DecodeError, Secret, g1_from_bytes, g1_from_hex, hash_id, random_scalar};

/// A PIN as a scalar.
fn pin_scalar(pin: u32) -> Scalar {
    Scalar::from(u64::from(pin))
}

/// A device's M-Pin token `T = C - pin*H(id)`. Zeroized on drop; its
/// `Debug` is redacted.
pub struct Token(Secret<G1Affine>);

impl Clone for Token {
    fn clone(&self) -> Token {
        Token(Secret::new(*self.0))
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        *self.0 == *other.0
    }
}

impl Eq for Token {}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// `T = C - pin*H(mpin_id)` from the combined client secret `C`.
    pub fn from_client_secret(client_secret: &G1Affine, mpin_id: &[u8], pin: u32) -> Token {
        let h = G1Projective::from(hash_id(mpin_id));
        Token(Secret::new(G1Affine::from(
            G1Projective::from(client_secret) - h * pin_scalar(pin),
        )))
    }

    /// The compressed point, 48 bytes. May be the identity (for one PIN in
    /// 2^255, not worth refusing), which [`Token::from_bytes`] accepts.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 48]> {
        Zeroizing::new(self.0.to_compressed())
    }

    /// Reads [`Token::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Token, DecodeError> {
        match g1_from_bytes(bytes) {
            Ok(p) => Ok(Token(Secret::new(p))),
            Err(DecodeError::Identity) => Ok(Token(Secret::new(G1Affine::identity()))),
            Err(e) => Err(e),
        }
    }

    /// [`Token::to_bytes`] as hex.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.to_bytes().as_slice()))
    }

    /// Reads [`Token::to_hex`].
    pub fn from_hex(s: &str) -> Result<Token, DecodeError> {
        match g1_from_hex(s) {
            Ok(p) => Ok(Token(Secret::new(p))),
            Err(DecodeError::Identity) => Ok(Token(Secret::new(G1Affine::identity()))),
            Err(e) => Err(e),
        }
    }
}

/// Pass 1: a fresh random `x` (keep it for [`pass2`], then drop it) and
/// `U = x*H(mpin_id)` to send.
pub fn pass1(mpin_id: &[u8]) -> Result<(Secret<Scalar>, G1Affine), getrandom::Error> {
    let x = Secret::new(random_scalar()?);
    let u = G1Affine::from(G1Projective::from(hash_id(mpin_id)) * *x);
    Ok((x, u))
}

/// Pass 2: `V = -(x+y)*(T + pin*H(mpin_id))`, with `y` the server's
/// challenge.
pub fn pass2(x: &Scalar, y: &Scalar, token: &Token, pin: u32, mpin_id: &[u8]) -> G1Affine {
    let h = G1Projective::from(hash_id(mpin_id));
    let c = Secret::new(G1Affine::from(
        G1Projective::from(*token.0) + h * pin_scalar(pin),
    ));
    let xy = Secret::new(-(x + y));
    G1Affine::from(*c * *xy)
}
