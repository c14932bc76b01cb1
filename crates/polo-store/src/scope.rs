//! What a device token may do beyond being its device.
//!
//! Every token may ingest as its own device, read that device's latest
//! position and get the OwnTracks friends reply: that is all a phone needs,
//! and it is all a token can do when it was made without scopes. Anything
//! more is an explicit [`TokenScope`] chosen when the token is made and
//! stored with it, so a lost phone's token does not give away the history,
//! public links, friends or the other devices.
//!
//! Tokens record the token that made them (if one did), as shares and
//! location grants do: revoking a token revokes everything it made
//! ([`crate::Store::revoke_token`]), so a stolen token cannot leave anything
//! behind that outlives it.

use std::fmt;

/// One thing a token may do beyond ingesting as its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenScope {
    /// Read the user's whole history and everything computed from it
    /// (points, exports, timeline, places, maps, statistics, the live map,
    /// every device's position, imports, token list).
    Read,
    /// Change the user's data: upload imports, edit places, legs and
    /// timeline settings.
    Write,
    /// Make, list and revoke public share links.
    Share,
    /// See, grant and withdraw location grants ("friends").
    Friends,
    /// Add devices, make tokens (with at most the making token's scopes),
    /// revoke tokens and set devices' encryption keys.
    Devices,
    /// The administrator's routes (users, instance settings, replication
    /// tasks), for a token of an administrator.
    Admin,
}

impl TokenScope {
    /// Every scope, in the order they are shown.
    pub const ALL: [Self; 6] = [Self::Read, Self::Write, Self::Share, Self::Friends, Self::Devices, Self::Admin];

    /// The stable name, as stored, sent and typed (`read`, `write`, …).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Share => "share",
            Self::Friends => "friends",
            Self::Devices => "devices",
            Self::Admin => "admin",
        }
    }

    /// The scope called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`TokenScope`]s; empty is the default: the device only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TokenScopes(u8);

/// A scope name that is not one of [`TokenScope::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token scope {0:?}; the scopes are read, write, share, friends, devices, admin (or all)")]
pub struct UnknownScope(pub String);

impl TokenScopes {
    /// The device only.
    pub const NONE: Self = Self(0);

    /// Every scope.
    #[must_use]
    pub fn all() -> Self {
        TokenScope::ALL.into_iter().collect()
    }

    /// Whether `scope` is in the set.
    #[must_use]
    pub fn contains(self, scope: TokenScope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in the set.
    #[must_use]
    pub fn covers(self, other: Self) -> bool {
        other.0 & !self.0 == 0
    }

    /// Whether the set is empty (the device only).
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes, in [`TokenScope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = TokenScope> {
        TokenScope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The names, in order.
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(TokenScope::name).collect()
    }

    /// Parses names separated by commas or white space; `all` stands for
    /// every scope, and nothing at all is the empty set.
    ///
    /// # Errors
    /// [`UnknownScope`] naming the first unknown name.
    pub fn parse(text: &str) -> Result<Self, UnknownScope> {
        let mut scopes = Self::NONE;
        for name in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|n| !n.is_empty()) {
            if name == "all" {
                scopes = Self::all();
            } else {
                let scope = TokenScope::from_name(name).ok_or_else(|| UnknownScope(name.to_owned()))?;
                scopes = scopes.with(scope);
            }
        }
        Ok(scopes)
    }

    /// The set with `scope` added.
    #[must_use]
    pub fn with(self, scope: TokenScope) -> Self {
        Self(self.0 | scope.bit())
    }
}

impl FromIterator<TokenScope> for TokenScopes {
    fn from_iter<I: IntoIterator<Item = TokenScope>>(iter: I) -> Self {
        iter.into_iter().fold(Self::NONE, Self::with)
    }
}

/// Space-separated names, as stored (empty for the device only).
impl fmt::Display for TokenScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

/// What a new token may do and who made it, for [`crate::Store::create_token`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenGrant {
    /// What it may do beyond ingesting as its device.
    pub scopes: TokenScopes,
    /// The token that made it, if a token did; revoking that one revokes this one.
    pub created_by: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_compare() {
        assert_eq!(TokenScopes::parse("").unwrap(), TokenScopes::NONE);
        let two = TokenScopes::parse("read, share").unwrap();
        assert_eq!(two.names(), ["read", "share"]);
        assert_eq!(two.to_string(), "read share");
        assert_eq!(TokenScopes::parse(&two.to_string()).unwrap(), two);
        assert_eq!(TokenScopes::parse("all").unwrap(), TokenScopes::all());
        assert!(TokenScopes::all().covers(two) && two.covers(TokenScopes::NONE));
        assert!(!two.covers(TokenScopes::all()));
        assert!(two.contains(TokenScope::Read) && !two.contains(TokenScope::Devices));
        assert_eq!(TokenScopes::parse("read,root").unwrap_err(), UnknownScope("root".into()));
    }
}
