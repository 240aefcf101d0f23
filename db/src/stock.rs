//! Stock levels and single-unit reservations: the inventory API's contract.

use domain::{ReservationState, ReservationToken, Sku, StockLevels, StockQuantity};

use std::sync::LazyLock;

use crate::{
    connection::Db,
    error::DbError,
    stock_change::{begin_stock_change, mark_changed, mark_changed_sql},
};

#[derive(sqlx::FromRow)]
struct LevelsRow {
    in_stock: i32,
    reserved: i32,
    sold: i32,
}

impl From<LevelsRow> for StockLevels {
    fn from(r: LevelsRow) -> Self {
        Self {
            in_stock: r.in_stock,
            reserved: r.reserved,
            sold: r.sold,
        }
    }
}

impl Db {
    /// Sets IN_STOCK of `sku`, creating the product if needed; RESERVED and
    /// SOLD are left as they are. The new level is queued for every shop in
    /// the same transaction.
    pub async fn set_stock(&self, sku: &Sku, stock: StockQuantity) -> Result<StockLevels, DbError> {
        let mut tx = begin_stock_change(&self.pool).await?;
        // The three counters of a product hold its units together: a level
        // that would overflow them is refused with the room that is left.
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT reserved::int8 + sold FROM products WHERE sku = $1 FOR UPDATE",
        )
        .bind(sku.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(held) = held
            && i64::from(stock.get()) + held > i64::from(i32::MAX)
        {
            return Err(DbError::StockTotalTooLarge {
                sku: sku.clone(),
                held,
            });
        }
        let row: LevelsRow = sqlx::query_as(
            r#"
            INSERT INTO products (sku, in_stock) VALUES ($1, $2)
            ON CONFLICT (sku) DO UPDATE
                SET in_stock = EXCLUDED.in_stock, updated_at = now()
            RETURNING in_stock, reserved, sold
            "#,
        )
        .bind(sku.as_str())
        .bind(stock.get())
        .fetch_one(&mut *tx)
        .await?;
        mark_changed(&mut tx, &[sku.as_str()]).await?;
        tx.commit().await?;
        self.stock_changed();
        Ok(row.into())
    }

    /// The levels of `sku`.
    pub async fn levels(&self, sku: &Sku) -> Result<StockLevels, DbError> {
        let row: Option<LevelsRow> =
            sqlx::query_as("SELECT in_stock, reserved, sold FROM products WHERE sku = $1")
                .bind(sku.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(Into::into)
            .ok_or_else(|| DbError::ProductNotFound(sku.clone()))
    }

    /// Moves one unit of `sku` from IN_STOCK to RESERVED and returns the
    /// token that owns it. Concurrent calls are grouped (see the reserver).
    pub async fn reserve_one(&self, sku: Sku) -> Result<ReservationToken, DbError> {
        self.reserver.reserve_one(sku).await
    }

    /// Gives an open reservation of `sku` back to IN_STOCK.
    pub async fn unreserve(
        &self,
        sku: &Sku,
        token: ReservationToken,
    ) -> Result<StockLevels, DbError> {
        self.consume(sku, token, ReservationState::Released).await
    }

    /// Moves an open reservation of `sku` to SOLD.
    pub async fn sell(&self, sku: &Sku, token: ReservationToken) -> Result<StockLevels, DbError> {
        self.consume(sku, token, ReservationState::Sold).await
    }

    /// Ends an open reservation. The reservation row is updated only while
    /// it is still `RESERVED`: of two concurrent calls with one token, the
    /// second waits for the first's row lock, re-reads, and matches nothing.
    async fn consume(
        &self,
        sku: &Sku,
        token: ReservationToken,
        to: ReservationState,
    ) -> Result<StockLevels, DbError> {
        let (to_in_stock, to_sold) = match to {
            ReservationState::Sold => (0, 1),
            _ => (1, 0),
        };
        let mut tx = begin_stock_change(&self.pool).await?;
        let row: Option<LevelsRow> = sqlx::query_as(&CONSUME)
            .bind(token.as_uuid())
            .bind(sku.as_str())
            .bind(to.as_str())
            .bind(to_in_stock)
            .bind(to_sold)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        match row {
            Some(row) => {
                self.stock_changed();
                Ok(row.into())
            }
            None => Err(self.why_not_consumed(sku, token).await?),
        }
    }

    /// Explains a failed consume; only runs on the failure path.
    async fn why_not_consumed(
        &self,
        sku: &Sku,
        token: ReservationToken,
    ) -> Result<DbError, DbError> {
        type Row = (Option<String>, Option<String>, Option<uuid::Uuid>);
        let row: Option<Row> = sqlx::query_as(
            r#"
            SELECT p.sku, r.state, r.order_id
            FROM products p
            LEFT JOIN reservations r ON r.token = $1 AND r.sku = p.sku
            WHERE p.sku = $2
            "#,
        )
        .bind(token.as_uuid())
        .bind(sku.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => DbError::ProductNotFound(sku.clone()),
            Some((_, None, _)) => DbError::ReservationNotFound,
            Some((_, Some(state), order)) => match (state.parse(), order) {
                (Ok(ReservationState::Reserved), Some(order)) => {
                    DbError::ReservationHeldByOrder(order)
                }
                (Ok(state), _) => DbError::ReservationConsumed(state),
                (Err(_), _) => DbError::ReservationNotFound,
            },
        })
    }

