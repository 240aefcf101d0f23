//! Correctness under concurrency, through HTTP, against a real Postgres.

use std::collections::{HashMap, HashSet};

use futures::future::join_all;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{TestApp, spawn_app};

async fn reserve_outcome(app: &TestApp, sku: &str) -> Result<String, u16> {
    let r = app.reserve(sku).await;
    match r.status().as_u16() {
        200 => Ok(r.json::<Value>().await.unwrap()["reservationToken"]
            .as_str()
            .unwrap()
            .to_string()),
        other => Err(other),
    }
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn concurrent_reserves_grant_exactly_the_units_in_stock(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.set_stock("HOT", 37).await;
    let outcomes = join_all((0..120).map(|_| reserve_outcome(&app, "HOT"))).await;
    let tokens: HashSet<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    let refused: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(tokens.len(), 37, "distinct tokens granted");
    assert_eq!(refused.len(), 83);
    assert!(
        refused.iter().all(|s| **s == 409),
        "refusals are 409: {refused:?}"
    );
    assert_eq!(app.levels("HOT").await, (0, 37, 0));
    assert_eq!(app.reservations_in_state("HOT", "RESERVED").await, 37);
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn one_unit_left_and_two_simultaneous_reserves_give_one_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    for round in 0..20 {
        let sku = format!("LAST-{round}");
        app.set_stock(&sku, 1).await;
        let (a, b) = tokio::join!(reserve_outcome(&app, &sku), reserve_outcome(&app, &sku));
        assert_eq!(
            usize::from(a.is_ok()) + usize::from(b.is_ok()),
            1,
            "round {round}: {a:?} {b:?}"
        );
        assert_eq!(app.levels(&sku).await, (0, 1, 0));
    }
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn two_api_instances_on_one_database_never_oversell(pool: PgPool) {
    // Two processes' worth of reserve batchers competing for one row.
    let a = spawn_app(pool.clone()).await;
    let b = spawn_app(pool).await;
    a.set_stock("HOT", 50).await;
    let outcomes = join_all((0..160).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        reserve_outcome(app, "HOT")
    }))
    .await;
    let granted = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(granted, 50);
    assert!(
        outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .all(|s| *s == 409)
    );
    assert_eq!(a.levels("HOT").await, (0, 50, 0));
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_token_is_consumed_once_under_concurrent_unreserve_and_sold(pool: PgPool) {
    let app = &spawn_app(pool).await;
    app.set_stock("RACE", 20).await;
    let tokens: Vec<String> = join_all((0..20).map(|_| app.reserve_token("RACE"))).await;
    let mut winners = HashMap::new();
    for token in &tokens {
        let attempts = join_all((0..8).map(|i| async move {
            let r = if i % 2 == 0 {
                app.sold("RACE", token).await
            } else {
                app.unreserve("RACE", token).await
            };
            (i % 2 == 0, r.status().as_u16())
        }))
        .await;
        let ok: Vec<_> = attempts.iter().filter(|(_, s)| *s == 200).collect();
        assert_eq!(ok.len(), 1, "exactly one consume per token: {attempts:?}");
        assert!(
            attempts.iter().all(|(_, s)| *s == 200 || *s == 409),
            "{attempts:?}"
        );
        *winners.entry(ok[0].0).or_insert(0_i64) += 1;
    }
    let sold = winners.get(&true).copied().unwrap_or(0);
    let released = winners.get(&false).copied().unwrap_or(0);
    assert_eq!(app.levels("RACE").await, (released, 0, sold));
    assert_eq!(app.reservations_in_state("RACE", "SOLD").await, sold);
    assert_eq!(
        app.reservations_in_state("RACE", "RELEASED").await,
        released
    );
}

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn stock_is_conserved_under_a_random_concurrent_mix_of_operations(pool: PgPool) {
    const SKUS: [&str; 4] = ["M-1", "M-2", "M-3", "M-4"];
    const INITIAL: i64 = 25;
    let app = spawn_app(pool).await;
    for sku in SKUS {
        app.set_stock(sku, INITIAL).await;
    }
    let workers = (0..16_u64).map(|seed| {
        let app = &app;
        async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut held: Vec<(&str, String)> = Vec::new();
            for _ in 0..40 {
                let op = rng.u8(0..3);
                if op == 0 || held.is_empty() {
                    let sku = SKUS[rng.usize(..SKUS.len())];
                    match reserve_outcome(app, sku).await {
                        Ok(t) => held.push((sku, t)),
                        Err(status) => assert_eq!(status, 409),
                    }
                } else {
                    let (sku, token) = held.swap_remove(rng.usize(..held.len()));
                    let r = if op == 1 {
                        app.sold(sku, &token).await
                    } else {
                        app.unreserve(sku, &token).await
                    };
                    assert_eq!(r.status(), 200, "own token consumes once");
                }
            }
        }
    });
    join_all(workers).await;
    for sku in SKUS {
        let (in_stock, reserved, sold) = app.levels(sku).await;
        assert_eq!(in_stock + reserved + sold, INITIAL, "{sku} conserved");
        assert_eq!(
            reserved,
            app.reservations_in_state(sku, "RESERVED").await,
            "{sku} reserved matches rows"
        );
        assert_eq!(
            sold,
            app.reservations_in_state(sku, "SOLD").await,
            "{sku} sold matches rows"
        );
    }
}
