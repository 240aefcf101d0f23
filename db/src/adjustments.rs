//! Refunds and edits before shipping: units come off an order's lines and
//! its reservations, in one transaction that also queues the new levels
//! for every shop.

use std::collections::{BTreeMap, BTreeSet};

use domain::{Adjusted, LineRemoval, OrderAdjustment, OrderStatus, ReservationState};
use uuid::Uuid;

use crate::{
    connection::Db,
    error::DbError,
    orders::{history, status_for_update},
    stock_change::{begin_stock_change, mark_changed},
};

impl Db {
    /// Takes `adjustment`'s units off the order's lines and reservations.
    /// Restocked units go back to IN_STOCK (and to every shop); the others
    /// are written off. With `at_warehouse` the warehouse's order (already
    /// cancelled by the caller) is forgotten, so the next submit creates
    /// its replacement under a new reference. Applied once per key.
    pub async fn adjust_order(
        &self,
        order_id: Uuid,
        adjustment: &OrderAdjustment,
        at_warehouse: bool,
    ) -> Result<Adjusted, DbError> {
        let mut tx = begin_stock_change(&self.pool).await?;
        let status = status_for_update(&mut tx, order_id).await?;
        let done: Option<String> = sqlx::query_scalar(
            "SELECT summary FROM order_adjustments WHERE order_id = $1 AND key = $2",
        )
        .bind(order_id)
        .bind(&adjustment.key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(summary) = done {
            let remaining_units = remaining_units(&mut tx, order_id).await?;
            return Ok(Adjusted {
                applied: false,
                remaining_units,
                summary,
                refused: None,
            });
        }
        let lines: Vec<(i32, String, i32)> = sqlx::query_as(
            "SELECT line_no, sku, quantity FROM order_lines WHERE order_id = $1 ORDER BY line_no FOR UPDATE",
        )
        .bind(order_id)
        .fetch_all(&mut *tx)
        .await?;
        let line = |no: i32| lines.iter().find(|(n, _, _)| *n == no);
        // The plan first: units per SKU by what becomes of them, and what
        // each line gains or loses.
        let mut restocked: BTreeMap<String, i32> = BTreeMap::new();
        let mut written_off: BTreeMap<String, i32> = BTreeMap::new();
        let mut added: BTreeMap<String, i32> = BTreeMap::new();
        let mut line_deltas: Vec<(i32, i32)> = Vec::new();
        let mut said = Vec::new();
        for removal in &adjustment.removals {
            let Some((_, sku, quantity)) = line(removal.line_no) else {
                continue;
            };
            let units = removal.units.clamp(0, *quantity);
            if units == 0 {
                continue;
            }
            let into = if removal.restock {
                &mut restocked
            } else {
                &mut written_off
            };
            *into.entry(sku.clone()).or_default() += units;
            line_deltas.push((removal.line_no, -units));
            said.push(
                LineRemoval {
                    units,
                    ..removal.clone()
                }
                .to_string(),
            );
        }
        for addition in &adjustment.additions {
            let Some((_, sku, _)) = line(addition.line_no) else {
                continue;
            };
            if addition.units <= 0 {
                continue;
            }
            *added.entry(sku.clone()).or_default() += addition.units;
            line_deltas.push((addition.line_no, addition.units));
            said.push(format!("line {}: +{}", addition.line_no, addition.units));
        }
        let skus: Vec<String> = restocked
            .keys()
            .chain(written_off.keys())
            .chain(added.keys())
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Products first, in SKU order, like every multi-product write.
        let in_stock: BTreeMap<String, i32> = sqlx::query_as(
            "SELECT sku, in_stock FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
        )
        .bind(&skus)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        // An order holds units only once allocated and until they are sold.
        let holds_units = matches!(
            status,
            OrderStatus::Reserved
                | OrderStatus::AwaitingPayment
                | OrderStatus::FulfillmentRequested
                | OrderStatus::OnHold
        );
        // Added units are reserved all or none, like an order's first ones.
        let refused = added
            .iter()
            .filter(|_| holds_units)
            .find_map(|(sku, wanted)| {
                let free = in_stock.get(sku).copied().unwrap_or(0)
                    + restocked.get(sku).copied().unwrap_or(0);
                (*wanted > free)
                    .then(|| format!("{sku}: {wanted} more requested, {free} available"))
            });
        if refused.is_none() {
            for (line_no, delta) in &line_deltas {
                sqlx::query(
                    "UPDATE order_lines SET quantity = quantity + $3 WHERE order_id = $1 AND line_no = $2",
                )
                .bind(order_id)
                .bind(line_no)
                .bind(delta)
                .execute(&mut *tx)
                .await?;
            }
            if holds_units {
                for (units_by_sku, restock) in [(&restocked, true), (&written_off, false)] {
                    for (sku, units) in units_by_sku {
                        take_off_reservations(&mut tx, order_id, sku, *units, restock).await?;
                    }
                }
                for (sku, units) in &added {
                    sqlx::query(
                        "UPDATE products SET in_stock = in_stock - $2, reserved = reserved + $2, updated_at = now() WHERE sku = $1",
                    )
                    .bind(sku)
                    .bind(units)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO reservations (token, sku, quantity, order_id) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(Uuid::new_v4())
                    .bind(sku)
                    .bind(units)
                    .bind(order_id)
                    .execute(&mut *tx)
                    .await?;
                }
                let changed: Vec<&str> = restocked
                    .keys()
                    .chain(added.keys())
                    .map(String::as_str)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                mark_changed(&mut tx, &changed).await?;
            }
        }
        if at_warehouse {
            // Cancelled at the warehouse by the caller, whatever happened
            // here: its replacement goes under the next reference.
            sqlx::query(
                "UPDATE orders SET wms_order_id = NULL, wms_revision = wms_revision + 1, updated_at = now() WHERE id = $1",
            )
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
        }
        let what = if said.is_empty() {
            "nothing to change".to_string()
        } else {
            said.join(", ")
        };
        let summary = match &refused {
            None => format!("{}: {what}", adjustment.reason),
            Some(why) => format!(
                "{} not applied ({what}): not enough stock, {why}",
                adjustment.reason
            ),
        };
        sqlx::query("INSERT INTO order_adjustments (order_id, key, summary) VALUES ($1, $2, $3)")
            .bind(order_id)
            .bind(&adjustment.key)
            .bind(&summary)
            .execute(&mut *tx)
            .await?;
        // A history row that keeps the status says what changed.
        history(&mut tx, order_id, Some(status), status, Some(&summary)).await?;
        let remaining_units = remaining_units(&mut tx, order_id).await?;
        tx.commit().await?;
        if holds_units && refused.is_none() && !(restocked.is_empty() && added.is_empty()) {
            self.stock_changed();
        }
        Ok(Adjusted {
            applied: true,
            remaining_units,
            summary,
            refused,
        })
    }
}

/// One line of an order as a channel knows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChannelLine {
    /// 1-based position in the order.
    pub line_no: i32,
    /// The channel's id of the line.
    pub external_line_id: Option<String>,
    /// Units it still holds.
    pub quantity: i32,
}

