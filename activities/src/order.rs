//! The order saga's activities (the workflow is `workflows::OrderWorkflow`,
//! in a file of the same name).
// The activity macros generate public items without doc comments.
#![allow(missing_docs)]

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use db::{Db, DbError, FulfillmentOrder};
use domain::{Channel, OrderStatus};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use uuid::Uuid;
use vendors::http::ClientError;
use vendors::shopify::{ShipmentReport, ShipmentTracking, ShopifyClient, TrackingUpdate};
use vendors::wms::{NewWmsOrder, Recipient, RecipientAddress, WmsClient, WmsProduct};
use workflows::contracts::{
    self, Adoption, Claim, Compensation, FulfillmentAccepted, LineInput, LineProblem, LineQty,
    OrderInput, ReconcileInput, Recorded, Repair, ReserveOrderInput, ReserveOutcome, SagaPolicy,
    Sale, StrandedOrder, Transition, WarehouseCheck, error_types,
};

use crate::{
    failure::{client_failure, db_failure, invalid_state, retry_until_answered, temporal_failure},
    metrics::ActivityMetrics,
    observe::observed,
};

/// What the order activities need: the database, the warehouse, and the
/// shops (to report shipments).
pub struct OrderActivities {
    db: Db,
    wms: WmsClient,
    /// The configured shops' Admin APIs, by domain (shipments are reported
    /// to the shop an order came from).
    shops: HashMap<String, ShopifyClient>,
    metrics: ActivityMetrics,
}

impl OrderActivities {
    /// Bundles what the activities need.
    pub fn new(db: Db, wms: WmsClient) -> Self {
        Self {
            db,
            wms,
            shops: HashMap::new(),
            metrics: ActivityMetrics::default(),
        }
    }

    /// The shops whose orders' shipments are reported.
    #[must_use]
    pub fn with_shops(mut self, shops: Vec<ShopifyClient>) -> Self {
        self.shops = shops
            .into_iter()
            .map(|c| (c.domain().to_string(), c))
            .collect();
        self
    }

    /// Records every attempt's outcome and duration in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: ActivityMetrics) -> Self {
        self.metrics = metrics;
        self
    }
}

impl OrderActivities {
    /// Asks the warehouse whether it has the order; cancels it if so. Every
    /// failure is retried: until the warehouse answers, nothing may be
    /// released.
    async fn settle(&self, order_id: Uuid) -> Result<WarehouseCheck, ActivityError> {
        let Some(wms_order_id) = self
            .wms
            .find_order(&order_id.to_string())
            .await
            .map_err(retry_until_answered)?
        else {
            return Ok(WarehouseCheck::Absent);
        };
        match self.wms.cancel_order(&wms_order_id).await {
            Ok(()) => {
                tracing::warn!(wms.order_id = %wms_order_id, "the warehouse had the order after all; cancelled");
                Ok(WarehouseCheck::Cancelled { wms_order_id })
            }
            Err(ClientError::Permanent { message, .. }) => {
                tracing::warn!(wms.order_id = %wms_order_id, "the warehouse keeps the order");
                Ok(WarehouseCheck::Kept {
                    wms_order_id,
                    reason: message,
                })
            }
            Err(e) => Err(retry_until_answered(e)),
        }
    }
}

/// The input of an order's saga rebuilt from its record: the lines, and no
/// customer data (activities read that from Postgres).
fn saga_input_from_record(detail: &db::OrderDetail) -> OrderInput {
    OrderInput {
        order_id: detail.summary.id,
        channel: detail.summary.channel,
        shop: detail.summary.shop.0.clone(),
        external_id: detail.summary.external_id.clone(),
        name: None,
        currency: None,
        placed_at: None,
        lines: detail
            .lines
            .iter()
            .map(|l| LineInput {
                line_no: l.line_no,
                sku: l.sku.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price.clone(),
                external_line_id: None,
                title: l.title.clone(),
            })
            .collect(),
        shipping_address: None,
        request_id: None,
        policy: SagaPolicy::default(),
        resume: None,
        awaits_payment: detail.awaits_payment,
    }
}

