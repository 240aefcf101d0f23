//! Orders: recording, all-or-nothing reservation, release, status moves.
//!
//! Every function here is safe to run twice with the same arguments, because
//! Temporal retries an activity whose completion it did not see, even if the
//! transaction had committed.

use std::collections::{BTreeMap, BTreeSet};

use domain::{
    Address, Channel, LineProblem, LineQty, OrderStatus, ReservationState, ReserveOutcome, Sku,
};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    connection::Db,
    error::DbError,
    stock_change::{begin_stock_change, mark_changed},
};

/// An order as it arrives, to be recorded once.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    /// The name-based id of the order.
    pub order_id: Uuid,
    /// Where it came from.
    pub channel: Channel,
    /// The Shopify shop, if any.
    pub shop: Option<&'a str>,
    /// The channel's id of the order.
    pub external_id: &'a str,
    /// Human order name (e.g. `#1001`) or customer reference.
    pub name: Option<&'a str>,
    /// ISO currency code.
    pub currency: Option<&'a str>,
    /// When the customer placed it (RFC 3339).
    pub placed_at: Option<&'a str>,
    /// Its lines, in order.
    pub lines: Vec<NewOrderLine<'a>>,
    /// Where to ship.
    pub shipping_address: Option<&'a Address>,
    /// The HTTP request that started it.
    pub request_id: Option<&'a str>,
    /// Its Temporal workflow.
    pub workflow_id: &'a str,
    /// It goes to the warehouse only once paid.
    pub awaits_payment: bool,
}

/// One line of a [`NewOrder`].
#[derive(Debug, Clone)]
pub struct NewOrderLine<'a> {
    /// 1-based position.
    pub line_no: i32,
    /// SKU as received (may be empty).
    pub sku: &'a str,
    /// Units.
    pub quantity: i32,
    /// Unit price as a decimal string.
    pub unit_price: Option<&'a str>,
    /// The channel's id of the line.
    pub external_line_id: Option<&'a str>,
    /// Product title.
    pub title: Option<&'a str>,
}

/// What the warehouse needs to ship an order.
#[derive(Debug, Clone)]
pub struct FulfillmentOrder {
    /// Our order id: the WMS reference, so a retried submit is recognised.
    pub order_id: Uuid,
    /// Human order name (e.g. `#1001`).
    pub name: Option<String>,
    /// Status now.
    pub status: OrderStatus,
    /// Already accepted by the WMS under this id.
    pub wms_order_id: Option<String>,
    /// Where to ship.
    pub shipping_address: Option<Address>,
    /// The lines that still hold units, in order.
    pub lines: Vec<FulfillmentLine>,
    /// How often the warehouse's order was replaced (its lines changed).
    pub revision: i32,
}

impl FulfillmentOrder {
    /// The reference the warehouse knows this order by: our order id, then
    /// `~<revision>` for each replacement (a cancelled order keeps its
    /// reference at the warehouse, so a replacement needs a new one).
    pub fn wms_reference(&self) -> String {
        if self.revision == 0 {
            self.order_id.to_string()
        } else {
            format!("{}~{}", self.order_id, self.revision)
        }
    }
}

/// One line of a [`FulfillmentOrder`].
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FulfillmentLine {
    /// SKU as recorded.
    pub sku: String,
    /// Units.
    pub quantity: i32,
    /// Product title.
    pub title: Option<String>,
}

