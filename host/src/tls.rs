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

//! TLS (rustls, ring provider) for the REST listener and for the node's
//! outbound HTTPS.
//!
//! The listener's certificate chain and key come from `[http] tls_cert` and
//! `tls_key`; [`ReloadingCert`] holds them behind a lock and is swapped in
//! place on SIGHUP, so a renewed certificate is served to new connections
//! without a restart and without dropping the ones in flight. A reload that
//! fails (a half-written file, a key that does not match) keeps the old pair.
//!
//! Outbound connections trust `[http] tls_ca` when set, else the system's
//! root store, and present the listener's certificate to a server that asks
//! for one. With `[http] inbox_client_ca` the listener asks every client for
//! a certificate and verifies one presented against that CA bundle; the
//! server then lets only verified clients POST to the inbox (other routes
//! do not need one: the operator and the public routes keep their own
//! rules).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use rustls::{
    ClientConfig, RootCertStore, ServerConfig, SignatureScheme,
    client::ResolvesClientCert,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
};
use zeroize::Zeroizing;

/// Why a certificate, key or CA bundle was refused. Names the file, never
/// the key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("certificate {cert} and key {key} do not form a usable pair: {message}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("client CA bundle {path}: {message}")]
    ClientCa { path: PathBuf, message: String },
}

/// The one crypto provider the node uses (ring), never the process default,
/// so another crate enabling a second provider cannot make rustls panic.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
}

/// The certificates of a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            message: format!("not a PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            message: "holds no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    // The parse error may quote bytes of the file: say only what went wrong.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::Pem {
        path: path.to_owned(),
        message: "holds no PKCS#8, PKCS#1 or SEC1 private key in PEM".into(),
    })
}

/// The listener's certificate and key, reloadable in place.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    /// Loads the pair, checking that the key belongs to the certificate.
    pub fn load(cert: &Path, key: &Path) -> Result<ReloadingCert, TlsError> {
        let pair = Self::read_pair(cert, key)?;
        Ok(ReloadingCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(pair)),
        })
    }

    fn read_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
        let chain = load_certs(cert)?;
        let der = load_key(key)?;
        CertifiedKey::from_der(chain, der, &provider()).map_err(|e| TlsError::Pair {
            cert: cert.to_owned(),
            key: key.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads the files again and serves the new pair to new connections;
    /// on error the old pair stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = Arc::new(Self::read_pair(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = pair;
        Ok(())
    }
}

impl ReloadingCert {
    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The same pair, presented when a server asks this node for a client
/// certificate (an inbox with `inbox_client_ca`).
impl ResolvesClientCert for ReloadingCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// What the listener needs to speak TLS.
pub struct ServerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub certs: Arc<ReloadingCert>,
}

impl ServerTls {
    /// TLS 1.2 and 1.3 with the safe defaults, HTTP/2 and HTTP/1.1 by ALPN.
    /// With `client_ca`, a client certificate is asked for and, when
    /// presented, must chain to `client_ca` (else the handshake fails);
    /// clients without one still connect.
    pub fn new(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerTls, TlsError> {
        let certs = Arc::new(ReloadingCert::load(cert, key)?);
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let roots = Arc::new(roots_from(path)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| TlsError::ClientCa {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config =
            builder.with_cert_resolver(Arc::clone(&certs) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            certs,
        })
    }
}

/// The CA certificates of a PEM bundle, as a root store.
fn roots_from(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            message: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

/// The client side: trusts the CA bundle at `ca`, else the system roots;
/// presents `identity` to a server that asks for a client certificate.
pub fn client_config(
    ca: Option<&Path>,
    identity: Option<Arc<ReloadingCert>>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match ca {
        Some(path) => roots_from(path)?,
        None => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                // Plain HTTP still works; HTTPS will say the issuer is unknown.
                tracing::warn!(
                    "no system root certificates found ({} error(s)); set [http] tls_ca to reach HTTPS endpoints",
                    found.errors.len()
                );
            }
            roots
        }
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match identity {
        Some(identity) => builder.with_client_cert_resolver(identity),
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// An error and its causes on one line: the TLS reason ("invalid peer
/// certificate: UnknownIssuer") sits several sources below a client error.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
