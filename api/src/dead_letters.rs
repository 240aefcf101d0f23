//! Replaying dead-lettered webhooks: `oms-api dead-letters list|replay`.
//!
//! A payload is dead-lettered when its signature was valid but the OMS could
//! not map it (a shape we did not expect, a quantity of 0). Once the cause is
//! fixed (a new release, or a corrected product in Shopify that is
//! re-sent), an operator replays it: the stored, already verified bytes go
//! through the same mapping as a live delivery and start the order's
//! workflow. Replays are idempotent like deliveries: the order id and the
//! workflow id derive from the Shopify order, so a replay of an order that
//! did arrive meanwhile allocates nothing twice.

use db::{Db, DbError, DeadLetter};
use domain::{PaymentGate, ShopDomain};
use orchestrator::{Orchestrator, Started, TemporalError, TemporalSettings};
use serde::Serialize;
use tracing::Instrument;
use uuid::Uuid;
use workflows::contracts::SagaPolicy;

use crate::{
    routes::webhooks::{self, Processor},
    shopify_dto::{MappingError, map_order},
};

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReplayOutcome {
    /// The order's workflow was started (or was already running).
    Started {
        /// The order.
        order_id: Uuid,
        /// Its workflow (find it in the Temporal UI).
        workflow_id: String,
    },
    /// The order's workflow had already finished: nothing was started.
    Duplicate {
        /// The order.
        order_id: Uuid,
        /// Its workflow.
        workflow_id: String,
    },
    /// The payload now maps but holds nothing to ship: nothing was
    /// started, and it stays listed with this reason.
    Ignored {
        /// Why.
        reason: String,
    },
    /// Another topic's payload went through its webhook's processing; what
    /// that processing answered (`status` and the order it concerns).
    Processed {
        /// The webhook's answer.
        answer: serde_json::Value,
    },
    /// The payload still cannot be processed; it stays dead-lettered with
    /// this latest reason.
    StillInvalid {
        /// Why (names fields, never customer values).
        reason: String,
    },
}

/// Why a replay was not attempted or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No dead letter has this id.
    #[error("no dead letter with id {0}")]
    NotFound(i64),
    /// It was replayed before; pass `force` to replay it again.
    #[error(
        "dead letter {id} was already replayed as order {order_id}; use --force to replay it again"
    )]
    AlreadyReplayed {
        /// The dead letter.
        id: i64,
        /// The order its replay started.
        order_id: Uuid,
    },
    /// Postgres failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Temporal failed; nothing was marked, so the replay can be retried.
    #[error(transparent)]
    Temporal(#[from] TemporalError),
}

/// Lists and replays dead letters.
#[derive(Clone)]
pub struct Replayer {
    db: Db,
    orchestrator: Orchestrator,
    policy: SagaPolicy,
    payment_gate: PaymentGate,
}

impl Replayer {
    /// Over the API's database, Temporal settings and saga policy; unpaid
    /// orders wait as by default.
    pub fn new(db: Db, temporal: TemporalSettings, policy: SagaPolicy) -> Self {
        Self {
            db,
            orchestrator: Orchestrator::new(temporal),
            policy,
            payment_gate: PaymentGate::default(),
        }
    }

    /// Unpaid orders wait as `gate` says (the API's setting).
    pub fn with_payment_gate(mut self, gate: PaymentGate) -> Self {
        self.payment_gate = gate;
        self
    }

    /// Dead letters, oldest first (only pending ones unless `all`).
    pub async fn list(&self, all: bool, limit: i64) -> Result<Vec<DeadLetter>, ReplayError> {
        Ok(self.db.dead_letters(all, limit).await?)
    }

    /// Runs dead letter `id` through its webhook's processing again: an
    /// order is started; a cancellation, payment or warehouse event goes to
    /// its order's workflow. Every attempt is counted; a successful one
    /// records the order it concerns.
    pub async fn replay(&self, id: i64, force: bool) -> Result<ReplayOutcome, ReplayError> {
        let letter = self
            .db
            .dead_letter_by_id(id)
            .await?
            .ok_or(ReplayError::NotFound(id))?;
        if let (Some(order_id), false) = (letter.replayed_order_id, force) {
            return Err(ReplayError::AlreadyReplayed { id, order_id });
        }
        let span = tracing::info_span!("dead_letter_replay", dead_letter.id = id, shop = %letter.shop_domain);
        self.replay_letter(letter).instrument(span).await
    }

