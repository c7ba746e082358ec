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

//! Loads, checks and constructs the plugins named in the config.
//!
//! Each library file is read once; its sha256 is checked on those bytes,
//! which are then copied into a sealed memory file (memfd: no more writes,
//! no growing, no shrinking, no unsealing) and that memory file is what the
//! dynamic loader opens, through `/proc/self/fd/N`. So the code that runs is
//! exactly the code whose hash was checked: replacing or rewriting the file
//! at the configured path after the check changes nothing (a time-of-check
//! to time-of-use swap).
//!
//! The library is loaded with `lib_header_from_path(..).init_root_module()`
//! (never `RootModule::load_from_file`, which caches one module per type so
//! a second plugin would silently resolve to the first) and constructed once
//! per config entry. Entries pinning the same sha256 share one loaded copy.
//! Any failure refuses start-up: a security server fails closed.

use std::{
    collections::BTreeMap,
    fs::File,
    io::Write,
    os::fd::{AsRawFd, IntoRawFd, OwnedFd},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RResult},
};
use futures::future::BoxFuture;
use milagro_plugin_api::{
    Error, Request, Response,
    abi::{AbiRequest, HostObj_TO, PluginBox, PluginModRef, RouteAccess, RouteSpec},
    library::{LibraryError, open_library},
};
use sha2::{Digest, Sha256};

use crate::{
    config::PluginConfig,
    facilities::{PluginHost, to_abi},
    handler::Handler,
    keystore::plugin::PluginKeystore,
    node::Node,
    store::Store,
    transport::consumer::{Consumer, Delivered},
};

/// Why a plugin was refused, in one line.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin {name:?} refused: cannot read {path}: {source}")]
    Read {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin {name:?} refused: sha256 of {path} is {actual}, config expects {expected}")]
    Tampered {
        name: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// Not a plugin library, or built against an incompatible plugin-api.
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error("plugin {name:?} refused: cannot seal {path} in memory: {source}")]
    Seal {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin {name:?} refused: its constructor failed: {error}")]
    Construct { name: String, error: Error },
    #[error("plugin {name:?} refused: {reason}")]
    Describe { name: String, reason: String },
    #[error("[keystore] backend {name:?} cannot open: {reason}")]
    Keystore { name: String, reason: String },
}

/// A constructed plugin instance and what it declared, in the host's own
/// types (only this file reads the ABI's descriptor).
pub struct LoadedPlugin {
    /// Instance name from the config.
    pub name: String,
    pub mount: String,
    pub path: PathBuf,
    pub sha256: String,
    /// The library's plugin name and version.
    pub plugin: String,
    pub version: String,
    pub routes: Vec<PluginRoute>,
    consumes: Vec<String>,
    awaits: Vec<String>,
    pub object: PluginBox,
}

/// One route a plugin declared, relative to its mount.
pub struct PluginRoute {
    /// Upper-case HTTP method (checked by the router).
    pub method: String,
    pub path: String,
    pub operation: String,
    /// The route's OpenAPI operation object, as JSON text.
    pub openapi: String,
    /// Open to end users without the operator's token (`Route::public`).
    pub public: bool,
}

impl From<&RouteSpec> for PluginRoute {
    fn from(spec: &RouteSpec) -> Self {
        PluginRoute {
            method: spec.method.to_string(),
            path: spec.path.to_string(),
            operation: spec.operation.to_string(),
            openapi: spec.openapi.to_string(),
            public: spec.access == RouteAccess::Public,
        }
    }
}

impl Handler for LoadedPlugin {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle(&self, request: Request) -> BoxFuture<'static, Result<Response, String>> {
        // A task of its own: a panic that escapes the plugin is a JoinError,
        // not a dead server task; dropping the future (a deadline) aborts it.
        let task = tokio::spawn(self.object.handle(AbiRequest::from(request)));
        let abort = AbortOnDrop(task.abort_handle());
        Box::pin(async move {
            let answer = task.await.map(Response::from).map_err(|e| e.to_string());
            drop(abort);
            answer
        })
    }
}

