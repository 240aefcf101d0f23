//! The order saga.
// The workflow macros generate public items without doc comments.
#![allow(missing_docs)]

use std::time::Duration;

use domain::{Channel, OrderStatus};
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_workflow::{
    ActivityCloseTimeouts, ActivityExecutionError, ActivityOptions, RetryPolicy, RetryState,
    SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult,
    common::error::IncomingError, join,
};
use uuid::Uuid;

use crate::contracts::{
    AdoptFulfillment, Adoption, CancelFulfillment, CheckWmsStock, Claim, ClaimCompensation,
    Compensation, FulfillmentAccepted, LineProblem, LineQty, OrderAdjustment, OrderInput,
    PaymentEvent, RecordOrder, ReleaseOrder, ReportShipment, ReserveOrder, ReserveOrderInput,
    ReserveOutcome, SagaPolicy, Sale, SellOrder, SettleWithWarehouse, StatusChange,
    SubmitFulfillment, SyncChannels, SyncInput, SyncReport, Transition, TransitionOrder,
    UpdateShipmentTracking, WarehouseCheck, error_types,
};
use crate::search;

mod adjustment;
mod payment;

use adjustment::{adjust, adjustable};
use payment::await_payment;

/// Pinned workflow type name.
pub const ORDER_WORKFLOW_TYPE: &str = "oms.OrderWorkflow";

/// Patch marker: runs with it leave channel sync to the outbox and the
/// shops' syncs; runs without it (started before) push levels themselves.
const OUTBOX_CHANNEL_SYNC: &str = "channel-sync-outbox";

/// Patch marker: runs with it settle a failed submit with the warehouse
/// before they release anything; runs without it release at once.
const SETTLE_FAILED_SUBMIT: &str = "settle-failed-submit";
/// A status change that was accepted but could not be applied is recorded
/// on the order: the client that was answered 202 learns of it there.
const RECORD_FAILED_CHANGE: &str = "record-failed-status-change";
/// A shipped Shopify order is reported to its shop (a fulfillment with
/// tracking), so Shopify stops showing it unfulfilled and mails the customer.
const REPORT_SHIPMENT: &str = "report-shipment-to-shopify";
/// Longest the report may keep failing (the shop down) before the order gets
/// a notification instead; meanwhile the order takes no other change.
const REPORT_SHIPMENT_DEADLINE_SECS: u64 = 600;
/// An order whose payment is not captured is reserved but waits for it
/// before it goes to the warehouse.
const PAYMENT_GATE: &str = "payment-gate";

/// What the `status` query (and the workflow result) tells about an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// The order.
    pub order_id: Uuid,
    /// Where the saga stands.
    pub status: OrderStatus,
    /// Why it is REJECTED or FAILED.
    pub reason: Option<String>,
    /// Per-line reasons of a rejection.
    pub problems: Vec<LineProblem>,
    /// The warehouse's id, once it accepted the order.
    pub wms_order_id: Option<String>,
    /// What the saga did, in order (for people reading the query).
    pub steps: Vec<String>,
}

/// One order's saga: record → WMS stock check → reserve all lines (which
/// queues the new levels for every shop) → WMS fulfillment → done, or
/// compensate.
#[workflow]
pub struct OrderWorkflow {
    input: OrderInput,
    view: OrderView,
    /// A status change is being applied; others are refused meanwhile.
    busy: bool,
    /// What the shop last reported of the payment, if anything.
    payment: Option<PaymentEvent>,
    /// Tracking updates being reported to Shopify.
    tracking_reports: u32,
    /// Keys of the adjustments applied (a redelivered refund changes nothing).
    adjustments: Vec<String>,
}