    async fn replay_letter(&self, letter: DeadLetter) -> Result<ReplayOutcome, ReplayError> {
        let id = letter.id;
        if let Some(at) = letter.payload_purged_at {
            return self
                .still_invalid(id, format!("its payload was purged at {at} (retention)"))
                .await;
        }
        if letter.shop_domain == "wms" {
            return self.process(letter, None).await;
        }
        let shop = match ShopDomain::parse(&letter.shop_domain) {
            Ok(shop) => shop,
            Err(e) => return self.still_invalid(id, format!("shop domain: {e}")).await,
        };
        if letter.topic != "orders/create" {
            return self.process(letter, Some(shop)).await;
        }
        // The request id leads from the workflow's memo back to this replay.
        let request_id = format!("dead-letter-{id}-{}", Uuid::new_v4());
        let input = match map_order(
            &letter.payload,
            &shop,
            Some(request_id),
            self.policy.clone(),
            &self.payment_gate,
        ) {
            Ok(input) => input,
            Err(MappingError::NothingToShip) => {
                let reason = MappingError::NothingToShip.to_string();
                self.db.record_replay(id, Err(&reason)).await?;
                return Ok(ReplayOutcome::Ignored { reason });
            }
            Err(MappingError::Invalid(reason)) => return self.still_invalid(id, reason).await,
        };
        let order_id = input.order_id;
        let outcome =
            match crate::intake::accept_order::<ReplayError>(&self.db, &self.orchestrator, input)
                .await?
            {
                Started::Running { workflow_id } => ReplayOutcome::Started {
                    order_id,
                    workflow_id,
                },
                Started::AlreadyFinished { workflow_id } => ReplayOutcome::Duplicate {
                    order_id,
                    workflow_id,
                },
            };
        self.db.record_replay(id, Ok(Some(order_id))).await?;
        tracing::info!(order.id = %order_id, "dead letter replayed");
        Ok(outcome)
    }

    /// Any other topic: the stored bytes go through the same processing as a
    /// live delivery (`shop` is `None` for the warehouse's events).
    async fn process(
        &self,
        letter: DeadLetter,
        shop: Option<ShopDomain>,
    ) -> Result<ReplayOutcome, ReplayError> {
        let id = letter.id;
        let processor = Processor {
            db: self.db.clone(),
            orchestrator: self.orchestrator.clone(),
            saga_policy: self.policy.clone(),
            payment_gate: std::sync::Arc::new(self.payment_gate.clone()),
            replaying: Some(id),
        };
        let handled = match &shop {
            Some(shop) => {
                let request_id = format!("dead-letter-{id}-{}", Uuid::new_v4());
                webhooks::process(
                    &processor,
                    &letter.payload,
                    shop,
                    &letter.topic,
                    letter.webhook_id.clone(),
                    Some(request_id),
                )
                .await
            }
            None => webhooks::wms::process(&processor, &letter.payload, &letter.topic).await,
        };
        let answer = match handled {
            Ok(((_, axum::Json(answer)), _)) => answer,
            // The order is not ready, or Temporal is down: a later replay
            // may go through.
            Err(e) => return self.still_invalid(id, e.to_string()).await,
        };
        if answer["status"] == "still_invalid" {
            let reason = answer["reason"]
                .as_str()
                .unwrap_or("still invalid")
                .to_string();
            return self.still_invalid(id, reason).await;
        }
        let order = answer["orderId"].as_str().and_then(|o| o.parse().ok());
        self.db.record_replay(id, Ok(order)).await?;
        tracing::info!(topic = %letter.topic, status = %answer["status"], "dead letter replayed");
        Ok(ReplayOutcome::Processed { answer })
    }

    async fn still_invalid(&self, id: i64, reason: String) -> Result<ReplayOutcome, ReplayError> {
        self.db.record_replay(id, Err(&reason)).await?;
        tracing::warn!(reason = %reason, "dead letter still cannot be processed");
        Ok(ReplayOutcome::StillInvalid { reason })
    }
}
