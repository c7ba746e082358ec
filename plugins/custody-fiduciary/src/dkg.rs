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

//! The fiduciary's part of the joint-Feldman DKG of a t-of-n order (see
//! `docs/custody.md` §7).
//!
//! On the order it draws its polynomial f_i (kept in the keystore before
//! anything leaves, so a repeated order deals the same shares), keeps its
//! own share f_i(i), sends f_i(j) sealed to each other fiduciary j
//! (`custody/dkg-deal`) and its commitments to the principal
//! (`custody/dkg-dealt`). Deals received are kept in the keystore, even
//! before the order itself arrives. With every dealer's deal in, each is
//! checked against its commitments: a bad one is answered with a
//! `custody/dkg-complaint` naming its dealer (to the principal and the other
//! fiduciaries) and nothing is committed; otherwise s_j = Σ_i f_i(j) is
//! stored and its commitment sent, exactly as an n-of-n share would be.

use std::collections::BTreeMap;

use milagro_custody::SecretScalar;
use milagro_custody::feldman::{self, Commitments};
use milagro_custody::messages::{Commitment, Complaint, Deal, Dealt, Order};
use milagro_custody::shamir::{Polynomial, Share};
use milagro_plugin_api::zeroize::Zeroizing;
use milagro_plugin_api::{Envelope, Error, Write};
use serde::{Deserialize, Serialize};

use crate::{Fiduciary, HELD_PREFIX, Held, Outcome, REFERENCE_PREFIX, common, share_label};

const DKG_PREFIX: &str = "dkg/";

/// The progress of one order's DKG at this fiduciary (no secret: the
/// polynomial and the deals received are in the keystore).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// The order, once it arrived (deals may come first).
    order: Option<Order>,
    order_envelope_cids: Vec<String>,
    /// Each dealer's commitments (hex points), by dealer node ID.
    dealers: BTreeMap<String, Vec<String>>,
    /// The dealer this fiduciary complained about.
    complaint: Option<String>,
}

fn polynomial_label(order_cid: &str) -> String {
    format!("dkg-polynomial/{order_cid}")
}

fn deal_label(order_cid: &str, dealer: &str) -> String {
    format!("dkg-deal/{order_cid}/{dealer}")
}

fn scalar_bytes(bytes: &Zeroizing<Vec<u8>>) -> Result<&[u8; 32], Error> {
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| Error::internal("a stored DKG share has the wrong length"))
}

impl Fiduciary {
    async fn progress(&self, cid: &str) -> Result<Progress, Error> {
        Ok(self
            .host
            .store()
            .get_json(format!("{DKG_PREFIX}{cid}"))
            .await?
            .unwrap_or_default())
    }

    async fn save_progress(&self, cid: &str, progress: &Progress) -> Result<(), Error> {
        self.host
            .store()
            .put_json(format!("{DKG_PREFIX}{cid}"), progress)
            .await
    }

    /// This fiduciary's polynomial for the order (drawn and kept on first use).
    async fn polynomial(&self, cid: &str, threshold: usize) -> Result<Polynomial, Error> {
        let keystore = self.host.keystore();
        let label = polynomial_label(cid);
        if let Some(bytes) = keystore.get_secret(&label).await? {
            return Polynomial::from_bytes(&bytes).map_err(common::custody_error);
        }
        let polynomial = Polynomial::random(threshold).map_err(common::custody_error)?;
        keystore
            .put_secret(&label, polynomial.to_bytes().as_slice())
            .await?;
        Ok(polynomial)
    }

    /// A t-of-n order (checked by the caller, under the order's lock): deal,
    /// or if already committed, send the commitment again. Deals are sent
    /// again to every other fiduciary each time the order comes, in case
    /// one missed them.
    pub(crate) async fn deal(
        &self,
        envelope: &Envelope,
        order: &Order,
        cid: &str,
        me: &str,
    ) -> Outcome {
        let index = order
            .fiduciary_index(me)
            .ok_or_else(|| Error::internal("not a fiduciary of the order"))?;
        let polynomial = self.polynomial(cid, order.threshold as usize).await?;
        let commitments = Commitments::of(&polynomial);
        let mut progress = self.progress(cid).await?;
        if progress.order.is_none() {
            progress.order = Some(order.clone());
        }
        progress.order_envelope_cids.push(envelope.cid.clone());
        if !progress.dealers.contains_key(me) {
            let own = polynomial.share(index).map_err(common::custody_error)?;
            self.host
                .keystore()
                .put_secret(&deal_label(cid, me), own.value_bytes().as_slice())
                .await?;
            progress
                .dealers
                .insert(me.to_string(), common::hex_points(&commitments)?);
        }
        self.save_progress(cid, &progress).await?;

        let order_cid = order.cid().map_err(common::custody_error)?;
        let mut deals = Vec::new();
        for (position, fiduciary) in order.fiduciaries.iter().enumerate() {
            if fiduciary == me {
                continue;
            }
            let share = polynomial
                .share(position as u32 + 1)
                .map_err(common::custody_error)?;
            let deal = Deal::new(&order_cid, &commitments, &self.fault.dealt(share)?)
                .map_err(common::custody_error)?;
            deals.push((fiduciary, deal));
        }
        // Before `dealt`: the other fiduciaries' deals must not wait for it.
        self.send_deals(&format!("order {cid}"), &deals, &envelope.cid)
            .await;
        let dealt = Dealt::new(&order_cid, &commitments).map_err(common::custody_error)?;
        common::send(
            &self.host,
            &dealt,
            vec![order.principal.clone()],
            vec![envelope.cid.clone()],
        )
        .await?;
        self.finish(cid, me, progress).await
    }

