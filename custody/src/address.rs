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

//! Wallet addresses of a secp256k1 public key and WIF export of a secret key.
//!
//! - Bitcoin P2WPKH: bech32 (BIP-173) segwit v0 program HASH160(compressed key),
//!   HRP `bc` (mainnet) or `tb` (testnet);
//! - Bitcoin P2PKH: Base58Check of version byte 0x00 (mainnet) or 0x6f
//!   (testnet) || HASH160(compressed key);
//! - Ethereum: the last 20 bytes of keccak256(uncompressed key without the
//!   0x04 prefix), written with the EIP-55 mixed-case checksum;
//! - Bitcoin P2TR (Taproot, key path only): [`crate::taproot`];
//! - WIF: Base58Check of 0x80 (mainnet) or 0xef (testnet) || key || 0x01
//!   (compressed-key flag).

use k256::PublicKey;
use ripemd::Ripemd160;
use sha2::{Digest, Sha256};
use sha3::Keccak256;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{self, SecretScalar};
use crate::messages::Coin;
use crate::{Result, taproot};

/// Bitcoin network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// Bitcoin mainnet.
    Mainnet,
    /// Bitcoin testnet (also signet/regtest P2PKH and WIF prefixes).
    Testnet,
}

impl Network {
    fn p2pkh_version(self) -> u8 {
        match self {
            Network::Mainnet => 0x00,
            Network::Testnet => 0x6f,
        }
    }

    fn wif_version(self) -> u8 {
        match self {
            Network::Mainnet => 0x80,
            Network::Testnet => 0xef,
        }
    }

    fn hrp(self) -> bech32::Hrp {
        match self {
            Network::Mainnet => bech32::hrp::BC,
            Network::Testnet => bech32::hrp::TB,
        }
    }
}

/// RIPEMD-160(SHA-256(data)).
pub fn hash160(data: &[u8]) -> [u8; 20] {
    let sha = Sha256::digest(data);
    Ripemd160::digest(sha).into()
}

/// Bitcoin P2WPKH (bech32, segwit v0) address of the compressed key.
pub fn p2wpkh(key: &PublicKey, network: Network) -> String {
    let program = hash160(&keys::encode_public_key(key));
    bech32::segwit::encode_v0(network.hrp(), &program)
        .expect("a 20-byte v0 program is always encodable")
}

/// Bitcoin P2TR (Taproot, key path only): bech32m (BIP-350) segwit v1
/// program x(Q), Q the BIP86 output key of `key` ([`taproot::output_key`]).
pub fn p2tr(key: &PublicKey, network: Network) -> Result<String> {
    let q = taproot::output_key(key)?;
    Ok(bech32::segwit::encode_v1(network.hrp(), &q)
        .expect("a 32-byte v1 program is always encodable"))
}

/// Bitcoin P2PKH (Base58Check) address of the compressed key.
pub fn p2pkh(key: &PublicKey, network: Network) -> String {
    let h = hash160(&keys::encode_public_key(key));
    bs58::encode(h)
        .with_check_version(network.p2pkh_version())
        .into_string()
}

/// The 20-byte Ethereum address of a key: keccak256(X || Y)[12..].
pub fn eth_address_bytes(key: &PublicKey) -> [u8; 20] {
    let unc = keys::encode_public_key_uncompressed(key);
    let digest = Keccak256::digest(&unc[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&digest[12..]);
    out
}

/// EIP-55 mixed-case checksum encoding (`0x` + 40 hex digits) of 20 bytes.
pub fn eip55(address: &[u8; 20]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let lower: Vec<u8> = address
        .iter()
        .flat_map(|b| [HEX[(b >> 4) as usize], HEX[(b & 0x0f) as usize]])
        .collect();
    let hash = Keccak256::digest(&lower);
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, &ch) in lower.iter().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if ch.is_ascii_alphabetic() && nibble >= 8 {
            out.push(ch.to_ascii_uppercase() as char);
        } else {
            out.push(ch as char);
        }
    }
    out
}

/// Ethereum address of a key with the EIP-55 checksum.
pub fn eth_address(key: &PublicKey) -> String {
    eip55(&eth_address_bytes(key))
}

/// Wallet Import Format of a secret key (compressed-key flag set).
///
/// The returned string is zeroized on drop; the intermediate buffers of the
/// Base58 encoder are not under our control.
pub fn wif(secret: &SecretScalar, network: Network) -> Zeroizing<String> {
    let mut payload = Zeroizing::new([0u8; 34]);
    payload[0] = network.wif_version();
    payload[1..33].copy_from_slice(&*secret.to_bytes());
    payload[33] = 0x01;
    let mut out = Zeroizing::new(String::new());
    let mut encoded = bs58::encode(&payload[..]).with_check().into_string();
    out.push_str(&encoded);
    encoded.zeroize();
    out
}

impl Coin {
    /// The Bitcoin network of this coin, `None` for Ethereum.
    pub fn network(self) -> Option<Network> {
        match self {
            Coin::Btc | Coin::BtcTaproot => Some(Network::Mainnet),
            Coin::BtcTestnet | Coin::BtcTestnetTaproot => Some(Network::Testnet),
            Coin::Eth => None,
        }
    }

