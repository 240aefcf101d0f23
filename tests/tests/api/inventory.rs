//! The inventory API's contract (levels, reserve, unreserve, sold), one behaviour per test.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, test_settings};

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn set_stock_creates_a_missing_product_and_get_returns_its_levels(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app.set_stock("TSHIRT", 123).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"IN_STOCK": 123, "RESERVED": 0, "SOLD": 0})
    );
    let r = app.get_product("TSHIRT").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"IN_STOCK": 123, "RESERVED": 0, "SOLD": 0})
    );
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn set_stock_overwrites_in_stock_and_leaves_reserved_and_sold_alone(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("MUG", 10).await;
    let sold = app.reserve_token("MUG").await;
    assert_eq!(app.sold("MUG", &sold).await.status(), 200);
    app.reserve_token("MUG").await;
    assert_eq!(app.levels("MUG").await, (8, 1, 1));
    assert_eq!(app.set_stock("MUG", 5).await.status(), 200);
    assert_eq!(app.levels("MUG").await, (5, 1, 1));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn get_returns_404_for_an_unknown_product(pool: PgPool) {
    let app = spawn_app(pool).await;
    assert_problem(app.get_product("NOPE").await, 404, "product_not_found").await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn reserve_returns_a_uuid_token_and_moves_one_unit_to_reserved(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("CAP", 2).await;
    let token = app.reserve_token("CAP").await;
    assert!(uuid::Uuid::parse_str(&token).is_ok(), "{token} is a UUID");
    assert_eq!(app.levels("CAP").await, (1, 1, 0));
    assert_eq!(app.reservations_in_state("CAP", "RESERVED").await, 1);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn reserve_returns_409_when_in_stock_is_zero_and_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("CAP", 1).await;
    app.reserve_token("CAP").await;
    assert_problem(app.reserve("CAP").await, 409, "out_of_stock").await;
    assert_eq!(app.levels("CAP").await, (0, 1, 0));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn reserve_returns_404_for_an_unknown_product(pool: PgPool) {
    let app = spawn_app(pool).await;
    assert_problem(app.reserve("GHOST").await, 404, "product_not_found").await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn unreserve_returns_the_unit_to_in_stock_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("SOCK", 3).await;
    let token = app.reserve_token("SOCK").await;
    let r = app.unreserve("SOCK", &token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.levels("SOCK").await, (3, 0, 0));
    let body = assert_problem(
        app.unreserve("SOCK", &token).await,
        409,
        "reservation_already_used",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("RELEASED"),
        "{body}"
    );
    assert_problem(
        app.sold("SOCK", &token).await,
        409,
        "reservation_already_used",
    )
    .await;
    assert_eq!(app.levels("SOCK").await, (3, 0, 0));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn sold_moves_the_unit_to_sold_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("SOCK", 3).await;
    let token = app.reserve_token("SOCK").await;
    let r = app.sold("SOCK", &token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"IN_STOCK": 2, "RESERVED": 0, "SOLD": 1})
    );
    assert_problem(
        app.sold("SOCK", &token).await,
        409,
        "reservation_already_used",
    )
    .await;
    assert_problem(
        app.unreserve("SOCK", &token).await,
        409,
        "reservation_already_used",
    )
    .await;
    assert_eq!(app.levels("SOCK").await, (2, 0, 1));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_token_of_another_product_is_refused_and_nothing_changes(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("A", 1).await;
    app.set_stock("B", 1).await;
    let token_a = app.reserve_token("A").await;
    assert_problem(app.sold("B", &token_a).await, 404, "reservation_not_found").await;
    assert_problem(
        app.unreserve("B", &token_a).await,
        404,
        "reservation_not_found",
    )
    .await;
    assert_eq!(app.levels("A").await, (0, 1, 0));
    assert_eq!(app.levels("B").await, (1, 0, 0));
    // The token still works for its own product.
    assert_eq!(app.sold("A", &token_a).await.status(), 200);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn an_unknown_token_is_refused_with_404(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("A", 1).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_problem(app.sold("A", &unknown).await, 404, "reservation_not_found").await;
    assert_problem(
        app.unreserve("A", &unknown).await,
        404,
        "reservation_not_found",
    )
    .await;
    // A token against a product that does not exist names the product.
    assert_problem(app.sold("NOPE", &unknown).await, 404, "product_not_found").await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn malformed_token_bodies_are_refused_with_400(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("A", 1).await;
    app.reserve_token("A").await;
    let cases: [(&str, &str); 5] = [
        (
            r#"{"reservationToken": "abc"}"#,
            "invalid_reservation_token",
        ),
        (r#"{"reservationToken": 42}"#, "invalid_body"),
        (
            r#"{"token": "22489339-5462-458b-b184-fc1f55eedab5"}"#,
            "invalid_body",
        ),
        (r#"{"reservationToken": "#, "malformed_json"),
        ("", "empty_body"),
    ];
    for path in ["sold", "unreserve"] {
        for (body, code) in cases {
            let r = app
                .client
                .post(app.url(&format!("/product/A/{path}")))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_problem(r, 400, code).await;
        }
    }
    assert_eq!(app.levels("A").await, (0, 1, 0));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn bad_stock_bodies_are_refused_with_a_named_problem_and_change_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("A", 7).await;
    let cases: [(&str, &str); 10] = [
        ("not json", "malformed_json"),
        ("", "empty_body"),
        ("{}", "invalid_body"),
        ("[5]", "invalid_body"),
        (r#"{"stock": "5"}"#, "invalid_body"),
        (r#"{"stock": null}"#, "invalid_body"),
        (r#"{"stock": -1}"#, "invalid_stock"),
        (r#"{"stock": 2.5}"#, "invalid_stock"),
        (r#"{"stock": 1000000001}"#, "invalid_stock"),
        (r#"{"stock": 99999999999999999999999}"#, "invalid_stock"),
    ];
    for (body, code) in cases {
        let r = app
            .client
            .patch(app.url("/product/A/stock"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(r, 400, code).await;
        assert!(
            !problem["detail"].as_str().unwrap().is_empty(),
            "{body}: {problem}"
        );
    }
    let r = app
        .client
        .patch(app.url("/product/A/stock"))
        .header("content-type", "text/plain")
        .body(r#"{"stock": 5}"#)
        .send()
        .await
        .unwrap();
    assert_problem(r, 415, "unsupported_media_type").await;
    let huge = format!(r#"{{"stock": 5, "pad": "{}"}}"#, "x".repeat(64 * 1024));
    let r = app
        .client
        .patch(app.url("/product/A/stock"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(r, 413, "payload_too_large").await;
    // None of the above touched the product, nor created B.
    assert_eq!(app.levels("A").await, (7, 0, 0));
    let r = app
        .client
        .patch(app.url("/product/B/stock"))
        .body(r#"{"stock": -3}"#)
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "invalid_stock").await;
    assert_problem(app.get_product("B").await, 404, "product_not_found").await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn stock_accepts_a_body_sent_without_a_content_type(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app
        .client
        .patch(app.url("/product/A/stock"))
        .body(r#"{"stock": 4}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.levels("A").await, (4, 0, 0));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn invalid_product_ids_are_refused_with_400(pool: PgPool) {
    let app = spawn_app(pool).await;
    let long = "X".repeat(65);
    for sku in [long.as_str(), "a%2Fb", "%20padded", "tab%09bed"] {
        assert_problem(app.get_product(sku).await, 400, "invalid_sku").await;
        assert_problem(app.set_stock(sku, 1).await, 400, "invalid_sku").await;
        assert_problem(app.reserve(sku).await, 400, "invalid_sku").await;
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // The longest allowed SKU works.
    let max = "Y".repeat(64);
    assert_eq!(app.set_stock(&max, 1).await.status(), 200);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn unknown_routes_and_wrong_methods_answer_with_problem_json(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_problem(r, 404, "route_not_found").await;
    let r = app
        .client
        .delete(app.url("/product/A"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 405, "method_not_allowed").await;
    let r = app
        .client
        .get(app.url("/product/A/reserve"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 405, "method_not_allowed").await;
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn every_response_carries_a_request_id(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app.get_product("A").await;
    let generated = r
        .headers()
        .get("x-request-id")
        .expect("generated id")
        .to_str()
        .unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok());
    let r = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("x-request-id").unwrap(), "abc-123");
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn readiness_reports_the_database(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["database"], "ok");
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn expired_reservations_return_to_in_stock_and_their_tokens_stop_working(pool: PgPool) {
    let mut settings = test_settings();
    settings.reserver.reservation_ttl = Some(Duration::ZERO);
    settings.expiry_sweep_interval = Duration::from_millis(100);
    let app = spawn_app_with(pool, settings).await;
    app.set_stock("FLASH", 2).await;
    let token = app.reserve_token("FLASH").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.levels("FLASH").await != (2, 0, 0) {
        assert!(
            Instant::now() < deadline,
            "reservation was not expired: {:?}",
            app.levels("FLASH").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = assert_problem(
        app.sold("FLASH", &token).await,
        409,
        "reservation_already_used",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("EXPIRED"),
        "{body}"
    );
    assert_eq!(app.reservations_in_state("FLASH", "EXPIRED").await, 1);
}
