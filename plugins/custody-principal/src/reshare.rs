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

//! `POST /orders/{reference}/refresh` and `/reshare`: move the wallet to a
//! new sharing of the same key (`docs/custody.md` §9). The reshare is
//! recorded before it is sent, so a timeout leaves it in progress and a
//! repeated POST completes it; the new sharing is taken (durably) only
//! once every new fiduciary's report verified, and only then announced
//! (`custody/reshared`), which is what lets the old fiduciaries erase.

use milagro_custody::messages::{
    PublicShares, RefreshRequest, Reshare, ReshareCommitment, Reshared, ResharedNotice,
};
use milagro_custody::reshare::{self, Sharing};

use super::*;

/// `POST /orders/{reference}/reshare` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReshareBody {
    fiduciaries: Vec<String>,
    #[serde(default)]
    threshold: Option<u32>,
    /// The old fiduciaries that deal (default: all of them).
    #[serde(default)]
    dealers: Option<Vec<String>>,
}

/// `POST /orders/{reference}/refresh` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    #[serde(default)]
    dealers: Option<Vec<String>>,
}

/// A new fiduciary's report as checked on arrival.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReportState {
    commitment_cid: String,
    /// The canonical body, hex, when it verified.
    body: Option<String>,
    error: Option<String>,
}

fn report_key(reshare_cid: &str, index: u32) -> String {
    format!("{RESHARE_COMMITMENT_PREFIX}{reshare_cid}/{index:03}")
}

fn hex_key(key: &PublicKey) -> String {
    hex::encode(keys::encode_public_key(key))
}

impl Principal {
    pub(crate) async fn refresh(&self, request: &Request) -> Result<Response, Error> {
        let body: RefreshBody = if request.body.is_empty() {
            RefreshBody::default()
        } else {
            request.json()?
        };
        self.run_reshare(reference_param(request)?, None, body.dealers)
            .await
    }

    pub(crate) async fn reshare(&self, request: &Request) -> Result<Response, Error> {
        let body: ReshareBody = request.json()?;
        let threshold = check_fiduciaries(&body.fiduciaries, body.threshold)?;
        self.run_reshare(
            reference_param(request)?,
            Some((body.fiduciaries, threshold)),
            body.dealers,
        )
        .await
    }

    /// The sharing in force.
    pub(crate) async fn current_sharing(&self, record: &OrderRecord) -> Result<Sharing, Error> {
        if let Some(s) = &record.sharing {
            return Ok(Sharing {
                fiduciaries: s.fiduciaries.clone(),
                threshold: s.threshold,
                share_public_keys: s
                    .share_public_keys
                    .iter()
                    .map(|k| decode_key(k))
                    .collect::<Result<_, _>>()?,
                commitments: s
                    .commitments
                    .as_deref()
                    .map(common::points_from_hex)
                    .transpose()?,
            });
        }
        let states = self.commitment_states(record).await?;
        let mut share_public_keys = Vec::with_capacity(states.len());
        let mut dealers = None;
        for state in states.iter() {
            let state = state
                .as_ref()
                .ok_or_else(|| Error::internal("a ready order lacks a commitment"))?;
            share_public_keys.push(decode_key(
                state.share_public_key.as_deref().unwrap_or_default(),
            )?);
            dealers = dealers.or(state.dealers.clone());
        }
        Ok(Sharing {
            fiduciaries: record.order.fiduciaries.clone(),
            threshold: record.order.threshold,
            share_public_keys,
            commitments: dealers
                .as_deref()
                .map(decode_dealers)
                .transpose()?
                .map(|d| Commitments::sum(&d))
                .transpose()
                .map_err(common::custody_error)?,
        })
    }