    /// The default address of a wallet key: P2WPKH for Bitcoin, BIP86
    /// P2TR for Bitcoin Taproot, EIP-55 for Ethereum. Fails only where the
    /// key has no taproot tweak (probability about 2^-128).
    pub fn address(self, key: &PublicKey) -> Result<String> {
        match self.network() {
            Some(net) if self.is_taproot() => p2tr(key, net),
            Some(net) => Ok(p2wpkh(key, net)),
            None => Ok(eth_address(key)),
        }
    }

    /// The legacy (P2PKH) address for Bitcoin; `None` for Ethereum and
    /// Taproot (a P2PKH of the internal key would be another output).
    pub fn legacy_address(self, key: &PublicKey) -> Option<String> {
        match self.network() {
            Some(net) if !self.is_taproot() => Some(p2pkh(key, net)),
            _ => None,
        }
    }

    /// WIF of the wallet secret for Bitcoin; `None` for Ethereum. For
    /// Taproot it is the internal key: import it as `tr(<wif>)`, which
    /// applies the BIP86 tweak.
    pub fn wif(self, secret: &SecretScalar) -> Option<Zeroizing<String>> {
        self.network().map(|net| wif(secret, net))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(n: u8) -> SecretScalar {
        let mut b = [0u8; 32];
        b[31] = n;
        SecretScalar::from_bytes(&b).unwrap()
    }

    #[test]
    fn bip173_p2wpkh_vector() {
        // BIP-173 "Examples": key 0279BE66...1798 -> bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4
        // (and tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx on testnet).
        let pk = keys::decode_public_key(
            &hex::decode("0279BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(pk, key_of(1).public_key());
        assert_eq!(
            hex::encode(hash160(&keys::encode_public_key(&pk))),
            "751e76e8199196d454941c45d1b3a323f1433bd6"
        );
        assert_eq!(
            p2wpkh(&pk, Network::Mainnet),
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
        );
        assert_eq!(
            p2wpkh(&pk, Network::Testnet),
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
        );
    }

    #[test]
    fn private_key_one_p2pkh_and_wif() {
        let k = key_of(1);
        let pk = k.public_key();
        assert_eq!(
            p2pkh(&pk, Network::Mainnet),
            "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"
        );
        assert_eq!(
            p2pkh(&pk, Network::Testnet),
            "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r"
        );
        // The compressed-key WIF of private key 1 (e.g. the bitcoinjs `wif`
        // README: wif.encode(128, 0x00..01, true)).
        assert_eq!(
            &*wif(&k, Network::Mainnet),
            "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn"
        );
        assert_eq!(
            &*wif(&k, Network::Testnet),
            "cMahea7zqjxrtgAbB7LSGbcQUr1uX1ojuat9jZodMN87JcbXMTcA"
        );
    }

    #[test]
    fn eip55_vectors() {
        // The all-caps / all-lower / mixed examples of EIP-55.
        for v in [
            "0x52908400098527886E0F7030069857D2E4169EE7",
            "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
            "0xde709f2102306220921060314715629080e2fb77",
            "0x27b1fdb04752bbc536007a920d24acb045561c26",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
            "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045",
        ] {
            let mut bytes = [0u8; 20];
            bytes.copy_from_slice(&hex::decode(&v[2..]).unwrap());
            assert_eq!(eip55(&bytes), v);
        }
    }

    #[test]
    fn eth_address_of_key_one() {
        // Private key 1: 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf.
        assert_eq!(
            eth_address(&key_of(1).public_key()),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
    }

    #[test]
    fn bip86_addresses() {
        for (internal, _, address) in taproot::tests::BIP86 {
            let key = taproot::tests::from_x(internal);
            assert_eq!(p2tr(&key, Network::Mainnet).unwrap(), address);
            assert!(p2tr(&key, Network::Testnet).unwrap().starts_with("tb1p"));
        }
    }

    #[test]
    fn coin_dispatch() {
        let pk = key_of(1).public_key();
        assert!(Coin::Btc.address(&pk).unwrap().starts_with("bc1q"));
        assert!(Coin::BtcTestnet.address(&pk).unwrap().starts_with("tb1q"));
        assert!(Coin::Eth.address(&pk).unwrap().starts_with("0x"));
        assert!(Coin::BtcTaproot.address(&pk).unwrap().starts_with("bc1p"));
        assert!(
            Coin::BtcTestnetTaproot
                .address(&pk)
                .unwrap()
                .starts_with("tb1p")
        );
        assert_eq!(Coin::BtcTaproot.legacy_address(&pk), None);
        assert!(Coin::BtcTaproot.wif(&key_of(1)).is_some());
        assert_eq!(Coin::Eth.legacy_address(&pk), None);
        assert!(Coin::Eth.wif(&key_of(1)).is_none());
        assert_eq!(
            Coin::Btc.legacy_address(&pk).as_deref(),
            Some("1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH")
        );
    }
}