/// Aborts a task when dropped (a no-op once it finished).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl LoadedPlugin {
    /// What `GET /v1/plugins` shows of this instance.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "plugin": self.plugin,
            "version": self.version,
            "mount": self.mount,
            "sha256": self.sha256,
            "consumes": self.consumes,
            "routes": self.routes.iter().map(|r| serde_json::json!({
                "method": r.method,
                "path": format!("{}{}", self.mount, r.path),
            })).collect::<Vec<_>>(),
        })
    }
}

/// One instance of a list of loaded plugins, as the inbox sees it.
struct PluginConsumer {
    plugins: Arc<Vec<LoadedPlugin>>,
    index: usize,
}

impl Consumer for PluginConsumer {
    fn name(&self) -> &str {
        &self.plugins[self.index].name
    }

    fn consumes(&self) -> Vec<String> {
        self.plugins[self.index].consumes.clone()
    }

    fn awaits(&self) -> Vec<String> {
        self.plugins[self.index].awaits.clone()
    }

    fn consume(
        &self,
        envelope: Delivered,
    ) -> futures::future::BoxFuture<'static, Result<(), String>> {
        let handled = self.plugins[self.index]
            .object
            .on_envelope(to_abi(envelope));
        Box::pin(async move {
            handled
                .await
                .into_result()
                .map_err(|e| format!("{}: {}", e.code, e.message))
        })
    }
}

/// The plugins as the inbox's consumers, one per instance.
pub fn consumers(plugins: &Arc<Vec<LoadedPlugin>>) -> Vec<Arc<dyn Consumer>> {
    (0..plugins.len())
        .map(|index| {
            Arc::new(PluginConsumer {
                plugins: Arc::clone(plugins),
                index,
            }) as Arc<dyn Consumer>
        })
        .collect()
}

/// A plugin library that passed the sha256 and ABI checks, not yet constructed.
pub struct OpenedPlugin {
    config: PluginConfig,
    sha256: String,
    module: PluginModRef,
}

/// Checks and opens every enabled plugin's library, in config order; stops
/// at the first refusal. Touches nothing on disk, so a refused plugin leaves
/// no trace.
pub fn open_all(configs: &[PluginConfig]) -> Result<Vec<OpenedPlugin>, LoadError> {
    configs
        .iter()
        .filter(|c| c.enabled)
        .map(open_checked)
        .collect()
}

/// Reads the library once, checks the pin on the bytes read and loads
/// exactly those bytes.
fn open_checked(config: &PluginConfig) -> Result<OpenedPlugin, LoadError> {
    let bytes = std::fs::read(&config.path).map_err(|source| LoadError::Read {
        name: config.name.clone(),
        path: config.path.clone(),
        source,
    })?;
    let sha256 = verify_sha256(config, &bytes)?;
    #[cfg(debug_assertions)]
    test_hooks::pause_after_check(&config.name);
    let module = open_module(&config.name, &config.path, &sha256, &bytes)?;
    Ok(OpenedPlugin {
        config: config.clone(),
        sha256,
        module,
    })
}

/// Takes the entry that `[keystore] backend` names out of `opened` and
/// builds the keystore its library provides (`None` for the file backend).
/// That entry serves no routes. Runs before the data dir is touched, so a
/// keystore that cannot open (wrong PIN, missing token...) leaves nothing.
pub fn take_keystore(
    opened: &mut Vec<OpenedPlugin>,
    backend: &str,
) -> Result<Option<PluginKeystore>, LoadError> {
    if backend == "file" {
        return Ok(None);
    }
    let at = opened
        .iter()
        .position(|p| p.config.name == backend)
        .ok_or_else(|| no_keystore_entry(backend))?;
    construct_keystore(&opened.remove(at)).map(Some)
}

/// Opens only the keystore's library and builds the keystore (`None` for
/// the file backend): what the commands for a stopped node need.
pub fn open_keystore(
    configs: &[PluginConfig],
    backend: &str,
) -> Result<Option<PluginKeystore>, LoadError> {
    if backend == "file" {
        return Ok(None);
    }
    let config = configs
        .iter()
        .find(|c| c.enabled && c.name == backend)
        .ok_or_else(|| no_keystore_entry(backend))?;
    construct_keystore(&open_checked(config)?).map(Some)
}

fn no_keystore_entry(backend: &str) -> LoadError {
    LoadError::Keystore {
        name: backend.into(),
        reason: "no enabled [[plugins]] entry has this name".into(),
    }
}

