//! The process side of channel sync: a change of stock committed here
//! becomes a nudge of every shop's sync, coalesced.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;
use workflows::contracts::ShopSyncPolicy;

use crate::orchestrator::Orchestrator;

/// Longest a nudge may take: a later change nudges again, and the idle poll
/// covers a lost one, so a slow Temporal must not hold the nudger up.
const NUDGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Turns "stock changed" into at most one nudge per shop per interval, on a
/// task of its own: the process that changed the stock makes no Temporal
/// call on its request path, and a burst of changes costs one nudge. A
/// nudge that is lost (Temporal down) is covered by the syncs' idle poll.
#[derive(Clone)]
pub struct ShopSyncNudger {
    wake: Arc<Notify>,
    changed: Arc<AtomicBool>,
}

impl ShopSyncNudger {
    /// Starts the nudging task for `shops` on the current Tokio runtime.
    pub fn spawn(orchestrator: Orchestrator, shops: Vec<String>, policy: ShopSyncPolicy) -> Self {
        let nudger = Self {
            wake: Arc::new(Notify::new()),
            changed: Arc::new(AtomicBool::new(false)),
        };
        let (wake, changed) = (nudger.wake.clone(), nudger.changed.clone());
        let interval = Duration::from_millis(policy.interval_millis.max(1));
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                while changed.swap(false, Ordering::AcqRel) {
                    for shop in &shops {
                        let started = std::time::Instant::now();
                        let nudged = tokio::time::timeout(
                            NUDGE_TIMEOUT,
                            orchestrator.nudge_shop_sync(shop, &policy),
                        )
                        .await;
                        match nudged {
                            Ok(Ok(())) => {
                                tracing::info!(shop, elapsed = ?started.elapsed(), "shop sync nudged");
                            }
                            Ok(Err(e)) => {
                                tracing::warn!(shop, error = %e, "shop sync not nudged; its idle poll will find the change");
                            }
                            Err(_) => {
                                tracing::warn!(
                                    shop,
                                    "shop sync nudge timed out; its idle poll will find the change"
                                );
                            }
                        }
                    }
                    tokio::time::sleep(interval).await;
                }
            }
        });
        nudger
    }

    /// Stock changed: the shops' syncs should look. Cheap and never blocks.
    pub fn stock_changed(&self) {
        self.changed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}
