//! A zone as users define it: a name, a [`Shape`] and the [`Rules`] its
//! events follow. Stored as JSON (the store keeps the body opaque).

use polo_domain::UserId;
use serde::{Deserialize, Serialize};

use crate::geometry::Shape;
use crate::machine::Rules;

/// The longest zone name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Why a zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// A field is out of range; the text names it.
    #[error("{0}")]
    Invalid(String),
    /// A stored zone failed to decode.
    #[error("stored zone {id}: {message}")]
    Corrupt {
        /// The zone's id.
        id: i64,
        /// What failed.
        message: String,
    },
}

/// What a user says about a zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneSpec {
    /// Shown in events ("Home").
    pub name: String,
    /// Its outline.
    pub shape: Shape,
    /// How its events fire.
    #[serde(default)]
    pub rules: Rules,
    /// Where it came from, when not from polo's API: an OwnTracks region
    /// keeps its identity here, so the same region sent again updates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<crate::regions::Origin>,
}

impl ZoneSpec {
    /// Checks every field.
    ///
    /// # Errors
    /// [`ZoneError::Invalid`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ZoneError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(ZoneError::Invalid(format!("name: must be 1 to {MAX_NAME_CHARS} characters")));
        }
        self.shape.validate().map_err(ZoneError::Invalid)?;
        self.rules.validate().map_err(ZoneError::Invalid)
    }

    /// The JSON body the store keeps.
    #[must_use]
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a zone spec serialises")
    }
}

/// A stored zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// The store's id, unique on the instance.
    pub id: i64,
    /// Owner.
    pub user: UserId,
    /// What the owner said.
    pub spec: ZoneSpec,
}

impl Zone {
    /// Decodes a stored body.
    ///
    /// # Errors
    /// [`ZoneError::Corrupt`] when it is not a zone.
    pub fn from_body(id: i64, user: UserId, body: &str) -> Result<Self, ZoneError> {
        let spec = serde_json::from_str(body).map_err(|e| ZoneError::Corrupt { id, message: e.to_string() })?;
        Ok(Self { id, user, spec })
    }
}