    async fn run_reshare(
        &self,
        reference: &str,
        target: Option<(Vec<String>, u32)>,
        dealers: Option<Vec<String>>,
    ) -> Result<Response, Error> {
        let _guard = self.locks.lock(reference).await;
        let mut record = self.record(reference).await?;
        if record.status != Status::Ready {
            return Err(Error::conflict(format!(
                "order {reference:?} is {}: only a ready wallet can be refreshed or reshared",
                serde_json::to_value(record.status).unwrap_or_default()
            )));
        }
        let current = self.current_sharing(&record).await?;
        let (fiduciaries, threshold) =
            target.unwrap_or_else(|| (current.fiduciaries.clone(), current.threshold));
        let dealers = match dealers {
            None => (1..=current.fiduciaries.len() as u32).collect(),
            Some(ids) => {
                let mut indices = Vec::with_capacity(ids.len());
                for id in &ids {
                    let position = current.fiduciaries.iter().position(|f| f == id);
                    indices.push(
                        position.ok_or_else(|| {
                            Error::bad_request(format!(
                                "dealer {id} is not a fiduciary of the wallet"
                            ))
                        })? as u32
                            + 1,
                    );
                }
                indices.sort_unstable();
                indices
            }
        };
        reshare::check_dealers(
            current.fiduciaries.len(),
            current.threshold as usize,
            &dealers,
        )
        .map_err(|e| Error::bad_request(e.to_string()))?;
        let wanted = Reshare {
            order: record.order.clone(),
            epoch: record.epoch + 1,
            previous: PublicShares::of(&current),
            dealers,
            fiduciaries,
            threshold,
        };
        let reshare = match &record.reshare {
            Some(state) => {
                let running: Reshare = common::decode_hex(&state.body)?;
                if running.fiduciaries != wanted.fiduciaries
                    || running.threshold != wanted.threshold
                {
                    return Err(Error::conflict(format!(
                        "a reshare of order {reference:?} to {} of {:?} is in progress: POST it again to finish it",
                        running.threshold, running.fiduciaries
                    )));
                }
                running
            }
            None => {
                for id in &wanted.fiduciaries {
                    if !current.fiduciaries.contains(id) {
                        self.resolve("fiduciary", id).await?;
                    }
                }
                let reshare_cid = wanted.cid().map_err(common::custody_error)?.to_string();
                record.reshare = Some(ReshareState {
                    body: common::encode_hex(&wanted)?,
                    reshare_cid: reshare_cid.clone(),
                    envelope_cids: Vec::new(),
                });
                record.reshare_error = None;
                self.host
                    .store()
                    .write(vec![
                        record_write(&record)?,
                        Write::put_json(
                            format!("{RESHARE_BY_CID_PREFIX}{reshare_cid}"),
                            &record.order.reference,
                        )?,
                    ])
                    .await?;
                wanted
            }
        };
        self.ask_reports(&mut record, &reshare).await?;
        self.take_sharing(&mut record, &reshare, &current).await?;
        Response::json(200, &self.view(&record).await?)
    }

    /// Sends the reshare to every dealer and new fiduciary and waits
    /// (bounded) for the new fiduciaries' reports.
    async fn ask_reports(&self, record: &mut OrderRecord, reshare: &Reshare) -> Result<(), Error> {
        let mut to: Vec<String> = reshare.dealer_ids().into_iter().map(String::from).collect();
        for f in &reshare.fiduciaries {
            if !to.contains(f) {
                to.push(f.clone());
            }
        }
        let sends = to
            .iter()
            .map(|f| common::send(&self.host, reshare, vec![f.clone()], Vec::new()));
        let mut sent = Vec::new();
        for (f, result) in to.iter().zip(join_all(sends).await) {
            match result {
                Ok(cid) => sent.push((cid, f.clone())),
                Err(e) => self.host.warn(format!(
                    "reshare of order {}: not delivered to fiduciary {f}: {}",
                    record.order.reference, e.message
                )),
            }
        }
        if let Some(state) = &mut record.reshare {
            state
                .envelope_cids
                .extend(sent.iter().map(|(cid, _)| cid.clone()));
        }
        // Volatile: only the envelope log (the reshare was recorded durably).
        self.host
            .store()
            .write_volatile(vec![record_write(record)?])
            .await?;
        let transport = self.host.transport();
        join_all(
            sent.iter()
                .filter(|(_, f)| reshare.new_index(f).is_some())
                .map(|(cid, f)| {
                    transport.await_reply_cid(
                        cid,
                        ReshareCommitment::KIND,
                        &[f.as_str()],
                        self.reply_timeout,
                    )
                }),
        )
        .await;
        Ok(())
    }