    /// A deal from another fiduciary: kept, then the DKG finished if complete.
    pub(crate) async fn on_deal(&self, envelope: &Envelope) -> Outcome {
        let deal: Deal = match common::open(envelope) {
            Ok(d) => d,
            Err(why) => return Ok(Err(why)),
        };
        let cid = deal.order_cid.to_string();
        let _guard = self.locks.lock(&cid).await;
        let mut progress = self.progress(&cid).await?;
        if let Some(order) = &progress.order
            && order.fiduciary_index(&envelope.sender).is_none()
        {
            return Ok(Err("the dealer is not a fiduciary of the order".into()));
        }
        if progress.dealers.contains_key(&envelope.sender) {
            return Ok(Ok(()));
        }
        let commitments = deal.commitments().map_err(common::custody_error)?;
        self.host
            .keystore()
            .put_secret(
                &deal_label(&cid, &envelope.sender),
                deal.share.to_bytes().as_slice(),
            )
            .await?;
        progress
            .dealers
            .insert(envelope.sender.clone(), common::hex_points(&commitments)?);
        self.save_progress(&cid, &progress).await?;
        let me = self.host.identity().this_node().await?.id;
        self.finish(&cid, &me, progress).await
    }

    /// With the order and every dealer's deal in: verify, then complain or
    /// commit. Idempotent: does nothing once committed or complained.
    async fn finish(&self, cid: &str, me: &str, mut progress: Progress) -> Outcome {
        let Some(order) = progress.order.clone() else {
            return Ok(Ok(()));
        };
        let store = self.host.store();
        let held_key = format!("{HELD_PREFIX}{cid}");
        if let Some(mut held) = store.get_json::<Held>(&held_key).await? {
            // Committed before: the principal asked again.
            let last = progress
                .order_envelope_cids
                .last()
                .cloned()
                .unwrap_or_default();
            held.order_envelope_cids.push(last.clone());
            self.send_commitment(&mut held, &last).await?;
            return Ok(Ok(()));
        }
        if progress.complaint.is_some()
            || !order
                .fiduciaries
                .iter()
                .all(|f| progress.dealers.contains_key(f))
        {
            return Ok(Ok(()));
        }
        let index = order
            .fiduciary_index(me)
            .ok_or_else(|| Error::internal("not a fiduciary of the order"))?;
        let keystore = self.host.keystore();
        let mut dealers = Vec::with_capacity(order.fiduciaries.len());
        let mut shares = Vec::with_capacity(order.fiduciaries.len());
        for f in &order.fiduciaries {
            dealers.push(common::points_from_hex(&progress.dealers[f])?);
            let bytes = keystore
                .get_secret(&deal_label(cid, f))
                .await?
                .ok_or_else(|| Error::internal("a kept DKG deal is missing"))?;
            shares.push(
                Share::from_bytes(index, scalar_bytes(&bytes)?).map_err(common::custody_error)?,
            );
        }
        let t = order.threshold as usize;
        let pairs: Vec<(&Commitments, &Share)> = dealers.iter().zip(&shares).collect();
        let mut faulty = feldman::verify_dealings(index, &pairs);
        faulty.extend(
            dealers
                .iter()
                .enumerate()
                .filter(|(_, c)| c.threshold() != t)
                .map(|(i, _)| i),
        );
        let order_cid = order.cid().map_err(common::custody_error)?;
        if let Some(&position) = faulty.iter().min() {
            let dealer = order.fiduciaries[position].clone();
            progress.complaint = Some(dealer.clone());
            self.save_progress(cid, &progress).await?;
            let mut to: Vec<String> = order
                .fiduciaries
                .iter()
                .filter(|f| *f != me && **f != dealer)
                .cloned()
                .collect();
            to.push(order.principal.clone());
            let complaint = Complaint {
                order_cid,
                dealer: dealer.clone(),
            };
            common::send(
                &self.host,
                &complaint,
                to,
                progress.order_envelope_cids.clone(),
            )
            .await?;
            return Ok(Err(format!(
                "fiduciary {dealer} dealt a share that does not match its commitments"
            )));
        }
        let share = feldman::combine_shares(index, &pairs).map_err(common::custody_error)?;
        keystore
            .put_secret(
                &share_label(cid),
                SecretScalar::from_scalar(*share.value())
                    .map_err(common::custody_error)?
                    .to_bytes()
                    .as_slice(),
            )
            .await?;
        let commitment = Commitment::new_threshold(&order_cid, me, &share, &dealers)
            .map_err(common::custody_error)?;
        let mut held = self.held_record(&order, cid, &commitment)?;
        let last = progress
            .order_envelope_cids
            .last()
            .cloned()
            .unwrap_or_default();
        held.order_envelope_cids = progress.order_envelope_cids.clone();
        let reference_key = format!("{REFERENCE_PREFIX}{}/{}", order.principal, order.reference);
        store
            .write(vec![
                Write::put_json(&reference_key, &cid.to_string())?,
                Write::put_json(&held_key, &held)?,
            ])
            .await?;
        self.send_commitment(&mut held, &last).await?;
        Ok(Ok(()))
    }
}
