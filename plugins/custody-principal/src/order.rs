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

//! `POST /orders`: record the order, send it to the fiduciaries, wait for
//! their commitments, compute the wallet's public key and address, and tell
//! the beneficiary. Retrying under the same reference completes the same
//! order.

use super::*;

/// `POST /orders` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    fiduciaries: Vec<String>,
    #[serde(default)]
    beneficiary: Option<String>,
    coin: String,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    threshold: Option<u32>,
}

impl Principal {
    pub(crate) async fn create_order(&self, request: &Request) -> Result<Response, Error> {
        let body: NewOrder = request.json()?;
        let coin: Coin = body.coin.parse().map_err(|_| {
            Error::bad_request(format!(
                "unknown coin {:?}: expected \"btc\", \"btc-testnet\", \"eth\", \"btc-taproot\" or \"btc-testnet-taproot\"",
                body.coin
            ))
        })?;
        let threshold = check_fiduciaries(&body.fiduciaries, body.threshold)?;
        if let Some(b) = &body.beneficiary {
            common::check_node_id("beneficiary", b)?;
        }
        let reference = match &body.reference {
            Some(r) => {
                common::check_reference(r)?;
                r.clone()
            }
            None => new_reference()?,
        };
        let me = self.host.identity().this_node().await?.id;
        let _guard = self.locks.lock(&reference).await;
        let order = Order {
            reference: reference.clone(),
            coin,
            principal: me.clone(),
            beneficiary: body.beneficiary.clone().unwrap_or_else(|| me.clone()),
            fiduciaries: body.fiduciaries.clone(),
            threshold,
        };
        let existing: Option<OrderRecord> = self
            .host
            .store()
            .get_json(format!("{ORDER_PREFIX}{reference}"))
            .await?;
        let (mut record, created) = match existing {
            Some(record) if record.order != order => {
                return Err(Error::conflict(format!(
                    "reference {reference:?} is already used by order {} with other fiduciaries, beneficiary or coin",
                    record.order_cid
                )));
            }
            Some(record) => (record, false),
            None => (self.new_record(order).await?, true),
        };
        match record.status {
            Status::Failed => Err(Error::unprocessable(
                record
                    .error
                    .clone()
                    .unwrap_or_else(|| "the order failed".into()),
            )),
            Status::Ready | Status::Redeeming => Response::json(200, &self.view(&record).await?),
            Status::Pending => {
                self.complete(&mut record).await?;
                Response::json(if created { 201 } else { 200 }, &self.view(&record).await?)
            }
        }
    }

    /// Checks the parties and records a new order (durably, before any
    /// message leaves).
    pub(crate) async fn new_record(&self, order: Order) -> Result<OrderRecord, Error> {
        let resolutions = join_all(
            order
                .fiduciaries
                .iter()
                .map(|id| self.resolve("fiduciary", id)),
        )
        .await;
        for resolution in resolutions {
            resolution?;
        }
        let order_cid = order.cid().map_err(common::custody_error)?.to_string();
        let own_beneficiary_key = order.principal_holds_beneficiary_key();
        let beneficiary_key = if own_beneficiary_key {
            self.own_beneficiary_key(&order_cid).await?
        } else {
            let identity = self.resolve("beneficiary", &order.beneficiary).await?;
            let key = identity.beneficiary_key.ok_or_else(|| {
                Error::unprocessable(format!(
                    "beneficiary {} publishes no beneficiary key: its node needs [identity] beneficiary = true",
                    order.beneficiary
                ))
            })?;
            keys::decode_public_key(&key).map_err(|_| {
                Error::unprocessable(format!(
                    "beneficiary {} publishes an invalid beneficiary key",
                    order.beneficiary
                ))
            })?
        };
        let record = OrderRecord {
            order_envelopes: vec![Vec::new(); order.fiduciaries.len()],
            order,
            order_cid: order_cid.clone(),
            created_at: self.host.now_unix_ms(),
            status: Status::Pending,
            beneficiary_key: hex::encode(keys::encode_public_key(&beneficiary_key)),
            own_beneficiary_key,
            public_key: None,
            address: None,
            legacy_address: None,
            notice_cids: Vec::new(),
            error: None,
            redeemed_to: None,
            redeem_cids: Vec::new(),
            release_cids: Vec::new(),
            epoch: 0,
            sharing: None,
            reshare: None,
            reshare_error: None,
        };
        self.host
            .store()
            .write(vec![
                record_write(&record)?,
                Write::put_json(
                    format!("{BY_CID_PREFIX}{order_cid}"),
                    &record.order.reference,
                )?,
            ])
            .await?;
        Ok(record)
    }

    /// The per-order beneficiary key B (drawn and kept on first use).
    pub(crate) async fn own_beneficiary_key(&self, order_cid: &str) -> Result<PublicKey, Error> {
        Ok(self
            .own_beneficiary_secret(order_cid, true)
            .await?
            .public_key())
    }

