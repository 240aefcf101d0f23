//! Read models for the API: order details, order lists, product lists.

use chrono::{DateTime, Utc};
use domain::{Channel, LineProblem, OrderStatus, ReservationState, StockLevels};
use serde::Serialize;
use uuid::Uuid;

use crate::{connection::Db, error::DbError, orders::parse_status};

/// An order with everything a client may ask about it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDetail {
    /// Summary fields.
    #[serde(flatten)]
    pub summary: OrderSummary,
    /// Lines as received.
    pub lines: Vec<OrderLine>,
    /// Why each failing line could not be allocated (a REJECTED order).
    pub problems: Vec<LineProblem>,
    /// Reservations held or once held by the order.
    pub reservations: Vec<OrderReservation>,
    /// Every status change, oldest first.
    pub history: Vec<StatusChangeRecord>,
    /// What an operator was told about the order (a rejection, a status
    /// change the warehouse refused, a repair), oldest first.
    pub notifications: Vec<OrderNotification>,
    /// The shipment's tracking, once the warehouse reported it.
    pub tracking: Option<Tracking>,
    /// Whether it goes to the warehouse only once paid (its payment was
    /// pending or only authorized when it arrived).
    pub awaits_payment: bool,
}

/// A shipment's tracking as the warehouse reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tracking {
    /// The carrier, e.g. `USPS`.
    pub carrier: Option<String>,
    /// The carrier's tracking number.
    pub number: Option<String>,
    /// Where the customer follows the parcel.
    pub url: Option<String>,
}

/// The fields of an order shown in lists.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummary {
    /// Order id.
    pub id: Uuid,
    /// `shopify` or `api`.
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    /// Shopify shop, if any.
    #[sqlx(try_from = "String")]
    #[schema(value_type = Option<String>)]
    pub shop: OptionalText,
    /// The channel's id of the order (Shopify id, or the API idempotency key).
    pub external_id: String,
    /// Human name (e.g. `#1001`) or customer reference.
    pub name: Option<String>,
    /// Current status.
    #[sqlx(try_from = "String")]
    pub status: OrderStatus,
    /// Why it is in that status (rejection reasons, WMS id, …).
    pub status_reason: Option<String>,
    /// Temporal workflow id.
    pub workflow_id: String,
    /// The warehouse's order id, once accepted.
    pub wms_order_id: Option<String>,
    /// When the customer placed it on the channel.
    pub placed_at: Option<DateTime<Utc>>,
    /// When the OMS recorded it.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// The kinds of the notifications that ask a person about it (see
    /// `notifications` in the order), so a list shows what needs attention.
    pub notification_kinds: Vec<String>,
}

/// Text that is stored as `''` when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionalText(pub Option<String>);

impl From<String> for OptionalText {
    fn from(s: String) -> Self {
        Self((!s.is_empty()).then_some(s))
    }
}

impl Serialize for OptionalText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// One order line.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// Position, from 1.
    pub line_no: i32,
    /// SKU as received.
    pub sku: String,
    /// Units.
    pub quantity: i32,
    /// Unit price as a decimal string.
    pub unit_price: Option<String>,
    /// Product title.
    pub title: Option<String>,
}

/// One reservation of the order. Its token is not shown: an order's units
/// are released or sold through the order, never with a token.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderReservation {
    /// Product.
    pub sku: String,
    /// Units.
    pub quantity: i32,
    /// RESERVED, RELEASED, SOLD or EXPIRED.
    #[sqlx(try_from = "String")]
    pub state: ReservationState,
    /// When reserved.
    pub created_at: DateTime<Utc>,
    /// When released or sold.
    pub consumed_at: Option<DateTime<Utc>>,
}

/// One status change.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusChangeRecord {
    /// Previous status (none for the first).
    pub from_status: Option<OrderStatus>,
    /// New status.
    pub to_status: OrderStatus,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// How many orders wait in one status that is not final, and for how long