/// The order as the warehouse takes it: our id is its reference.
fn wms_order(order: &FulfillmentOrder) -> NewWmsOrder {
    let reference = order.wms_reference();
    let a = order.shipping_address.clone().unwrap_or_default();
    NewWmsOrder::dtc(
        reference.clone(),
        order.name.clone().unwrap_or(reference),
        Recipient {
            name: a.name.unwrap_or_default(),
            phone_number: a.phone,
            address: RecipientAddress {
                address1: a.address1,
                address2: a.address2,
                city: a.city,
                state: a.province_code,
                zip_code: a.zip,
                country: a.country_code,
            },
        },
        order
            .lines
            .iter()
            .map(|l| WmsProduct {
                reference_id: l.sku.clone(),
                name: l.title.clone().unwrap_or_else(|| l.sku.clone()),
                quantity: l.quantity,
            })
            .collect(),
    )
}

#[activities]
impl OrderActivities {
    /// Persists the order once.
    #[activity(definition = contracts::RecordOrder)]
    pub async fn record_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: OrderInput,
    ) -> Result<Recorded, ActivityError> {
        let workflow_id = ctx.info().workflow_id.clone().unwrap_or_default();
        let work = async {
            let status = self
                .db
                .record_order(&orchestrator::order_record(&input, &workflow_id))
                .await
                .map_err(db_failure)?;
            tracing::info!(status = %status, lines = input.lines.len(), "order recorded");
            Ok(Recorded { status })
        };
        observed(&self.metrics, &ctx, Some(input.order_id), work).await
    }

    /// Compares each SKU's total quantity with what the warehouse can sell.
    #[activity(definition = contracts::CheckWmsStock)]
    pub async fn check_wms_stock(
        self: Arc<Self>,
        ctx: ActivityContext,
        lines: Vec<LineQty>,
    ) -> Result<Vec<LineProblem>, ActivityError> {
        let work = async {
            let mut wanted: BTreeMap<&str, (i64, Vec<&LineQty>)> = BTreeMap::new();
            // Lines without a SKU are the reservation step's to reject.
            for line in lines.iter().filter(|l| !l.sku.is_empty()) {
                let e = wanted.entry(line.sku.as_str()).or_default();
                e.0 += i64::from(line.quantity);
                e.1.push(line);
            }
            let mut problems = Vec::new();
            for (sku, (total, lines)) in wanted {
                let reason = match self
                    .wms
                    .sellable(sku)
                    .await
                    .map_err(|e| client_failure(e, error_types::WMS_REJECTED))?
                {
                    None => Some("unknown to the warehouse".to_string()),
                    Some(n) if n < total => {
                        Some(format!("the warehouse can sell {n}, {total} requested"))
                    }
                    Some(_) => None,
                };
                if let Some(reason) = reason {
                    problems.extend(lines.into_iter().map(|l| LineProblem {
                        line_no: l.line_no,
                        sku: l.sku.clone(),
                        reason: reason.clone(),
                    }));
                }
            }
            problems.sort_by_key(|p| p.line_no);
            Ok(problems)
        };
        observed(&self.metrics, &ctx, None, work).await
    }

    /// All lines or none, in one transaction.
    #[activity(definition = contracts::ReserveOrder)]
    pub async fn reserve_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ReserveOrderInput,
    ) -> Result<ReserveOutcome, ActivityError> {
        let work = async {
            let outcome = self
                .db
                .reserve_order(input.order_id, &input.lines)
                .await
                .map_err(db_failure)?;
            match &outcome {
                ReserveOutcome::Reserved { skus } => {
                    tracing::info!(skus = skus.len(), "order reserved")
                }
                ReserveOutcome::Rejected { problems } => {
                    tracing::info!(problems = problems.len(), "order cannot be reserved")
                }
            }
            Ok(outcome)
        };
        observed(&self.metrics, &ctx, Some(input.order_id), work).await
    }

    /// Hands the order to the warehouse and records its acceptance.
    #[activity(definition = contracts::SubmitFulfillment)]
    pub async fn submit_fulfillment(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<FulfillmentAccepted, ActivityError> {
        let work = async {
            let order = self
                .db
                .fulfillment_order(order_id)
                .await
                .map_err(db_failure)?;
            let at_warehouse = matches!(
                order.status,
                OrderStatus::FulfillmentRequested | OrderStatus::OnHold
            );
            match (at_warehouse, &order.wms_order_id) {
                (true, Some(id)) => {
                    return Ok(FulfillmentAccepted {
                        wms_order_id: id.clone(),
                    });
                }
                // Its lines changed after the hand-over: the warehouse's
                // order was cancelled, and its replacement goes now.
                (true, None) => {
                    let wms_order_id = self
                        .wms
                        .create_order(&wms_order(&order))
                        .await
                        .map_err(|e| client_failure(e, error_types::WMS_REJECTED))?;
                    self.db
                        .record_replacement(order_id, &wms_order_id)
                        .await
                        .map_err(db_failure)?;
                    tracing::info!(wms.order_id = %wms_order_id, revision = order.revision, "warehouse order replaced");
                    return Ok(FulfillmentAccepted { wms_order_id });
                }
                (false, _) => {}
            }
            if order.status != OrderStatus::Reserved {
                return Err(db_failure(DbError::IllegalTransition {
                    from: order.status,
                    to: OrderStatus::FulfillmentRequested,
                }));
            }
            let wms_order_id = self
                .wms
                .create_order(&wms_order(&order))
                .await
                .map_err(|e| client_failure(e, error_types::WMS_REJECTED))?;
            self.db
                .mark_fulfillment_requested(order_id, &wms_order_id)
                .await
                .map_err(db_failure)?;
            tracing::info!(wms.order_id = %wms_order_id, "fulfillment requested");
            Ok(FulfillmentAccepted { wms_order_id })
        };
        observed(&self.metrics, &ctx, Some(order_id), work).await
    }

    /// Compensation: gives the order's reserved units back.
    #[activity(definition = contracts::ReleaseOrder)]
    pub async fn release_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<Vec<String>, ActivityError> {
        let work = async {
            let skus = self.db.release_order(order_id).await.map_err(db_failure)?;
            tracing::info!(skus = skus.len(), "reservations released");
            Ok(skus)
        };
        observed(&self.metrics, &ctx, Some(order_id), work).await
    }

    /// The warehouse shipped: reserved units become SOLD.
    #[activity(definition = contracts::SellOrder)]
    pub async fn sell_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        sale: Sale,
    ) -> Result<(), ActivityError> {
        let work = async {
            self.db
                .sell_order(sale.order_id, sale.reason.as_deref())
                .await
                .map_err(db_failure)?;
            tracing::info!("order shipped; reserved units sold");
            Ok(())
        };
        observed(&self.metrics, &ctx, Some(sale.order_id), work).await
    }

    /// Cancels the warehouse order, if the warehouse has one.
    #[activity(definition = contracts::CancelFulfillment)]
    pub async fn cancel_fulfillment(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<(), ActivityError> {
        let work = async {
            let order = self
                .db
                .fulfillment_order(order_id)
                .await
                .map_err(db_failure)?;
            if let Some(wms_order_id) = &order.wms_order_id {
                self.wms
                    .cancel_order(wms_order_id)
                    .await
                    .map_err(|e| client_failure(e, error_types::WMS_REJECTED))?;
                tracing::info!(wms.order_id = %wms_order_id, "warehouse order cancelled");
            }
            Ok(())
        };
        observed(&self.metrics, &ctx, Some(order_id), work).await
    }

    /// RESERVED → COMPENSATING, unless the warehouse's acceptance was
    /// recorded first.
    #[activity(definition = contracts::ClaimCompensation)]
    pub async fn claim_compensation(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: Compensation,
    ) -> Result<Claim, ActivityError> {
        let work = async {
            let claim = match self
                .db
                .claim_compensation(input.order_id, &input.reason)
                .await
                .map_err(db_failure)?
            {
                Some(wms_order_id) => Claim::Accepted { wms_order_id },
                None => Claim::Claimed,
            };
            tracing::info!(?claim, "compensation claimed");
            Ok(claim)
        };
        observed(&self.metrics, &ctx, Some(input.order_id), work).await
    }

    /// Asks the warehouse whether it has the order; cancels it if so.
    #[activity(definition = contracts::SettleWithWarehouse)]
    pub async fn settle_with_warehouse(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<WarehouseCheck, ActivityError> {
        observed(&self.metrics, &ctx, Some(order_id), self.settle(order_id)).await
    }

    /// Reports a shipped Shopify order to its shop: a fulfillment with the
    /// tracking the warehouse gave, the customer notified.
    #[activity(definition = contracts::ReportShipment)]
    pub async fn report_shipment(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<String, ActivityError> {
        let work = async {
            let Some((client, external_id, tracking)) = self.shipment_of(order_id).await? else {
                return Ok("not a Shopify order: nothing to report".to_string());
            };
            let report = client
                .report_shipment(&external_id, &tracking)
                .await
                .map_err(|e| client_failure(e, error_types::SHOPIFY_REJECTED))?;
            Ok(match report {
                ShipmentReport::Created { fulfillment_id } => {
                    tracing::info!(%fulfillment_id, "shipment reported to Shopify");
                    format!("fulfillment {fulfillment_id}")
                }
                ShipmentReport::AlreadyFulfilled => "already fulfilled in Shopify".to_string(),
            })
        };
        observed(&self.metrics, &ctx, Some(order_id), work).await
    }

    /// Takes a refund's or an edit's units off the order.
    #[activity(definition = contracts::AdjustOrder)]
    pub async fn adjust_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: contracts::Adjustment,
    ) -> Result<contracts::Adjusted, ActivityError> {
        let work = async {
            let adjusted = self
                .db
                .adjust_order(input.order_id, &input.adjustment, input.at_warehouse)
                .await
                .map_err(db_failure)?;
            tracing::info!(
                applied = adjusted.applied,
                remaining = adjusted.remaining_units,
                "order adjusted"
            );
            Ok(adjusted)
        };
        observed(&self.metrics, &ctx, Some(input.order_id), work).await
    }

    /// Gives a shipped Shopify order's fulfillment the tracking the
    /// warehouse reported last; the customer is told.
    #[activity(definition = contracts::UpdateShipmentTracking)]
    pub async fn update_shipment_tracking(
        self: Arc<Self>,
        ctx: ActivityContext,
        order_id: Uuid,
    ) -> Result<String, ActivityError> {
        let work = async {
            let Some((client, external_id, tracking)) = self.shipment_of(order_id).await? else {
                return Ok("not a Shopify order: nothing to report".to_string());
            };
            let update = client
                .update_tracking(&external_id, &tracking)
                .await
                .map_err(|e| client_failure(e, error_types::SHOPIFY_REJECTED))?;
            Ok(match update {
                TrackingUpdate::Updated { fulfillment_id } => {
                    tracing::info!(%fulfillment_id, "tracking updated in Shopify");
                    format!("tracking of fulfillment {fulfillment_id} updated")
                }
                TrackingUpdate::NoFulfillment => {
                    "no fulfillment in Shopify yet: the shipment report carries it".to_string()
                }
                TrackingUpdate::Unchanged { fulfillment_id } => {
                    format!("fulfillment {fulfillment_id} already shows this tracking")
                }
            })
        };
        observed(&self.metrics, &ctx, Some(order_id), work).await
    }

    /// A Shopify order's shop client, Shopify id and latest tracking; `None`
    /// for an order from another channel.
    async fn shipment_of(
        &self,
        order_id: Uuid,
    ) -> Result<Option<(&ShopifyClient, String, ShipmentTracking)>, ActivityError> {
        let detail = self.db.order_detail(order_id).await.map_err(db_failure)?;
        let (Some(shop), Channel::Shopify) =
            (detail.summary.shop.0.as_deref(), detail.summary.channel)
        else {
            return Ok(None);
        };
        let client = self.shops.get(shop).ok_or_else(|| {
            invalid_state(format!("shop {shop} is not configured in this worker"))
        })?;
        if let Some(at) = self
            .db
            .shop_uninstalled_at(shop)
            .await
            .map_err(db_failure)?
        {
            return Err(invalid_state(format!(
                "the app was uninstalled from {shop} at {at}: nothing is written to it"
            )));
        }
        let tracking = detail.tracking.unwrap_or_default();
        Ok(Some((
            client,
            detail.summary.external_id.clone(),
            ShipmentTracking {
                company: tracking.carrier,
                number: tracking.number,
                url: tracking.url,
            },
        )))
    }

    /// Orders whose workflow has ended while they are not final or hold units.
    #[activity(definition = contracts::FindStranded)]
    pub async fn find_stranded_orders(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ReconcileInput,
    ) -> Result<Vec<StrandedOrder>, ActivityError> {
        let client = ctx.client();
        let work = async {
            let candidates = self
                .db
                .reconcile_candidates(input.order_id, input.quiet_secs, input.limit)
                .await
                .map_err(db_failure)?;
            let mut stranded = Vec::new();
            for c in candidates {
                let state = orchestrator::workflow_state(&client, &c.workflow_id)
                    .await
                    .map_err(temporal_failure)?;
                if let Some(workflow_state) = state {
                    tracing::warn!(order.id = %c.order_id, status = %c.status, %workflow_state, "stranded order: its workflow has ended");
                    stranded.push(StrandedOrder {
                        order_id: c.order_id,
                        status: c.status,
                        workflow_id: c.workflow_id,
                        workflow_state,
                    });
                }
            }
            Ok(stranded)
        };
        observed(&self.metrics, &ctx, input.order_id, work).await
    }

    /// Settles an order whose workflow ended: what the warehouse never took
    /// is released and FAILED; what it has gets a new workflow.
    #[activity(definition = contracts::RepairOrder)]
    pub async fn repair_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        order: StrandedOrder,
    ) -> Result<Repair, ActivityError> {
        let client = ctx.client();
        let task_queue = ctx.info().task_queue.clone();
        // Stable across this activity's retries, so a retry after a start
        // that did go through finds that workflow rather than making another.
        let run = ctx
            .info()
            .workflow_run_id
            .clone()
            .unwrap_or_else(|| ctx.info().activity_id.clone());
        let order_id = order.order_id;
        let work = async {
            let why = format!(
                "its workflow {} ended ({})",
                order.workflow_id, order.workflow_state
            );
            let released = |action: String| async {
                let status = self
                    .db
                    .release_stranded(order_id, &format!("{why}; {action}"))
                    .await
                    .map_err(db_failure)?;
                Ok::<_, ActivityError>(Repair {
                    order_id,
                    status,
                    action,
                })
            };
            // Read again: an earlier attempt of this activity may have moved it.
            let detail = self.db.order_detail(order_id).await.map_err(db_failure)?;
            let resume_in = match detail.summary.status {
                OrderStatus::Reserved
                | OrderStatus::AwaitingPayment
                | OrderStatus::Compensating => match self.settle(order_id).await? {
                    WarehouseCheck::Kept {
                        wms_order_id,
                        reason,
                    } => {
                        self.db
                            .adopt_fulfillment(order_id, &wms_order_id, &reason)
                            .await
                            .map_err(db_failure)?;
                        OrderStatus::FulfillmentRequested
                    }
                    _ => {
                        return released("released: the warehouse does not have it".into()).await;
                    }
                },
                s @ (OrderStatus::FulfillmentRequested
                | OrderStatus::OnHold
                | OrderStatus::Shipped) => s,
                OrderStatus::Received if order.workflow_state == "not found" => {
                    // Recorded at intake, but its workflow never started
                    // (Temporal was down and the sender gave up retrying):
                    // the order is real, so its saga starts now, from what
                    // Postgres holds, under the id intake would have used.
                    let action = "its workflow had never started; started now".to_string();
                    self.db
                        .hand_over_order(order_id, &order.workflow_id, &format!("{why}; {action}"))
                        .await
                        .map_err(db_failure)?;
                    let input = saga_input_from_record(&detail);
                    orchestrator::start_resumed_order(
                        &client,
                        &task_queue,
                        input,
                        &order.workflow_id,
                    )
                    .await
                    .map_err(temporal_failure)?;
                    tracing::warn!(workflow.id = %order.workflow_id, "recorded order without a workflow started");
                    return Ok(Repair {
                        order_id,
                        status: OrderStatus::Received,
                        action,
                    });
                }
                OrderStatus::Received => return released("never allocated".into()).await,
                // A final order that still holds units.
                _ => return released("its leftover reservations released".into()).await,
            };
            let base = order
                .workflow_id
                .split(":resumed:")
                .next()
                .unwrap_or(&order.workflow_id);
            let suffix: String = run
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(12)
                .collect();
            let workflow_id = format!("{base}:resumed:{suffix}");
            let action = format!("taken over in {resume_in} by workflow {workflow_id}");
            self.db
                .hand_over_order(order_id, &workflow_id, &format!("{why}; {action}"))
                .await
                .map_err(db_failure)?;
            let input = OrderInput {
                order_id,
                channel: detail.summary.channel,
                shop: detail.summary.shop.0.clone(),
                external_id: detail.summary.external_id.clone(),
                name: detail.summary.name.clone(),
                currency: None,
                placed_at: None,
                lines: Vec::new(),
                shipping_address: None,
                request_id: None,
                policy: SagaPolicy::default(),
                resume: Some(resume_in),
                awaits_payment: false,
            };
            orchestrator::start_resumed_order(&client, &task_queue, input, &workflow_id)
                .await
                .map_err(temporal_failure)?;
            tracing::warn!(%workflow_id, status = %resume_in, "stranded order taken over by a new workflow");
            Ok(Repair {
                order_id,
                status: resume_in,
                action,
            })
        };
        observed(&self.metrics, &ctx, Some(order_id), work).await
    }

    /// COMPENSATING → FULFILLMENT_REQUESTED: the warehouse keeps the order.
    #[activity(definition = contracts::AdoptFulfillment)]
    pub async fn adopt_fulfillment(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: Adoption,
    ) -> Result<(), ActivityError> {
        let work = async {
            self.db
                .adopt_fulfillment(input.order_id, &input.wms_order_id, &input.reason)
                .await
                .map_err(db_failure)
        };
        observed(&self.metrics, &ctx, Some(input.order_id), work).await
    }

    /// Status move, history and notification.
    #[activity(definition = contracts::TransitionOrder)]
    pub async fn transition_order(
        self: Arc<Self>,
        ctx: ActivityContext,
        t: Transition,
    ) -> Result<(), ActivityError> {
        let work = async {
            self.db
                .transition_order(
                    t.order_id,
                    t.to,
                    t.reason.as_deref(),
                    &t.problems,
                    t.notify.as_deref(),
                )
                .await
                .map_err(db_failure)
        };
        observed(&self.metrics, &ctx, Some(t.order_id), work).await
    }
}