fn construct_keystore(opened: &OpenedPlugin) -> Result<PluginKeystore, LoadError> {
    let name = &opened.config.name;
    let refuse = |reason: String| LoadError::Keystore {
        name: name.clone(),
        reason,
    };
    let new_keystore = opened.module.new_keystore().ok_or_else(|| {
        refuse(format!(
            "{} provides no keystore",
            opened.config.path.display()
        ))
    })?;
    let config_json = opened
        .config
        .config_json()
        .map_err(|e| refuse(format!("config table does not convert to JSON: {e}")))?;
    match new_keystore(config_json.into()) {
        RResult::ROk(object) => {
            let keystore = PluginKeystore::new(object);
            tracing::info!(
                plugin = %name,
                sha256 = %opened.sha256,
                backend = %keystore.description(),
                "keystore opened"
            );
            Ok(keystore)
        }
        RResult::RErr(e) => Err(refuse(Error::from(e).message)),
    }
}

/// Constructs every opened plugin with its config and host facilities.
pub fn construct_all(
    opened: Vec<OpenedPlugin>,
    store: &Store,
    node: Option<&Arc<Node>>,
) -> Result<Vec<LoadedPlugin>, LoadError> {
    opened
        .into_iter()
        .map(|p| construct(p, store, node.cloned()))
        .collect()
}

fn construct(
    opened: OpenedPlugin,
    store: &Store,
    node: Option<Arc<Node>>,
) -> Result<LoadedPlugin, LoadError> {
    let OpenedPlugin {
        config,
        sha256,
        module,
    } = opened;
    let name = config.name.clone();
    let config_json = config.config_json().map_err(|e| LoadError::Describe {
        name: name.clone(),
        reason: format!("config table does not convert to JSON: {e}"),
    })?;
    let host = PluginHost::new(&name, store.namespace(&format!("plugin/{name}")), node);
    let host = HostObj_TO::from_ptr(RArc::new(host), TD_Opaque);
    let object = match (module.new())(config_json.into(), host) {
        RResult::ROk(object) => object,
        RResult::RErr(e) => {
            return Err(LoadError::Construct {
                name,
                error: e.into(),
            });
        }
    };
    let descriptor = object
        .describe()
        .into_result()
        .map_err(|e| LoadError::Describe {
            name: name.clone(),
            reason: Error::from(e).to_string(),
        })?;
    tracing::info!(
        plugin = %name,
        library = %descriptor.name,
        version = %descriptor.version,
        mount = %config.mount(),
        routes = descriptor.routes.len(),
        "plugin loaded"
    );
    Ok(LoadedPlugin {
        name,
        mount: config.mount(),
        path: config.path,
        sha256,
        plugin: descriptor.name.to_string(),
        version: descriptor.version.to_string(),
        routes: descriptor.routes.iter().map(PluginRoute::from).collect(),
        consumes: descriptor.consumes.iter().map(|k| k.to_string()).collect(),
        awaits: descriptor.awaits.iter().map(|k| k.to_string()).collect(),
        object,
    })
}

/// Hashes the library's bytes and compares with the configured digest.
fn verify_sha256(config: &PluginConfig, bytes: &[u8]) -> Result<String, LoadError> {
    let actual = hex::encode(Sha256::digest(bytes));
    if !actual.eq_ignore_ascii_case(&config.sha256) {
        return Err(LoadError::Tampered {
            name: config.name.clone(),
            path: config.path.clone(),
            expected: config.sha256.to_ascii_lowercase(),
            actual,
        });
    }
    Ok(actual)
}

/// Libraries loaded so far, by sha256: an entry pinning the same bytes as
/// an earlier one gets the same module (as loading one path twice did).
static LOADED: Mutex<BTreeMap<String, PluginModRef>> = Mutex::new(BTreeMap::new());

