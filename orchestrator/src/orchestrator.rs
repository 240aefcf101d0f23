//! A handle on Temporal that connects on first use, so a process that only
//! sometimes needs Temporal (the API's inventory routes, an operator
//! command) keeps serving while Temporal is down, and only the calls that
//! need it fail.

use std::sync::Arc;

use temporalio_client::Client;
use tokio::sync::OnceCell;
use workflows::contracts::{
    OrderAdjustment, OrderInput, PaymentEvent, ShopSyncPolicy, StatusChange,
};

use crate::{
    connection::{TemporalError, TemporalSettings, connect, ensure_search_attributes},
    orders::{self, ChangeError, ChangeOutcome, Started},
    shop_sync,
};

/// Starts and queries order workflows.
#[derive(Clone)]
pub struct Orchestrator {
    settings: TemporalSettings,
    client: Arc<OnceCell<Connected>>,
}

struct Connected {
    client: Client,
    /// The namespace has the OMS search attributes, so workflows may carry them.
    indexed: bool,
}

impl Orchestrator {
    /// Does not connect yet.
    pub fn new(settings: TemporalSettings) -> Self {
        Self {
            settings,
            client: Arc::default(),
        }
    }

    async fn connected(&self) -> Result<&Connected, TemporalError> {
        self.client
            .get_or_try_init(|| async {
                let client = connect(&self.settings).await?;
                // Findability must never cost an order: without the
                // attributes, workflows start with the memo only.
                let indexed =
                    match ensure_search_attributes(&client, &self.settings.namespace).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::error!(error = %e, "order workflows will carry no search attributes");
                            false
                        }
                    };
                Ok(Connected { client, indexed })
            })
            .await
    }

    async fn client(&self) -> Result<&Client, TemporalError> {
        Ok(&self.connected().await?.client)
    }

    /// Starts the order's workflow (idempotently).
    pub async fn start_order(&self, input: OrderInput) -> Result<Started, TemporalError> {
        let connected = self.connected().await?;
        orders::start_order(
            &connected.client,
            &self.settings.task_queue,
            input,
            connected.indexed,
        )
        .await
    }

    /// Nudges (starting it if needed) `shop`'s sync.
    pub async fn nudge_shop_sync(
        &self,
        shop: &str,
        policy: &ShopSyncPolicy,
    ) -> Result<(), TemporalError> {
        let client = self.client().await?;
        shop_sync::nudge_shop_sync(client, &self.settings.task_queue, shop, policy).await
    }

    /// Tells the order's workflow about its payment; `Ok(false)` when the
    /// workflow has finished.
    pub async fn report_payment(
        &self,
        workflow_id: &str,
        event: PaymentEvent,
    ) -> Result<bool, TemporalError> {
        let client = self.client().await?;
        orders::report_payment(client, workflow_id, event).await
    }

    /// Delivers a refund's or an edit's adjustment to the order's workflow;
    /// waits up to `wait` for its result.
    pub async fn adjust_order(
        &self,
        workflow_id: &str,
        adjustment: OrderAdjustment,
        wait: std::time::Duration,
    ) -> Result<ChangeOutcome, ChangeError> {
        let client = self.client().await?;
        orders::adjust_order(client, workflow_id, adjustment, wait).await
    }

    /// Asks a shipped order's workflow to report its latest tracking.
    pub async fn report_tracking(&self, workflow_id: &str) -> Result<(), ChangeError> {
        let client = self.client().await?;
        orders::report_tracking(client, workflow_id).await
    }

    /// Delivers a status change to the order's workflow; waits up to
    /// `wait` for its result.
    pub async fn change_status(
        &self,
        workflow_id: &str,
        change: StatusChange,
        wait: std::time::Duration,
    ) -> Result<ChangeOutcome, ChangeError> {
        let client = self.client().await?;
        orders::change_status(client, workflow_id, change, wait).await
    }
}
