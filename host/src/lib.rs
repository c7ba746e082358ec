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

//! The `milagro` host: loads the plugins named in its config, lends them
//! the node's facilities and serves their routes beside its own.

pub mod api_error;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod chain;
pub mod cli;
pub mod clock;
pub mod config;
pub mod facilities;
pub mod handler;
pub mod identity;
pub mod keystore;
pub mod metrics;
pub mod node;
pub mod openapi;
pub mod outbound;
pub mod plugins;
pub mod rate_limit;
pub mod router;
pub mod server;
pub mod store;
pub mod tls;
pub mod transport;

use std::{
    os::unix::fs::DirBuilderExt,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::net::TcpListener;

use crate::{
    auth::{Auth, AuthError},
    config::Config,
    metrics::Metrics,
    node::{Node, NodeSettings},
    openapi::OpenApiError,
    plugins::LoadError,
    router::{RouteError, Router},
    server::App,
    store::{Store, StoreError},
    transport::{LocalDeliveries, consumer::Consumers},
};

/// Why the node did not start. Each is one line naming what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Plugin(#[from] LoadError),
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    OpenApi(#[from] OpenApiError),
    #[error(transparent)]
    Node(#[from] node::NodeError),
    #[error("{0}")]
    Consumers(String),
    #[error("[http] TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// A node ready to serve: what [`start`] prepared for [`run`].
pub struct Started {
    pub app: Arc<App>,
    pub listener: TcpListener,
    pub tls: Option<tls::ServerTls>,
    /// The node's deliveries to itself, for the receiver.
    pub local: LocalDeliveries,
}

/// How long in-flight requests may run on after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Prepares everything `serve` needs: plugin libraries (checked before
/// anything is written), data dir, database, token, plugin instances,
/// routes, the TLS certificate and the listening socket. Nothing is served
/// until all succeeded.
pub async fn start(config: &Config) -> Result<Started, StartError> {
    // Read before anything is written: a bad certificate fails at once.
    let server_tls = match (&config.http.tls_cert, &config.http.tls_key) {
        (Some(cert), Some(key)) => Some(tls::ServerTls::new(
            cert,
            key,
            config.http.inbox_client_ca.as_deref(),
        )?),
        _ => None,
    };
    let mut opened = plugins::open_all(&config.plugins)?;
    let plugin_keystore = plugins::take_keystore(&mut opened, &config.keystore.backend)?;
    let data_dir = &config.node.data_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
    let store = Store::open(&data_dir.join("milagro.redb"))?;
    let auth = Auth::load_or_create(&config.token_file())?;
    // Bound before the slower steps, so a port in use fails at once.
    let listener = TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.http.listen,
            source,
        })?;
    let mut settings = NodeSettings::from(config);
    settings.tls_identity = server_tls.as_ref().map(|t| Arc::clone(&t.certs));
    let keystore = node::open_keystore(&settings, plugin_keystore)?;
    let backup = Arc::new(backup::Sources::new(
        config,
        store.clone(),
        Arc::clone(&keystore),
    ));
    let (node, local) = Node::open(&settings, &store, keystore).await?;
    let node = Arc::new(node);
    let plugins = Arc::new(plugins::construct_all(opened, &store, Some(&node))?);
    let consumers =
        Arc::new(Consumers::new(plugins::consumers(&plugins)).map_err(StartError::Consumers)?);
    let router = Router::build(&plugins)?;
    let openapi = openapi::document(env!("CARGO_PKG_VERSION"), &plugins)?;
    let app = App {
        node_name: config.node.name.clone(),
        started: Instant::now(),
        router,
        plugins,
        consumers,
        node,
        auth,
        metrics: Metrics::get(),
        openapi: openapi.to_string().into(),
        max_body_bytes: config.http.max_body_bytes,
        handler_timeout: Duration::from_millis(config.http.handler_timeout_ms),
        rate_limiter: rate_limit::RateLimiter::new(config.http.rate_limit.clone()),
        inbox_needs_client_cert: config.http.inbox_client_ca.is_some(),
        backup,
    };
    Ok(Started {
        app: Arc::new(app),
        listener,
        tls: server_tls,
        local,
    })
}

/// Starts the node and serves until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), StartError> {
    let Started {
        app,
        listener,
        tls: server_tls,
        local,
    } = start(&config).await?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.http.listen,
        source,
    })?;
    let receiver = tokio::spawn(
        Arc::clone(&app.node.transport).run_receiver(Arc::clone(&app.consumers), local),
    );
    let reconnect = tokio::spawn({
        let ipfs = app.node.ipfs.clone();
        let ipfs_config = config.ipfs.clone();
        async move { ipfs.keep_connected(&ipfs_config).await }
    });
    tracing::info!(
        node = %config.node.name,
        node_id = %app.node.identity.id(),
        plugins = app.plugins.len(),
        "milagro listening on {}://{addr}",
        config.http.scheme()
    );
    let acceptor = server_tls.as_ref().map(|t| t.acceptor.clone());
    let reload = server_tls.map(|t| tokio::spawn(reload_on_sighup(t.certs)));
    server::serve(app, listener, acceptor, shutdown_signal(), DRAIN).await;
    receiver.abort();
    reconnect.abort();
    if let Some(reload) = reload {
        reload.abort();
    }
    tracing::info!("milagro stopped");
    Ok(())
}

/// Reads the listener's certificate and key again on each SIGHUP; new
/// connections get the new pair, open ones keep theirs. A pair that does
/// not load is reported and the old one kept.
async fn reload_on_sighup(certs: Arc<tls::ReloadingCert>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(hup) => hup,
        Err(e) => {
            tracing::warn!("no SIGHUP handler, certificates will not be reloaded: {e}");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match certs.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(e) => tracing::error!("TLS certificate not reloaded, keeping the old one: {e}"),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