/// Loads the checked `bytes` (never the file at `path` again) from a
/// sealed memory file.
fn open_module(
    name: &str,
    path: &Path,
    sha256: &str,
    bytes: &[u8],
) -> Result<PluginModRef, LoadError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(module) = loaded.get(sha256) {
        return Ok(*module);
    }
    let sealed = sealed_copy(bytes).map_err(|source| LoadError::Seal {
        name: name.into(),
        path: path.into(),
        source,
    })?;
    let fd_path = PathBuf::from(format!("/proc/self/fd/{}", sealed.as_raw_fd()));
    let module = open_library(name, path, &fd_path)?;
    // The memory file stays open for the life of the process, like the
    // library abi_stable never unloads: were its descriptor number reused,
    // the loader would take a later `/proc/self/fd/N` for the library it
    // already loaded under that name.
    let _ = sealed.into_raw_fd();
    loaded.insert(sha256.to_string(), module);
    Ok(module)
}

/// A memory file holding `bytes`, sealed against any change (write, grow,
/// shrink) and against removing the seals; close-on-exec.
///
/// The write seal is `F_SEAL_FUTURE_WRITE`, not `F_SEAL_WRITE`: the latter
/// waits at most ~150 ms for every page to lose its transient kernel
/// references (LRU batches, compaction, reclaim) and otherwise fails with
/// EBUSY, which refused a plugin at random on a busy machine (seen in CI on
/// a restart). Both refuse every later `write` and every new shared writable
/// mapping; they differ only for a shared writable mapping made before the
/// seal, and this file has none: it is written with `write` and its one
/// descriptor never leaves this function unsealed.
fn sealed_copy(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags, fcntl_add_seals, memfd_create};
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // Kernels since 6.3 want executable memory files asked for explicitly
    // (and may refuse them by default); older ones reject the flag.
    let fd = match memfd_create("milagro-plugin", flags | MemfdFlags::EXEC) {
        Err(rustix::io::Errno::INVAL) => memfd_create("milagro-plugin", flags)?,
        other => other?,
    };
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    fcntl_add_seals(
        &file,
        SealFlags::FUTURE_WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )?;
    Ok(OwnedFd::from(file))
}

/// A pause point for the end-to-end test of the pin (`tests/tests/plugin_pin.rs`),
/// compiled into debug builds only: release builds have no such hook.
#[cfg(debug_assertions)]
mod test_hooks {
    use std::time::{Duration, Instant};

    /// With `MILAGRO_TEST_PAUSE_AFTER_PLUGIN_CHECK=<dir>` set, after the
    /// library of plugin `name` has been read and its hash checked, creates
    /// `<dir>/<name>.checked` and waits (at most 60 s) for `<dir>/<name>.go`:
    /// the test swaps the file at the configured path meanwhile.
    pub(super) fn pause_after_check(name: &str) {
        let Some(dir) = std::env::var_os("MILAGRO_TEST_PAUSE_AFTER_PLUGIN_CHECK") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        if std::fs::write(dir.join(format!("{name}.checked")), b"").is_err() {
            return;
        }
        let go = dir.join(format!("{name}.go"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !go.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    use rustix::fs::{SealFlags, fcntl_add_seals, fcntl_get_seals, ftruncate};

    use super::sealed_copy;

    /// The loaded copy holds exactly the checked bytes and refuses every
    /// change: a write, growing, shrinking, a shared writable mapping, and
    /// removing or adding seals.
    #[test]
    fn the_sealed_copy_holds_the_bytes_and_refuses_every_change() {
        let bytes: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let fd = sealed_copy(&bytes).expect("sealed copy");
        let seals = fcntl_get_seals(&fd).unwrap();
        for seal in [
            SealFlags::FUTURE_WRITE,
            SealFlags::GROW,
            SealFlags::SHRINK,
            SealFlags::SEAL,
        ] {
            assert!(seals.contains(seal), "{seal:?} missing from {seals:?}");
        }
        let mut file = std::fs::File::from(fd);
        let mut read = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut read).unwrap();
        assert_eq!(read, bytes);

        file.seek(SeekFrom::Start(0)).unwrap();
        assert!(file.write_all(b"x").is_err(), "a write went through");
        assert!(ftruncate(&file, 1).is_err(), "shrunk");
        assert!(ftruncate(&file, 40_000).is_err(), "grown");
        assert!(
            fcntl_add_seals(&file, SealFlags::WRITE).is_err(),
            "seals changed"
        );
        let shared_writable = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                bytes.len(),
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &file,
                0,
            )
        };
        assert!(shared_writable.is_err(), "mapped shared and writable");
    }
}
