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

//! The bench's HTTP client: keep-alive HTTP/1.1 connections to a node over
//! plain TCP (the nodes it drives listen on 127.0.0.1), each a connection
//! of its own so that concurrency is what the command line says. The host's
//! `outbound` client is not used: it pools connections, and the bench does
//! not depend on the host.

use std::{error::Error, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri, body::Body, client::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Opens one keep-alive HTTP/1.1 connection to `host:port` (no Nagle
/// delay); the connection is driven by a task of its own until it closes.
pub(crate) async fn connect<B>(host: &str, port: u16) -> Result<http1::SendRequest<B>, String>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}

/// How long one HTTP call may take before it counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One keep-alive HTTP/1.1 connection to a node, reconnecting after errors.
pub(crate) struct Client {
    host: String,
    port: u16,
    authority: String,
    auth: String,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Client {
    pub(crate) fn new(base: &Uri, token: &str) -> Client {
        Client {
            host: base.host().unwrap_or("127.0.0.1").to_string(),
            port: base.port_u16().unwrap_or(80),
            authority: base
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_else(|| "localhost".into()),
            auth: format!("Bearer {token}"),
            sender: None,
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        self.sender = Some(connect(&self.host, self.port).await?);
        Ok(())
    }

    /// (status, body); status 0 means the call failed below HTTP.
    pub(crate) async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, Bytes) {
        match tokio::time::timeout(CALL_TIMEOUT, self.try_call(method, path, body)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                self.sender = None;
                (0, Bytes::from(e))
            }
            Err(_) => {
                self.sender = None;
                (0, Bytes::from_static(b"timed out"))
            }
        }
    }

    async fn try_call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Bytes), String> {
        if self.sender.is_none() {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await.map_err(|e| e.to_string())?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority)
            .header("authorization", &self.auth);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}
