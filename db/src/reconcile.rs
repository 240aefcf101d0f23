//! Orders whose workflow may have ended too early: finding them, and
//! settling them.

use domain::{OrderStatus, ReservationState};
use uuid::Uuid;

use crate::{
    connection::Db,
    error::DbError,
    orders::{
        end_reservations, history, parse_status, record_notification, set_status, status_for_update,
    },
    stock_change::begin_stock_change,
};

/// An order the reconciliation should ask Temporal about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileCandidate {
    /// The order.
    pub order_id: Uuid,
    /// Its status.
    pub status: OrderStatus,
    /// The workflow that should own it.
    pub workflow_id: String,
}

impl Db {
    /// Orders that are not final, or still hold RESERVED units, and have
    /// not changed for `quiet_secs`: those not looked at for longest first,
    /// at most `limit`; or just `order_id` (an operator's repair). They
    /// count as looked at from now.
    pub async fn reconcile_candidates(
        &self,
        order_id: Option<Uuid>,
        quiet_secs: u64,
        limit: u32,
    ) -> Result<Vec<ReconcileCandidate>, DbError> {
        let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
            r#"
            WITH picked AS (
                SELECT o.id FROM orders o
                WHERE ($1::uuid IS NULL OR o.id = $1)
                  AND ($1::uuid IS NOT NULL OR o.updated_at < now() - make_interval(secs => $2))
                  AND (o.status IN ('RECEIVED', 'RESERVED', 'COMPENSATING', 'FULFILLMENT_REQUESTED', 'SHIPPED')
                       OR EXISTS (SELECT 1 FROM reservations r
                                  WHERE r.order_id = o.id AND r.state = 'RESERVED'))
                ORDER BY o.reconciled_at NULLS FIRST, o.updated_at
                LIMIT $3
            )
            UPDATE orders o SET reconciled_at = now() FROM picked WHERE o.id = picked.id
            RETURNING o.id, o.status, o.workflow_id
            "#,
        )
        .bind(order_id)
        .bind(f64::from(u32::try_from(quiet_secs).unwrap_or(u32::MAX)))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(order_id, status, workflow_id)| {
                Ok(ReconcileCandidate {
                    order_id,
                    status: parse_status(&status)?,
                    workflow_id,
                })
            })
            .collect()
    }

    /// Settles an order whose workflow ended: its RESERVED units go back to
    /// IN_STOCK (and to the shops); an order that was not final becomes
    /// FAILED with `reason`; an operator is notified either way. Returns its
    /// status afterwards.
    pub async fn release_stranded(
        &self,
        order_id: Uuid,
        reason: &str,
    ) -> Result<OrderStatus, DbError> {
        let mut tx = begin_stock_change(&self.pool).await?;
        let from = status_for_update(&mut tx, order_id).await?;
        let skus = end_reservations(&mut tx, order_id, ReservationState::Released).await?;
        let to = if from.is_final() {
            // No move, but the audit trail says what happened.
            history(&mut tx, order_id, Some(from), from, Some(reason)).await?;
            from
        } else {
            set_status(&mut tx, order_id, from, OrderStatus::Failed, Some(reason)).await?;
            OrderStatus::Failed
        };
        record_notification(&mut tx, order_id, "order_repaired", reason).await?;
        tx.commit().await?;
        if !skus.is_empty() {
            self.stock_changed();
        }
        tracing::warn!(order.id = %order_id, %from, %to, "stranded order settled");
        Ok(to)
    }

    /// A new workflow takes over the order: the API sends it the order's
    /// status changes from now on. The order's history records the
    /// take-over (a row that keeps the status).
    pub async fn hand_over_order(
        &self,
        order_id: Uuid,
        workflow_id: &str,
        reason: &str,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        let status = status_for_update(&mut tx, order_id).await?;
        history(&mut tx, order_id, Some(status), status, Some(reason)).await?;
        sqlx::query("UPDATE orders SET workflow_id = $2, updated_at = now() WHERE id = $1")
            .bind(order_id)
            .bind(workflow_id)
            .execute(&mut *tx)
            .await?;
        record_notification(&mut tx, order_id, "order_repaired", reason).await?;
        tx.commit().await?;
        Ok(())
    }
}
