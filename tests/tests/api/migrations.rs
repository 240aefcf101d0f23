//! Schema changes during rolling deploys.

use sqlx::PgPool;

use crate::helpers::spawn_app;

#[sqlx::test(migrator = "db::MIGRATOR")]
async fn a_previous_release_starts_against_a_schema_a_newer_release_migrated(pool: PgPool) {
    // What a newer release leaves behind: an applied migration this binary
    // has never heard of.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (29991231000000, 'from a newer release', true, '\\x00'::bytea, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();

    db::migrate(&pool)
        .await
        .expect("a newer, unknown migration does not stop this release");
    let app = spawn_app(pool).await;
    assert_eq!(app.set_stock("ROLLING-1", 3).await.status(), 200);
    assert_eq!(app.levels("ROLLING-1").await, (3, 0, 0));
}