    pub(crate) async fn own_beneficiary_secret(
        &self,
        order_cid: &str,
        create: bool,
    ) -> Result<SecretScalar, Error> {
        let keystore = self.host.keystore();
        let label = own_key_label(order_cid);
        match keystore.get_secret(&label).await? {
            Some(bytes) => {
                let bytes: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    Error::internal("a stored beneficiary key has the wrong length")
                })?;
                SecretScalar::from_bytes(bytes).map_err(common::custody_error)
            }
            None if create => {
                let key = SecretScalar::random().map_err(common::custody_error)?;
                keystore
                    .put_secret(&label, key.to_bytes().as_slice())
                    .await?;
                Ok(key)
            }
            None => Err(Error::internal(format!(
                "the beneficiary key of order {order_cid} is missing"
            ))),
        }
    }

    /// Resolves a party's identity within the reply timeout.
    pub(crate) async fn resolve(
        &self,
        role: &str,
        id: &str,
    ) -> Result<milagro_plugin_api::Identity, Error> {
        match self
            .host
            .within(self.reply_timeout, self.host.identity().resolve(id))
            .await
        {
            Some(Ok(identity)) => Ok(identity),
            Some(Err(e)) => Err(match e.code {
                ErrorCode::NotFound | ErrorCode::Unavailable | ErrorCode::Timeout => {
                    Error::not_found(format!("{role} {id} does not resolve: {}", e.message))
                }
                code => Error::new(code, format!("{role} {id}: {}", e.message)),
            }),
            None => Err(Error::not_found(format!(
                "{role} {id} does not resolve: no identity document found within {} ms",
                self.reply_timeout.as_millis()
            ))),
        }
    }

    /// Gets every missing commitment, then the wallet, then tells the
    /// beneficiary. Leaves the record pending (and retryable) on a timeout.
    pub(crate) async fn complete(&self, record: &mut OrderRecord) -> Result<(), Error> {
        let states = self.commitment_states(record).await?;
        let missing: Vec<usize> = (0..states.len()).filter(|&i| states[i].is_none()).collect();
        if !missing.is_empty() {
            // t-of-n: every fiduciary is asked again, since one that already
            // committed deals again to those that may have missed its deal.
            let ask: Vec<usize> = if record.order.is_threshold() {
                (0..states.len()).collect()
            } else {
                missing
            };
            self.ask_commitments(record, &ask).await?;
        }
        if let Some(c) = self.complaint(record).await? {
            return self
                .fail(
                    record,
                    format!(
                        "fiduciary {} reports that fiduciary {} dealt a DKG share that does not match its commitments; the order failed",
                        c.by, c.dealer
                    ),
                )
                .await;
        }
        let states = self.commitment_states(record).await?;
        let mut verified = Vec::new();
        let mut silent = Vec::new();
        for (i, state) in states.iter().enumerate() {
            let id = &record.order.fiduciaries[i];
            match state {
                None => silent.push(id.clone()),
                Some(CommitmentState {
                    error: Some(why), ..
                }) => {
                    return self
                        .fail(
                            record,
                            format!("fiduciary {id} sent an invalid commitment ({why}); the order failed"),
                        )
                        .await;
                }
                Some(CommitmentState {
                    share_public_key: Some(k),
                    dealers,
                    ..
                }) => verified.push(VerifiedCommitment {
                    index: i as u32 + 1,
                    share_public_key: decode_key(k)?,
                    dealers: dealers.as_deref().map(decode_dealers).transpose()?,
                }),
                Some(_) => return Err(Error::internal("a commitment record is inconsistent")),
            }
        }
        if !silent.is_empty() {
            return Err(self.silent_error(record, &silent).await?);
        }
        if let Some(dealer) = self.equivocating_dealer(record, &verified).await? {
            return self
                .fail(
                    record,
                    format!(
                        "fiduciary {dealer} showed the principal other DKG commitments than the fiduciaries; the order failed"
                    ),
                )
                .await;
        }
        let b = decode_key(&record.beneficiary_key)?;
        let p = match milagro_custody::verify::wallet_key(&record.order, &b, &verified) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .fail(record, format!("the fiduciaries' commitments do not fit together ({e}); the order failed"))
                    .await;
            }
        };
        record.public_key = Some(hex::encode(keys::encode_public_key(&p)));
        record.address = Some(
            record
                .order
                .coin
                .address(&p)
                .map_err(common::custody_error)?,
        );
        record.legacy_address = record.order.coin.legacy_address(&p);
        let notice_cid = self
            .notify(record, &states, &record.order.beneficiary)
            .await?;
        record.notice_cids.push(notice_cid);
        record.status = Status::Ready;
        self.save(record).await?;
        self.host.info(format!(
            "order {} ({}) ready: wallet {}",
            record.order.reference,
            record.order_cid,
            record.address.as_deref().unwrap_or_default()
        ));
        Ok(())
    }

    pub(crate) async fn commitment_states(
        &self,
        record: &OrderRecord,
    ) -> Result<Vec<Option<CommitmentState>>, Error> {
        let store = self.host.store();
        let mut states = Vec::with_capacity(record.order.fiduciaries.len());
        for index in 1..=record.order.fiduciaries.len() as u32 {
            states.push(
                store
                    .get_json(&commitment_key(&record.order_cid, index))
                    .await?,
            );
        }
        Ok(states)
    }

    /// Sends the order to the fiduciaries at `positions` and waits (bounded)
    /// for their answers; what arrives is checked by `on_commitment`.
    pub(crate) async fn ask_commitments(
        &self,
        record: &mut OrderRecord,
        positions: &[usize],
    ) -> Result<(), Error> {
        let sends = positions.iter().map(|&i| {
            common::send(
                &self.host,
                &record.order,
                vec![record.order.fiduciaries[i].clone()],
                Vec::new(),
            )
        });
        let mut sent = Vec::new();
        let mut undelivered = None;
        for (&i, result) in positions.iter().zip(join_all(sends).await) {
            match result {
                Ok(cid) => {
                    record.order_envelopes[i].push(cid.clone());
                    sent.push((cid, record.order.fiduciaries[i].clone()));
                }
                Err(e) => {
                    self.host.warn(format!(
                        "order {}: not delivered to fiduciary {}: {}",
                        record.order.reference, record.order.fiduciaries[i], e.message
                    ));
                    undelivered.get_or_insert(e);
                }
            }
        }
        // Volatile: this only logs the envelopes sent (the order itself was
        // recorded durably before they left), and the order's next durable
        // save, or any durable write of this node, keeps it. A crash before
        // that loses only their CIDs: the order stays pending and a retry
        // asks again.
        self.host
            .store()
            .write_volatile(vec![record_write(record)?])
            .await?;
        // Nothing left this node (e.g. its IPFS node is down): say why now
        // (a 503 from the transport) rather than wait for answers that
        // cannot come. The order stays pending; POSTing it again retries.
        if let (true, Some(e)) = (sent.is_empty(), undelivered) {
            return Err(e);
        }
        // The answers are checked and recorded by on_commitment (and
        // on_complaint); only the wait matters here. A complaint ends it.
        let transport = self.host.transport();
        let commitments = join_all(sent.iter().map(|(cid, f)| {
            transport.await_reply_cid(cid, Commitment::KIND, &[f.as_str()], self.reply_timeout)
        }));
        if sent.is_empty() || !record.order.is_threshold() {
            commitments.await;
            return Ok(());
        }
        let complaints = sent.iter().map(|(cid, f)| {
            let transport = &transport;
            Box::pin(async move {
                if transport
                    .await_reply_cid(cid, Complaint::KIND, &[f.as_str()], self.reply_timeout)
                    .await
                    .is_err()
                {
                    futures::future::pending::<()>().await;
                }
            })
        });
        futures::future::select(
            Box::pin(commitments),
            futures::future::select_all(complaints),
        )
        .await;
        Ok(())
    }

    /// Records the failure of an order and answers 422 with `why`.
    pub(crate) async fn fail(&self, record: &mut OrderRecord, why: String) -> Result<(), Error> {
        record.status = Status::Failed;
        record.error = Some(why.clone());
        self.save(record).await?;
        Err(Error::unprocessable(why))
    }

    /// Sends `custody/notice` to `beneficiary`, linked to the order and
    /// commitment envelopes.
    pub(crate) async fn notify(
        &self,
        record: &OrderRecord,
        states: &[Option<CommitmentState>],
        beneficiary: &str,
    ) -> Result<String, Error> {
        let mut fiduciaries = Vec::new();
        let mut links: Vec<String> = record.order_envelopes.iter().flatten().cloned().collect();
        for (id, state) in record.order.fiduciaries.iter().zip(states) {
            let state = state
                .as_ref()
                .ok_or_else(|| Error::internal("notice without every commitment"))?;
            let key = decode_key(state.share_public_key.as_deref().unwrap_or_default())?;
            fiduciaries.push(NoticeFiduciary {
                id: id.clone(),
                share_public_key: keys::encode_public_key(&key),
                commitment_cid: parse_cid(&state.commitment_cid)?,
            });
            links.push(state.commitment_cid.clone());
        }
        let p = decode_key(record.public_key.as_deref().unwrap_or_default())?;
        let notice = Notice {
            order: record.order.clone(),
            order_cid: parse_cid(&record.order_cid)?,
            reference: record.order.reference.clone(),
            coin: record.order.coin,
            public_key: keys::encode_public_key(&p),
            address: record.address.clone().unwrap_or_default(),
            threshold: record.order.threshold,
            fiduciaries,
            dealer_commitments: None,
        };
        let dealers = states
            .iter()
            .flatten()
            .find_map(|s| s.dealers.as_deref())
            .map(decode_dealers)
            .transpose()?;
        let notice = match dealers {
            None => notice,
            Some(d) => notice.with_dealers(&d).map_err(common::custody_error)?,
        };
        common::send(&self.host, &notice, vec![beneficiary.to_string()], links).await
    }
}