    /// With every new fiduciary's report in and checked: takes the new
    /// sharing (durably), then announces it. Leaves the reshare in progress
    /// (504) while reports are missing; ends it (422, the sharing in force
    /// unchanged) when one does not verify.
    async fn take_sharing(
        &self,
        record: &mut OrderRecord,
        reshare: &Reshare,
        current: &Sharing,
    ) -> Result<(), Error> {
        let cid = reshare.cid().map_err(common::custody_error)?.to_string();
        let store = self.host.store();
        let mut reports = Vec::with_capacity(reshare.fiduciaries.len());
        let mut silent = Vec::new();
        for (position, id) in reshare.fiduciaries.iter().enumerate() {
            match store
                .get_json::<ReportState>(&report_key(&cid, position as u32 + 1))
                .await?
            {
                None => silent.push(id.clone()),
                Some(ReportState {
                    error: Some(why), ..
                }) => {
                    return self
                        .end_reshare(
                            record,
                            format!("fiduciary {id} sent an invalid reshare report ({why})"),
                        )
                        .await;
                }
                Some(state) => {
                    let body = state
                        .body
                        .ok_or_else(|| Error::internal("a report record is inconsistent"))?;
                    reports.push(common::decode_hex::<ReshareCommitment>(&body)?);
                }
            }
        }
        if !silent.is_empty() {
            return Err(Error::timeout(format!(
                "fiduciaries {} did not report a new share within {} ms (a dealer may be down); POST again to retry",
                silent.join(", "),
                self.reply_timeout.as_millis()
            )));
        }
        if let Some((id, _)) = reshare
            .fiduciaries
            .iter()
            .zip(&reports)
            .find(|(_, r)| r.dealer_commitments != reports[0].dealer_commitments)
        {
            return self
                .end_reshare(
                    record,
                    format!("fiduciary {id} reports other dealer commitments than the others: a dealer equivocated"),
                )
                .await;
        }
        let reshared =
            Reshared::assemble(reshare.clone(), &reports).map_err(common::custody_error)?;
        let sharing = match reshared.verify() {
            Ok(s) if s.group_key().ok() == current.group_key().ok() => s,
            Ok(_) => {
                return self
                    .end_reshare(record, "the new sharing has another key".into())
                    .await;
            }
            Err(e) => {
                return self
                    .end_reshare(record, format!("the new sharing does not verify ({e})"))
                    .await;
            }
        };
        record.epoch = reshare.epoch;
        record.sharing = Some(SharingRecord {
            fiduciaries: sharing.fiduciaries.clone(),
            threshold: sharing.threshold,
            share_public_keys: sharing.share_public_keys.iter().map(hex_key).collect(),
            commitments: sharing
                .commitments
                .as_ref()
                .map(common::hex_points)
                .transpose()?,
            reshared: common::encode_hex(&reshared)?,
            reshared_cids: Vec::new(),
        });
        record.reshare = None;
        // The commit point: from here redemptions ask for the new shares,
        // which every new fiduciary stored before reporting.
        self.save(record).await?;
        self.host.info(format!(
            "order {}: sharing epoch {} taken ({} of {})",
            record.order.reference,
            record.epoch,
            sharing.threshold,
            sharing.fiduciaries.len()
        ));
        self.announce(record).await
    }

    /// Sends the latest `custody/reshared` to every old and new fiduciary
    /// and to the beneficiary.
    pub(crate) async fn announce(&self, record: &mut OrderRecord) -> Result<(), Error> {
        let Some(sharing) = &record.sharing else {
            return Ok(());
        };
        let reshared: Reshared = common::decode_hex(&sharing.reshared)?;
        let mut to: Vec<String> = reshared.reshare.previous.fiduciaries.clone();
        for f in &reshared.reshare.fiduciaries {
            if !to.contains(f) {
                to.push(f.clone());
            }
        }
        let sends = to
            .iter()
            .map(|f| common::send(&self.host, &reshared, vec![f.clone()], Vec::new()));
        let mut results = join_all(sends).await;
        let beneficiary = record.order.beneficiary.clone();
        results.push(
            common::send(
                &self.host,
                &ResharedNotice(reshared.clone()),
                vec![beneficiary.clone()],
                Vec::new(),
            )
            .await,
        );
        to.push(beneficiary);
        let mut cids = Vec::new();
        for (f, result) in to.iter().zip(results) {
            match result {
                Ok(cid) => cids.push(cid),
                Err(e) => self.host.warn(format!(
                    "order {}: reshared not delivered to {f}: {}",
                    record.order.reference, e.message
                )),
            }
        }
        if let Some(sharing) = &mut record.sharing {
            sharing.reshared_cids.extend(cids);
        }
        self.host
            .store()
            .write_volatile(vec![record_write(record)?])
            .await
    }

