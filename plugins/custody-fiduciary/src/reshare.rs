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

//! The fiduciary's part of share refresh and resharing (`docs/custody.md`
//! §9).
//!
//! - On `custody/reshare` (from the order's principal) as a dealer: checks
//!   that the previous sharing named is the one whose share it holds, draws
//!   its polynomial g_i with constant ω_i·share (kept in the keystore before
//!   anything leaves, so a repeated reshare deals the same), and sends
//!   g_i(j) sealed to each new fiduciary j (`custody/reshare-deal`).
//! - As a new fiduciary: keeps each deal as it comes (deals may come before
//!   the reshare); with every dealer's in, checks them (Feldman, and each
//!   constant against ω_i·(old public share)), stores its new share
//!   **durably before answering**, and reports it (`custody/reshare-commitment`).
//! - On `custody/reshared` (from the principal), after checking the whole
//!   new sharing itself: the new share becomes the one it holds; the old
//!   share, the polynomial and the deals are erased. A fiduciary that left
//!   the set erases its share and keeps only the record.
//!
//! Until `reshared`, the old share stays: a crash anywhere leaves the old
//! sharing whole, and once the principal has taken the new one (it only
//! does so with every new share stored), the new one is whole too.
//! Reshares are handled one at a time (one lock), then under the order's lock.

use std::collections::BTreeMap;

use milagro_custody::feldman::Commitments;
use milagro_custody::messages::{Reshare, ReshareCommitment, ReshareDeal, Reshared};
use milagro_custody::shamir::Share;
use milagro_plugin_api::{Envelope, Error, Write};
use serde::{Deserialize, Serialize};

use crate::{Fiduciary, HELD_PREFIX, Held, Outcome, REFERENCE_PREFIX, common};

const RESHARE_PREFIX: &str = "reshare/";
/// The one lock all reshare handling takes (before any order's lock).
const RESHARE_LOCK: &str = "reshare";

/// A reshare's progress at this fiduciary (no secret: the polynomial and
/// the deals are in the keystore).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// The reshare, once it arrived (hex of its canonical body).
    reshare: Option<String>,
    envelope_cids: Vec<String>,
    /// Each dealer's commitments (hex points), by dealer node ID.
    deals: BTreeMap<String, Vec<String>>,
}

/// The reshare's CID and its order's, as text.
fn cids(reshare: &Reshare) -> Result<(String, String), Error> {
    let cid = reshare.cid().map_err(common::custody_error)?;
    let order_cid = reshare.order.cid().map_err(common::custody_error)?;
    Ok((cid.to_string(), order_cid.to_string()))
}

fn polynomial_label(reshare_cid: &str) -> String {
    format!("reshare-polynomial/{reshare_cid}")
}

fn deal_label(reshare_cid: &str, dealer: &str) -> String {
    format!("reshare-deal/{reshare_cid}/{dealer}")
}

impl Fiduciary {
    async fn reshare_progress(&self, cid: &str) -> Result<Progress, Error> {
        Ok(self
            .host
            .store()
            .get_json(format!("{RESHARE_PREFIX}{cid}"))
            .await?
            .unwrap_or_default())
    }

    async fn save_reshare_progress(&self, cid: &str, progress: &Progress) -> Result<(), Error> {
        self.host
            .store()
            .put_json(format!("{RESHARE_PREFIX}{cid}"), progress)
            .await
    }