/// the one unchanged longest has waited.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenOrders {
    /// The status.
    pub status: OrderStatus,
    /// Orders in it.
    pub count: i64,
    /// Seconds since the longest-waiting of them last changed.
    pub oldest_unchanged_secs: f64,
}

/// Something an operator was told about an order.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderNotification {
    /// What kind (`order_rejected`, `status_change_failed`, `order_repaired`, …).
    pub kind: String,
    /// For people.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Filters of an order list; every field optional.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    /// Only this status.
    pub status: Option<OrderStatus>,
    /// Only this channel.
    pub channel: Option<Channel>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    /// Only orders with a notification of this kind.
    pub notification: Option<String>,
}

/// Position after which a page starts (newest first: created_at, then id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCursor {
    /// Creation time of the last item of the previous page.
    pub created_at: DateTime<Utc>,
    /// Its id.
    pub id: Uuid,
}

const SUMMARY_COLUMNS: &str = "id, channel, shop_domain AS shop, external_id, name, status, status_reason, \
     workflow_id, wms_order_id, placed_at, created_at, updated_at, \
     ARRAY(SELECT DISTINCT n.kind FROM notifications n WHERE n.order_id = orders.id ORDER BY n.kind) AS notification_kinds";

impl Db {
    /// An order with its lines, reservations and history.
    pub async fn order_detail(&self, id: Uuid) -> Result<OrderDetail, DbError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            summary: OrderSummary,
            line_problems: Option<sqlx::types::Json<Vec<LineProblem>>>,
            tracking: Option<sqlx::types::Json<Tracking>>,
            awaits_payment: bool,
        }
        let row: Row = sqlx::query_as(&format!(
            "SELECT {SUMMARY_COLUMNS}, line_problems, tracking, awaits_payment FROM orders WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(DbError::OrderNotFound(id))?;
        let summary = row.summary;
        let tracking = row.tracking.map(|t| t.0);
        let problems = row.line_problems.map(|p| p.0).unwrap_or_default();
        let lines = sqlx::query_as(
            "SELECT line_no, sku, quantity, unit_price::text AS unit_price, title FROM order_lines WHERE order_id = $1 ORDER BY line_no",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let reservations = sqlx::query_as(
            "SELECT sku, quantity, state, created_at, consumed_at FROM reservations WHERE order_id = $1 ORDER BY created_at, sku",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        #[derive(sqlx::FromRow)]
        struct HistoryRow {
            from_status: Option<String>,
            to_status: String,
            reason: Option<String>,
            at: DateTime<Utc>,
        }
        let rows: Vec<HistoryRow> = sqlx::query_as(
            "SELECT from_status, to_status, reason, at FROM order_status_history WHERE order_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let history = rows
            .into_iter()
            .map(|r| {
                Ok(StatusChangeRecord {
                    from_status: r.from_status.as_deref().map(parse_status).transpose()?,
                    to_status: parse_status(&r.to_status)?,
                    reason: r.reason,
                    at: r.at,
                })
            })
            .collect::<Result<_, DbError>>()?;
        let notifications = sqlx::query_as(
            "SELECT kind, message, created_at AS at FROM notifications WHERE order_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(OrderDetail {
            summary,
            lines,
            problems,
            reservations,
            history,
            notifications,
            tracking,
            awaits_payment: row.awaits_payment,
        })
    }

    /// Records the shipment's tracking (the latest report wins).
    pub async fn record_tracking(&self, id: Uuid, tracking: &Tracking) -> Result<(), DbError> {
        let updated =
            sqlx::query("UPDATE orders SET tracking = $2, updated_at = now() WHERE id = $1")
                .bind(id)
                .bind(sqlx::types::Json(tracking))
                .execute(&self.pool)
                .await?
                .rows_affected();
        if updated == 0 {
            return Err(DbError::OrderNotFound(id));
        }
        Ok(())
    }

    /// The orders in each status that is not final (for the metrics: an
    /// order long in COMPENSATING or RECEIVED needs someone).
    pub async fn open_orders(&self) -> Result<Vec<OpenOrders>, DbError> {
        let open: Vec<&str> = OrderStatus::ALL
            .into_iter()
            .filter(|s| !s.is_final())
            .map(OrderStatus::as_str)
            .collect();
        let rows: Vec<(String, i64, f64)> = sqlx::query_as(
            r#"
            SELECT status, count(*),
                   coalesce(extract(epoch FROM now() - min(updated_at)), 0)::float8
            FROM orders WHERE status = ANY($1) GROUP BY status
            "#,
        )
        .bind(&open)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(status, count, oldest_unchanged_secs)| {
                Ok(OpenOrders {
                    status: parse_status(&status)?,
                    count,
                    oldest_unchanged_secs,
                })
            })
            .collect()
    }

    /// A page of orders, newest first, after `cursor`; at most `limit`.
    /// Returns the page and the cursor of the next one (if there may be more).
    pub async fn list_orders(
        &self,
        filter: &OrderFilter,
        cursor: Option<OrderCursor>,
        limit: i64,
    ) -> Result<(Vec<OrderSummary>, Option<OrderCursor>), DbError> {
        let rows: Vec<OrderSummary> = sqlx::query_as(&format!(
            r#"
            SELECT {SUMMARY_COLUMNS} FROM orders
            WHERE ($1::text IS NULL OR status = $1)
              AND ($2::text IS NULL OR channel = $2)
              AND ($3::timestamptz IS NULL OR created_at >= $3)
              AND ($4::timestamptz IS NULL OR created_at < $4)
              AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
              AND ($8::text IS NULL OR EXISTS (
                    SELECT 1 FROM notifications n WHERE n.order_id = orders.id AND n.kind = $8))
            ORDER BY created_at DESC, id DESC
            LIMIT $7
            "#
        ))
        .bind(filter.status.map(OrderStatus::as_str))
        .bind(filter.channel.map(Channel::as_str))
        .bind(filter.created_from)
        .bind(filter.created_to)
        .bind(cursor.map(|c| c.created_at))
        .bind(cursor.map(|c| c.id))
        .bind(limit)
        .bind(filter.notification.as_deref())
        .fetch_all(&self.pool)
        .await?;
        let next = (i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit)
            .then(|| {
                rows.last().map(|r| OrderCursor {
                    created_at: r.created_at,
                    id: r.id,
                })
            })
            .flatten();
        Ok((rows, next))
    }

    /// A page of products in SKU order after `after`; at most `limit`.
    pub async fn list_products(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<(String, StockLevels)>, Option<String>), DbError> {
        let rows: Vec<(String, i32, i32, i32)> = sqlx::query_as(
            "SELECT sku, in_stock, reserved, sold FROM products WHERE ($1::text IS NULL OR sku > $1) ORDER BY sku LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let next = (i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit)
            .then(|| rows.last().map(|r| r.0.clone()))
            .flatten();
        let items = rows
            .into_iter()
            .map(|(sku, in_stock, reserved, sold)| {
                (
                    sku,
                    StockLevels {
                        in_stock,
                        reserved,
                        sold,
                    },
                )
            })
            .collect();
        Ok((items, next))
    }

    /// The status of an order and its workflow's id, if the order exists.
    pub async fn order_workflow(&self, id: Uuid) -> Result<Option<(OrderStatus, String)>, DbError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT status, workflow_id FROM orders WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(status, workflow)| Ok((parse_status(&status)?, workflow)))
            .transpose()
    }

    /// Whether the order was ever told `kind` (a notification).
    pub async fn has_notification(&self, id: Uuid, kind: &str) -> Result<bool, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM notifications WHERE order_id = $1 AND kind = $2)",
        )
        .bind(id)
        .bind(kind)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The status of an order, if it exists.
    pub async fn order_status(&self, id: Uuid) -> Result<Option<OrderStatus>, DbError> {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        status.as_deref().map(parse_status).transpose()
    }
}
