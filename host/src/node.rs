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

//! The node: the facilities that need keys and a network (keystore, IPFS,
//! identity, transport), opened together at start-up and shared by the
//! REST API and every plugin.

use std::{net::SocketAddr, sync::Arc};

use milagro_ipfs::{Ipfs, IpfsConfig, IpfsError};
use milagro_proto::{Endpoints, Limits};

use crate::{
    chain::{self, Chains},
    clock::now_ms,
    config::Config,
    identity::{DraftParts, IdentityConfig, IdentityError, NodeIdentity, Resolver},
    keystore::{
        Keystore, KeystoreConfig, KeystoreError, file::FileKeystore, plugin::PluginKeystore,
    },
    store::Store,
    transport::{LocalDeliveries, Transport, TransportConfig, inbox::Inbox},
};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    #[error("cannot start IPFS: {0}")]
    Ipfs(#[from] IpfsError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("[http] tls_ca: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Endpoints(String),
    #[error(
        "[keystore] backend {0:?} is neither \"file\" nor an enabled [[plugins]] entry providing a keystore"
    )]
    UnknownKeystore(String),
}

/// What the node needs from host.toml to open its facilities.
pub struct NodeSettings<'a> {
    pub name: &'a str,
    pub data_dir: &'a std::path::Path,
    pub listen: SocketAddr,
    /// `https` when the listener has a certificate, else `http`.
    pub scheme: &'static str,
    /// CA bundle for outbound HTTPS; `None`: the system roots.
    pub tls_ca: Option<&'a std::path::Path>,
    /// The listener's certificate, presented on outbound HTTPS to a node
    /// that asks for a client certificate (`[http] inbox_client_ca`).
    pub tls_identity: Option<Arc<crate::tls::ReloadingCert>>,
    pub ipfs: &'a IpfsConfig,
    pub keystore: &'a KeystoreConfig,
    pub identity: &'a IdentityConfig,
    pub transport: &'a TransportConfig,
}

pub struct Node {
    pub keystore: Arc<dyn Keystore>,
    pub ipfs: Ipfs,
    pub identity: Arc<NodeIdentity>,
    pub resolver: Arc<Resolver>,
    pub chains: Arc<Chains>,
    pub transport: Arc<Transport>,
    pub limits: Limits,
}

/// Opens the keystore named in the config: the file keystore, or the one a
/// plugin library provided (see `plugins::take_keystore`).
pub fn open_keystore(
    settings: &NodeSettings<'_>,
    from_plugin: Option<PluginKeystore>,
) -> Result<Arc<dyn Keystore>, NodeError> {
    match (settings.keystore.backend.as_str(), from_plugin) {
        (_, Some(keystore)) => Ok(Arc::new(keystore)),
        ("file", None) => Ok(Arc::new(FileKeystore::open(
            &settings.data_dir.join("keystore"),
            settings.keystore,
        )?)),
        (other, None) => Err(NodeError::UnknownKeystore(other.into())),
    }
}

/// What a new identity document of this node says: name, creation time,
/// endpoint hints (HTTP, IPFS peer ID and addresses), beneficiary key or not.
async fn draft_parts(settings: &NodeSettings<'_>, ipfs: &Ipfs) -> Result<DraftParts, NodeError> {
    let info = ipfs.id().await?;
    let http = if settings.identity.http.is_empty() {
        vec![format!("{}://{}", settings.scheme, settings.listen)]
    } else {
        settings.identity.http.clone()
    };
    Ok(DraftParts {
        name: settings.name.into(),
        created_ms: now_ms(),
        endpoints: Endpoints {
            http,
            peer_id: Some(info.peer_id),
            multiaddrs: info.addresses,
        },
        beneficiary: settings.identity.beneficiary,
    })
}

/// Loads this node's identity, creating keys and a first document if the
/// node has none. Returns whether it was created now.
pub async fn load_or_create_identity(
    settings: &NodeSettings<'_>,
    store: &Store,
    keystore: &Arc<dyn Keystore>,
    ipfs: &Ipfs,
    limits: &Limits,
) -> Result<(NodeIdentity, bool), NodeError> {
    let node_ns = store.namespace("node");
    if let Some(identity) = NodeIdentity::load(&node_ns, keystore, limits)? {
        return Ok((identity, false));
    }
    let parts = draft_parts(settings, ipfs).await?;
    let identity = NodeIdentity::create(&node_ns, keystore, ipfs, parts).await?;
    tracing::info!(node_id = %identity.id(), "created this node's identity");
    Ok((identity, true))
}