#[workflow_methods]
impl OrderWorkflow {
    /// Sets up the state before any handler can run.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: OrderInput) -> Self {
        let view = OrderView {
            order_id: input.order_id,
            status: OrderStatus::Received,
            reason: None,
            problems: Vec::new(),
            wms_order_id: None,
            steps: Vec::new(),
        };
        Self {
            input,
            view,
            busy: false,
            payment: None,
            tracking_reports: 0,
            adjustments: Vec::new(),
        }
    }

    /// The shop reported the payment (captured, or never to be). Kept
    /// whenever it arrives: a payment reported while the order is still
    /// being reserved is found by the gate; one for an order that did not
    /// wait for it changes nothing.
    #[signal(name = "payment")]
    pub fn payment(&mut self, _ctx: &mut SyncWorkflowContext<Self>, event: PaymentEvent) {
        self.payment = Some(event);
    }

    /// The saga.
    #[run(name = ORDER_WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderView> {
        let input = ctx.state(|s| s.input.clone());
        let policy = input.policy.clone();
        let order_id = input.order_id;

        if let Some(status) = input.resume {
            // The order's previous workflow ended while the warehouse had the
            // order; this run owns it from here (ship, deliver, cancel).
            step(
                ctx,
                format!("resumed in {status}: the previous workflow had ended"),
            );
            set_status(ctx, status);
            ctx.wait_condition(OrderWorkflow::finished).await?;
            return Ok(view(ctx));
        }

        let recorded = ctx
            .execute_activity(RecordOrder, input.clone(), db_opts(&policy))
            .await?;
        if recorded.status != OrderStatus::Received {
            // An earlier run (past Temporal's id-reuse window) already handled
            // this order: never allocate twice.
            step(ctx, format!("duplicate: order already {}", recorded.status));
            set_status(ctx, recorded.status);
            return Ok(view(ctx));
        }
        step(ctx, "recorded".into());

        let lines: Vec<LineQty> = input
            .lines
            .iter()
            .map(|l| LineQty {
                line_no: l.line_no,
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect();

        let check = ctx
            .execute_activity(
                CheckWmsStock,
                lines.clone(),
                remote_opts(&policy, policy.stock_check_deadline_secs),
            )
            .await;
        match check {
            Ok(problems) if !problems.is_empty() => return reject(ctx, order_id, problems).await,
            Ok(_) => step(ctx, "wms stock covers the order".into()),
            // Postgres decides allocation; an unreachable WMS only costs us
            // the early warning.
            Err(e) => step(
                ctx,
                format!("wms stock check skipped: {}", failure_text(&e)),
            ),
        }

        let outcome = ctx
            .execute_activity(
                ReserveOrder,
                ReserveOrderInput { order_id, lines },
                db_opts(&policy),
            )
            .await?;
        let skus = match outcome {
            ReserveOutcome::Rejected { problems } => return reject(ctx, order_id, problems).await,
            ReserveOutcome::Reserved { skus } => skus,
        };
        set_status(ctx, OrderStatus::Reserved);
        step(ctx, format!("reserved {} SKU(s)", skus.len()));

        if input.awaits_payment && ctx.patched(PAYMENT_GATE) && !await_payment(ctx).await? {
            // Cancelled instead: voided, not paid in time, or by a client.
            ctx.wait_condition(OrderWorkflow::finished).await?;
            return Ok(view(ctx));
        }

        // Orders that started before the outbox told the shops themselves;
        // since then the reservation queued the new levels for every shop in
        // its own transaction, and each shop's sync pushes them.
        let legacy_sync = !ctx.patched(OUTBOX_CHANNEL_SYNC);
        let shared: &WorkflowContext<Self> = ctx;
        let submit = async {
            let submitted = shared
                .execute_activity(
                    SubmitFulfillment,
                    order_id,
                    remote_opts(&policy, policy.fulfillment_deadline_secs),
                )
                .await;
            // The order is the warehouse's from this moment, as Postgres
            // already says: status changes are accepted at once.
            if let Ok(FulfillmentAccepted { wms_order_id }) = &submitted {
                step(
                    shared,
                    format!("fulfillment requested: wms order {wms_order_id}"),
                );
                shared.state_mut(|s| s.view.wms_order_id = Some(wms_order_id.clone()));
                set_status(shared, OrderStatus::FulfillmentRequested);
            }
            submitted
        };
        let submitted = if legacy_sync {
            // A slow or throttled shop must not hold up the warehouse, so
            // both ran at once.
            let sync = shared.execute_activity(
                SyncChannels,
                SyncInput {
                    reference: order_id,
                    skus: skus.clone(),
                },
                remote_opts(&policy, policy.channel_sync_deadline_secs),
            );
            let (synced, submitted) = join!(sync, submit);
            report_sync(ctx, order_id, &policy, synced).await?;
            submitted
        } else {
            submit.await
        };

        match submitted {
            Ok(_) => {
                // The workflow owns the rest of the lifecycle: it stays open
                // until a `change_status` update delivers or cancels it.
                ctx.wait_condition(OrderWorkflow::finished).await?;
                Ok(view(ctx))
            }
            Err(e) => {
                let reason = failure_text(&e);
                if ctx.patched(SETTLE_FAILED_SUBMIT)
                    && let Some(kept) = settle(ctx, order_id, &policy, &reason).await?
                {
                    // The warehouse has the order after all: it goes on.
                    ctx.state_mut(|s| s.view.wms_order_id = Some(kept.clone()));
                    set_status(ctx, OrderStatus::FulfillmentRequested);
                    ctx.wait_condition(OrderWorkflow::finished).await?;
                    return Ok(view(ctx));
                }
                let failed = compensate(ctx, order_id, &policy, reason).await?;
                // A status change that arrived while the saga settled is
                // answered (refused) before the workflow closes.
                ctx.wait_condition(|s| !s.busy).await?;
                Ok(failed)
            }
        }
    }

    /// Refuses an adjustment the order cannot take now: while it is being
    /// allocated or handed over (the sender retries), after shipping.
    #[update_validator(adjust_lines)]
    fn validate_adjust_lines(
        &self,
        _ctx: &WorkflowContextView,
        _adjustment: &OrderAdjustment,
    ) -> Result<(), UpdateError> {
        if self.busy {
            return Err("another change of this order is in progress".into());
        }
        if !self.allows_now_or_after_hand_over(adjustable) {
            return Err(format!("an order in {} cannot be adjusted", self.view.status).into());
        }
        Ok(())
    }

    /// A refund or an edit before shipping takes units off the order: the
    /// warehouse's order is cancelled, the units come off the lines and the
    /// reservations (restocked ones are for sale again, in every shop), and
    /// the warehouse gets a replacement with what is left. Nothing left:
    /// the order is CANCELLED.
    #[update(name = "adjust_lines")]
    pub async fn adjust_lines(
        ctx: &mut WorkflowContext<Self>,
        adjustment: OrderAdjustment,
    ) -> Result<OrderView, UpdateError> {
        if ctx.state(|s| s.adjustments.contains(&adjustment.key)) {
            return Ok(view(ctx));
        }
        let status = take_turn(ctx).await?;
        if !adjustable(status) {
            // The hand-over ended otherwise (the warehouse refused: FAILED).
            ctx.state_mut(|s| s.busy = false);
            return Err(format!("an order in {status} cannot be adjusted").into());
        }
        let adjusted = adjust(ctx, adjustment).await;
        ctx.state_mut(|s| s.busy = false);
        adjusted.map(|()| view(ctx))
    }

    /// Refuses a tracking update there is nothing in Shopify to apply to.
    #[update_validator(report_tracking)]
    fn validate_report_tracking(
        &self,
        _ctx: &WorkflowContextView,
        _input: &(),
    ) -> Result<(), UpdateError> {
        if self.input.channel != Channel::Shopify {
            return Err("not a Shopify order: there is no fulfillment to update".into());
        }
        if !matches!(
            self.view.status,
            OrderStatus::Shipped | OrderStatus::Delivered
        ) {
            return Err(format!(
                "the order is {}: its shipment's report will carry the tracking",
                self.view.status
            )
            .into());
        }
        Ok(())
    }

    /// The warehouse changed a shipped order's tracking: its Shopify
    /// fulfillment gets it, and the customer an e-mail. A report that fails
    /// for good becomes a notification (the order itself is unaffected).
    #[update(name = "report_tracking")]
    pub async fn report_tracking(
        ctx: &mut WorkflowContext<Self>,
        _input: (),
    ) -> Result<String, UpdateError> {
        let (order_id, policy) = ctx.state(|s| (s.input.order_id, s.input.policy.clone()));
        ctx.state_mut(|s| s.tracking_reports += 1);
        let reported = ctx
            .execute_activity(UpdateShipmentTracking, order_id, shop_report_opts(&policy))
            .await;
        let answer = match reported {
            Ok(done) => {
                step(ctx, format!("tracking updated in Shopify: {done}"));
                Ok(done)
            }
            Err(e) => {
                let reason = format!(
                    "the new tracking was not reported to Shopify: {}",
                    failure_text(&e)
                );
                notify(
                    ctx,
                    order_id,
                    &policy,
                    reason.clone(),
                    "tracking_not_reported",
                )
                .await;
                Err(reason.into())
            }
        };
        ctx.state_mut(|s| s.tracking_reports -= 1);
        answer
    }

    /// The order as the saga sees it right now.
    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> OrderView {
        self.view.clone()
    }

    /// Refuses, before anything is recorded, a move the order cannot make now.
    #[update_validator(change_status)]
    fn validate_change_status(
        &self,
        _ctx: &WorkflowContextView,
        change: &StatusChange,
    ) -> Result<(), UpdateError> {
        if self.busy {
            return Err("another status change of this order is in progress".into());
        }
        if !self.allows_now_or_after_hand_over(|s| s.requestable_next().contains(&change.to)) {
            let from = self.view.status;
            return Err(format!("an order in {from} cannot become {}", change.to).into());
        }
        Ok(())
    }

    /// Applies a client's status change and answers with the new view:
    /// SHIPPED sells the reserved units; CANCELLED cancels the warehouse
    /// order, releases the units and re-syncs the channels; DELIVERED closes
    /// the order.
    #[update(name = "change_status")]
    pub async fn change_status(
        ctx: &mut WorkflowContext<Self>,
        change: StatusChange,
    ) -> Result<OrderView, UpdateError> {
        let from = take_turn(ctx).await?;
        if !from.requestable_next().contains(&change.to) {
            // The saga ended otherwise (the warehouse refused: FAILED).
            ctx.state_mut(|s| s.busy = false);
            return Err(format!("an order in {from} cannot become {}", change.to).into());
        }
        let to = change.to;
        let applied = apply_change(ctx, change).await;
        if let Err(e) = &applied
            && ctx.patched(RECORD_FAILED_CHANGE)
        {
            let (order_id, policy) = ctx.state(|s| (s.input.order_id, s.input.policy.clone()));
            let reason = format!("{to} was accepted but not applied: {e}");
            notify(ctx, order_id, &policy, reason, "status_change_failed").await;
        }
        ctx.state_mut(|s| s.busy = false);
        applied.map(|()| view(ctx))
    }
}