    pub(crate) async fn on_reshare(&self, envelope: &Envelope) -> Outcome {
        let reshare: Reshare = match common::open(envelope) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why)),
        };
        let identity = self.host.identity();
        if !identity
            .same_party(&envelope.sender, &reshare.order.principal)
            .await?
        {
            return Ok(Err(
                "the reshare is not signed by the order's principal".into()
            ));
        }
        // This node as the reshare names it (it may have rotated since).
        let old_me = identity.self_among(&reshare.previous.fiduciaries).await?;
        let new_me = identity.self_among(&reshare.fiduciaries).await?;
        let dealer = old_me.and_then(|id| reshare.dealer_index(id));
        let member = new_me.and_then(|id| reshare.new_index(id));
        if dealer.is_none() && member.is_none() {
            return Ok(Err("this node neither deals nor is a new fiduciary".into()));
        }
        // Its own deal is kept under its ID among the dealers.
        let me = old_me.or(new_me).unwrap_or_default().to_string();
        if let Some(allowed) = &self.principals
            && !allowed.contains(&reshare.order.principal)
        {
            return Ok(Err(
                "the principal is not in this fiduciary's allowlist".into()
            ));
        }
        let (cid, order_cid) = cids(&reshare)?;
        let _all = self.locks.lock(RESHARE_LOCK).await;
        let _order = self.locks.lock(&order_cid).await;
        let held: Option<Held> = self
            .host
            .store()
            .get_json(format!("{HELD_PREFIX}{order_cid}"))
            .await?;
        if let Some(held) = &held
            && held.epoch >= reshare.epoch
        {
            // Done already (a late copy), or superseded.
            return Ok(match held.reshare_cid.as_deref() == Some(cid.as_str()) {
                true => Ok(()),
                false => Err(format!(
                    "this fiduciary already holds sharing epoch {} of the order",
                    held.epoch
                )),
            });
        }
        let mut progress = self.reshare_progress(&cid).await?;
        progress.reshare = Some(common::encode_hex(&reshare)?);
        progress.envelope_cids.push(envelope.cid.clone());
        if let Some(index) = dealer {
            let Some(held) = &held else {
                return Ok(Err("this fiduciary holds no share of the order".into()));
            };
            if let Err(why) = self
                .deal_reshare(envelope, &reshare, &cid, index, held, &me, &mut progress)
                .await?
            {
                return Ok(Err(why));
            }
        }
        self.save_reshare_progress(&cid, &progress).await?;
        match member {
            Some(_) => self.finish_reshare(&cid, progress).await,
            None => Ok(Ok(())),
        }
    }

    /// Deals this fiduciary's part (old index `index`) to every new
    /// fiduciary; its own deal, if it stays, is kept directly.
    #[allow(clippy::too_many_arguments)]
    async fn deal_reshare(
        &self,
        envelope: &Envelope,
        reshare: &Reshare,
        cid: &str,
        index: u32,
        held: &Held,
        me: &str,
        progress: &mut Progress,
    ) -> Outcome {
        let position = index as usize - 1;
        let previous_key = hex::encode(&reshare.previous.share_public_keys[position][..]);
        if held.retired || held.epoch + 1 != reshare.epoch || held.share_public_key != previous_key
        {
            return Ok(Err(format!(
                "the reshare replaces another sharing than the one held here (epoch {})",
                held.epoch
            )));
        }
        let keystore = self.host.keystore();
        let label = polynomial_label(cid);
        let polynomial = match keystore.get_secret(&label).await? {
            Some(bytes) => milagro_custody::shamir::Polynomial::from_bytes(&bytes)
                .map_err(common::custody_error)?,
            None => {
                let share = common::get_scalar(&self.host, &held.share_label())
                    .await?
                    .ok_or_else(|| Error::internal("a held share is missing"))?;
                let weight = reshare
                    .previous
                    .sharing()
                    .and_then(|s| s.dealer_weight(index, &reshare.dealers))
                    .map_err(common::custody_error)?;
                let polynomial = milagro_custody::reshare::dealer_polynomial(
                    &share,
                    &weight,
                    reshare.threshold as usize,
                )
                .map_err(common::custody_error)?;
                keystore
                    .put_secret(&label, polynomial.to_bytes().as_slice())
                    .await?;
                polynomial
            }
        };
        let commitments = Commitments::of(&polynomial);
        let reshare_cid = reshare.cid().map_err(common::custody_error)?;
        let mut deals = Vec::new();
        for (position, fiduciary) in reshare.fiduciaries.iter().enumerate() {
            let share = polynomial
                .share(position as u32 + 1)
                .map_err(common::custody_error)?;
            if self.host.identity().is_self(fiduciary).await? {
                keystore
                    .put_secret(&deal_label(cid, me), share.value_bytes().as_slice())
                    .await?;
                progress
                    .deals
                    .insert(me.to_string(), common::hex_points(&commitments)?);
                continue;
            }
            let deal = ReshareDeal::new(&reshare_cid, &commitments, &self.fault.dealt(share)?)
                .map_err(common::custody_error)?;
            deals.push((fiduciary, deal));
        }
        self.send_deals(&format!("reshare {cid}"), &deals, &envelope.cid)
            .await;
        Ok(Ok(()))
    }

    /// A deal from a dealer: kept, then the new share made if complete.
    pub(crate) async fn on_reshare_deal(&self, envelope: &Envelope) -> Outcome {
        let deal: ReshareDeal = match common::open(envelope) {
            Ok(d) => d,
            Err(why) => return Ok(Err(why)),
        };
        let cid = deal.reshare_cid.to_string();
        let _all = self.locks.lock(RESHARE_LOCK).await;
        let mut progress = self.reshare_progress(&cid).await?;
        // The dealer as the reshare names it (it may have rotated since);
        // before the reshare is known, as it signed.
        let dealer = match &progress.reshare {
            Some(body) => {
                let reshare: Reshare = common::decode_hex(body)?;
                let dealers: Vec<String> =
                    reshare.dealer_ids().into_iter().map(String::from).collect();
                match self
                    .host
                    .identity()
                    .party_among(&dealers, &envelope.sender)
                    .await?
                {
                    Some(id) => id.to_string(),
                    None => return Ok(Err("the sender does not deal in this reshare".into())),
                }
            }
            None => envelope.sender.clone(),
        };
        if progress.deals.contains_key(&dealer) {
            return Ok(Ok(()));
        }
        let commitments = deal.commitments().map_err(common::custody_error)?;
        self.host
            .keystore()
            .put_secret(&deal_label(&cid, &dealer), deal.share.to_bytes().as_slice())
            .await?;
        progress
            .deals
            .insert(dealer, common::hex_points(&commitments)?);
        self.save_reshare_progress(&cid, &progress).await?;
        self.finish_reshare(&cid, progress).await
    }

    /// With the reshare and every dealer's deal in: check, store the new
    /// share, report it. Sends the stored report again once done.
    async fn finish_reshare(&self, cid: &str, mut progress: Progress) -> Outcome {
        let Some(body) = progress.reshare.clone() else {
            return Ok(Ok(()));
        };
        let reshare: Reshare = common::decode_hex(&body)?;
        let dealers = reshare.dealer_ids();
        // Deals that came before the reshare are kept under their signer's
        // ID: find each dealer's, whatever ID of its chain it signed with.
        let identity = self.host.identity();
        for dealer in &dealers {
            if progress.deals.contains_key(*dealer) {
                continue;
            }
            let signers: Vec<String> = progress.deals.keys().cloned().collect();
            let Some(signer) = identity.party_among(&signers, dealer).await? else {
                return Ok(Ok(()));
            };
            let signer = signer.to_string();
            let points = progress.deals.remove(&signer).unwrap_or_default();
            if let Some(share) = common::get_scalar(&self.host, &deal_label(cid, &signer)).await? {
                self.host
                    .keystore()
                    .put_secret(&deal_label(cid, dealer), share.to_bytes().as_slice())
                    .await?;
            }
            progress.deals.insert(dealer.to_string(), points);
        }
        let me = identity
            .self_among(&reshare.fiduciaries)
            .await?
            .ok_or_else(|| Error::internal("not a new fiduciary of the reshare"))?
            .to_string();
        let me = me.as_str();
        let index = reshare
            .new_index(me)
            .ok_or_else(|| Error::internal("not a new fiduciary of the reshare"))?;
        let order_cid = reshare
            .order
            .cid()
            .map_err(common::custody_error)?
            .to_string();
        let _order = self.locks.lock(&order_cid).await;
        let store = self.host.store();
        let held_key = format!("{HELD_PREFIX}{order_cid}");
        let held: Option<Held> = store.get_json(&held_key).await?;
        let last = progress.envelope_cids.last().cloned().unwrap_or_default();
        if let Some(held) = &held
            && let Some(report) = held.reshare_report(cid)
        {
            self.send_report(&reshare, report, &last).await?;
            return Ok(Ok(()));
        }
        let mut commitments = Vec::with_capacity(dealers.len());
        let mut shares = Vec::with_capacity(dealers.len());
        for dealer in &dealers {
            commitments.push(common::points_from_hex(&progress.deals[*dealer])?);
            let value = common::get_scalar(&self.host, &deal_label(cid, dealer))
                .await?
                .ok_or_else(|| Error::internal("a kept reshare deal is missing"))?;
            shares.push(Share::new(index, *value.as_scalar()).map_err(common::custody_error)?);
        }
        let expected = reshare
            .expected_constants()
            .map_err(common::custody_error)?;
        let pairs: Vec<(&Commitments, &Share)> = commitments.iter().zip(&shares).collect();
        let share = match milagro_custody::reshare::combine_deals(
            index,
            reshare.threshold as usize,
            reshare.fiduciaries.len(),
            &pairs,
            &expected,
        ) {
            Ok(share) => share,
            Err(faulty) => {
                let named: Vec<&str> = faulty.0.iter().map(|&p| dealers[p]).collect();
                return Ok(Err(format!(
                    "reshare {cid}: the deals of {} do not match their commitments or the previous sharing",
                    named.join(", ")
                )));
            }
        };
        let reshare_cid = reshare.cid().map_err(common::custody_error)?;
        let report = ReshareCommitment::new(&reshare_cid, me, &share, &commitments)
            .map_err(common::custody_error)?;
        let mut held = match held {
            Some(held) => held,
            None => self.held_record_for_reshare(&reshare, &order_cid),
        };
        let label = Held::label_of(&order_cid, reshare.epoch);
        // Stored before anything leaves: the principal takes the new sharing
        // only once every new fiduciary has reported, i.e. stored, its share.
        self.host
            .keystore()
            .put_secret(&label, share.to_bytes().as_slice())
            .await?;
        held.pending = Some(crate::Pending {
            epoch: reshare.epoch,
            reshare_cid: cid.to_string(),
            share_public_key: hex::encode(report.share_public_key),
            report: common::encode_hex(&report)?,
        });
        let reference_key = format!(
            "{REFERENCE_PREFIX}{}/{}",
            reshare.order.principal, reshare.order.reference
        );
        store
            .write(vec![
                Write::put_json(&reference_key, &order_cid)?,
                Write::put_json(&held_key, &held)?,
            ])
            .await?;
        self.send_report(&reshare, &common::encode_hex(&report)?, &last)
            .await?;
        Ok(Ok(()))
    }

    async fn send_report(&self, reshare: &Reshare, report: &str, link: &str) -> Result<(), Error> {
        let report: ReshareCommitment = common::decode_hex(report)?;
        common::send(
            &self.host,
            &report,
            vec![reshare.order.principal.clone()],
            vec![link.to_string()],
        )
        .await?;
        Ok(())
    }

    /// The record of an order this fiduciary joins through a reshare.
    fn held_record_for_reshare(&self, reshare: &Reshare, order_cid: &str) -> Held {
        Held {
            fiduciaries: reshare.fiduciaries.clone(),
            threshold: reshare.threshold,
            joined_at_epoch: reshare.epoch,
            ..Held::new(&reshare.order, order_cid, self.host.now_unix_ms())
        }
    }

    /// The principal's announcement of a completed reshare: checked in
    /// full, then the shares are switched and the old ones erased.
    pub(crate) async fn on_reshared(&self, envelope: &Envelope) -> Outcome {
        let reshared: Reshared = match common::open(envelope) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why)),
        };
        let reshare = &reshared.reshare;
        if !self
            .host
            .identity()
            .same_party(&envelope.sender, &reshare.order.principal)
            .await?
        {
            return Ok(Err(
                "the reshared notice is not signed by the order's principal".into(),
            ));
        }
        let sharing = match reshared.verify() {
            Ok(s) => s,
            Err(e) => return Ok(Err(format!("the new sharing does not verify: {e}"))),
        };
        let (cid, order_cid) = cids(reshare)?;
        let _all = self.locks.lock(RESHARE_LOCK).await;
        let _order = self.locks.lock(&order_cid).await;
        let store = self.host.store();
        let held_key = format!("{HELD_PREFIX}{order_cid}");
        let Some(mut held) = store.get_json::<Held>(&held_key).await? else {
            return Ok(Err(format!("no order {order_cid} is held here")));
        };
        if held.principal != reshare.order.principal || held.epoch >= reshare.epoch {
            return Ok(Ok(()));
        }
        let me = self
            .host
            .identity()
            .self_among(&reshare.fiduciaries)
            .await?;
        let old_label =
            (held.joined_at_epoch <= held.epoch && !held.retired).then(|| held.share_label());
        match me.and_then(|id| reshare.new_index(id)) {
            Some(index) => {
                let Some(pending) = held.pending.take_if(|p| p.reshare_cid == cid) else {
                    return Ok(Err(format!(
                        "reshare {cid} completed without this fiduciary's new share"
                    )));
                };
                let expected = hex::encode(milagro_custody::keys::encode_public_key(
                    &sharing.share_public_keys[index as usize - 1],
                ));
                if pending.share_public_key != expected {
                    return Ok(Err(format!(
                        "reshare {cid} completed with another share for this fiduciary"
                    )));
                }
                held.share_public_key = pending.share_public_key;
                held.commitment = pending.report;
                held.reshare_cid = Some(cid.clone());
            }
            None => held.retired = true,
        }
        held.epoch = reshare.epoch;
        held.fiduciaries = sharing.fiduciaries.clone();
        held.threshold = sharing.threshold;
        // The new state first, then the erasures: a crash between them
        // leaves only secrets nothing uses, erased again next time.
        store.put_json(&held_key, &held).await?;
        let keystore = self.host.keystore();
        if let Some(label) = old_label {
            keystore.delete_secret(&label).await?;
        }
        keystore.delete_secret(&polynomial_label(&cid)).await?;
        for dealer in reshare.dealer_ids() {
            keystore.delete_secret(&deal_label(&cid, dealer)).await?;
        }
        store
            .delete(format!("{RESHARE_PREFIX}{cid}").as_bytes())
            .await?;
        self.host.info(format!(
            "order {order_cid}: sharing epoch {} taken ({} of {}){}",
            reshare.epoch,
            sharing.threshold,
            sharing.fiduciaries.len(),
            if held.retired {
                "; this fiduciary left it and erased its share"
            } else {
                ""
            }
        ));
        Ok(Ok(()))
    }
}