    /// Ends a reshare that cannot complete; the sharing in force stays.
    async fn end_reshare(&self, record: &mut OrderRecord, why: String) -> Result<(), Error> {
        let why = format!("{why}; the reshare was abandoned, the wallet keeps its sharing");
        record.reshare = None;
        record.reshare_error = Some(why.clone());
        self.save(record).await?;
        Err(Error::unprocessable(why))
    }

    /// The beneficiary asks for a refresh: run it, as `POST .../refresh`
    /// would. Only the order's beneficiary may ask, and only of a ready
    /// wallet; a failure is logged (the beneficiary may ask again).
    pub(crate) async fn on_refresh_request(
        &self,
        envelope: &Envelope,
    ) -> Result<Result<(), String>, Error> {
        let request: RefreshRequest = match common::open(envelope) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why)),
        };
        let store = self.host.store();
        let Some(reference) = store
            .get_json::<String>(format!("{BY_CID_PREFIX}{}", request.order_cid))
            .await?
        else {
            return Ok(Err("no such order from this node".into()));
        };
        let record = self.record(&reference).await?;
        if !self
            .host
            .identity()
            .same_party(&envelope.sender, &record.order.beneficiary)
            .await?
        {
            return Ok(Err(
                "only the order's beneficiary may ask for a refresh".into()
            ));
        }
        match self.run_reshare(&reference, None, None).await {
            Ok(_) => Ok(Ok(())),
            Err(e) => {
                self.host.warn(format!(
                    "order {reference}: the refresh the beneficiary asked for did not complete: {}",
                    e.message
                ));
                Ok(Ok(()))
            }
        }
    }

    /// Checks a new fiduciary's reshare report as it arrives and records it.
    pub(crate) async fn on_reshare_commitment(
        &self,
        envelope: &Envelope,
    ) -> Result<Result<(), String>, Error> {
        let report: ReshareCommitment = match common::open(envelope) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why)),
        };
        let cid = report.reshare_cid.to_string();
        let store = self.host.store();
        let Some(reference) = store
            .get_json::<String>(format!("{RESHARE_BY_CID_PREFIX}{cid}"))
            .await?
        else {
            return Ok(Err("no such reshare from this node".into()));
        };
        let record = self.record(&reference).await?;
        let Some(state) = &record.reshare else {
            return Ok(Ok(()));
        };
        if state.reshare_cid != cid {
            return Ok(Ok(()));
        }
        let reshare: Reshare = common::decode_hex(&state.body)?;
        // The sender as the reshare names it (it may have rotated since).
        let Some(named) = self
            .host
            .identity()
            .party_among(&reshare.fiduciaries, &envelope.sender)
            .await?
            .map(str::to_string)
        else {
            return Ok(Err(
                "the sender is not a new fiduciary of the reshare".into()
            ));
        };
        let index = reshare
            .new_index(&named)
            .ok_or_else(|| Error::internal("a named fiduciary has no index"))?;
        let key = report_key(&cid, index);
        if let Some(ReportState { body: Some(_), .. }) = store.get_json::<ReportState>(&key).await?
        {
            return Ok(Ok(()));
        }
        let state = match report.verify(&reshare, &named) {
            Ok(_) => ReportState {
                commitment_cid: envelope.cid.clone(),
                body: Some(common::encode_hex(&report)?),
                error: None,
            },
            Err(e) => ReportState {
                commitment_cid: envelope.cid.clone(),
                body: None,
                error: Some(e.to_string()),
            },
        };
        // Volatile, as for commitments: the envelope is durable in the
        // inbox and is processed again should this record be lost.
        store
            .write_volatile(vec![Write::put_json(&key, &state)?])
            .await?;
        Ok(match state.error {
            None => Ok(()),
            Some(e) => Err(format!("invalid reshare report: {e}")),
        })
    }
}