impl Db {
    /// Records a new order in RECEIVED (once); returns its current status.
    pub async fn record_order(&self, input: &NewOrder<'_>) -> Result<OrderStatus, DbError> {
        let mut tx = self.pool.begin().await?;
        let address = input.shipping_address.map(sqlx::types::Json);
        let inserted = sqlx::query(
            r#"
            INSERT INTO orders (id, channel, shop_domain, external_id, name, currency, status,
                                workflow_id, shipping_address, request_id, placed_at, awaits_payment)
            VALUES ($1, $2, $3, $4, $5, $6, 'RECEIVED', $7, $8, $9, $10::timestamptz, $11)
            ON CONFLICT DO NOTHING
            "#,
        )
        .bind(input.order_id)
        .bind(input.channel.as_str())
        .bind(input.shop.unwrap_or(""))
        .bind(input.external_id)
        .bind(input.name)
        .bind(input.currency)
        .bind(input.workflow_id)
        .bind(address)
        .bind(input.request_id)
        .bind(input.placed_at)
        .bind(input.awaits_payment)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            let (nos, skus, qtys, prices, ext, titles): (
                Vec<_>,
                Vec<_>,
                Vec<_>,
                Vec<_>,
                Vec<_>,
                Vec<_>,
            ) = input.lines.iter().fold(Default::default(), |mut acc, l| {
                acc.0.push(l.line_no);
                acc.1.push(l.sku);
                acc.2.push(l.quantity);
                acc.3.push(l.unit_price);
                acc.4.push(l.external_line_id);
                acc.5.push(l.title);
                acc
            });
            sqlx::query(
                r#"
                INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price, external_line_id, title)
                SELECT $1, n, s, q, p::numeric, e, t
                FROM unnest($2::int4[], $3::text[], $4::int4[], $5::text[], $6::text[], $7::text[])
                     AS l (n, s, q, p, e, t)
                "#,
            )
            .bind(input.order_id)
            .bind(&nos)
            .bind(&skus)
            .bind(&qtys)
            .bind(&prices)
            .bind(&ext)
            .bind(&titles)
            .execute(&mut *tx)
            .await?;
            history(&mut tx, input.order_id, None, OrderStatus::Received, None).await?;
        }
        let status = status_for_update(&mut tx, input.order_id).await?;
        tx.commit().await?;
        Ok(status)
    }

    /// Reserves every line of the order in one transaction, or nothing.
    ///
    /// Lines with an empty or malformed SKU, unknown SKUs and short stock are
    /// all reported, one problem per line, so the merchant sees every reason
    /// at once. Units of one SKU on several lines are checked together.
    pub async fn reserve_order(
        &self,
        order_id: Uuid,
        lines: &[LineQty],
    ) -> Result<ReserveOutcome, DbError> {
        let mut tx = begin_stock_change(&self.pool).await?;
        let status = status_for_update(&mut tx, order_id).await?;
        if status != OrderStatus::Received {
            // A retry after a commit whose answer was lost: report what holds.
            let skus = order_skus(&mut tx, order_id).await?;
            return match status {
                OrderStatus::Reserved | OrderStatus::FulfillmentRequested => {
                    Ok(ReserveOutcome::Reserved { skus })
                }
                other => Err(DbError::IllegalTransition {
                    from: other,
                    to: OrderStatus::Reserved,
                }),
            };
        }

        let mut problems = Vec::new();
        let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
        let mut parsed = Vec::new();
        for line in lines {
            match Sku::parse(line.sku.clone()) {
                _ if line.sku.is_empty() => {
                    problems.push(problem(line, "the line has no SKU".into()))
                }
                Err(e) => problems.push(problem(line, e.to_string())),
                Ok(sku) => {
                    *wanted.entry(sku.as_str().to_string()).or_default() +=
                        i64::from(line.quantity);
                    parsed.push((line, sku));
                }
            }
        }
        let skus: Vec<&str> = wanted.keys().map(String::as_str).collect();
        // Sorted lock order: concurrent orders over the same SKUs cannot deadlock.
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "SELECT sku, in_stock FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
        )
        .bind(&skus)
        .fetch_all(&mut *tx)
        .await?;
        let in_stock: BTreeMap<String, i32> = rows.into_iter().collect();
        for (line, sku) in &parsed {
            match in_stock.get(sku.as_str()) {
                None => problems.push(problem(line, "unknown SKU".into())),
                Some(available) => {
                    let total = wanted[sku.as_str()];
                    if total > i64::from(*available) {
                        problems.push(problem(
                            line,
                            format!("insufficient stock: {total} requested, {available} available"),
                        ));
                    }
                }
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line_no);
            tx.rollback().await?;
            return Ok(ReserveOutcome::Rejected { problems });
        }

        let (grant_skus, grant_qty): (Vec<&str>, Vec<i32>) = wanted
            .iter()
            .map(|(s, q)| (s.as_str(), i32::try_from(*q).unwrap_or(i32::MAX)))
            .unzip();
        let tokens: Vec<Uuid> = parsed.iter().map(|_| Uuid::new_v4()).collect();
        let line_skus: Vec<&str> = parsed.iter().map(|(_, s)| s.as_str()).collect();
        let line_qty: Vec<i32> = parsed.iter().map(|(l, _)| l.quantity).collect();
        sqlx::query(
            r#"
            WITH upd AS (
                UPDATE products p
                SET in_stock = p.in_stock - g.n, reserved = p.reserved + g.n, updated_at = now()
                FROM unnest($1::text[], $2::int4[]) AS g (sku, n)
                WHERE p.sku = g.sku
            )
            INSERT INTO reservations (token, sku, quantity, order_id)
            SELECT t, s, q, $6 FROM unnest($3::uuid[], $4::text[], $5::int4[]) AS r (t, s, q)
            "#,
        )
        .bind(&grant_skus)
        .bind(&grant_qty)
        .bind(&tokens)
        .bind(&line_skus)
        .bind(&line_qty)
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        mark_changed(&mut tx, &grant_skus).await?;
        set_status(
            &mut tx,
            order_id,
            OrderStatus::Received,
            OrderStatus::Reserved,
            None,
        )
        .await?;
        tx.commit().await?;
        self.stock_changed();
        Ok(ReserveOutcome::Reserved {
            skus: wanted.into_keys().collect(),
        })
    }

    /// Gives the order's open reservations back to IN_STOCK. Returns every
    /// SKU the order touched (released now or earlier), for the re-sync.
    pub async fn release_order(&self, order_id: Uuid) -> Result<Vec<String>, DbError> {
        let mut tx = begin_stock_change(&self.pool).await?;
        let skus = end_reservations(&mut tx, order_id, ReservationState::Released).await?;
        tx.commit().await?;
        self.stock_changed();
        Ok(skus)
    }

    /// Moves the order to `to` (no-op if it is there already), keeps the
    /// per-line `problems` of a rejection, and records a notification of
    /// kind `notify` (once).
    pub async fn transition_order(
        &self,
        order_id: Uuid,
        to: Option<OrderStatus>,
        reason: Option<&str>,
        problems: &[LineProblem],
        notify: Option<&str>,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        let from = status_for_update(&mut tx, order_id).await?;
        if let Some(to) = to
            && from != to
        {
            set_status(&mut tx, order_id, from, to, reason).await?;
        }
        if !problems.is_empty() {
            sqlx::query("UPDATE orders SET line_problems = $2 WHERE id = $1")
                .bind(order_id)
                .bind(sqlx::types::Json(problems))
                .execute(&mut *tx)
                .await?;
        }
        if let Some(kind) = notify {
            record_notification(&mut tx, order_id, kind, reason.unwrap_or(kind)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The order as the warehouse needs it.
    pub async fn fulfillment_order(&self, order_id: Uuid) -> Result<FulfillmentOrder, DbError> {
        type Row = (
            Option<String>,
            String,
            Option<String>,
            Option<sqlx::types::Json<Address>>,
            i32,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT name, status, wms_order_id, shipping_address, wms_revision FROM orders WHERE id = $1",
        )
        .bind(order_id)
        .fetch_optional(&self.pool)
        .await?;
        let (name, status, wms_order_id, address, revision) =
            row.ok_or(DbError::OrderNotFound(order_id))?;
        let lines: Vec<FulfillmentLine> = sqlx::query_as(
            "SELECT sku, quantity, title FROM order_lines WHERE order_id = $1 AND quantity > 0 ORDER BY line_no",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(FulfillmentOrder {
            order_id,
            name,
            status: parse_status(&status)?,
            wms_order_id,
            shipping_address: address.map(|a| a.0),
            lines,
            revision,
        })
    }

    /// Records the warehouse's acceptance: RESERVED → FULFILLMENT_REQUESTED.
    pub async fn mark_fulfillment_requested(
        &self,
        order_id: Uuid,
        wms_order_id: &str,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        let from = status_for_update(&mut tx, order_id).await?;
        // Only from RESERVED: an order the saga is compensating is not
        // marked accepted by a submit attempt that outlived its deadline.
        if from != OrderStatus::FulfillmentRequested && from != OrderStatus::Reserved {
            return Err(DbError::IllegalTransition {
                from,
                to: OrderStatus::FulfillmentRequested,
            });
        }
        if from != OrderStatus::FulfillmentRequested {
            sqlx::query("UPDATE orders SET wms_order_id = $2 WHERE id = $1")
                .bind(order_id)
                .bind(wms_order_id)
                .execute(&mut *tx)
                .await?;
            set_status(
                &mut tx,
                order_id,
                from,
                OrderStatus::FulfillmentRequested,
                Some(&format!("wms order {wms_order_id}")),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The submit failed for good: RESERVED → COMPENSATING, so that no late
    /// submit attempt can mark the order accepted any more. If one did so
    /// first, the order stays FULFILLMENT_REQUESTED and its warehouse id is
    /// returned. A retry finds COMPENSATING and claims again.
    pub async fn claim_compensation(
        &self,
        order_id: Uuid,
        reason: &str,
    ) -> Result<Option<String>, DbError> {
        let mut tx = self.pool.begin().await?;
        let from = status_for_update(&mut tx, order_id).await?;
        match from {
            OrderStatus::FulfillmentRequested => {
                let wms: Option<String> =
                    sqlx::query_scalar("SELECT wms_order_id FROM orders WHERE id = $1")
                        .bind(order_id)
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await?;
                return wms
                    .map(Some)
                    .ok_or_else(|| DbError::Corrupt(format!("order {order_id} has no wms id")));
            }
            OrderStatus::Compensating => {}
            _ => {
                set_status(
                    &mut tx,
                    order_id,
                    from,
                    OrderStatus::Compensating,
                    Some(reason),
                )
                .await?
            }
        }
        tx.commit().await?;
        Ok(None)
    }

    /// The warehouse keeps an order the saga had given up on:
    /// COMPENSATING → FULFILLMENT_REQUESTED with its id, and an operator
    /// notification (the order took the long way).
    pub async fn adopt_fulfillment(
        &self,
        order_id: Uuid,
        wms_order_id: &str,
        reason: &str,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        let from = status_for_update(&mut tx, order_id).await?;
        if from != OrderStatus::FulfillmentRequested {
            sqlx::query("UPDATE orders SET wms_order_id = $2 WHERE id = $1")
                .bind(order_id)
                .bind(wms_order_id)
                .execute(&mut *tx)
                .await?;
            let why = format!("the warehouse keeps wms order {wms_order_id}: {reason}");
            set_status(
                &mut tx,
                order_id,
                from,
                OrderStatus::FulfillmentRequested,
                Some(&why),
            )
            .await?;
            record_notification(&mut tx, order_id, "fulfillment_kept_by_warehouse", &why).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The warehouse shipped the order: its reserved units become SOLD and
    /// the order SHIPPED, in one transaction (a retry finds it done).
    pub async fn sell_order(&self, order_id: Uuid, reason: Option<&str>) -> Result<(), DbError> {
        let mut tx = begin_stock_change(&self.pool).await?;
        let from = status_for_update(&mut tx, order_id).await?;
        if from == OrderStatus::Shipped {
            return Ok(());
        }
        end_reservations(&mut tx, order_id, ReservationState::Sold).await?;
        set_status(&mut tx, order_id, from, OrderStatus::Shipped, reason).await?;
        tx.commit().await?;
        self.stock_changed();
        Ok(())
    }

    /// IN_STOCK of each known SKU among `skus`.
    pub async fn in_stock_of(&self, skus: &[String]) -> Result<Vec<(String, i32)>, DbError> {
        Ok(
            sqlx::query_as("SELECT sku, in_stock FROM products WHERE sku = ANY($1) ORDER BY sku")
                .bind(skus)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

fn problem(line: &LineQty, reason: String) -> LineProblem {
    LineProblem {
        line_no: line.line_no,
        sku: line.sku.clone(),
        reason,
    }
}

pub(crate) fn parse_status(s: &str) -> Result<OrderStatus, DbError> {
    s.parse()
        .map_err(|_| DbError::Corrupt(format!("unknown order status {s:?}")))
}

pub(crate) async fn status_for_update(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
) -> Result<OrderStatus, DbError> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM orders WHERE id = $1 FOR UPDATE")
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?;
    parse_status(&status.ok_or(DbError::OrderNotFound(order_id))?)
}

/// Distinct SKUs of the order's reservations, sorted.
async fn order_skus(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
) -> Result<Vec<String>, DbError> {
    let skus: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT sku FROM reservations WHERE order_id = $1 ORDER BY sku",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(skus
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

/// Ends the order's open reservations in `to`: RELEASED gives the units back
/// to IN_STOCK, SOLD moves them to SOLD. Products are locked first, in SKU
/// order, like every multi-product write. Returns the order's SKUs.
pub(crate) async fn end_reservations(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
    to: ReservationState,
) -> Result<Vec<String>, DbError> {
    let skus = order_skus(tx, order_id).await?;
    sqlx::query("SELECT 1 FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE")
        .bind(&skus)
        .execute(&mut **tx)
        .await?;
    let (to_in_stock, to_sold) = if to == ReservationState::Sold {
        (0, 1)
    } else {
        (1, 0)
    };
    sqlx::query(
        r#"
        WITH r AS (
            UPDATE reservations SET state = $2, consumed_at = now()
            WHERE order_id = $1 AND state = 'RESERVED'
            RETURNING sku, quantity
        ),
        per_sku AS (SELECT sku, sum(quantity)::int4 AS q FROM r GROUP BY sku)
        UPDATE products p
        SET in_stock = p.in_stock + per_sku.q * $3,
            sold = p.sold + per_sku.q * $4,
            reserved = p.reserved - per_sku.q,
            updated_at = now()
        FROM per_sku WHERE p.sku = per_sku.sku
        "#,
    )
    .bind(order_id)
    .bind(to.as_str())
    .bind(to_in_stock)
    .bind(to_sold)
    .execute(&mut **tx)
    .await?;
    let refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    mark_changed(tx, &refs).await?;
    Ok(skus)
}

/// Records an operator notification of `kind` (once per message).
pub(crate) async fn record_notification(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
    kind: &str,
    message: &str,
) -> Result<(), DbError> {
    sqlx::query(
        r#"
        INSERT INTO notifications (order_id, kind, message)
        SELECT $1, $2, $3
        WHERE NOT EXISTS (SELECT 1 FROM notifications WHERE order_id = $1 AND kind = $2 AND message = $3)
        "#,
    )
    .bind(order_id)
    .bind(kind)
    .bind(message)
    .execute(&mut **tx)
    .await?;
    tracing::warn!(order.id = %order_id, kind, "operator notification recorded");
    Ok(())
}

pub(crate) async fn set_status(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
    from: OrderStatus,
    to: OrderStatus,
    reason: Option<&str>,
) -> Result<(), DbError> {
    if !from.can_become(to) {
        return Err(DbError::IllegalTransition { from, to });
    }
    sqlx::query(
        "UPDATE orders SET status = $2, status_reason = $3, updated_at = now() WHERE id = $1",
    )
    .bind(order_id)
    .bind(to.as_str())
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    history(tx, order_id, Some(from), to, reason).await
}

pub(crate) async fn history(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
    from: Option<OrderStatus>,
    to: OrderStatus,
    reason: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO order_status_history (order_id, from_status, to_status, reason) VALUES ($1, $2, $3, $4)")
        .bind(order_id)
        .bind(from.map(OrderStatus::as_str))
        .bind(to.as_str())
        .bind(reason)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
