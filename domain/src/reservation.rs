use std::{fmt, str::FromStr};

use uuid::Uuid;

use crate::error::DomainError;

/// Proof of one reservation, handed to the caller of `reserve`; required to
/// release the stock again or to mark it sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ReservationToken(Uuid);

impl ReservationToken {
    /// A fresh random (v4) token: unguessable, so a token is also a capability.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses a token from its hyphenated UUID text.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Uuid::parse_str(raw).map(Self).map_err(|_| {
            DomainError::InvalidReservationToken(
                "reservationToken must be a UUID such as 22489339-5462-458b-b184-fc1f55eedab5"
                    .into(),
            )
        })
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for ReservationToken {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl fmt::Display for ReservationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Lifecycle of a reservation. Only `Reserved` holds stock; every other state
/// is final, which is what makes a token single-use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationState {
    /// Holds units out of IN_STOCK.
    Reserved,
    /// Given back to IN_STOCK by `unreserve` or a compensation.
    Released,
    /// Moved to SOLD.
    Sold,
    /// Given back to IN_STOCK because it outlived its `expires_at`.
    Expired,
}

impl ReservationState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Released => "RELEASED",
            Self::Sold => "SOLD",
            Self::Expired => "EXPIRED",
        }
    }
}

impl FromStr for ReservationState {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RESERVED" => Ok(Self::Reserved),
            "RELEASED" => Ok(Self::Released),
            "SOLD" => Ok(Self::Sold),
            "EXPIRED" => Ok(Self::Expired),
            other => Err(DomainError::UnknownReservationState(other.to_string())),
        }
    }
}

impl TryFrom<String> for ReservationState {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for ReservationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_through_text() {
        let t = ReservationToken::generate();
        assert_eq!(ReservationToken::parse(&t.to_string()), Ok(t));
    }

    #[test]
    fn token_rejects_non_uuid_text() {
        for bad in [
            "",
            "abc",
            "22489339-5462-458b-b184-fc1f55eedab",
            "not-a-uuid-at-all-really-no-sir",
        ] {
            assert!(ReservationToken::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn state_names_round_trip() {
        for s in [
            ReservationState::Reserved,
            ReservationState::Released,
            ReservationState::Sold,
            ReservationState::Expired,
        ] {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
        assert!("LOST".parse::<ReservationState>().is_err());
    }
}