impl OrderWorkflow {
    /// Final, and nothing is being applied or reported: the run may end.
    fn finished(&self) -> bool {
        self.view.status.is_final() && !self.busy && self.tracking_reports == 0
    }

    /// Whether `allowed` admits the order's status, now or once the
    /// hand-over on the wire settles: Postgres says FULFILLMENT_REQUESTED a
    /// moment before this workflow has seen the warehouse's answer, so what
    /// will be legal then is accepted now and applied once the saga settles.
    fn allows_now_or_after_hand_over(&self, allowed: impl Fn(OrderStatus) -> bool) -> bool {
        let now = self.view.status;
        allowed(now) || (now == OrderStatus::Reserved && allowed(OrderStatus::FulfillmentRequested))
    }
}

/// Takes the order's one turn for a change (others are refused meanwhile)
/// and, while the saga still decides (reserving, handing the order over,
/// settling a failed hand-over), waits for its outcome. The status then.
async fn take_turn(ctx: &mut WorkflowContext<OrderWorkflow>) -> Result<OrderStatus, UpdateError> {
    ctx.state_mut(|s| s.busy = true);
    ctx.wait_condition(|s| {
        !matches!(
            s.view.status,
            OrderStatus::Reserved | OrderStatus::Compensating
        )
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok(ctx.state(|s| s.view.status))
}

/// How long a report to the order's shop may keep failing (the shop down)
/// before the order gets a notification instead.
fn shop_report_opts(policy: &SagaPolicy) -> ActivityOptions {
    remote_opts(
        policy,
        REPORT_SHIPMENT_DEADLINE_SECS.min(policy.channel_sync_deadline_secs),
    )
}

/// The error type of update handlers and validators.
type UpdateError = Box<dyn std::error::Error + Send + Sync>;

async fn apply_change(
    ctx: &mut WorkflowContext<OrderWorkflow>,
    change: StatusChange,
) -> Result<(), UpdateError> {
    let (order_id, policy) = ctx.state(|s| (s.input.order_id, s.input.policy.clone()));
    let transition = |to: OrderStatus, notify: Option<&str>| Transition {
        order_id,
        to: Some(to),
        reason: change.reason.clone(),
        problems: Vec::new(),
        notify: notify.map(str::to_string),
    };
    match change.to {
        OrderStatus::Shipped => {
            ctx.execute_activity(
                SellOrder,
                Sale {
                    order_id,
                    reason: change.reason.clone(),
                },
                db_opts(&policy),
            )
            .await
            .map_err(|e| failure_text(&e))?;
            step(ctx, "shipped: reserved units sold".into());
            if ctx.state(|s| s.input.channel == Channel::Shopify) && ctx.patched(REPORT_SHIPMENT) {
                report_shipment(ctx, order_id, &policy).await;
            }
        }
        OrderStatus::Delivered => {
            ctx.execute_activity(
                TransitionOrder,
                transition(OrderStatus::Delivered, None),
                db_opts(&policy),
            )
            .await
            .map_err(|e| failure_text(&e))?;
            step(ctx, "delivered".into());
        }
        OrderStatus::Cancelled => {
            let deadline = policy.fulfillment_deadline_secs;
            ctx.execute_activity(CancelFulfillment, order_id, remote_opts(&policy, deadline))
                .await
                .map_err(|e| {
                    format!(
                        "the warehouse did not cancel the order: {}",
                        failure_text(&e)
                    )
                })?;
            let skus = ctx
                .execute_activity(ReleaseOrder, order_id, db_opts(&policy))
                .await
                .map_err(|e| failure_text(&e))?;
            step(
                ctx,
                format!(
                    "cancelled: warehouse order cancelled, {} SKU(s) released",
                    skus.len()
                ),
            );
            if !ctx.patched(OUTBOX_CHANNEL_SYNC) {
                let synced = ctx
                    .execute_activity(
                        SyncChannels,
                        SyncInput {
                            reference: order_id,
                            skus,
                        },
                        remote_opts(&policy, policy.channel_sync_deadline_secs),
                    )
                    .await;
                report_sync(ctx, order_id, &policy, synced)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            ctx.execute_activity(
                TransitionOrder,
                transition(OrderStatus::Cancelled, Some("order_cancelled")),
                db_opts(&policy),
            )
            .await
            .map_err(|e| failure_text(&e))?;
        }
        to @ (OrderStatus::OnHold | OrderStatus::FulfillmentRequested) => {
            // A hold (reported by the warehouse, or set by a client), or a
            // hold lifted: the warehouse's work on the order stops or goes on.
            let on_hold = to == OrderStatus::OnHold;
            ctx.execute_activity(
                TransitionOrder,
                transition(to, on_hold.then_some("order_on_hold")),
                db_opts(&policy),
            )
            .await
            .map_err(|e| failure_text(&e))?;
            step(
                ctx,
                if on_hold { "on hold" } else { "hold lifted" }.to_string(),
            );
        }
        other => return Err(format!("{other} cannot be requested").into()),
    }
    ctx.state_mut(|s| s.view.reason = change.reason.clone());
    set_status(ctx, change.to);
    Ok(())
}

/// Reports the shipment to the order's shop. The order is SHIPPED whatever
/// Shopify answers: a report that fails for good becomes a notification.
async fn report_shipment(
    ctx: &mut WorkflowContext<OrderWorkflow>,
    order_id: Uuid,
    policy: &SagaPolicy,
) {
    match ctx
        .execute_activity(ReportShipment, order_id, shop_report_opts(policy))
        .await
    {
        Ok(done) => step(ctx, format!("shipment reported to Shopify: {done}")),
        Err(e) => {
            let reason = format!(
                "the shipment was not reported to Shopify: {}",
                failure_text(&e)
            );
            notify(ctx, order_id, policy, reason, "shipment_not_reported").await;
        }
    }
}

/// Tells an operator about the order (a notification and a history row that
/// keeps the status). A failure to record it is noted in the workflow only:
/// the order must take further changes all the same.
async fn notify(
    ctx: &mut WorkflowContext<OrderWorkflow>,
    order_id: Uuid,
    policy: &SagaPolicy,
    reason: String,
    kind: &str,
) {
    step(ctx, reason.clone());
    let recorded = ctx
        .execute_activity(
            TransitionOrder,
            Transition {
                order_id,
                to: None,
                reason: Some(reason),
                problems: Vec::new(),
                notify: Some(kind.into()),
            },
            db_opts(policy),
        )
        .await;
    if let Err(r) = recorded {
        step(ctx, format!("could not record that: {}", failure_text(&r)));
    }
}

/// The generated marker type of the run method, re-exported so that clients
/// can name `WorkflowHandle<_, OrderWorkflowRun>`.
pub use order_workflow::Run as OrderWorkflowRun;

fn view(ctx: &WorkflowContext<OrderWorkflow>) -> OrderView {
    ctx.state(|s| s.view.clone())
}

/// Moves the view to `status` and mirrors it into the `OmsOrderStatus`
/// search attribute, if the workflow was started with it (see `search`).
fn set_status(ctx: &WorkflowContext<OrderWorkflow>, status: OrderStatus) {
    ctx.state_mut(|s| s.view.status = status);
    if ctx.search_attributes().contains_key(&search::ORDER_STATUS) {
        ctx.upsert_search_attributes([search::ORDER_STATUS.value_set(status.to_string())]);
    }
}

fn step(ctx: &WorkflowContext<OrderWorkflow>, what: String) {
    ctx.state_mut(|s| s.view.steps.push(what));
}

/// Nothing was reserved: record the rejection and its reasons, notify.
async fn reject(
    ctx: &mut WorkflowContext<OrderWorkflow>,
    order_id: Uuid,
    problems: Vec<LineProblem>,
) -> WorkflowResult<OrderView> {
    // The sentence is for people (the history, the status reason); the
    // problems themselves travel as data.
    let reason = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let policy = ctx.state(|s| s.input.policy.clone());
    ctx.execute_activity(
        TransitionOrder,
        Transition {
            order_id,
            to: Some(OrderStatus::Rejected),
            reason: Some(reason.clone()),
            problems: problems.clone(),
            notify: Some("order_rejected".into()),
        },
        db_opts(&policy),
    )
    .await?;
    step(ctx, format!("rejected: {reason}"));
    ctx.state_mut(|s| {
        s.view.reason = Some(reason);
        s.view.problems = problems;
    });
    set_status(ctx, OrderStatus::Rejected);
    Ok(view(ctx))
}

/// The submit failed for good, but the warehouse may have the order anyway
/// (its answer was lost, or an attempt still on the wire when the deadline
/// fired). One transition decides between the submit and the compensation;
/// then the warehouse is asked and, if it has the order, told to cancel it.
/// Returns the warehouse's id when it keeps the order (the order goes on);
/// `None` when the stock may be released.
async fn settle(
    ctx: &mut WorkflowContext<OrderWorkflow>,
    order_id: Uuid,
    policy: &SagaPolicy,
    reason: &str,
) -> WorkflowResult<Option<String>> {
    let claim = ctx
        .execute_activity(
            ClaimCompensation,
            Compensation {
                order_id,
                reason: format!("fulfillment failed: {reason}"),
            },
            db_opts(policy),
        )
        .await?;
    if let Claim::Accepted { wms_order_id } = claim {
        step(
            ctx,
            format!("fulfillment requested after all: wms order {wms_order_id}"),
        );
        return Ok(Some(wms_order_id));
    }
    set_status(ctx, OrderStatus::Compensating);
    step(
        ctx,
        format!("fulfillment failed: {reason}; settling with the warehouse"),
    );
    // An attempt may still be on the wire after its deadline fired; it
    // cannot mark the order accepted any more, but it can still create it
    // at the warehouse. Once an attempt's own timeout has passed, what the
    // warehouse has is final.
    ctx.timer(Duration::from_secs(policy.attempt_timeout_secs.max(1)))
        .await;
    // Asked until it answers: releasing without knowing could ship units
    // that are for sale again.
    let check = ctx
        .execute_activity(SettleWithWarehouse, order_id, db_opts(policy))
        .await?;
    match check {
        WarehouseCheck::Absent => {
            step(ctx, "the warehouse does not have the order".into());
            Ok(None)
        }
        WarehouseCheck::Cancelled { wms_order_id } => {
            step(
                ctx,
                format!("the warehouse had it (wms order {wms_order_id}) and cancelled it"),
            );
            Ok(None)
        }
        WarehouseCheck::Kept {
            wms_order_id,
            reason,
        } => {
            ctx.execute_activity(
                AdoptFulfillment,
                Adoption {
                    order_id,
                    wms_order_id: wms_order_id.clone(),
                    reason: reason.clone(),
                },
                db_opts(policy),
            )
            .await?;
            step(
                ctx,
                format!(
                    "the warehouse keeps wms order {wms_order_id} ({reason}); the order goes on"
                ),
            );
            Ok(Some(wms_order_id))
        }
    }
}

/// The warehouse will not take the order: give the stock back, tell the
/// channels, mark the order FAILED, notify.
async fn compensate(
    ctx: &mut WorkflowContext<OrderWorkflow>,
    order_id: Uuid,
    policy: &SagaPolicy,
    reason: String,
) -> WorkflowResult<OrderView> {
    step(ctx, format!("fulfillment failed: {reason}; compensating"));
    let skus = ctx
        .execute_activity(ReleaseOrder, order_id, db_opts(policy))
        .await?;
    step(ctx, format!("released {} SKU(s)", skus.len()));
    if !ctx.patched(OUTBOX_CHANNEL_SYNC) {
        let synced = ctx
            .execute_activity(
                SyncChannels,
                SyncInput {
                    reference: order_id,
                    skus,
                },
                remote_opts(policy, policy.channel_sync_deadline_secs),
            )
            .await;
        report_sync(ctx, order_id, policy, synced).await?;
    }
    let reason = format!("fulfillment failed: {reason}");
    ctx.execute_activity(
        TransitionOrder,
        Transition {
            order_id,
            to: Some(OrderStatus::Failed),
            reason: Some(reason.clone()),
            problems: Vec::new(),
            notify: Some("order_failed".into()),
        },
        db_opts(policy),
    )
    .await?;
    ctx.state_mut(|s| s.view.reason = Some(reason));
    set_status(ctx, OrderStatus::Failed);
    Ok(view(ctx))
}

/// Records the outcome of a channel sync; a failed sync notifies an operator
/// but does not fail the order (the next sync of those SKUs repairs the level).
async fn report_sync(
    ctx: &mut WorkflowContext<OrderWorkflow>,
    order_id: Uuid,
    policy: &SagaPolicy,
    synced: Result<SyncReport, ActivityExecutionError>,
) -> WorkflowResult<()> {
    let problem = match synced {
        Ok(report) => {
            let problems: Vec<String> = report
                .shops
                .iter()
                .flat_map(|s| s.problems.iter().map(move |p| format!("{}: {p}", s.shop)))
                .collect();
            let pushed: usize = report.shops.iter().map(|s| s.pushed.len()).sum();
            step(
                ctx,
                format!(
                    "channels synced: {pushed} level(s) pushed to {} shop(s)",
                    report.shops.len()
                ),
            );
            (!problems.is_empty()).then(|| problems.join("; "))
        }
        Err(e) => Some(failure_text(&e)),
    };
    if let Some(problem) = problem {
        step(ctx, format!("channel sync incomplete: {problem}"));
        ctx.execute_activity(
            TransitionOrder,
            Transition {
                order_id,
                to: None,
                reason: Some(format!("channel sync incomplete: {problem}")),
                problems: Vec::new(),
                notify: Some("channel_sync_failed".into()),
            },
            db_opts(policy),
        )
        .await?;
    }
    Ok(())
}

/// A readable reason from an activity failure: the application failure's
/// message where there is one, else how the retries ended.
pub(crate) fn failure_text(e: &ActivityExecutionError) -> String {
    match e {
        ActivityExecutionError::Failed(f) => match (f.cause(), f.retry_state()) {
            (Some(IncomingError::Application(app)), _) => app.to_string(),
            (_, RetryState::Timeout) => "gave up after its deadline".into(),
            (_, state) => format!("ended with {state:?}"),
        },
        other => other.to_string(),
    }
}

fn retry(policy: &SagaPolicy) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(policy.initial_retry_millis.max(1)))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(policy.max_retry_interval_secs.max(1)))
        // Bounded by the deadline (remote calls) or unbounded (our database:
        // an outage is waited out, never turned into a wrong answer).
        .maximum_attempts(0)
        .non_retryable_error_types([
            error_types::WMS_REJECTED,
            error_types::SHOPIFY_REJECTED,
            error_types::INVALID_STATE,
        ])
        .build()
}

/// Activities against our own Postgres: retried without limit, so an outage
/// is waited out rather than turned into a wrong answer.
fn db_opts(policy: &SagaPolicy) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(
        policy.attempt_timeout_secs.max(1),
    ))
    .retry_policy(retry(policy))
    .build()
}

/// Activities calling a remote system, retried until `deadline_secs`.
pub(crate) fn remote_opts(policy: &SagaPolicy, deadline_secs: u64) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(deadline_secs.max(1)),
        start_to_close: Duration::from_secs(policy.attempt_timeout_secs.max(1)),
    })
    .retry_policy(retry(policy))
    .build()
}
