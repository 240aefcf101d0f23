//! How a failure becomes a Temporal failure: the one place that decides what
//! Temporal retries, after which delay, and what it gives up on at once.

use db::DbError;
use temporalio_sdk::{ApplicationFailure, activities::ActivityError};
use vendors::http::ClientError;
use workflows::contracts::error_types;

/// Database failures: what a retry can fix (the database is down, a
/// transaction lost a race) is retried; bad order state and data the
/// database refuses are permanent.
pub(crate) fn db_failure(e: DbError) -> ActivityError {
    if e.is_transient() {
        tracing::warn!(error = %e, "database step failed; Temporal will retry");
        return ActivityError::application(ApplicationFailure::builder(e.to_string()).build());
    }
    let kind = if matches!(e, DbError::Database(_)) {
        tracing::error!(error = %e, "the database refused this step's data for good");
        error_types::INVALID_DATA
    } else {
        tracing::error!(error = %e, "order is not in a state this step can handle");
        error_types::INVALID_STATE
    };
    ActivityError::application(
        ApplicationFailure::builder(e.to_string())
            .type_name(kind.to_string())
            .non_retryable(true)
            .build(),
    )
}

/// A step that cannot work with what it found (a missing configuration):
/// retrying cannot help.
pub(crate) fn invalid_state(message: String) -> ActivityError {
    tracing::error!(%message, "step cannot proceed");
    ActivityError::application(
        ApplicationFailure::builder(message)
            .type_name(error_types::INVALID_STATE.to_string())
            .non_retryable(true)
            .build(),
    )
}

/// Client failures: 4xx is permanent (`permanent_type`), 429 is retried after
/// the server's delay, the rest is retried with the policy's backoff.
pub(crate) fn client_failure(e: ClientError, permanent_type: &str) -> ActivityError {
    let failure = match &e {
        ClientError::Permanent { .. } => {
            tracing::warn!(error = %e, "permanent failure");
            ApplicationFailure::builder(e.to_string())
                .type_name(permanent_type.to_string())
                .non_retryable(true)
                .build()
        }
        ClientError::RateLimited { retry_after, .. } => {
            tracing::info!(error = %e, "rate limited; retrying after the server's delay");
            ApplicationFailure::builder(e.to_string())
                .type_name("RateLimited".to_string())
                .maybe_next_retry_delay(*retry_after)
                .build()
        }
        ClientError::Transient { .. } => {
            tracing::warn!(error = %e, "transient failure; Temporal will retry");
            ApplicationFailure::builder(e.to_string())
                .type_name("Unavailable".to_string())
                .build()
        }
    };
    ActivityError::application(failure)
}

/// Client failures of a step that must not give up (settling a failed
/// submit: until the warehouse answers, nothing may be released): every
/// failure is retried, a rate limit after the server's delay.
pub(crate) fn retry_until_answered(e: ClientError) -> ActivityError {
    let delay = match &e {
        ClientError::RateLimited { retry_after, .. } => *retry_after,
        _ => None,
    };
    tracing::warn!(error = %e, "no answer yet; Temporal will retry");
    ActivityError::application(
        ApplicationFailure::builder(e.to_string())
            .type_name("Unavailable".to_string())
            .maybe_next_retry_delay(delay)
            .build(),
    )
}

/// Temporal could not be asked (a call from an activity): retried.
pub(crate) fn temporal_failure(e: orchestrator::TemporalError) -> ActivityError {
    tracing::warn!(error = %e, "temporal call failed; Temporal will retry");
    ActivityError::application(
        ApplicationFailure::builder(e.to_string())
            .type_name("Unavailable".to_string())
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use uuid::Uuid;

    use super::*;

    fn failure(e: ActivityError) -> Box<ApplicationFailure> {
        match e {
            ActivityError::Application(f) => f,
            other => panic!("expected an application failure, got {other:?}"),
        }
    }

    #[test]
    fn permanent_client_errors_become_non_retryable_failures_of_the_given_type() {
        let f = failure(client_failure(
            ClientError::Permanent {
                service: "wms",
                status: 400,
                message: "bad address".into(),
            },
            error_types::WMS_REJECTED,
        ));
        assert!(f.is_non_retryable());
        assert_eq!(f.type_name(), Some(error_types::WMS_REJECTED));
    }

    #[test]
    fn rate_limits_retry_after_the_servers_delay_and_outages_retry_with_backoff() {
        let f = failure(client_failure(
            ClientError::RateLimited {
                service: "shopify",
                retry_after: Some(Duration::from_secs(3)),
            },
            error_types::SHOPIFY_REJECTED,
        ));
        assert!(!f.is_non_retryable());
        assert_eq!(f.next_retry_delay(), Some(Duration::from_secs(3)));
        let f = failure(client_failure(
            ClientError::Transient {
                service: "wms",
                message: "timed out".into(),
            },
            error_types::WMS_REJECTED,
        ));
        assert!(!f.is_non_retryable());
        assert_eq!(f.next_retry_delay(), None);
    }

    #[test]
    fn a_step_that_must_not_give_up_retries_even_a_refusal() {
        let f = failure(retry_until_answered(ClientError::Permanent {
            service: "wms",
            status: 401,
            message: "bad token".into(),
        }));
        assert!(!f.is_non_retryable());
    }

    #[test]
    fn bad_order_state_is_permanent_and_database_trouble_is_retried() {
        let f = failure(db_failure(DbError::OrderNotFound(Uuid::nil())));
        assert!(f.is_non_retryable());
        assert_eq!(f.type_name(), Some(error_types::INVALID_STATE));
        assert!(
            !failure(db_failure(DbError::Database(sqlx::Error::PoolTimedOut))).is_non_retryable()
        );
    }
}