    /// Expires up to `limit` open reservations whose `expires_at` has passed,
    /// giving their units back to IN_STOCK. Returns how many expired.
    ///
    /// `SKIP LOCKED` lets several API processes sweep at once without waiting
    /// on each other or on a concurrent `sold` of the same token.
    pub async fn expire_reservations(&self, limit: i64) -> Result<u64, DbError> {
        let mut tx = begin_stock_change(&self.pool).await?;
        let expired: i64 = sqlx::query_scalar(&EXPIRE)
            .bind(limit)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        if expired > 0 {
            self.stock_changed();
        }
        Ok(u64::try_from(expired).unwrap_or(0))
    }
}

/// Ends one open reservation (release or sale) and queues the product's new
/// level for the shops, in one statement. The reservation row is updated
/// only while it is still `RESERVED`.
static CONSUME: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
        WITH r AS (
            UPDATE reservations
            SET state = $3, consumed_at = now()
            -- An order's units are ended by its workflow only.
            WHERE token = $1 AND sku = $2 AND state = 'RESERVED' AND order_id IS NULL
            RETURNING sku, quantity
        ),
        queued AS ({mark}),
        upd AS (
            UPDATE products p
            SET in_stock = p.in_stock + r.quantity * $4,
                sold = p.sold + r.quantity * $5,
                reserved = p.reserved - r.quantity,
                updated_at = now()
            FROM r
            WHERE p.sku = r.sku
            RETURNING p.in_stock, p.reserved, p.sold
        )
        SELECT in_stock, reserved, sold FROM upd
        "#,
        mark = mark_changed_sql("(SELECT sku FROM r)")
    )
});

/// Expires up to `$1` due reservations, gives their units back, and queues
/// the products' new levels for the shops.
static EXPIRE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
        WITH due AS (
            SELECT token FROM reservations
            WHERE state = 'RESERVED' AND expires_at <= now()
            ORDER BY expires_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ),
        exp AS (
            UPDATE reservations r
            SET state = 'EXPIRED', consumed_at = now()
            FROM due WHERE r.token = due.token AND r.state = 'RESERVED'
            RETURNING r.sku, r.quantity
        ),
        per_sku AS (
            SELECT sku, sum(quantity)::int4 AS q, count(*) AS n FROM exp GROUP BY sku
        ),
        upd AS (
            UPDATE products p
            SET in_stock = p.in_stock + per_sku.q,
                reserved = p.reserved - per_sku.q,
                updated_at = now()
            FROM per_sku WHERE p.sku = per_sku.sku
        ),
        queued AS ({mark})
        SELECT coalesce(sum(n), 0)::int8 FROM per_sku
        "#,
        mark = mark_changed_sql("(SELECT sku FROM per_sku)")
    )
});