/// Replaces this node's keys with new ones, publishing a rotated document.
pub async fn rotate_identity(
    settings: &NodeSettings<'_>,
    store: &Store,
    keystore: &Arc<dyn Keystore>,
    ipfs: &Ipfs,
    limits: &Limits,
) -> Result<NodeIdentity, NodeError> {
    let node_ns = store.namespace("node");
    let current =
        NodeIdentity::load(&node_ns, keystore, limits)?.ok_or(IdentityError::NotInitialised)?;
    let previous = *current.id();
    let parts = draft_parts(settings, ipfs).await?;
    let rotated = current.rotate(&node_ns, keystore, ipfs, parts).await?;
    // Told to the counterparties at the next start.
    let body = milagro_proto::Rotated {
        previous,
        current: *rotated.id(),
    }
    .encode()
    .map_err(|e| IdentityError::Other(format!("cannot encode the announcement: {e}")))?;
    chain::queue_announcement(&store.namespace(CHAINS), milagro_proto::ROTATED_KIND, &body)
        .map_err(IdentityError::from)?;
    Ok(rotated)
}

/// The database namespace of [`Chains`].
pub const CHAINS: &str = "chains";

/// The client HTTP-mode deliveries go out with: the configured CA bundle
/// and the endpoint address policy of `[transport]`.
impl<'a> From<&'a Config> for NodeSettings<'a> {
    /// What the node facilities need from a config.
    fn from(config: &'a Config) -> Self {
        NodeSettings {
            name: &config.node.name,
            data_dir: &config.node.data_dir,
            listen: config.http.listen,
            scheme: config.http.scheme(),
            tls_ca: config.http.tls_ca.as_deref(),
            tls_identity: None,
            ipfs: &config.ipfs,
            keystore: &config.keystore,
            identity: &config.identity,
            transport: &config.transport,
        }
    }
}

pub fn outbound(settings: &NodeSettings<'_>) -> Result<crate::outbound::Outbound, NodeError> {
    let transport = settings.transport;
    let policy = crate::outbound::EndpointPolicy::new(
        transport.allow_private_endpoints,
        &transport.allowed_endpoints,
    )
    .map_err(NodeError::Endpoints)?;
    Ok(crate::outbound::Outbound::new(
        crate::tls::client_config(settings.tls_ca, settings.tls_identity.clone())?,
        policy,
        std::time::Duration::from_millis(transport.http_connect_timeout_ms),
    ))
}

impl Node {
    /// Opens IPFS, loads (or creates) the identity with `keystore`,
    /// republishes it, and prepares the transport. The receiver is started
    /// separately, with the node's deliveries to itself returned here.
    pub async fn open(
        settings: &NodeSettings<'_>,
        store: &Store,
        keystore: Arc<dyn Keystore>,
    ) -> Result<(Node, LocalDeliveries), NodeError> {
        let limits = Limits::default();
        let ipfs = Ipfs::open(settings.ipfs, settings.data_dir).await?;
        let (identity, _) =
            load_or_create_identity(settings, store, &keystore, &ipfs, &limits).await?;
        identity.republish(&ipfs).await?;
        let identity = Arc::new(identity);
        let resolver = Arc::new(Resolver::new(
            ipfs.clone(),
            store.namespace("identity-cache"),
            limits,
        ));
        for document in identity.documents() {
            resolver.remember(document);
        }
        let chains = Arc::new(Chains::new(
            store.namespace(CHAINS),
            Arc::clone(&resolver),
            Arc::clone(&identity),
        ));
        let inbox = Arc::new(Inbox::new(
            store.namespace("inbox"),
            Arc::clone(&identity),
            Arc::clone(&resolver),
            Arc::clone(&chains),
            limits,
            settings.transport.max_clock_skew_ms,
            std::time::Duration::from_millis(settings.transport.envelope_timeout_ms),
        ));
        let (transport, local) = Transport::new(
            ipfs.clone(),
            Arc::clone(&identity),
            Arc::clone(&resolver),
            Arc::clone(&chains),
            inbox,
            settings.transport.clone(),
            outbound(settings)?,
        );
        let node = Node {
            keystore,
            ipfs,
            identity,
            resolver,
            chains,
            transport: Arc::new(transport),
            limits,
        };
        Ok((node, local))
    }
}
