//! Payments as the shops report them, for orders that wait for theirs.

use domain::{FinancialStatus, OrderStatus};
use uuid::Uuid;

use crate::{connection::Db, error::DbError, orders::parse_status};

/// Where an order stands with respect to its payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentWait {
    /// Its status.
    pub status: OrderStatus,
    /// Its workflow.
    pub workflow_id: String,
    /// Whether it was reserved to wait for its payment.
    pub awaits_payment: bool,
}

impl Db {
    /// Keeps the latest payment status the shop reported for the order
    /// (which may not have arrived yet).
    pub async fn record_payment(
        &self,
        order_id: Uuid,
        status: FinancialStatus,
    ) -> Result<(), DbError> {
        sqlx::query(
            r#"
            INSERT INTO order_payments (order_id, financial_status) VALUES ($1, $2)
            ON CONFLICT (order_id) DO UPDATE
            SET financial_status = EXCLUDED.financial_status, reported_at = now()
            "#,
        )
        .bind(order_id)
        .bind(status.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets payments reported more than `retention` ago: an order that
    /// waited for one has had it (or been cancelled) long before, and one
    /// that never arrived (nothing to ship) never will. Returns how many.
    pub async fn purge_reported_payments(
        &self,
        retention: std::time::Duration,
    ) -> Result<u64, DbError> {
        Ok(sqlx::query(
            "DELETE FROM order_payments WHERE reported_at < now() - make_interval(secs => $1)",
        )
        .bind(retention.as_secs_f64())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The latest payment status reported for the order, if any.
    pub async fn reported_payment(
        &self,
        order_id: Uuid,
    ) -> Result<Option<FinancialStatus>, DbError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT financial_status FROM order_payments WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(&self.pool)
                .await?;
        // Written only from parsed values; an unknown one reads as none.
        Ok(status.and_then(|s| s.parse().ok()))
    }

    /// The order's status, workflow and whether it waits for its payment.
    pub async fn payment_wait(&self, order_id: Uuid) -> Result<Option<PaymentWait>, DbError> {
        let row: Option<(String, String, bool)> =
            sqlx::query_as("SELECT status, workflow_id, awaits_payment FROM orders WHERE id = $1")
                .bind(order_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(status, workflow_id, awaits_payment)| {
            Ok(PaymentWait {
                status: parse_status(&status)?,
                workflow_id,
                awaits_payment,
            })
        })
        .transpose()
    }
}