impl Db {
    /// The order's lines with the channel's ids.
    pub async fn channel_lines(&self, order_id: Uuid) -> Result<Vec<ChannelLine>, DbError> {
        Ok(sqlx::query_as(
            "SELECT line_no, external_line_id, quantity FROM order_lines WHERE order_id = $1 ORDER BY line_no",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether the adjustment `key` was applied to the order.
    pub async fn adjustment_applied(&self, order_id: Uuid, key: &str) -> Result<bool, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM order_adjustments WHERE order_id = $1 AND key = $2)",
        )
        .bind(order_id)
        .bind(key)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The warehouse took the replacement of the order's cancelled one.
    pub async fn record_replacement(
        &self,
        order_id: Uuid,
        wms_order_id: &str,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        let status = status_for_update(&mut tx, order_id).await?;
        sqlx::query("UPDATE orders SET wms_order_id = $2, updated_at = now() WHERE id = $1")
            .bind(order_id)
            .bind(wms_order_id)
            .execute(&mut *tx)
            .await?;
        let reason = format!("the warehouse's order replaced by wms order {wms_order_id}");
        history(&mut tx, order_id, Some(status), status, Some(&reason)).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Units the order's lines still hold.
async fn remaining_units(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    order_id: Uuid,
) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(quantity), 0)::int8 FROM order_lines WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_one(&mut **tx)
    .await?)
}

/// Takes `units` of `sku` off the order's open reservations (several rows
/// when several lines share the SKU): back to IN_STOCK when `restock`,
/// written off otherwise.
async fn take_off_reservations(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    order_id: Uuid,
    sku: &str,
    units: i32,
    restock: bool,
) -> Result<(), DbError> {
    let open: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT token, quantity FROM reservations WHERE order_id = $1 AND sku = $2 AND state = 'RESERVED' ORDER BY quantity, token FOR UPDATE",
    )
    .bind(order_id)
    .bind(sku)
    .fetch_all(&mut **tx)
    .await?;
    let mut left = units;
    for (token, quantity) in open {
        if left == 0 {
            break;
        }
        let take = left.min(quantity);
        left -= take;
        if take == quantity {
            sqlx::query("UPDATE reservations SET state = $2, consumed_at = now() WHERE token = $1")
                .bind(token)
                .bind(ReservationState::Released.as_str())
                .execute(&mut **tx)
                .await?;
        } else {
            sqlx::query("UPDATE reservations SET quantity = quantity - $2 WHERE token = $1")
                .bind(token)
                .bind(take)
                .execute(&mut **tx)
                .await?;
        }
    }
    let taken = units - left;
    sqlx::query(
        "UPDATE products SET reserved = reserved - $2, in_stock = in_stock + $3, updated_at = now() WHERE sku = $1",
    )
    .bind(sku)
    .bind(taken)
    .bind(if restock { taken } else { 0 })
    .execute(&mut **tx)
    .await?;
    Ok(())
}
